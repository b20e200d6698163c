"""The vectorised scrape: exact counts and draws, hand-built cases, and the same distribution as the plain
per-developer loop a researcher would write (written here from scratch, sharing no code with the scrape)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecosystem.draws import distinct, largest_remainder
from ecosystem.pool import HUMAN, MODEL
from ecosystem.scenario import DataSpec
from ecosystem.scrape import FRESH, ORIGINAL, SYNTHETIC, Block, Policies, Reading, Sources, scrape, split

# ── exact counts and distinct draws ───────────────────────────────────────────────────────────────────


def test_largest_remainder_hand_cases():
    rng = np.random.default_rng(0)
    counts = largest_remainder(np.array([7, 10, 20, 5, 0]),
                               np.array([[0.5, 0.5, 0], [1, 1, 1], [0.1, 0.2, 0.7], [0, 0, 0], [1, 0, 0]]), rng)
    assert sorted(counts[0][:2]) == [3, 4] and counts[0][2] == 0  # a zero share never rounds up
    assert sorted(counts[1]) == [3, 3, 4]
    assert counts[2].tolist() == [2, 4, 14]  # exact quotas are exact
    assert counts[3].tolist() == [0, 0, 0] and counts[4].tolist() == [0, 0, 0]  # nothing to split by / no items
    # Ties are broken at random: each of three equal shares gets the 10th item a third of the time.
    many = largest_remainder(np.full(3000, 10), np.ones((3000, 3)), rng)
    assert (many.sum(1) == 10).all()
    share = (many == 4).mean(0)
    assert np.all(np.abs(share - 1 / 3) < 4 * np.sqrt(2 / 9 / 3000))
    # The largest remainder wins when remainders differ: 10 × (0.46, 0.34, 0.2) = 4.6, 3.4, 2 → 5, 3, 2.
    assert largest_remainder(np.array([10]), np.array([[0.46, 0.34, 0.2]]), rng).tolist() == [[5, 3, 2]]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.lists(st.floats(0, 10), min_size=1, max_size=8), st.integers(0, 2**32 - 1))
def test_largest_remainder_sums_and_bounds(n, shares, seed):
    shares = np.array(shares)
    counts = largest_remainder(np.array([n]), shares[None], np.random.default_rng(seed))[0]
    if shares.sum() == 0:
        assert (counts == 0).all()
        return
    exact = n * shares / shares.sum()
    assert counts.sum() == n
    assert np.all(counts >= np.floor(exact - 1e-9)) and np.all(counts <= np.ceil(exact + 1e-9))
    assert np.all(counts[shares == 0] == 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40)), min_size=1, max_size=12),
       st.integers(0, 2**32 - 1))
def test_distinct_draws_are_distinct_and_complete(groups, seed):
    lengths, counts = np.array(groups).T
    group, offset = distinct(lengths, counts, np.random.default_rng(seed))
    assert np.array_equal(np.bincount(group, minlength=len(lengths)), np.minimum(counts, lengths))
    assert np.all((offset >= 0) & (offset < lengths[group]))
    assert len(np.unique(group * 100 + offset)) == len(group)


@pytest.mark.parametrize("count", [1, 3, 7, 9])  # 7 and 9 of 10: drawn as the 3 and 1 left out
def test_distinct_subsets_are_uniform(count):
    reps, length = 20000, 10
    group, offset = distinct(np.full(reps, length), np.full(reps, count), np.random.default_rng(count))
    freq = np.bincount(offset, minlength=length) / reps  # each offset is in the subset w.p. count / length
    p = count / length
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / reps))
    # Pairs are uniform too: offsets 0 and 1 together w.p. c(c−1) / (L(L−1)).
    chosen = np.zeros((reps, length), dtype=bool)
    chosen[group, offset] = True
    both, q = (chosen[:, 0] & chosen[:, 1]).mean(), count * (count - 1) / (length * (length - 1))
    assert abs(both - q) < 4 * np.sqrt(q * (1 - q) / reps) + 1e-12


def test_split_over_the_models_read():
    w = np.zeros((3, 4))
    w[0, [1, 2, 3]] = 1 / 3  # uniform: 10 → 3, 3, 3 and one more at random
    w[1, [0, 2]] = [0.75, 0.25]  # weighted: 10 → 7.5, 2.5 → 8, 2 or 7, 3 (tie at random)
    w[2, [2]] = 1.0  # a self-loop only
    reading = Reading.from_matrix(w)
    assert reading.uniform.tolist() == [True, False, True]
    r, model, count = split(np.array([10, 10, 10]), reading, np.arange(3), np.random.default_rng(1))
    got = {(int(a), int(b)): int(c) for a, b, c in zip(r, model, count, strict=True)}
    assert sum(c for (a, _), c in got.items() if a == 0) == 10 and {got[(0, j)] for j in (1, 2, 3)} == {3, 4}
    assert (got[(1, 0)], got[(1, 2)]) in ((8, 2), (7, 3)) and got[(2, 2)] == 10


# ── hand-built pools ──────────────────────────────────────────────────────────────────────────────────


class Layout:
    """A pool laid out as the ecosystem lays it out: N originals of size S_o, a public set, this generation's
    fresh human items and N models' newest K outputs each."""

    def __init__(self, n: int, original: int, public: int, fresh: int, published: int, seed: int = 0) -> None:
        self.n = n
        start = 0
        self.original = Block(start, original)
        start += n * original
        self.public = Block(start, public)
        start += public
        self.fresh = Block(start, fresh)
        start += fresh
        self.published = Block(start, published)
        self.size = start + n * published
        rng = np.random.default_rng(seed)
        self.author_kind = np.where(np.arange(self.size) >= start, MODEL, HUMAN).astype(np.int8)
        self.score = rng.random(self.size)
        self.verified = rng.random(self.size) < 0.5

    def sources(self, published: bool = True) -> Sources:
        return Sources(self.original, self.public, self.fresh, self.published if published else Block(0, 0),
                       self.author_kind, self.score, self.verified)

    def source_of(self, item: np.ndarray) -> np.ndarray:
        """ORIGINAL, PUBLIC, FRESH or SYNTHETIC for pool indices."""
        bounds = [self.public.start, self.fresh.start, self.published.start]
        return np.searchsorted(bounds, item, side="right")


def policies(n: int, samples: int, **data) -> Policies:
    return Policies.stack([DataSpec(**data)] * n, samples)


def ring(n: int) -> np.ndarray:
    w = np.zeros((n, n))
    for k in range(n):
        w[k, [(k - 1) % n, k, (k + 1) % n]] = 1 / 3
    return w


def test_every_source_gets_its_exact_share_from_the_right_block():
    lay = Layout(n=4, original=30, public=30, fresh=30, published=30)
    p = policies(4, 20, original=0.25, public=0.25, human_fresh=0.25, synthetic=0.25)
    got = scrape(p, lay.sources(), Reading.from_matrix(ring(4)), np.random.default_rng(0))
    source = lay.source_of(got.item)
    assert np.array_equal(source, got.source)  # the tag says where an item came from
    for k in range(4):
        mine = got.row == k
        assert np.bincount(source[mine], minlength=4).tolist() == [5, 5, 5, 5]
        items = got.item[mine]
        assert len(np.unique(items)) == 20  # distinct draws
        own = items[source[mine] == ORIGINAL]
        assert np.all((own - lay.original.start) // lay.original.size == k)  # its own private data only
        models = (items[source[mine] == SYNTHETIC] - lay.published.start) // lay.published.size
        assert set(models) <= {(k - 1) % 4, k, (k + 1) % 4}  # only the models it reads
    assert np.all(got.weight == 1.0)


def test_what_a_source_cannot_supply_comes_from_the_original_data():
    lay = Layout(n=3, original=50, public=0, fresh=4, published=6)
    p = policies(3, 30, human_fresh=0.2, public=0.2, synthetic=0.6)
    rng = np.random.default_rng(1)
    before = scrape(p, lay.sources(published=False), Reading.from_matrix(ring(3)), rng)  # nothing written yet
    after = scrape(p, lay.sources(), Reading.from_matrix(np.eye(3)), rng)  # reads only itself: 6 items
    for got, synthetic in ((before, 0), (after, 6)):
        for k in range(3):
            counts = np.bincount(got.source[got.row == k], minlength=4)
            # every fresh item (4 of 6 asked), no public data (none exists), what is published, the rest original
            assert counts.tolist() == [30 - 4 - synthetic, 0, 4, synthetic]


def test_synthetic_data_is_split_by_w():
    lay = Layout(n=3, original=10, public=0, fresh=0, published=400)
    w = np.array([[0.0, 0.75, 0.25], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    got = scrape(policies(3, 200, synthetic=1.0), lay.sources(), Reading.from_matrix(w), np.random.default_rng(2))
    model = (got.item - lay.published.start) // lay.published.size
    assert np.bincount(model[got.row == 0], minlength=3).tolist() == [0, 150, 50]
    assert np.bincount(model[got.row == 1], minlength=3).tolist() == [100, 0, 100]
    assert np.bincount(model[got.row == 2], minlength=3).tolist() == [0, 0, 200]


def test_detector_drops_flagged_items_and_refill_scrapes_further():
    lay = Layout(n=6, original=100, public=0, fresh=200, published=200, seed=3)
    detector = {"tpr": 0.5, "fpr": 0.2}
    data = {"human_fresh": 0.5, "synthetic": 0.5, "detector": detector}
    reading = Reading.from_matrix(ring(6))
    dropped = scrape(policies(6, 40, **data), lay.sources(), reading, np.random.default_rng(4))
    refilled = scrape(policies(6, 40, **data, refill=True), lay.sources(), reading, np.random.default_rng(4))
    flagged = lay.score < np.where(lay.author_kind == MODEL, 0.5, 0.2)
    for got in (dropped, refilled):
        assert not flagged[got.item[got.source != ORIGINAL]].any()  # nothing flagged was kept
    assert np.all(refilled.sizes(6) == 40)  # the quota is met from items that pass
    assert np.all(np.bincount(refilled.row[refilled.source == FRESH], minlength=6) == 20)
    assert np.all(np.bincount(refilled.row[refilled.source == SYNTHETIC], minlength=6) == 20)
    assert dropped.sizes(6).mean() < 40 - 0.2 * 20  # about 20% of fresh and 50% of synthetic items dropped
    # A detector that flags everything synthetic: refill finds no synthetic item, so original data makes it up.
    strict = {"human_fresh": 0.5, "synthetic": 0.5, "detector": {"tpr": 1.0, "fpr": 0.0}, "refill": True}
    got = scrape(policies(6, 40, **strict), lay.sources(), reading, np.random.default_rng(5))
    assert np.all(got.sizes(6) == 40) and not (got.source == SYNTHETIC).any()
    assert np.all(np.bincount(got.row[got.source == ORIGINAL], minlength=6) == 20)


def test_verifier_keeps_correct_and_wrong_items_at_its_rates():
    lay = Layout(n=50, original=10, public=0, fresh=0, published=200, seed=6)
    reading = Reading.from_matrix(np.eye(50))  # each reads its own 200 outputs, about 110 of which pass
    verifier = {"keep_correct": 0.9, "keep_wrong": 0.2}
    q = (~lay.verified[lay.published.start :]).mean()  # wrong share of what was published
    # Among kept items the wrong share is 0.2q / (0.2q + 0.9(1 − q)) (Bayes); its error: the binomial filter
    # and the hypergeometric draw of 60 of 200 items (finite-population correction 0.7) per developer.
    expected = 0.2 * q / (0.2 * q + 0.9 * (1 - q))
    slope = 0.18 / (0.2 * q + 0.9 * (1 - q)) ** 2  # d expected / d q
    for refill in (False, True):
        got = scrape(policies(50, 60, synthetic=1.0, verifier=verifier, refill=refill), lay.sources(), reading,
                     np.random.default_rng(7))
        kept = got.item[got.source == SYNTHETIC]
        share = (~lay.verified[kept]).mean()
        se = np.sqrt(expected * (1 - expected) / len(kept) + slope**2 * q * (1 - q) * 0.7 / 3000)
        assert abs(share - expected) < 4 * se
        if refill:  # the quota is met from items that pass
            assert np.all(got.sizes(50) == 60) and len(kept) == 3000
        else:  # about (0.9(1 − q) + 0.2q) of the 3000 drawn survive (binomial filter, hypergeometric draw)
            survive = 0.9 * (1 - q) + 0.2 * q
            se = np.sqrt(3000 * survive * (1 - survive) + 0.7**2 * 3000 * q * (1 - q) * 0.7)
            assert abs(len(kept) - 3000 * survive) < 4 * se


def test_weight_mix_uses_every_item_with_its_share_and_w():
    lay = Layout(n=3, original=5, public=4, fresh=3, published=2)
    w = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    p = policies(3, 10, original=0.4, public=0.3, human_fresh=0.1, synthetic=0.2, mix="weight")
    got = scrape(p, lay.sources(), Reading.from_matrix(w), np.random.default_rng(0))
    for k in range(3):
        mine = got.row == k
        weight = dict(zip(got.item[mine].tolist(), got.weight[mine].tolist(), strict=True))
        own = range(lay.original.start + 5 * k, lay.original.start + 5 * k + 5)
        assert all(weight[i] == 0.4 for i in own)
        assert all(weight[lay.public.start + i] == 0.3 for i in range(4))
        assert all(weight[lay.fresh.start + i] == 0.1 for i in range(3))
        for j in range(3):
            for i in range(2):
                item = lay.published.start + 2 * j + i
                assert weight.get(item, 0.0) == pytest.approx(0.2 * w[k, j])
        assert len(weight) == 5 + 4 + 3 + 2 * int((w[k] > 0).sum())


# ── the plain per-developer loop ──────────────────────────────────────────────────────────────────────


def _apportion(n: int, shares: list[float], rng: np.random.Generator) -> list[int]:
    """Hamilton's method, one developer at a time, as a researcher would write it."""
    total = sum(shares)
    if total <= 0 or n == 0:
        return [0] * len(shares)
    exact = [n * s / total for s in shares]
    counts = [int(np.floor(e + 1e-9)) for e in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]) if shares[i] > 0 else 1.0, rng.random()))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def loop_scrape(lay: Layout, data: dict, samples: int, w: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Each developer's batch, one developer and one upstream model at a time (the semantics in the scrape's
    module docstring: shares by largest remainder, W split, shortfalls from original data, detector)."""
    shares = [data.get("original", 0.0), data.get("public", 0.0), data.get("human_fresh", 0.0),
              data.get("synthetic", 0.0)]
    tpr, fpr = data["detector"]["tpr"], data["detector"]["fpr"]
    out = []
    for k in range(lay.n):
        n_orig, n_pub, n_fresh, n_syn = _apportion(samples, shares, rng)
        fresh_items = list(range(lay.fresh.start, lay.fresh.start + lay.fresh.size))
        fresh = list(rng.choice(fresh_items, size=min(n_fresh, len(fresh_items)), replace=False))
        upstream = [j for j in range(lay.n) if w[k, j] > 0]
        per_model = _apportion(n_syn, [w[k, j] for j in upstream], rng)
        synthetic = []
        for j, c in zip(upstream, per_model, strict=True):
            block = list(range(lay.published.start + j * lay.published.size,
                               lay.published.start + (j + 1) * lay.published.size))
            synthetic += list(rng.choice(block, size=min(c, len(block)), replace=False))
        n_orig = samples - n_pub - len(fresh) - len(synthetic)
        mine = list(range(lay.original.start + k * lay.original.size, lay.original.start + (k + 1) * lay.original.size))
        original = list(rng.choice(mine, size=n_orig, replace=n_orig > len(mine)))
        kept = [i for i in fresh + synthetic
                if not lay.score[i] < (tpr if lay.author_kind[i] == MODEL else fpr)]
        out.append(original + kept)
    return out


@pytest.mark.slow
def test_the_scrape_draws_like_the_per_developer_loop():
    lay = Layout(n=4, original=12, public=0, fresh=10, published=8, seed=9)
    w = np.array([[0.5, 0.5, 0, 0], [0.2, 0.3, 0.5, 0], [0, 0, 1 / 3, 2 / 3], [0.25, 0.25, 0.25, 0.25]])
    data = {"original": 0.2, "human_fresh": 0.3, "synthetic": 0.5, "detector": {"tpr": 0.4, "fpr": 0.1}}
    reps, samples = 3000, 20
    rng_a, rng_b = np.random.default_rng(10), np.random.default_rng(11)
    p, reading = policies(4, samples, **data), Reading.from_matrix(w)
    ours, theirs = np.zeros((reps, 4, lay.size)), np.zeros((reps, 4, lay.size))
    for r in range(reps):
        got = scrape(p, lay.sources(), reading, rng_a)
        np.add.at(ours[r], (got.row, got.item), 1)
        for k, items in enumerate(loop_scrape(lay, data, samples, w, rng_b)):
            np.add.at(theirs[r, k], items, 1)
    # Every (developer, item) count has the same mean within Monte Carlo error (4.5 SE: about 400 items are
    # compared, so a 1-in-150,000 deviation), and so does every (developer, source model) total.
    diff = ours.mean(0) - theirs.mean(0)
    se = np.sqrt((ours.var(0) + theirs.var(0)) / reps)
    assert np.all(np.abs(diff) <= 4.5 * se + 1e-12)

    def per_model(counts: np.ndarray) -> np.ndarray:  # (reps, developer, model)
        return counts[:, :, lay.published.start :].reshape(reps, 4, 4, -1).sum(-1)

    diff = per_model(ours).mean(0) - per_model(theirs).mean(0)
    se = np.sqrt((per_model(ours).var(0) + per_model(theirs).var(0)) / reps)
    assert np.all(np.abs(diff) <= 4 * se + 1e-12)
    assert per_model(ours).mean(0)[2, 3] > per_model(ours).mean(0)[2, 2] > 0  # W's 2:1 split survives the filter
