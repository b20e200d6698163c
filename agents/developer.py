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

    def _sampled(self, s: Sources, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``samples`` items drawn in proportion to the shares.

        A source with nothing in it yet (synthetic data before any model has written, say) gives its share to
        the original data, so the first generation trains on real data as in Shumailov et al. (2024).
        """
        synth_idx, synth_w = _candidates(s.upstream, per_item=True)
        sizes = {"original": len(s.original), "public": len(s.public), "human_fresh": len(s.fresh),
                 "synthetic": len(synth_idx)}
        shares = self.policy.shares()
        for name, size in sizes.items():
            if size == 0 and name != "original":
                shares["original"] += shares[name]
                shares[name] = 0.0
        counts = apportion(self.samples, shares)
        parts = [
            _draw(s.original, counts["original"], rng, replace=counts["original"] > len(s.original)),
            _draw(s.public, counts["public"], rng, replace=counts["public"] > len(s.public)),
            _draw(s.fresh, min(counts["human_fresh"], len(s.fresh)), rng, replace=False),
            synth_idx[_weighted_without_replacement(synth_w, counts["synthetic"], rng)],
        ]
        idx = np.concatenate(parts).astype(np.int64)
        return idx, np.ones(len(idx))

    def _weighted(self, s: Sources) -> tuple[np.ndarray, np.ndarray]:
        """Every item of every source, weighted in the loss (Vu et al. 2025, eq. 1): the share of its set,
        times the reading weight W_kj for model j's synthetic items."""
        shares = self.policy.shares()
        synth_idx, synth_w = _candidates(s.upstream, per_item=False)
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


def apportion(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``n`` items by ``shares`` exactly (largest remainder; ties by order)."""
    exact = {k: n * v for k, v in shares.items()}
    counts = {k: int(np.floor(x + 1e-9)) for k, x in exact.items()}
    rest = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[:rest]:
        counts[k] += 1
    return counts


def _candidates(upstream: list[tuple[np.ndarray, float]], per_item: bool) -> tuple[np.ndarray, np.ndarray]:
    """Items of the models a developer reads, each with its reading weight W_kj (divided among the model's
    items when ``per_item``, so that each model's share of the draw is W_kj)."""
    parts = [(idx, np.full(len(idx), w / len(idx) if per_item else w)) for idx, w in upstream if len(idx) and w > 0]
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _draw(pool: np.ndarray, k: int, rng: np.random.Generator, replace: bool) -> np.ndarray:
    if k == 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64)
    return rng.choice(pool, size=k, replace=replace)


def _weighted_without_replacement(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` positions drawn without replacement with probability ∝ weights (Efraimidis–Spirakis keys)."""
    k = min(k, int((weights > 0).sum()))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    keys = np.log(rng.random(len(weights))) / weights  # larger is better; -inf for zero weight
    return np.argsort(-keys, kind="stable")[:k]
