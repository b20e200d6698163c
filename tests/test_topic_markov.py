"""The topic_markov world: exact probabilities, sampling, concepts, entropy and n-gram KL."""

import itertools

import pytest
import torch
from scipy import stats

from ecosystem.scenario import CommunitySpec, TopicMarkovWorldSpec
from ecosystem.worlds.topic_markov import TopicMarkovWorld

CPU = torch.device("cpu")
TWO = [CommunitySpec(name="majority", authors=3, concepts=[0]), CommunitySpec(name="minority", authors=1)]


def tiny(vocab: int = 6, concepts: int = 2, seq_len: int = 3, communities=TWO, seed: int = 0):
    spec = TopicMarkovWorldSpec(vocab=vocab, concepts=concepts, seq_len=seq_len, branching=2, zipf=1.0, heldout=8)
    return TopicMarkovWorld(spec, communities, private=2, original_size=4, device=CPU, seed=seed)


def every_sequence(world: TopicMarkovWorld) -> torch.Tensor:
    (T,) = world.item_shape
    return torch.tensor(list(itertools.product(range(world.vocab_size), repeat=T)))  # (V^T, T)


@pytest.mark.parametrize("vocab", [6, 7])  # 7 leaves one id outside every block
def test_log_prob_sums_to_one_and_matches_verify(vocab):
    world = tiny(vocab=vocab)
    x = every_sequence(world)
    logp = world.log_prob(x)
    assert torch.exp(logp).sum().item() == pytest.approx(1.0, abs=1e-12)
    # Every concept has positive weight here, so the possible sequences are exactly the valid ones.
    assert torch.equal(world.verify(x), logp > -torch.inf)
    assert 0 < world.verify(x).sum() < len(x)
    # Per-concept likelihoods are proper distributions too, and mix to log_prob.
    assert torch.exp(world.log_prob_concepts(x)).sum(0).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)


def test_samples_follow_log_prob():
    world = tiny()
    g = torch.Generator().manual_seed(1)
    n = 20_000
    concepts = torch.multinomial(world.concept_weights(), n, replacement=True, generator=g)
    samples = world.sample(concepts, g)
    x = every_sequence(world)
    p = torch.exp(world.log_prob(x))
    code = (samples * torch.tensor([36, 6, 1])).sum(1)  # row index of each sample in every_sequence
    counts = torch.bincount(code, minlength=len(x))
    support = p > 0
    assert counts[~support].sum() == 0
    # Pearson's chi-square goodness of fit over the support (deterministic seed; fails w.p. 1e-3 if wrong).
    result = stats.chisquare(counts[support].numpy(), (n * p[support]).numpy())
    assert result.pvalue > 1e-3


def test_concept_of_and_verify_on_samples():
    world = TopicMarkovWorld(TopicMarkovWorldSpec(), TWO, 3, 5, CPU, seed=3)
    g = torch.Generator().manual_seed(0)
    concepts = torch.arange(world.n_concepts).repeat(50)
    items = world.sample(concepts, g)
    assert items.shape == (len(concepts), 24) and items.dtype == torch.int64
    assert torch.equal(world.concept_of(items), concepts)
    assert world.verify(items).all()
    # Each sequence stays in its concept's block.
    assert torch.equal(items // world.block, concepts[:, None].expand_as(items))
    # The exact log-probability is −inf after breaking one transition (jump to another concept's block).
    broken = items.clone()
    broken[:, 5] = (broken[:, 5] + world.block) % world.vocab_size
    assert not world.verify(broken).any()
    assert (world.log_prob(broken) == -torch.inf).all()
    assert (world.log_prob(items) > -torch.inf).all()


def test_ids_outside_every_block_are_invalid():
    world = tiny(vocab=7)
    x = torch.tensor([[6, 6, 6], [0, 6, 0], [-1, 0, 0], [7, 1, 1]])
    assert world.concept_of(x).tolist() == [-1, 0, -1, -1]
    assert not world.verify(x).any()
    assert (world.log_prob(x) == -torch.inf).all()


def test_entropy_matches_enumeration():
    world = tiny(seq_len=4)
    logp = world.log_prob(every_sequence(world))
    brute = -(torch.exp(logp) * logp).nan_to_num().sum().item()
    assert world.entropy() == pytest.approx(brute, rel=1e-12)
    # H = H(π) + Σ_c π_c H(chain_c) (the concepts' blocks are disjoint).
    pi = world.concept_weights()
    lpc = world.log_prob_concepts(every_sequence(world))  # (V^T, C)
    chains = -(torch.exp(lpc) * lpc).nan_to_num().sum(0)
    assert world.entropy() == pytest.approx((-(pi * pi.log()).sum() + (pi * chains).sum()).item(), rel=1e-12)


def random_ngram(world: TopicMarkovWorld, order: int, n: int, seed: int) -> torch.Tensor:
    V = world.vocab_size
    shape = (n, *([V + 1] * (order - 1)), V)
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(2 * torch.randn(shape, generator=g, dtype=torch.float64), -1)


def brute_ngram_log_q(x: torch.Tensor, logq: torch.Tensor, order: int, bos: int) -> torch.Tensor:
    """log q(x) for every sequence and developer by walking the n-gram table: ``(S, T) -> (N, S)``."""
    context = torch.full((len(x), order - 1), bos)
    total = torch.zeros(logq.shape[0], len(x), dtype=torch.float64)
    for t in range(x.shape[1]):
        index = (slice(None), *context.T, x[:, t])
        total += logq[index]
        context = torch.cat([context, x[:, t : t + 1]], 1)[:, 1:]
    return total


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kl_ngram_matches_enumeration(order):
    world = tiny(seq_len=4)
    x = every_sequence(world)
    logp = world.log_prob(x)
    p = torch.exp(logp)
    logq = random_ngram(world, order, n=3, seed=order)
    brute = (p * (logp - brute_ngram_log_q(x, logq, order, bos=world.vocab_size))).nan_to_num().sum(1)
    kl = world.kl_ngram(logq)
    assert kl.shape == (3,)
    assert kl.tolist() == pytest.approx(brute.tolist(), rel=1e-10)
    assert (kl > 0).all()


@pytest.mark.parametrize("communities", [[CommunitySpec(concepts=[2])], TWO], ids=["one-concept", "mixture"])
def test_kl_of_the_true_ngram_is_zero(communities):
    # With disjoint blocks the human mixture is itself a Markov chain, so its own bigram (and the trigram
    # that ignores prev2) is exact.
    world = TopicMarkovWorld(TopicMarkovWorldSpec(), communities, 1, 1, CPU, seed=5)
    V = world.vocab_size
    P = world._trans.clone()
    P[P.sum(1) == 0] = 1.0 / V  # rows of never-seen tokens: any distribution
    bigram = torch.cat([P, world._marginals[:1]]).log()  # (V+1, V): row V is BOS
    assert world.kl_ngram(bigram[None]).item() == pytest.approx(0.0, abs=1e-9)
    trigram = bigram[None].expand(V + 1, V + 1, V)  # [prev2, prev1, next] ignores prev2
    assert world.kl_ngram(trigram[None]).item() == pytest.approx(0.0, abs=1e-9)
    # A model that forbids one possible transition has infinite KL.
    used = (world._marginals[0] > 0).nonzero()[0, 0]
    forbidding = bigram.clone()
    forbidding[used, P[used].argmax()] = -torch.inf
    assert world.kl_ngram(forbidding[None]).item() == torch.inf


def test_kl_ngram_rejects_bad_shapes():
    world = tiny()
    with pytest.raises(ValueError, match="kl_ngram"):
        world.kl_ngram(torch.zeros(1, 6, 6))


def test_communities_mix_by_volume_and_label_heldout():
    communities = [
        CommunitySpec(name="majority", authors=90, rate=20, concepts=[0, 1, 2, 3, 4, 5]),
        CommunitySpec(name="minority", authors=10, rate=20, concepts=[6, 7], weights=[3.0, 1.0]),
    ]
    world = TopicMarkovWorld(TopicMarkovWorldSpec(heldout=64), communities, 4, 10, CPU, seed=0)
    assert world.n_communities == 2 and world.n_concepts == 8
    assert world.community_weights(1).tolist() == pytest.approx([0] * 6 + [0.75, 0.25])
    assert world.concept_weights().tolist() == pytest.approx([0.15] * 6 + [0.075, 0.025])
    held = world.heldout()
    assert len(held) == 128 and held.communities.tolist() == [0] * 64 + [1] * 64
    assert set(held.concepts[:64].tolist()) <= set(range(6)) and set(held.concepts[64:].tolist()) <= {6, 7}
    assert torch.equal(world.concept_of(held.items), held.concepts)
    for batch in [world.public(), world.original(0), world.original(3)]:
        assert batch.items.shape == (10, 24) and (batch.communities == -1).all()
        assert world.verify(batch.items).all() and torch.equal(world.concept_of(batch.items), batch.concepts)
    assert not torch.equal(world.original(0).items, world.original(1).items)
    # Silent communities (rate 0 everywhere) are weighted by their authors.
    silent = [c.model_copy(update={"rate": 0}) for c in communities]
    quiet = TopicMarkovWorld(TopicMarkovWorldSpec(), silent, 1, 1, CPU, seed=0)
    assert quiet.concept_weights().tolist() == pytest.approx(world.concept_weights().tolist())


def test_seeded_construction_and_sampling():
    a, b, c = (TopicMarkovWorld(TopicMarkovWorldSpec(), TWO, 2, 3, CPU, seed=s) for s in (4, 4, 5))
    assert torch.equal(a.heldout().items, b.heldout().items) and torch.equal(a._trans, b._trans)
    assert not torch.equal(a._trans, c._trans)
    concepts = torch.zeros(10, dtype=torch.int64)
    draw = [a.sample(concepts, torch.Generator().manual_seed(9)) for _ in range(2)]
    assert torch.equal(*draw)
    assert a.sample(concepts[:0], torch.Generator()).shape == (0, 24)
    assert TopicMarkovWorld(TopicMarkovWorldSpec(), TWO, 2, 0, CPU, seed=0).original(1).items.shape == (0, 24)


def test_rejects_impossible_spec():
    with pytest.raises(ValueError, match="branching"):
        TopicMarkovWorldSpec(vocab=16, concepts=8, branching=3)
    with pytest.raises(ValueError, match="concepts: must be at most vocab"):
        TopicMarkovWorldSpec(vocab=6, concepts=8, branching=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_world_matches_cpu_tables():
    cpu = TopicMarkovWorld(TopicMarkovWorldSpec(), TWO, 2, 3, CPU, seed=1)
    gpu = TopicMarkovWorld(TopicMarkovWorldSpec(), TWO, 2, 3, torch.device("cuda"), seed=1)
    assert torch.equal(cpu.heldout().items, gpu.heldout().items.cpu())
    items = gpu.sample(torch.arange(8, device="cuda"), torch.Generator(device="cuda").manual_seed(0))
    assert items.device.type == "cuda" and gpu.verify(items).all()
    assert torch.allclose(cpu.log_prob(items.cpu()), gpu.log_prob(items).cpu())
