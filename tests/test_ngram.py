"""The n-gram family: hand-computed likelihoods, normalisation, an independent reference counted in plain
Python (``tests/reference``), sampling and JSD."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.spatial.distance import jensenshannon

from ecosystem.families.ngram import NgramFamily, NgramState
from ecosystem.families.tokens import pair_jsd, sample_next
from ecosystem.scenario import NgramFamilySpec, TrainSpec
from tests.conftest import divergence_matrix
from tests.reference.ngram import CountedNgram
from tests.reference.sampling import uniforms

CPU = torch.device("cpu")


def family(order: int, vocab: int = 3, seq_len: int = 3, smoothing: float = 0.5) -> NgramFamily:
    return NgramFamily(NgramFamilySpec(order=order, smoothing=smoothing), vocab, seq_len, TrainSpec(), CPU)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_fit(fam: NgramFamily, n: int = 4, items: int = 30, seed: int = 0) -> NgramState:
    g = gen(seed)
    data = torch.randint(0, fam.vocab_size, (n, items, fam.seq_len), generator=g)
    weights = torch.rand(n, items, generator=g)
    return fam.fit(fam.init(n, g), data, weights, g)


# Training data of one developer, vocabulary {0, 1, 2}, BOS = 3: [0, 1] once and [0, 2] with weight 3.
DATA = torch.tensor([[[0, 1], [0, 2]]])
WEIGHTS = torch.tensor([[1.0, 3.0]])


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # unigram counts: 0 → 4, 1 → 1, 2 → 3 (total 8); smoothing 0.5 over 3 tokens
        (1, [math.log(4.5 / 9.5) + math.log(1.5 / 9.5), math.log(4.5 / 9.5) + math.log(3.5 / 9.5)]),
        # bigram: after BOS 0 → 4; after 0: 1 → 1, 2 → 3
        (2, [math.log(4.5 / 5.5) + math.log(1.5 / 5.5), math.log(4.5 / 5.5) + math.log(3.5 / 5.5)]),
        # trigram: (BOS, BOS) → 0 four times; (BOS, 0): 1 → 1, 2 → 3 — the same numbers as the bigram
        (3, [math.log(4.5 / 5.5) + math.log(1.5 / 5.5), math.log(4.5 / 5.5) + math.log(3.5 / 5.5)]),
    ],
)
def test_log_prob_matches_hand_computed_counts(order: int, expected: list[float]) -> None:
    fam = family(order, seq_len=2)
    state = fam.fit(fam.init(1, gen()), DATA, WEIGHTS, gen())
    assert torch.allclose(fam.log_prob(state, DATA), torch.tensor([expected]), atol=1e-6)
    # an unseen sequence: [1, 1] has no counts at all beyond the smoothing
    unseen = {1: math.log(1.5 / 9.5) * 2, 2: math.log(0.5 / 5.5) + math.log(0.5 / 1.5)}
    unseen[3] = unseen[2]
    got = fam.log_prob(state, torch.tensor([[[1, 1]]]))
    assert got.item() == pytest.approx(unseen[order], abs=1e-6)


def test_table_layout_puts_bos_last_and_context_before_next() -> None:
    fam = family(3, seq_len=2)
    state = fam.fit(fam.init(1, gen()), DATA, WEIGHTS, gen())
    assert state.logp.shape == (1, 4, 4, 3)
    assert state.logp[0, 3, 3, 0].exp().item() == pytest.approx(4.5 / 5.5)  # p(0 | BOS, BOS)
    assert state.logp[0, 3, 0, 2].exp().item() == pytest.approx(3.5 / 5.5)  # p(2 | BOS, 0)
    assert state.logp[0, 0, 1].exp().sum().item() == pytest.approx(1.0)  # unseen context: uniform
    assert torch.allclose(state.logp[0, 0, 1], torch.full((3,), -math.log(3)))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_of_all_sequences_sum_to_one(order: int) -> None:
    fam = family(order)
    state = random_fit(fam)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)))  # (27, 3)
    total = fam.log_prob(state, every.expand(4, -1, -1)).exp().sum(1)  # (N,)
    assert torch.allclose(total, torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_batched_matches_the_reference(order: int) -> None:
    vocab, seq_len, smoothing = 4, 5, 0.5
    batched = family(order, vocab=vocab, seq_len=seq_len, smoothing=smoothing)
    g = gen(1)
    data = torch.randint(0, vocab, (3, 12, seq_len), generator=g)
    weights = torch.rand(3, 12, generator=g)
    weights[1] = 0.0  # a developer without data keeps its previous model
    previous = random_fit(batched, n=3, seed=2)
    state = batched.fit(previous, data, weights, g)
    assert torch.equal(state.logp[1], previous.logp[1])
    refs = {i: CountedNgram(order, vocab, smoothing).fit(data[i].tolist(), weights[i].tolist()) for i in (0, 2)}
    contexts = list(itertools.product(range(vocab + 1), repeat=order - 1))  # BOS = vocab in each slot
    for i, ref in refs.items():
        table = state.logp[i].exp()  # [*context, next]
        want = torch.tensor([[ref.prob(c, t) for t in range(vocab)] for c in contexts]).view(table.shape)
        assert torch.allclose(table, want.float(), atol=1e-6)
        want_lp = torch.tensor([ref.log_prob(x) for x in data[i].tolist()])
        assert torch.allclose(batched.log_prob(state, data)[i], want_lp.float(), atol=1e-5)
    prompts = torch.randint(0, vocab, (3, 6, 2), generator=g)
    for kwargs in ({}, {"temperature": 0.7, "top_p": 0.8}, {"prompts": prompts}):
        a = batched.sample(state, 6, gen(3), **kwargs)
        u = uniforms(3, 6, seq_len, gen(3))
        options = {k: v for k, v in kwargs.items() if k != "prompts"}
        for i, ref in refs.items():
            want = [ref.sample(u[i][j], prompt=prompts[i, j].tolist() if "prompts" in kwargs else (), **options)
                    for j in range(6)]  # fmt: skip
            assert a[i].tolist() == want, kwargs
    assert torch.equal(a[..., :2], prompts)


def test_inverse_cdf_reproduces_the_distribution_on_a_uniform_grid() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    m = 10_000
    u = (torch.arange(m) + 0.5) / m  # an exact quadrature of U(0, 1): no Monte Carlo error
    tokens = sample_next(probs.log().expand(m, -1), u, temperature=1.0, top_p=1.0)
    assert torch.allclose(torch.bincount(tokens, minlength=4) / m, probs, atol=1 / m)
    # temperature reshapes to p^(1/τ); top-p 0.7 keeps {0, 1} renormalised to 5/8, 3/8
    hot = sample_next(probs.log().expand(m, -1), u, temperature=2.0, top_p=1.0)
    want = probs.sqrt() / probs.sqrt().sum()
    assert torch.allclose(torch.bincount(hot, minlength=4) / m, want, atol=1 / m)
    nucleus = sample_next(probs.log().expand(m, -1), u, temperature=1.0, top_p=0.7)
    assert torch.allclose(torch.bincount(nucleus, minlength=4) / m, torch.tensor([5 / 8, 3 / 8, 0, 0]), atol=1 / m)


def test_sampling_edge_uniforms_never_pick_a_zero_probability_token() -> None:
    logits = torch.tensor([0.0, -math.inf, 0.3, -math.inf])
    u = torch.tensor([0.0, 1 - 2**-24, 0.5, 1.0])  # 1.0: u·total is the total, the search runs past the end
    tokens = sample_next(logits.expand(4, -1), u, 1.0, 1.0).tolist()
    assert set(tokens) <= {0, 2} and tokens[-1] == 2  # the last token with positive probability
    assert set(sample_next(logits.expand(4, -1), u, 1.0, 0.4).tolist()) == {2}


def test_low_temperature_gives_the_greedy_sequence() -> None:
    fam = family(2, vocab=5, seq_len=6)
    state = random_fit(fam, n=3)
    out = fam.sample(state, 4, gen(5), temperature=1e-4)
    context = torch.full((3,), 5)
    for t in range(6):
        greedy = state.logp[torch.arange(3), context].argmax(-1)  # (N,)
        assert torch.equal(out[:, :, t], greedy[:, None].expand(3, 4))
        context = greedy


def test_top_p_never_leaves_the_nucleus() -> None:
    fam = family(2, vocab=6, seq_len=8)
    state = random_fit(fam, n=3, items=8)
    top_p = 0.6
    out = fam.sample(state, 200, gen(6), top_p=top_p)  # (N, k, T)
    table = state.logp.view(3, fam.n_contexts, 6).double().exp()
    probs = table[torch.arange(3).view(3, 1, 1), fam.contexts(out)]  # (N, k, T, V) at each sampled context
    chosen = probs.gather(-1, out[..., None]).squeeze(-1)  # (N, k, T)
    before = (probs * (probs > chosen[..., None])).sum(-1)  # mass of the strictly more likely tokens
    assert (before < top_p + 1e-6).all()
    assert (out != probs.argmax(-1)).any()  # the nucleus holds more than the mode


def test_jsd_is_zero_for_identical_models_symmetric_and_at_most_log2() -> None:
    fam = family(2, vocab=5, seq_len=6)
    state = random_fit(fam, n=4)
    twin = NgramState(torch.cat([state.logp, state.logp[:1]]))  # developer 4 copies developer 0
    probe = torch.randint(0, 5, (10, 6), generator=gen(7))
    d = divergence_matrix(fam, twin, probe, 5)
    assert d[0, 4].item() < 1e-6 and torch.all(d.diagonal() == 0)  # float32 rounding of Σp = 1
    assert torch.equal(d, d.T)
    assert (d[:4, :4] + torch.eye(4) > 0).all() and (d <= math.log(2)).all()
    # disjoint supports reach log 2
    disjoint = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    pair = torch.tensor([0]), torch.tensor([1])
    assert pair_jsd(disjoint, torch.ones(1), *pair, fam.chunk).item() == pytest.approx(math.log(2))


def test_divergence_is_the_mean_jsd_over_probe_positions() -> None:
    fam = family(3, vocab=4, seq_len=5)
    state = random_fit(fam, n=3)
    probe = torch.randint(0, 4, (7, 5), generator=gen(8))
    probs = fam.next_token_probs(state, probe).double()  # (N, P, T, V)
    want = torch.tensor(
        [
            [(jensenshannon(probs[i], probs[j], axis=-1) ** 2).mean() for j in range(3)]  # scipy: √JSD, nats
            for i in range(3)
        ]
    )
    assert torch.allclose(divergence_matrix(fam, state, probe, 3).double(), want, atol=1e-6)
    fam.chunk = 1  # one pair and one item at a time: the same numbers
    assert torch.allclose(divergence_matrix(fam, state, probe, 3).double(), want, atol=1e-6)
    assert torch.allclose(random_fit(fam, n=3).logp, state.logp, atol=1e-6)


def test_fit_recovers_a_markov_source() -> None:
    vocab, seq_len, n = 4, 20, 2
    source_fam = family(2, vocab=vocab, seq_len=seq_len)
    # a hand-made chain: mostly 0 → 1 → 2 → 3 → 0, sometimes any token; starts anywhere
    table = torch.full((vocab + 1, vocab), 0.1 / (vocab - 1))
    table[torch.arange(vocab), (torch.arange(vocab) + 1) % vocab] = 0.9
    table[vocab] = 1 / vocab
    source = NgramState(table.log().expand(n, -1, -1))
    data = source_fam.sample(source, 2000, gen(9))
    fitted = source_fam.fit(source_fam.init(n, gen()), data, torch.ones(n, 2000), gen())
    # within 5 binomial standard errors of the truth, given how often each context occurred
    seen = torch.stack([torch.bincount(source_fam.contexts(d).flatten(), minlength=vocab + 1) for d in data])
    tolerance = 5 * (table * (1 - table) / seen[:, :, None]).sqrt()  # (N, V+1, V)
    assert ((fitted.logp.exp() - table).abs() < tolerance).all()
    heldout = source_fam.sample(source, 500, gen(10))
    nll = -source_fam.log_prob(fitted, heldout).mean(1)  # (N,)
    assert (nll < 0.5 * seq_len * math.log(vocab)).all()  # far below uniform
    assert torch.allclose(nll, -source_fam.log_prob(source, heldout).mean(1), atol=0.05)  # near the truth
