"""What is measured each generation, batched over developers (the scenario's ``metrics`` section).

Per developer: quality, the NLL of held-out human data under its model, overall, per community and per
concept; its distance to the truth (``Family.distance``: W2² to the human distribution's moment-matched
Gaussian, squared parameter error for regression, exact KL for an n-gram on ``topic_markov``) and what else
a family reports relative to the truth (``Family.truth``: ‖μ̂ − μ‖² and the log-determinant ratio of a
Gaussian, as Kazdan et al. 2024 report them); the model's
own statistics (``Family.describe``: its variance); and what it wrote, where the world has something to say
about samples (``World.sample_metrics``: validity, unigram entropy, distinct-2, Levenshtein diversity of
Briesch et al. 2023, unique fraction, concept coverage; with ``publish.prompt``, the diversity measures
read only what the model wrote after the prompt, see :meth:`Measurement.written`). Between developers:
the divergence of every pair of models, or of a seeded sample of pairs fixed for the run
(``Family.divergence``), whose mean is the ecosystem's ``divergence`` — it rises as models grow apart.
Quality and divergence are asked of the family at once (``Family.heldout_measures``), so that a family
whose divergence is read off the held-out set (a transformer's next-token distributions) reads it once.

Measurement has its own random streams (pair sampling, sampled Levenshtein pairs), so what is measured
and how often never changes the simulation itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ecosystem import diversity
from ecosystem.families.base import Family
from ecosystem.scenario import MetricsSpec
from ecosystem.worlds.base import Batch, Facts, World

SampleMetric = Callable[["Measurement", torch.Tensor, Facts, torch.Tensor], torch.Tensor]


def _levenshtein(m: Measurement, samples: torch.Tensor, facts: Facts, nll: torch.Tensor) -> torch.Tensor:
    """Levenshtein diversity of the first ``levenshtein_samples`` samples of each developer, over all their
    pairs, or a random subset of pairs when all developers together would compare more than
    ``levenshtein_pairs`` pairs (an unbiased estimate of the same mean)."""
    spec = m.spec
    k = min(spec.levenshtein_samples, samples.shape[1])
    per_developer = max(1, spec.levenshtein_pairs // max(1, samples.shape[0]))
    return diversity.levenshtein_diversity(samples[:, :k], m.world.pad_id, max_pairs=per_developer,
                                           generator=m.generator)


SAMPLE_METRICS: dict[str, SampleMetric] = {
    # per token, over the T positions of a held-out sequence
    "perplexity": lambda m, s, f, nll: torch.exp(nll / m.heldout.items.shape[-1]),
    "validity": lambda m, s, f, nll: f.verified.double().mean(1),
    "entropy": lambda m, s, f, nll: diversity.token_entropy(s, m.world.pad_id),
    "distinct_2": lambda m, s, f, nll: diversity.distinct_n(s, 2, m.world.pad_id),
    "levenshtein": _levenshtein,
    "unique_fraction": lambda m, s, f, nll: diversity.unique_fraction(s, m.world.pad_id),
    "coverage": lambda m, s, f, nll: diversity.concept_coverage(f.concepts, m.world.n_concepts),
}


class Measurement:
    """The measurements of one run: its world, family, developers and ``metrics`` section.

    Parameters
    ----------
    spec : the scenario's ``metrics`` section.
    world, family : the run's world and family.
    communities : names of the human communities (metric columns ``nll_<name>``).
    n : number of developers.
    seed : seed of measurement's own random streams.
    prompt_tokens : leading tokens of each sample that a prompt wrote (``publish.prompt``), not the model.
    """

    def __init__(self, spec: MetricsSpec, world: World, family: Family, communities: list[str], n: int,
                 seed: int, prompt_tokens: int = 0) -> None:
        self.spec, self.world, self.family, self.communities, self.n = spec, world, family, communities, n
        self.prompt_tokens = prompt_tokens
        rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=world.device).manual_seed(int(rng.integers(2**62)))
        self.heldout = world.heldout()
        self.i, self.j = pairs(n, spec.pair_count(n), spec.pairwise, rng)
        self._i, self._j = (torch.as_tensor(x, device=world.device) for x in (self.i, self.j))
        every = torch.arange(len(self.heldout.items), device=world.device)
        self.probe = probe_rows(every, spec.probes) if family.probe_limited else every  # rows of the held-out set

    def names(self) -> list[str]:
        """Per-developer metric names, in column order."""
        groups, names = self.spec.measure, []
        if "quality" in groups:
            names += ["nll", *(f"nll_{c}" for c in self.communities),
                      *(f"nll_concept_{c}" for c in range(self.world.n_concepts))]
        if "distance" in groups:
            names += ["distance", *self.family.truth_names]
        if "model" in groups:
            names += list(self.family.describe_names)
        if "samples" in groups:
            names += list(self.world.sample_metrics)
        return names

    def measure(self, state: object, samples: torch.Tensor, facts: Facts) -> tuple[dict[str, torch.Tensor],
                                                                                    np.ndarray | None]:
        """This generation's per-developer metrics ``{name: (N,)}`` (see :meth:`names`) and the divergence
        of each compared pair ``(P,)`` (None when none are compared). The held-out set is read once for both
        (``Family.heldout_measures``)."""
        groups, out = self.spec.measure, {}
        compared = self.spec.pairwise != "none" and len(self.i) > 0
        logp, divergence = self.family.heldout_measures(state, self.heldout.items, self.n, "quality" in groups,
                                                        self.probe if compared else None, self._i, self._j)
        nll = torch.full((self.n,), math.nan, dtype=torch.float64, device=samples.device)
        if logp is not None:
            out = quality(logp, self.heldout, self.communities, self.world.n_concepts)
            nll = out["nll"]
        if "distance" in groups:
            out["distance"] = self.family.distance(state, self.world)
            out |= self.family.truth(state, self.world)
        if "model" in groups:
            out |= self.family.describe(state)
        if "samples" in groups:
            written = self.written(samples)
            out |= {name: SAMPLE_METRICS[name](self, written, facts, nll) for name in self.world.sample_metrics}
        return out, (divergence.double().cpu().numpy() if divergence is not None else None)

    def written(self, samples: torch.Tensor) -> torch.Tensor:
        """What the models wrote of ``samples (N, K, T)``: the positions after the prompt ``(N, K, T − k)``;
        a sequence whose prompt already holds its end (``pad_id``) wrote nothing (all pad). Diversity is
        measured on this; validity and coverage judge the whole published item (``facts``)."""
        k = self.prompt_tokens
        if k == 0:
            return samples
        written = samples[..., k:]
        pad = self.world.pad_id
        if pad is not None:
            ended = (samples[..., :k] == pad).any(-1, keepdim=True)  # (N, K, 1)
            written = written.masked_fill(ended, pad)
        return written


def quality(logp: torch.Tensor, heldout: Batch, communities: list[str], n_concepts: int) -> dict[str, torch.Tensor]:
    """Held-out NLL (nats per item) of every developer's model ``{name: (N,)}`` from the log-probabilities of
    the held-out items ``logp (N, H)``: overall (``nll``), per human community (``nll_<name>``) and per concept
    (``nll_concept_<k>``); NaN where the held-out set has no item of a community or concept."""
    logp = logp.double()
    out = {"nll": -logp.mean(1)}
    for label, column, names in (("", heldout.communities, communities),
                                 ("concept_", heldout.concepts, [str(c) for c in range(n_concepts)])):
        for k, name in enumerate(names):
            mask = column == k
            out[f"nll_{label}{name}"] = -logp[:, mask].mean(1) if mask.any() else torch.full_like(out["nll"], math.nan)
    return out


def pairs(n: int, count: int, mode: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(i, j)``, ``i < j``, of the ``n`` developers compared each measured generation: every pair
    when ``count`` is all of them, else ``count`` distinct pairs drawn uniformly (sorted)."""
    every = n * (n - 1) // 2
    if count == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if count >= every:
        i, j = np.triu_indices(n, 1)
        return i.astype(np.int64), j.astype(np.int64)
    flat = np.sort(rng.choice(every, size=count, replace=False))
    # The flat index f of pair (i, j) in row-major upper-triangle order: rows have n−1, n−2, … entries.
    starts = np.arange(n) * (2 * n - np.arange(n) - 1) // 2  # (n,) first flat index of each row
    i = np.searchsorted(starts, flat, side="right") - 1
    j = flat - starts[i] + i + 1
    return i.astype(np.int64), j.astype(np.int64)


def probe_rows(rows: torch.Tensor, size: int) -> torch.Tensor:
    """At most ``size`` of the held-out ``rows``, evenly spaced so that every community is represented."""
    if len(rows) <= size:
        return rows
    # Integer arithmetic: a float32 linspace truncates (row 340 for 341 of 1024), and differently by device.
    return rows[torch.arange(size, device=rows.device) * (len(rows) - 1) // max(size - 1, 1)]
