"""The scrape: every developer's new training data of one generation, as a few array operations.

Agents hold their data policies (:class:`agents.developer.ModelDeveloper`); the ecosystem stacks them into
rows of arrays (:class:`Policies`), and :func:`scrape` turns those rows, the reading matrix W
(:class:`Reading`) and the pool's provenance columns into the batch every developer acquires this
generation, as flat arrays (developer, pool index, weight, source). No Python loop runs over developers or
over the models they read.

Every source is a contiguous block of the pool (:class:`Sources`): each developer's private ("original")
data, the public data, this generation's fresh human items, and each model's newest outputs. So a draw of
``c`` items from a source is ``c`` distinct offsets into its block (:func:`ecosystem.draws.distinct`).

With ``mix: sample`` a developer draws ``train.samples`` items in proportion to its shares (exact counts by
largest remainder); its synthetic count is split over the models it reads by its row of W (largest
remainder again), each model's part drawn from that model's newest outputs. Whatever a scraped source cannot
supply (nothing written yet, as synthetic data before the first generation, or fewer items than asked) is
drawn from the original data instead, so the first generation trains on real data as in Shumailov et al.
(Nature 2024) and the batch always has ``train.samples`` items before filtering. A detector drops scraped
items it flags (fresh human and synthetic); a verifier keeps correct synthetic items with probability φ and
wrong ones with ψ (Feng et al. 2024). With ``refill`` the developer scrapes further instead, drawing only
among the items that pass, so the quota is met whenever the source holds enough passing items (and any
remaining shortfall comes from the original data, as above).

With ``mix: weight`` a developer uses every item of every source, weighted in the loss by its share (and,
for model j's outputs, by W_kj): the loss of Vu, Reeves & Wenger (2025, eq. 1).

Generation 1 is Vu et al.'s t = 0 in both mixes: nothing is published yet (α₀ ≡ 0), so the synthetic share
goes to the two real sets in their ratio β : 1 − β (:attr:`Policies.first`, from :func:`first_shares`); α
applies from generation 2 on. Fresh human data keeps its share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ecosystem.draws import distinct, largest_remainder
from ecosystem.pool import MODEL
from ecosystem.scenario import SHARES, DataSpec

ORIGINAL, PUBLIC, FRESH, SYNTHETIC = range(4)  # columns of Policies.shares (SHARES order), and source tags
RETENTIONS = ("replace", "accumulate", "accumulate_subsample", "window", "incremental")


@dataclass(frozen=True)
class Policies:
    """Every developer's data policy as one row of arrays (NaN rates: no detector / no verifier)."""

    shares: np.ndarray  # (N, 4) original, public, human_fresh, synthetic
    weighted: np.ndarray  # (N,) bool: mix "weight"
    retention: np.ndarray  # (N,) index into RETENTIONS
    window: np.ndarray  # (N,) int
    keep: np.ndarray  # (N,) float
    tpr: np.ndarray  # (N,) detector P(flag | synthetic)
    fpr: np.ndarray  # (N,) detector P(flag | human)
    keep_correct: np.ndarray  # (N,) verifier φ
    keep_wrong: np.ndarray  # (N,) verifier ψ
    refill: np.ndarray  # (N,) bool
    samples: int  # items drawn per generation (mix "sample")
    first: np.ndarray | None = None  # (N, 4) shares of generation 1, nothing published (default: first_shares)

    def __post_init__(self) -> None:
        if self.first is None:
            object.__setattr__(self, "first", _first_rows(self.shares, None))

    @classmethod
    def stack(cls, policies: Sequence[DataSpec], samples: int) -> Policies:
        """The rows of ``policies`` (one per developer, in slot order)."""
        nan = float("nan")

        def column(get, dtype=np.float64) -> np.ndarray:
            return np.array([get(p) for p in policies], dtype=dtype)

        return cls(
            shares=np.array([[getattr(p, s) for s in SHARES] for p in policies], dtype=np.float64).reshape(-1, 4),
            weighted=column(lambda p: p.mix == "weight", bool),
            retention=column(lambda p: RETENTIONS.index(p.retention), np.int64),
            window=column(lambda p: p.window, np.int64),
            keep=column(lambda p: p.keep),
            tpr=column(lambda p: p.detector.tpr if p.detector else nan),
            fpr=column(lambda p: p.detector.fpr if p.detector else nan),
            keep_correct=column(lambda p: p.verifier.keep_correct if p.verifier else nan),
            keep_wrong=column(lambda p: p.verifier.keep_wrong if p.verifier else nan),
            refill=column(lambda p: p.refill, bool),
            samples=samples,
            first=np.array([first_shares(p) for p in policies], dtype=np.float64).reshape(-1, 4),
        )

    @property
    def n(self) -> int:
        return len(self.shares)


def first_shares(policy: DataSpec) -> np.ndarray:
    """A developer's shares (SHARES order) in generation 1, Vu et al.'s t = 0: real data only (α₀ ≡ 0).

    The synthetic share goes to the original and public sets in proportion to theirs, i.e. weights β and
    1 − β of the real part; when both are zero (α = 1) it uses the policy's ``beta`` (1 when only shares were
    given: the original data, as a shortfall is filled). ``human_fresh`` keeps its share.
    """
    shares = np.array([getattr(policy, s) for s in SHARES], dtype=np.float64)
    beta = None if policy.alpha is None and policy.beta is None else (1.0 if policy.beta is None else policy.beta)
    return _first_rows(shares[None], beta)[0]


def _first_rows(shares: np.ndarray, beta: float | None) -> np.ndarray:
    first = shares.copy()
    real = shares[:, ORIGINAL] + shares[:, PUBLIC]
    b = np.where(real > 0, shares[:, ORIGINAL] / np.where(real > 0, real, 1.0), 1.0 if beta is None else beta)
    first[:, ORIGINAL] += shares[:, SYNTHETIC] * b
    first[:, PUBLIC] += shares[:, SYNTHETIC] * (1 - b)
    first[:, SYNTHETIC] = 0.0
    return first


@dataclass(frozen=True)
class Reading:
    """W as padded neighbour lists: developer k reads ``neighbours[k, :degree[k]]`` with ``weights[k, :]``
    (row-stochastic; zero past the degree). ``uniform[k]``: all of k's weights are equal."""

    neighbours: np.ndarray  # (N, D) int
    weights: np.ndarray  # (N, D) float
    degree: np.ndarray  # (N,) int
    uniform: np.ndarray  # (N,) bool

    @classmethod
    def from_matrix(cls, w: np.ndarray) -> Reading:
        """From a dense row-stochastic ``W (N, N)`` (``W[k, j]``: k's share of synthetic data from j)."""
        positive = w > 0
        degree = positive.sum(1)
        width = max(int(degree.max(initial=0)), 1)
        order = np.argsort(~positive, axis=1, kind="stable")[:, :width]  # neighbours first, in index order
        weights = np.take_along_axis(w, order, 1) * (np.arange(width) < degree[:, None])
        top = weights.max(1)
        low = np.where(weights > 0, weights, np.inf).min(1)
        return cls(order.astype(np.int64), weights, degree, (degree == 0) | np.isclose(top, low, rtol=1e-12, atol=0))


@dataclass(frozen=True)
class Block:
    """Items ``start + owner * size + offset`` (``0 ≤ offset < size``) of the pool."""

    start: int = 0
    size: int = 0

    def item(self, owner: np.ndarray | int, offset: np.ndarray) -> np.ndarray:
        return self.start + np.asarray(owner, dtype=np.int64) * self.size + offset


@dataclass(frozen=True)
class Sources:
    """Where this generation's sources lie in the pool, with the pool's provenance columns."""

    original: Block  # owner: developer
    public: Block  # one owner
    fresh: Block  # one owner: the human items written this generation
    published: Block  # owner: the model that wrote them (size 0 before the first generation)
    author_kind: np.ndarray  # pool columns
    detector_score: np.ndarray
    verified: np.ndarray


@dataclass(frozen=True)
class Acquired:
    """This generation's batch of every developer: flat (developer, pool index, weight, source tag)."""

    row: np.ndarray
    item: np.ndarray
    weight: np.ndarray
    source: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Acquired]) -> Acquired:
        return Acquired(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("row", "item", "weight", "source")))

    def sizes(self, n: int) -> np.ndarray:
        return np.bincount(self.row, minlength=n)


def scrape(policies: Policies, sources: Sources, reading: Reading, rng: np.random.Generator) -> Acquired:
    """Every developer's acquired batch of this generation (see the module docstring)."""
    if not sources.published.size:  # generation 1: Vu et al.'s t = 0, real data only
        policies = replace(policies, shares=policies.first)
    parts = []
    sampled, weighted = np.flatnonzero(~policies.weighted), np.flatnonzero(policies.weighted)
    if len(sampled):
        parts.append(_sampled(policies, sources, reading, rng, sampled))
    if len(weighted):
        parts.append(_weighted(policies, sources, reading, rng, weighted))
    return Acquired.concat(parts)


# ── mix: sample ───────────────────────────────────────────────────────────────────────────────────────


def _sampled(p: Policies, s: Sources, reading: Reading, rng: np.random.Generator, rows: np.ndarray) -> Acquired:
    counts = largest_remainder(np.full(len(rows), p.samples), p.shares[rows], rng)  # (R, 4)
    # Fresh human items: one block for everyone.
    fresh = _draw(rows, counts[:, FRESH], np.zeros(len(rows), dtype=np.int64), s.fresh, FRESH, p, s, rng)
    # Synthetic items: the count split over the models each developer reads, by W.
    if s.published.size:
        r, model, count = split(counts[:, SYNTHETIC], reading, rows, rng)
        synthetic = _draw(rows[r], count, model, s.published, SYNTHETIC, p, s, rng)
    else:
        synthetic = _empty(), _empty()
    public_count = counts[:, PUBLIC] if s.public.size else np.zeros(len(rows), dtype=np.int64)
    public = _draw_real(rows, public_count, np.zeros(len(rows), dtype=np.int64), s.public, PUBLIC, rng)
    # Whatever the scraped sources could not supply comes from the original data.
    taken = np.bincount(fresh[1].row, minlength=p.n) + np.bincount(synthetic[1].row, minlength=p.n)
    original_count = p.samples - public_count - taken[rows]
    original = _draw_real(rows, original_count, rows, s.original, ORIGINAL, rng)
    return Acquired.concat([original, public, fresh[0], synthetic[0]])


def split(n: np.ndarray, reading: Reading, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Developer ``rows[r]``'s ``n[r]`` synthetic items split over the models it reads by its row of W
    (largest remainder, ties at random): flat ``(r, model, count)`` for the pairs with a positive count.

    A row whose weights are all equal (every unweighted graph) splits as ⌊n/deg⌋ each plus one more for
    ``n mod deg`` models chosen at random — the largest-remainder answer, found in O(n) rather than O(deg).
    """
    degree, uniform = reading.degree[rows], reading.uniform[rows]
    parts = []
    u = np.flatnonzero(uniform & (degree > 0))
    if len(u):
        base, extra = np.divmod(n[u], degree[u])
        full = np.flatnonzero(base > 0)  # every neighbour gets `base`
        r_full = np.repeat(u[full], degree[u][full])
        col_full = np.arange(len(r_full)) - np.repeat(np.cumsum(degree[u][full]) - degree[u][full], degree[u][full])
        parts.append((r_full, col_full, np.repeat(base[full], degree[u][full])))
        r_extra, col_extra = distinct(degree[u], extra, rng)  # the +1s
        parts.append((u[r_extra], col_extra, np.ones(len(r_extra), dtype=np.int64)))
    w = np.flatnonzero(~uniform)
    if len(w):
        counts = largest_remainder(n[w], reading.weights[rows[w]], rng)  # (R_w, D)
        r_w, col_w = np.nonzero(counts)
        parts.append((w[r_w], col_w, counts[r_w, col_w]))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    r, col, count = (np.concatenate(x) for x in zip(*parts, strict=True))
    # Merge a uniform row's base and +1 entries for the same model.
    key = r * reading.neighbours.shape[1] + col
    unique, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=count).astype(np.int64)
    r, col = np.divmod(unique, reading.neighbours.shape[1])
    return r, reading.neighbours[rows[r], col], total


def _draw(
    rows: np.ndarray, count: np.ndarray, owner: np.ndarray, block: Block, tag: int, p: Policies, s: Sources,
    rng: np.random.Generator,
) -> tuple[Acquired, Acquired]:
    """Scraped items: ``count[g]`` distinct items of owner ``owner[g]``'s part of ``block`` for developer
    ``rows[g]``, filtered by its detector (and verifier, for synthetic items). Returns (kept, drawn): the
    drawn items are those the shortfall rule counts — before filtering, or only the passing ones when the
    developer refills."""
    if not count.any():
        return _empty(), _empty()
    refill = p.refill[rows] & _filters(p, rows, tag)
    kept, drawn = [], []
    plain = np.flatnonzero(~refill)
    if len(plain):
        g, off = distinct(np.full(len(plain), block.size), count[plain], rng)
        got = _tagged(rows[plain][g], block.item(owner[plain][g], off), tag)
        drawn.append(got)
        kept.append(_filter(got, p, s, rng))
    refilled = np.flatnonzero(refill)
    if len(refilled):  # choose among the passing items only
        g = np.repeat(refilled, block.size)
        candidates = _tagged(rows[g], block.item(owner[g], np.tile(np.arange(block.size), len(refilled))), tag)
        passing = _passes(candidates, p, s, rng)
        available = np.bincount(np.repeat(np.arange(len(refilled)), block.size), weights=passing,
                                minlength=len(refilled)).astype(np.int64)
        pick_g, pick = distinct(available, count[refilled], rng)
        position = np.flatnonzero(passing)  # passing candidates, grouped by refilled entry in order
        start = np.cumsum(available) - available
        got = _take(candidates, position[start[pick_g] + pick])
        drawn.append(got)
        kept.append(got)
    return Acquired.concat(kept or [_empty()]), Acquired.concat(drawn or [_empty()])


def _draw_real(
    rows: np.ndarray, count: np.ndarray, owner: np.ndarray, block: Block, tag: int, rng: np.random.Generator
) -> Acquired:
    """Real data sets (original, public): distinct items while the set is large enough, else with
    replacement (a developer that needs more items than its set holds)."""
    count = np.maximum(count, 0)
    if block.size == 0 or not count.any():
        return _empty()
    repeat = count > block.size
    g, off = distinct(np.full(len(rows), block.size), np.where(repeat, 0, count), rng)
    rg = np.repeat(np.flatnonzero(repeat), count[repeat])
    rg_off = (rng.random(len(rg)) * block.size).astype(np.int64)
    g, off = np.concatenate([g, rg]), np.concatenate([off, rg_off])
    return _tagged(rows[g], block.item(owner[g], off), tag)


# ── mix: weight ───────────────────────────────────────────────────────────────────────────────────────


def _weighted(p: Policies, s: Sources, reading: Reading, rng: np.random.Generator, rows: np.ndarray) -> Acquired:
    """Every item of every source with its loss weight (Vu et al. 2025, eq. 1)."""
    parts = []
    for tag, block, owner in ((ORIGINAL, s.original, rows), (PUBLIC, s.public, 0), (FRESH, s.fresh, 0)):
        r = np.repeat(rows, block.size)
        items = block.item(np.repeat(owner, block.size) if tag == ORIGINAL else 0,
                           np.tile(np.arange(block.size), len(rows)))
        parts.append(Acquired(r, items, np.repeat(p.shares[rows, tag], block.size), np.full(len(r), tag)))
    if s.published.size:
        deg = reading.degree[rows]
        r = np.repeat(rows, deg)
        col = np.arange(len(r)) - np.repeat(np.cumsum(deg) - deg, deg)
        model, w = reading.neighbours[r, col], reading.weights[r, col] * p.shares[r, SYNTHETIC]
        k = s.published.size
        parts.append(Acquired(np.repeat(r, k), s.published.item(np.repeat(model, k), np.tile(np.arange(k), len(r))),
                              np.repeat(w, k), np.full(len(r) * k, SYNTHETIC)))
    got = Acquired.concat(parts)
    got = _take(got, np.flatnonzero(got.weight > 0))
    return _filter(got, p, s, rng)


# ── filters ───────────────────────────────────────────────────────────────────────────────────────────


def detector_flags(author_kind: np.ndarray, score: np.ndarray, tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """Detector verdicts: a model item is flagged w.p. ``tpr``, a human one w.p. ``fpr``. All developers
    score an item with one shared uniform detector score; each compares it with its own rates."""
    return score < np.where(author_kind == MODEL, tpr, fpr)


def _filters(p: Policies, rows: np.ndarray, tag: int) -> np.ndarray:
    """Whether any filter applies to items of source ``tag`` for each developer of ``rows``."""
    detector = ~np.isnan(p.tpr[rows])
    if tag == SYNTHETIC:
        return detector | ~np.isnan(p.keep_correct[rows])
    return detector & (tag == FRESH)


def _passes(a: Acquired, p: Policies, s: Sources, rng: np.random.Generator) -> np.ndarray:
    """Whether each acquired item survives its developer's detector and verifier."""
    scraped = (a.source == FRESH) | (a.source == SYNTHETIC)
    keep = np.ones(len(a.row), dtype=bool)
    tpr = p.tpr[a.row]
    detect = scraped & ~np.isnan(tpr)
    if detect.any():
        keep &= ~(detect & detector_flags(s.author_kind[a.item], s.detector_score[a.item], tpr, p.fpr[a.row]))
    verify = (a.source == SYNTHETIC) & ~np.isnan(p.keep_correct[a.row])
    if verify.any():
        p_keep = np.where(s.verified[a.item], p.keep_correct[a.row], p.keep_wrong[a.row])
        keep &= ~verify | (rng.random(len(a.row)) < p_keep)
    return keep


def _filter(a: Acquired, p: Policies, s: Sources, rng: np.random.Generator) -> Acquired:
    if np.isnan(p.tpr).all() and np.isnan(p.keep_correct).all():  # no developer filters anything
        return a
    return _take(a, np.flatnonzero(_passes(a, p, s, rng)))


# ── helpers ───────────────────────────────────────────────────────────────────────────────────────────


def _tagged(row: np.ndarray, item: np.ndarray, tag: int) -> Acquired:
    return Acquired(row.astype(np.int64), item.astype(np.int64), np.ones(len(row)), np.full(len(row), tag))


def _take(a: Acquired, index: np.ndarray) -> Acquired:
    return Acquired(a.row[index], a.item[index], a.weight[index], a.source[index])


def _empty() -> Acquired:
    return _tagged(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), 0)
