"""The logic world: the evaluator against Python's own, the conditioned PCFG, exact log-probabilities."""

import collections
import re
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from ecosystem.scenario import CommunitySpec, LogicWorldSpec
from ecosystem.worlds.logic import (
    AND,
    FALSE,
    NOT,
    OR,
    PAD,
    TOKENS,
    TRUE,
    LogicWorld,
    depth,
    evaluate,
    parse,
    serialize,
    to_text,
)

CPU = torch.device("cpu")
WORDS = {name: i for i, name in enumerate(TOKENS)}


def tokens(text: str, pad_to: int = 0) -> list[int]:
    ids = [WORDS[w] for w in text.split()]
    return ids + [PAD] * (pad_to - len(ids))


def python_reference(text: str) -> bool | None:
    """Python's own reading of the text (test only): None where Python's grammar is not ours."""
    # "( )" is an empty tuple and "True (" a call in Python; both are syntax errors in ours.
    if "( )" in text or re.search(r"(True|False|\)) \(", text):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = eval(text, {"__builtins__": {}})  # the reference only; the world never evals
    except SyntaxError:
        return None
    assert isinstance(result, bool)
    return result


def loose_expression(rng: np.random.Generator, budget: int) -> str:
    """A random well-formed text relying on precedence and with optional extra parentheses."""
    choice = rng.integers(4) if budget > 0 else 0
    if choice == 0:
        return str(rng.choice(["True", "False"]))
    if choice == 1:
        return "not " + loose_expression(rng, budget - 1)
    if choice == 2:
        op = rng.choice(["and", "or"])
        return f"{loose_expression(rng, budget - 1)} {op} {loose_expression(rng, budget - 1)}"
    return f"( {loose_expression(rng, budget - 1)} )"


def test_evaluator_agrees_with_python_on_expressions_and_garbage():
    rng = np.random.default_rng(0)
    texts = [loose_expression(rng, int(rng.integers(1, 6))) for _ in range(1500)]
    words = np.array(TOKENS[1:])
    texts += [" ".join(rng.choice(words, size=int(rng.integers(1, 9)))) for _ in range(3000)]
    outcomes = collections.Counter()
    for text in texts:
        expected = python_reference(text)
        assert evaluate(tokens(text)) == expected, text
        outcomes[expected] += 1
    assert min(outcomes[True], outcomes[False], outcomes[None]) > 300  # all three outcomes are exercised


@pytest.mark.parametrize(
    "text",
    [
        "",
        "True True",
        "True and",
        "and True",
        "( True",
        "True )",
        "( )",
        "not",
        "not ( )",
        "True ( False )",
        "( True or ) False",
        "True not False",
        "<pad> True",
    ],
)
def test_malformed_is_a_syntax_error(text):
    assert parse(tokens(text)) is None and evaluate(tokens(text)) is None


def test_parse_follows_precedence_and_pad_ends_the_expression():
    assert parse(tokens("not True and False or True")) == (OR, (AND, (NOT, TRUE), FALSE), TRUE)
    assert parse(tokens("True or False and False")) == (OR, TRUE, (AND, FALSE, FALSE))
    assert parse(tokens("( ( True ) )")) == TRUE
    assert evaluate(tokens("False <pad> True")) is False  # PAD is EOS
    assert depth(parse(tokens("not ( True and not False )"))) == 4
    assert serialize(parse(tokens("not True and False"))) == tokens("( not True and False )")


def small_world(communities=None, **spec):
    spec = LogicWorldSpec(**{"min_depth": 1, "max_depth": 3, "seq_len": 10, "heldout": 16, **spec})
    communities = communities or [
        CommunitySpec(name="a", concepts=[0, 2], weights=[1.0, 3.0]),
        CommunitySpec(name="b", authors=5),
    ]
    return LogicWorld(spec, communities, private=2, original_size=8, device=CPU, seed=0)


def every_tree(max_depth: int) -> list:
    exact = {1: [TRUE, FALSE]}
    for e in range(2, max_depth + 1):
        shallower = [t for d in range(1, e) for t in exact[d]]
        binary = [(op, a, b) for op in (AND, OR) for a in shallower for b in shallower]
        exact[e] = [(NOT, t) for t in exact[e - 1]] + [t for t in binary if depth(t) == e]
    return [t for e in exact for t in exact[e]]


def padded(trees, seq_len: int) -> torch.Tensor:
    rows = [serialize(t) for t in trees]
    return torch.tensor([r + [PAD] * (seq_len - len(r)) for r in rows if len(r) <= seq_len])


def test_log_prob_sums_to_one_over_every_expression():
    world = small_world()
    trees = every_tree(3)
    assert len(trees) == 302  # 2 + 10 + 290 trees of depth 1, 2, 3
    x = padded(trees, 10)
    logp = world.log_prob(x)
    assert torch.exp(logp).sum().item() == pytest.approx(1.0, abs=1e-12)
    assert torch.equal(logp > -torch.inf, world.verify(x))  # every written True tree is possible
    per_concept = torch.exp(world.log_prob_concepts(x)).sum(0)
    assert per_concept.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    # Some depth-3 trees are too long for 10 tokens: the conditioning on length is real.
    assert len(x) < len(trees)


def test_tree_masses_are_a_distribution_per_depth():
    # Without the length limit (61 tokens fit every depth-5 tree) the PCFG is proper at every depth.
    world = LogicWorld(LogicWorldSpec(seq_len=64), [CommunitySpec()], 1, 1, CPU, seed=0)
    assert world._W[:, 1:].sum((0, 2)).tolist() == pytest.approx([1.0] * 5, abs=1e-12)


def test_samples_follow_log_prob():
    world = small_world()
    g = torch.Generator().manual_seed(2)
    n = 30_000
    concepts = torch.multinomial(world.concept_weights(), n, replacement=True, generator=g)
    samples = world.sample(concepts, g)
    counts = collections.Counter(map(tuple, samples.tolist()))
    support = padded([t for t in every_tree(3)], 10)
    p = torch.exp(world.log_prob(support)).numpy()
    observed = np.array([counts.pop(tuple(row), 0) for row in support.tolist()])
    assert not counts  # nothing outside the support was drawn
    keep = p > 0
    observed, expected = observed[keep], n * p[keep]
    # Pool the cells expected below 5 so Pearson's chi-square approximation holds; fails w.p. 1e-3.
    small = expected < 5
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_samples_verify_with_depths_in_range():
    world = LogicWorld(LogicWorldSpec(), [CommunitySpec()], 2, 4, CPU, seed=1)
    g = torch.Generator().manual_seed(0)
    concepts = torch.arange(world.n_concepts).repeat(200)
    items = world.sample(concepts, g)
    assert items.shape == (1000, 48) and items.dtype == torch.int64
    assert world.verify(items).all()
    assert torch.equal(world.concept_of(items), concepts)
    assert (world.log_prob(items) > -torch.inf).all()
    for row, c in zip(items.tolist(), concepts.tolist(), strict=True):
        tree = parse(row)
        assert depth(tree) == c + 1 and serialize(tree) == [t for t in row if t != PAD]
    deepest = items[concepts == 4].tolist()
    assert len(set(map(tuple, deepest))) > 190  # depth-5 expressions hardly ever repeat


def test_non_canonical_false_and_trailing_items():
    world = small_world()
    cases = {
        "True": (True, 0, True),
        "( True )": (True, 0, False),  # valid, but humans never add parentheses: probability 0
        "True and True": (True, 1, False),  # humans always parenthesise and/or
        "( True and True )": (True, 1, True),
        "( True and False )": (False, 1, False),
        "not not not True": (False, 2, False),
        "True or": (False, -1, False),
    }
    x = torch.tensor([tokens(text, 10) for text in cases])
    verified, concept, possible = (list(v) for v in zip(*cases.values(), strict=True))
    assert world.verify(x).tolist() == verified
    assert world.concept_of(x).tolist() == concept
    assert (world.log_prob(x) > -torch.inf).tolist() == possible
    after_eos = torch.tensor([tokens("True <pad> True", 10)])
    assert world.verify(after_eos).item() and world.log_prob(after_eos).item() == -torch.inf
    assert world.log_prob_concepts(x).shape == (7, 3)
    assert world.log_prob(x.view(7, 1, 10)).shape == (7, 1)


def test_to_text():
    x = torch.tensor([tokens("( not True or False )", 8), tokens("False", 8)])
    assert to_text(x) == ["( not True or False )", "False"]
    assert LogicWorld.to_text(x[1]) == ["False"]


def test_fixed_data_and_communities():
    world = small_world()
    assert world.n_concepts == 3 and world.n_communities == 2 and world.vocab_size == 8 and world.pad_id == 0
    assert world.community_weights(0).tolist() == pytest.approx([0.25, 0.0, 0.75])
    held = world.heldout()
    assert len(held) == 32 and held.communities.tolist() == [0] * 16 + [1] * 16
    assert torch.equal(world.concept_of(held.items), held.concepts) and world.verify(held.items).all()
    assert world.original(1).items.shape == (8, 10) and (world.public().communities == -1).all()
    again = small_world()
    assert torch.equal(again.original(1).items, world.original(1).items)
    concepts = torch.tensor([0, 1, 2] * 20)
    draws = [world.sample(concepts, torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_rejects_impossible_spec():
    with pytest.raises(ValueError, match="seq_len"):
        LogicWorldSpec(max_depth=9, seq_len=8)
    with pytest.raises(ValueError, match="min_depth"):
        LogicWorldSpec(min_depth=4, max_depth=3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sampling_verifies():
    world = LogicWorld(LogicWorldSpec(), [CommunitySpec()], 2, 4, torch.device("cuda"), seed=1)
    items = world.sample(torch.arange(5, device="cuda").repeat(100), torch.Generator("cuda").manual_seed(0))
    assert items.device.type == "cuda" and world.verify(items).all()
    assert torch.equal(
        world.heldout().items.cpu(), LogicWorld(LogicWorldSpec(), [CommunitySpec()], 2, 4, CPU, seed=1).heldout().items
    )
