"""Model developers: each decides what its model trains on; the ecosystem trains all models together.

A developer holds its slot in the family's batched state and a data policy (``developers.data``): shares of
its own original real data, shared public data, fresh human data and synthetic data from the models it
reads, a retention policy, and optionally a detector and a verifier to filter what it scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mesa
import numpy as np

from ecosystem.pool import MODEL
from ecosystem.retention import Acquired, retain
from ecosystem.scenario import DataSpec


@dataclass
class Sources:
    """What a developer can draw from in one generation (pool indices)."""

    original: np.ndarray  # its own private real data
    public: np.ndarray  # shared public real data
    fresh: np.ndarray  # human items written this generation
    upstream: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (newest items of a model it reads, W)
    author_kind: np.ndarray | None = None  # the pool's provenance columns
    detector_score: np.ndarray | None = None
    verified: np.ndarray | None = None


class ModelDeveloper(mesa.Agent):
    def __init__(self, model: mesa.Model, slot: int, group: int, policy: DataSpec, samples: int) -> None:
        super().__init__(model)
        self.slot = slot  # index in the family's batched state
        self.group = group  # developer community
        self.policy = policy
        self.samples = samples  # items gathered per generation (sample mix)
        self.original = np.empty(0, dtype=np.int64)
        self.history: list[Acquired] = []
        self.train_idx = np.empty(0, dtype=np.int64)
        self.train_w = np.empty(0)
        self.published = np.empty(0, dtype=np.int64)  # its newest items in the pool
        self.depth = 0.0  # lineage depth of its model: 1 + mean depth of the data it last trained on
        self.metrics: dict[str, float] = {}

    def gather(self) -> None:
        """Choose this generation's data, then the training set that the retention policy keeps."""
        sources = self.model.sources_for(self)
        rng = self.model.rng
        if self.policy.mix == "weight":
            batch = self._weighted(sources)
        else:
            batch = self._sampled(sources, rng)
        self.history.append(self._filter(batch, sources, rng))
        self.train_idx, self.train_w = retain(self.history, self.policy.retention, rng, window=self.policy.window,
                                              keep=self.policy.keep, previous=(self.train_idx, self.train_w))
        # Only accumulating policies look further back than `window` batches.
        if self.policy.retention not in ("accumulate", "accumulate_subsample"):
            del self.history[: -self.policy.window]

    def _sampled(self, s: Sources, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``samples`` items drawn in proportion to the shares (exact counts by largest remainder).

        Synthetic items are split over the models the developer reads by their reading weights W_kj, then
        drawn uniformly within each model's newest output. Whatever a scraped source cannot supply (nothing
        written yet, as synthetic data before the first generation; or fewer items than asked) is drawn from
        the original data instead, so the first generation trains on real data as in Shumailov et al. (2024)
        and the training set always has ``samples`` items.
        """
        counts = apportion(self.samples, self.policy.shares(), rng)
        fresh = _draw(s.fresh, min(counts["human_fresh"], len(s.fresh)), rng, replace=False)
        upstream = [(idx, w) for idx, w in s.upstream if len(idx) and w > 0]
        per_model = apportion(counts["synthetic"], {j: w for j, (_, w) in enumerate(upstream)}, rng)
        synthetic = [_draw(idx, min(per_model[j], len(idx)), rng, replace=False) for j, (idx, _) in enumerate(upstream)]
        n_public = counts["public"] if len(s.public) else 0
        n_original = self.samples - n_public - len(fresh) - sum(len(x) for x in synthetic)
        parts = [
            _draw(s.original, n_original, rng, replace=n_original > len(s.original)),
            _draw(s.public, n_public, rng, replace=n_public > len(s.public)),
            fresh,
            *synthetic,
        ]
        idx = np.concatenate(parts).astype(np.int64)
        return idx, np.ones(len(idx))

    def _weighted(self, s: Sources) -> tuple[np.ndarray, np.ndarray]:
        """Every item of every source, weighted in the loss (Vu et al. 2025, eq. 1): the share of its set,
        times the reading weight W_kj for model j's synthetic items."""
        shares = self.policy.shares()
        synth_idx, synth_w = _candidates(s.upstream)
        parts = [(s.original, shares["original"]), (s.public, shares["public"]), (s.fresh, shares["human_fresh"])]
        idx = np.concatenate([p for p, _ in parts] + [synth_idx]).astype(np.int64)
        w = np.concatenate([np.full(len(p), share) for p, share in parts] + [shares["synthetic"] * synth_w])
        keep = w > 0
        return idx[keep], w[keep]

    def _filter(self, batch: tuple[np.ndarray, np.ndarray], s: Sources, rng: np.random.Generator) -> Acquired:
        """Drop scraped items (fresh human and synthetic) that the detector flags, and synthetic items that the
        verifier rejects (keep correct ones w.p. φ, wrong ones w.p. ψ; Feng et al. 2024)."""
        idx, w = batch
        scraped = ~np.isin(idx, np.concatenate([s.original, s.public]))
        synthetic = scraped & ~np.isin(idx, s.fresh)
        keep = np.ones(len(idx), dtype=bool)
        if self.policy.detector is not None:
            keep &= ~(scraped & self.flags(s.author_kind[idx], s.detector_score[idx]))
        if self.policy.verifier is not None and s.verified is not None:
            v = self.policy.verifier
            p_keep = np.where(s.verified[idx], v.keep_correct, v.keep_wrong)
            keep &= ~synthetic | (rng.random(len(idx)) < p_keep)
        return idx[keep], w[keep]


    def flags(self, author_kind: np.ndarray, score: np.ndarray) -> np.ndarray:
        """This developer's detector verdicts: model items flagged w.p. tpr, human items w.p. fpr."""
        d = self.policy.detector
        return score < np.where(author_kind == MODEL, d.tpr, d.fpr)


def apportion(n: int, shares: dict, rng: np.random.Generator | None = None) -> dict:
    """Split ``n`` items by ``shares`` exactly (largest remainder). Shares need not sum to 1 (they are
    normalised); ties between equal remainders are broken at random when ``rng`` is given, else by order."""
    total = sum(shares.values())
    if n == 0 or total <= 0:
        return dict.fromkeys(shares, 0)
    keys = list(shares)
    exact = np.array([n * shares[k] / total for k in keys])
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = exact - counts + (rng.random(len(keys)) * 1e-6 if rng is not None else 0.0)
    counts[np.argsort(-remainder, kind="stable")[: n - counts.sum()]] += 1
    return {k: int(c) for k, c in zip(keys, counts, strict=True)}


def _candidates(upstream: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Every item of the models a developer reads, each with its model's reading weight W_kj."""
    parts = [(idx, np.full(len(idx), w)) for idx, w in upstream if len(idx) and w > 0]
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _draw(pool: np.ndarray, k: int, rng: np.random.Generator, replace: bool) -> np.ndarray:
    if k == 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64)
    return rng.choice(pool, size=k, replace=replace)
