"""Diversity metrics on hand-made examples with known answers, and against plain-Python references."""

import itertools
import math

import pytest
import torch

from ecosystem.diversity import (
    concept_coverage,
    distinct_n,
    levenshtein,
    levenshtein_diversity,
    token_entropy,
    unique_fraction,
)

PAD = 0


def seqs(*words: str, length: int = 0) -> torch.Tensor:
    """One developer's samples from strings of letters a=1, b=2, ...; '.' is PAD: ``(K, T)``."""
    length = max(length, *map(len, words))
    ids = [[0 if ch == "." else ord(ch) - 96 for ch in w.ljust(length, ".")] for w in words]
    return torch.tensor(ids)


def python_edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row = row, [i]
        for j, y in enumerate(b, 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y)))
    return row[-1]


def content(row: list[int]) -> list[int]:
    return row[: row.index(PAD)] if PAD in row else row


def random_items(seed: int, n: int = 3, k: int = 7, t: int = 9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(1, 4, (n, k, t), generator=g)
    ends = torch.randint(0, t + 1, (n, k, 1), generator=g)
    return items.masked_fill(torch.arange(t) >= ends, PAD)  # (N, K, T), some empty, some full


def test_token_entropy():
    items = torch.stack([seqs("aaaa", "aaaa"), seqs("abcd", "dcba"), seqs("ab.c", "ba.d")])  # (3, 2, 4)
    assert token_entropy(items, pad_id=PAD).tolist() == pytest.approx([0.0, math.log(4), math.log(2)])
    # Without pad_id the pad is a token like any other.
    counts = torch.tensor([2, 2, 2, 1, 1]) / 8  # pad, a, b, c, d
    assert token_entropy(items[2:]).item() == pytest.approx(-(counts * counts.log()).sum().item())


def test_distinct_n_known_counts():
    items = torch.stack([seqs("abab", "abab"), seqs("abc.", "abd.")])  # (2, 2, 4)
    assert distinct_n(items, 2, pad_id=PAD).tolist() == pytest.approx([2 / 6, 3 / 4])
    assert distinct_n(items, 1, pad_id=PAD).tolist() == pytest.approx([2 / 8, 4 / 6])
    assert distinct_n(seqs("ab.c")[None], 2, pad_id=PAD).item() == 1.0  # only "ab": none crosses the end
    assert distinct_n(seqs("ab")[None], 3).item() == 0.0  # no trigram at all


@pytest.mark.parametrize("n", [1, 2, 3])
def test_distinct_n_matches_python(n):
    items = random_items(seed=n)
    for d, dev in enumerate(items.tolist()):
        grams = [tuple(c[s : s + n]) for c in map(content, dev) for s in range(len(c) - n + 1)]
        expected = len(set(grams)) / len(grams) if grams else 0.0
        assert distinct_n(items, n, pad_id=PAD)[d].item() == pytest.approx(expected)


def test_levenshtein_known_distances():
    a, b = seqs("abc", "kitten", "", "ab", "flaw", length=7), seqs("abd", "sitting", "", "", "lawn", length=7)
    la, lb = (x.ne(PAD).sum(1) for x in (a, b))
    assert levenshtein(a, b, la, lb).tolist() == [1, 3, 0, 2, 2]


def test_levenshtein_diversity_known_answers():
    same = seqs("abc", "abc", "abc")
    assert levenshtein_diversity(same[None]).item() == 0.0
    assert levenshtein_diversity(seqs("abc", "abd")[None]).item() == pytest.approx(1 / 3)
    # Pairs: (abc, abd) 1/3, (abc, a) 2/3, (abd, a) 2/3 — lengths differ through the pad.
    three = seqs("abc", "abd", "a..")[None]
    assert levenshtein_diversity(three, pad_id=PAD).item() == pytest.approx(5 / 9)
    assert levenshtein_diversity(seqs("...", "...")[None], pad_id=PAD).item() == 0.0  # two empty strings
    assert levenshtein_diversity(seqs("abc")[None]).item() == 0.0  # no pair


def test_levenshtein_diversity_matches_python_batched():
    items = random_items(seed=7, n=4, k=6, t=8)
    got = levenshtein_diversity(items, pad_id=PAD)
    for d, dev in enumerate(items.tolist()):
        rows = list(map(content, dev))
        pairs = list(itertools.combinations(rows, 2))
        expected = sum(python_edit_distance(a, b) / max(len(a), len(b), 1) for a, b in pairs) / len(pairs)
        assert got[d].item() == pytest.approx(expected, rel=1e-12)
        assert levenshtein_diversity(items[d : d + 1], pad_id=PAD).item() == pytest.approx(got[d].item())


def test_levenshtein_diversity_sampled_pairs():
    items = random_items(seed=3, n=2, k=120, t=10)  # 7140 pairs
    full = levenshtein_diversity(items, pad_id=PAD)
    with pytest.raises(ValueError, match="generator"):
        levenshtein_diversity(items, pad_id=PAD, max_pairs=100)
    draws = [levenshtein_diversity(items, PAD, 4000, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    # The estimate is a mean of 4000 pair values in [0, 1]: its standard error is below 0.5 / sqrt(4000).
    assert (draws[2] - full).abs().max().item() < 4 * 0.5 / math.sqrt(4000)


def test_unique_fraction():
    items = torch.stack([seqs("ab.", "ab.", "ba."), seqs("a.b", "a.c", "a..")])  # (2, 3, 3)
    assert unique_fraction(items[:1]).tolist() == pytest.approx([2 / 3])
    # After the first pad nothing counts: "a.b", "a.c" and "a.." are the same sequence "a".
    assert unique_fraction(items[1:], pad_id=PAD).tolist() == pytest.approx([1 / 3])
    assert unique_fraction(items[1:]).tolist() == pytest.approx([1.0])


def test_concept_coverage():
    concepts = torch.tensor([[0, 0, 1, -1], [3, 2, 1, 0], [-1, -1, -1, -1]])
    assert concept_coverage(concepts, 4).tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert concept_coverage(concepts, 8).tolist() == pytest.approx([0.25, 0.5, 0.0])


def test_outputs_are_float_per_developer():
    items = random_items(seed=0)
    for value in (
        token_entropy(items, PAD),
        distinct_n(items, 2, PAD),
        unique_fraction(items, PAD),
        levenshtein_diversity(items, PAD),
        concept_coverage(items[:, :, 0], 4),
    ):
        assert value.shape == (3,) and value.dtype == torch.float64
