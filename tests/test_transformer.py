"""The batched transformer family: equal to an independent one-model-at-a-time reference (``tests/reference``),
normalised, sampling controls, JSD homogenization, and learning a tiny Markov source."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ecosystem.families import transformer
from ecosystem.families.ngram import NgramFamily, NgramState
from ecosystem.families.tokens import shift_right
from ecosystem.families.transformer import TransformerFamily, TransformerState, forward, parameter_count
from ecosystem.scenario import NgramFamilySpec, TrainSpec, TransformerFamilySpec
from tests.conftest import divergence_matrix
from tests.reference import gpt

CPU = torch.device("cpu")
VOCAB, SEQ_LEN = 5, 6


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def family(
    layers: int = 1, steps: int = 6, from_scratch: bool = False, device: torch.device = CPU
) -> TransformerFamily:
    spec = TransformerFamilySpec(d_model=16, layers=layers, heads=2)
    train = TrainSpec(steps=steps, batch=4, lr=1e-2, from_scratch=from_scratch)
    batched = TransformerFamily(spec, VOCAB, SEQ_LEN, train, device)
    batched.block, batched.head_chunk = 3, 2  # several blocks and head chunks, some of them partial
    return batched


def reference(fam: TransformerFamily) -> gpt.GPTConfig:
    """The reference GPT of the family's size."""
    return gpt.GPTConfig(fam.vocab_size, fam.seq_len, fam.spec.d_model, fam.spec.layers, fam.spec.heads)


def per_model(state: TransformerState) -> list[dict[str, torch.Tensor]]:
    """Each developer's weights: the initial values the reference shares with the family."""
    return [{k: v[i] for k, v in state.tensors().items()} for i in range(state.n)]


def markov_source(n: int, vocab: int = VOCAB, seq_len: int = SEQ_LEN) -> tuple[NgramFamily, NgramState]:
    """A tiny hand-made chain: mostly 0 → 1 → 2 → …, sometimes any token; the first token uniform."""
    table = torch.full((vocab + 1, vocab), 0.1 / (vocab - 1))
    table[torch.arange(vocab), (torch.arange(vocab) + 1) % vocab] = 0.9
    table[vocab] = 1 / vocab
    fam = NgramFamily(NgramFamilySpec(order=2), vocab, seq_len, TrainSpec(), CPU)
    return fam, NgramState(table.log().expand(n, -1, -1))


def data(n: int, b: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    fam, source = markov_source(n)
    items = fam.sample(source, b, gen(seed))  # (N, B, T)
    weights = torch.rand(n, b, generator=gen(seed)) + 0.1
    weights[1] = 0.0  # a developer without data keeps its previous model
    return items, weights


def close(a: TransformerState, b: TransformerState, atol: float = 1e-5) -> bool:
    return all(torch.allclose(x, y, atol=atol) for x, y in zip(a.tensors().values(), b.tensors().values(), strict=True))


def test_parameter_count_matches_the_state() -> None:
    fam = family(layers=2)
    state = fam.init(3, gen())
    assert sum(t[0].numel() for t in state.tensors().values()) == parameter_count(fam.spec, VOCAB, SEQ_LEN)
    default = TransformerFamilySpec()
    assert parameter_count(default, 720, 16) == 59_008  # the benchmark's ~60k-weight model


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("from_scratch", [False, True])
def test_batched_training_matches_the_reference(layers: int, from_scratch: bool) -> None:
    batched = family(layers, from_scratch=from_scratch)
    previous = batched.init(5, gen())
    items, weights = data(5)
    state, losses = batched.train_losses(previous, items, weights, gen(2))
    g = gen(2)
    start = batched.init(5, g) if from_scratch else previous  # fresh weights come first from the generator
    train = batched.train
    ref, ref_losses = gpt.train(reference(batched), per_model(start), items, weights, train.steps, train.batch,
                                train.lr, g)  # fmt: skip
    assert losses.shape == (5, 6)
    assert torch.allclose(losses, ref_losses, atol=1e-5)
    # Adam divides by √v: where a gradient is nearly zero (queries and keys at initialisation) float32
    # rounding of the gradient moves the update by up to lr·steps·(rounding/|g|), so weights get 1e-4.
    for i in (0, 2, 3, 4):
        for name, value in per_model(state)[i].items():
            assert torch.allclose(value, ref[i][name], atol=1e-4), (i, name)
    assert close(state.select(slice(1, 2)), previous.select(slice(1, 2)), atol=0.0)  # no data: kept
    assert not close(state.select(slice(0, 1)), previous.select(slice(0, 1)), atol=1e-3)
    assert (losses[[0, 2, 3, 4], -1] < losses[[0, 2, 3, 4], 0]).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_batched_sampling_and_log_prob_match_the_reference(layers: int) -> None:
    batched = family(layers)
    items, weights = data(5)
    state = batched.fit(batched.init(5, gen()), items, weights, gen(2))
    models, config = per_model(state), reference(batched)
    prompts = items[:, :7, :2]
    for kwargs in ({}, {"temperature": 0.8, "top_p": 0.9}, {"prompts": prompts}):
        a = batched.sample(state, 7, gen(3), **kwargs)
        assert torch.equal(a, gpt.sample(config, models, 7, gen(3), **kwargs)), kwargs
    assert torch.equal(a[..., :2], prompts)
    want = torch.stack([gpt.GPT.from_weights(config, w).log_prob(x) for w, x in zip(models, items, strict=True)])
    assert torch.allclose(batched.log_prob(state, items), want, atol=1e-5)
    batched.chunk = 1  # one developer and one sequence at a time: the same numbers
    assert torch.equal(batched.sample(state, 7, gen(3), prompts=prompts), a)
    assert torch.allclose(batched.log_prob(state, items), want, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_fused_head_loss_matches_autograd_even_where_softmax_underflows(chunk: int) -> None:
    g = gen()
    h = torch.randn(3, 10, 4, generator=g)
    w = torch.randn(3, 4, 7, generator=g)
    w[1] *= 60  # logits hundreds apart: exp underflows for every token but the largest
    target = torch.randint(0, 7, (3, 10), generator=g)
    upstream = torch.rand(3, generator=g)
    ours = [t.clone().requires_grad_() for t in (h, w)]
    theirs = [t.clone().requires_grad_() for t in (h, w)]
    loss = transformer._HeadLoss.apply(*ours, target, chunk)  # (N,)
    logits = torch.bmm(*theirs)  # (N, M, V)
    want = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
    assert torch.allclose(loss, want, atol=1e-5) and want[1] > 50  # the underflowing regime was exercised
    (loss * upstream).sum().backward()
    (want * upstream).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_attention_in_pieces_matches_one_call(monkeypatch) -> None:
    qkv = torch.randn(7, 1, 5, 3 * 8, generator=gen())  # 7 sequences, 2 heads of 4
    whole = transformer._attention(qkv, heads=2)
    monkeypatch.setattr(transformer, "ATTENTION_BATCH", 3)  # pieces of 3, 3 and 1 sequences
    sdpa, pieces = transformer.F.scaled_dot_product_attention, []
    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", lambda q, *a, **kw: pieces.append(len(q))
                        or sdpa(q, *a, **kw))
    assert torch.allclose(transformer._attention(qkv, heads=2), whole, atol=1e-6) and pieces == [3, 3, 1]


def test_evaluation_attention_on_the_cpu_is_the_sdpa_block(monkeypatch) -> None:
    """Without gradients the CPU path splits the heads in place and writes the scores out with matmuls; the
    SDPA block (LayerNorm, projections, GPT-2's head split) is the reference, and the matmul path must not
    call SDPA."""
    n, b, s, heads, c = 3, 2, 9, 2, 16
    g = gen()
    x, gain = torch.randn(n, b, s, c, generator=g), torch.rand(n, c, generator=g) + 0.5
    c_attn, proj = torch.randn(n, c, 3 * c, generator=g) * 0.3, torch.randn(n, c, c, generator=g) * 0.3
    qkv = transformer._normed_linear(x, gain, c_attn)
    want = transformer._residual(x, transformer._attention(qkv, heads), proj)
    q, k, v = (z.reshape(n * b, s, heads, c // heads).transpose(1, 2) for z in qkv.split(c, dim=-1))
    unmasked = transformer._residual(x, torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2)
                                     .reshape(n, b, s, c), proj)
    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", None)
    with torch.no_grad():
        got = transformer._evaluation_attention(x, gain, c_attn, proj, heads)
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, unmasked, atol=1e-2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the residual stream stays float32
        low = transformer._evaluation_attention(x, gain, c_attn, proj, heads)
    assert low.dtype == torch.float32 and torch.allclose(low, want, atol=0.1)


def test_residual_stream_stays_float32_under_autocast() -> None:
    g = gen()
    x, y, w = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 6, generator=g), torch.randn(2, 6, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert transformer._residual(x, y, w).dtype == torch.float32
    assert torch.allclose(transformer._residual(x, y, w), x + (y.reshape(2, 12, 6) @ w).view(2, 3, 4, 5), atol=1e-6)


def test_log_probs_of_all_sequences_sum_to_one() -> None:
    spec = TransformerFamilySpec(d_model=8, layers=1, heads=2)
    fam = TransformerFamily(spec, 3, 3, TrainSpec(steps=20, batch=4, lr=3e-2), CPU)
    items = torch.randint(0, 3, (2, 8, 3), generator=gen())
    state = fam.fit(fam.init(2, gen()), items, torch.ones(2, 8), gen())  # trained: far from uniform
    every = torch.tensor(list(itertools.product(range(3), repeat=3))).expand(2, -1, -1)  # (N, 27, T)
    probs = fam.log_prob(state, every).exp()  # (N, 27)
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert probs.max() > 3 / 27


def test_low_temperature_gives_the_greedy_sequence() -> None:
    batched = family()
    items, weights = data(3)
    state = batched.fit(batched.init(3, gen()), items, weights, gen(2))
    out = batched.sample(state, 8, gen(4), temperature=1e-5)
    logits = forward(state, shift_right(out, VOCAB), heads=2)  # (N, k, T, V)
    assert torch.equal(out, logits.argmax(-1))


def test_top_p_never_leaves_the_nucleus() -> None:
    batched = family(steps=2)
    state = batched.init(3, gen())
    state.lm_head *= 10  # spread the next-token distributions so the nucleus is a strict subset
    top_p = 0.5
    out = batched.sample(state, 64, gen(5), top_p=top_p)  # (N, k, T)
    probs = torch.softmax(forward(state, shift_right(out, VOCAB), heads=2).double(), -1)  # (N, k, T, V)
    chosen = probs.gather(-1, out[..., None])  # (N, k, T, 1)
    before = (probs * (probs > chosen)).sum(-1)  # mass of the strictly more likely tokens
    assert (before < top_p + 1e-5).all()
    assert (out != probs.argmax(-1)).any()


def _plain_jsd(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of JSD(p, q) in float64 from its definition, for ``(M, V)`` distributions."""
    p, q = p.double(), q.double()
    m = (p + q) / 2
    kl = lambda a: (torch.special.xlogy(a, a) - torch.special.xlogy(a, m)).sum(-1)  # noqa: E731
    return ((kl(p) + kl(q)) / 2).mean()


def test_divergence_is_zero_for_twins_symmetric_and_at_most_log2() -> None:
    batched = family()
    items, weights = data(4)
    state = batched.fit(batched.init(4, gen()), items, weights, gen(2))
    twins = TransformerState.stack([state, state.select(slice(0, 1))])  # developer 4 copies developer 0
    probe = items[0, :5]
    d = divergence_matrix(batched, twins, probe, 5)
    assert d[0, 4].item() < 1e-6 and torch.all(d.diagonal() == 0)  # float32 rounding of Σp = 1
    assert torch.equal(d, d.T)
    assert (d[:4, :4] + torch.eye(4) > 0).all() and (d <= math.log(2)).all()
    refs = [gpt.GPT.from_weights(reference(batched), w) for w in per_model(twins)]
    with torch.no_grad():  # the reference models' next-token distributions, compared from the definition
        probs = [torch.softmax(r(r.inputs(probe)), -1).flatten(0, 1) for r in refs]  # (P·T, V) each
    i, j = torch.triu_indices(5, 5, 1)
    want = torch.stack([_plain_jsd(probs[a], probs[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)])
    assert torch.allclose(d[i, j].double(), want, atol=1e-6)
    # tiny chunks (one probe sequence, developer pairs one by one) give the same numbers
    batched.chunk = 1
    assert torch.allclose(divergence_matrix(batched, twins, probe, 5), d, atol=1e-6)
    # sampled pairs: only the developers in them are evaluated, with the same numbers
    some = torch.tensor([1, 0]), torch.tensor([3, 4])
    assert torch.allclose(batched.divergence(twins, probe, *some), d[some], atol=1e-6)


@pytest.mark.slow
def test_training_on_a_markov_source_beats_the_uniform_model() -> None:
    spec = TransformerFamilySpec(d_model=16, layers=1, heads=2)
    fam = TransformerFamily(spec, VOCAB, SEQ_LEN, TrainSpec(steps=150, batch=16, lr=1e-2), CPU)
    source_fam, source = markov_source(2)
    items = source_fam.sample(source, 256, gen(6))
    state = fam.fit(fam.init(2, gen()), items, torch.ones(2, 256), gen(7))
    heldout = source_fam.sample(source, 400, gen(8))
    nll = -fam.log_prob(state, heldout).mean(1)  # (N,)
    uniform = SEQ_LEN * math.log(VOCAB)
    entropy = -source_fam.log_prob(source, heldout).mean(1)  # the best possible, ≈ 4.1 nats
    assert (nll < (uniform + entropy) / 2).all()  # most of the way from uniform to the truth


def test_bfloat16_compute_tracks_float32() -> None:
    batched = family()
    low = TransformerFamily(batched.spec.model_copy(update={"dtype": "bfloat16"}), VOCAB, SEQ_LEN, batched.train, CPU)
    items, weights = data(3)
    previous = batched.init(3, gen())
    _, losses = batched.train_losses(previous, items, weights, gen(2))
    _, low_losses = low.train_losses(previous, items, weights, gen(2))
    assert torch.isfinite(low_losses).all()
    assert torch.allclose(low_losses, losses, atol=0.05)  # bfloat16 keeps ~3 significant digits


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_the_reference() -> None:
    cuda = torch.device("cuda")
    batched = family(device=cuda)
    items, weights = data(5)
    previous = family().init(5, gen())
    step = batched.trainer(previous).step(items[:, :4])  # CPU tensors: the CPU path
    moved = TransformerState(**{k: v.to(cuda) for k, v in previous.tensors().items()})
    items, weights = items.to(cuda), weights.to(cuda)
    assert torch.allclose(batched.trainer(moved).step(items[:, :4]).cpu(), step, atol=1e-4)
    state, losses = batched.train_losses(moved, items, weights, torch.Generator(cuda).manual_seed(2))
    train, config = batched.train, reference(batched)
    ref, ref_losses = gpt.train(config, per_model(moved), items, weights, train.steps, train.batch, train.lr,
                                torch.Generator(cuda).manual_seed(2))  # fmt: skip
    assert torch.allclose(losses, ref_losses, atol=1e-5)
    assert all(torch.allclose(v, ref[0][k], atol=1e-4) for k, v in per_model(state)[0].items())
    samples = batched.sample(state, 7, torch.Generator(cuda).manual_seed(3))
    assert torch.equal(samples, gpt.sample(config, per_model(state), 7, torch.Generator(cuda).manual_seed(3)))


@pytest.mark.parametrize("chunk", [None, 1])
def test_one_heldout_pass_gives_the_references_log_probs_and_divergences(chunk) -> None:
    """Quality and divergence from one pass over the held-out set equal the reference GPT's log-probabilities
    and the JSD of its next-token distributions on the probe rows, for every pair and for sampled pairs, with
    the quality pass off, and in the smallest pieces (one probe sequence, one developer at a time)."""
    batched = family()
    items, weights = data(5)
    state = batched.fit(batched.init(5, gen()), items, weights, gen(2))
    if chunk is not None:
        batched.chunk, batched.eval_block = chunk, 2
    models, config = per_model(state), reference(batched)
    refs = [gpt.GPT.from_weights(config, w) for w in models]
    heldout = items[0, :9]  # (H, T)
    probe = torch.tensor([1, 4, 8])
    want_logp = torch.stack([r.log_prob(heldout) for r in refs])  # (N, H)
    with torch.no_grad():
        probs = [torch.softmax(r(r.inputs(heldout[probe])), -1).flatten(0, 1) for r in refs]  # (P·T, V) each
    for i, j in (torch.triu_indices(5, 5, 1), (torch.tensor([3, 0]), torch.tensor([4, 2]))):
        want = torch.stack([_plain_jsd(probs[a], probs[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)])
        logp, div = batched.heldout_measures(state, heldout, 5, True, probe, i, j)
        assert torch.allclose(logp, want_logp, atol=1e-5)
        assert torch.allclose(div.double(), want, atol=1e-6) and (want > 1e-4).all()  # the pairs do differ
        none, alone = batched.heldout_measures(state, heldout, 5, False, probe, i, j)
        assert none is None and torch.allclose(alone, div, atol=1e-7)
    only, nothing = batched.heldout_measures(state, heldout, 5, True, None, i, j)
    assert nothing is None and torch.allclose(only, want_logp, atol=1e-5)


def test_the_heldout_pass_reads_each_sequence_once_per_developer(monkeypatch) -> None:
    batched = family()
    state = batched.init(5, gen())
    heldout, probe = data(2)[0][0, :9], torch.tensor([0, 3, 6])
    read = []
    real = transformer.forward
    monkeypatch.setattr(transformer, "forward", lambda p, x, *a, **kw: read.append(x.shape[0] * x.shape[1])
                        or real(p, x, *a, **kw))
    i, j = torch.triu_indices(5, 5, 1)
    batched.heldout_measures(state, heldout, 5, True, probe, i, j)
    assert sum(read) == 5 * 9  # quality and divergence from the same logits
    read.clear()
    batched.heldout_measures(state, heldout, 5, False, probe, torch.tensor([0]), torch.tensor([2]))
    assert sum(read) == 2 * 3  # divergence alone: the probe rows, by the two developers compared
