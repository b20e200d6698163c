"""The ecosystem: a Mesa model whose step is one generation of writing, scraping, training and publishing.

Data flows one way through a step (design.md), and every phase is one batched operation over all
developers::

    authors write ─▶ pool ─▶ scrape (every developer's batch) ─▶ retention (training sets)
    ─▶ Family.fit ─▶ Family.sample ─▶ pool ─▶ metrics ─▶ DataCollector

Agents decide (what to write about, what to train on: their policies); the model orchestrates the phases
and does the arithmetic over all of them at once, as arrays.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd
import torch

from agents.author import HumanAuthor
from agents.developer import ModelDeveloper
from ecosystem.families import build_family
from ecosystem.metrics import Measurement
from ecosystem.network import build_edges
from ecosystem.pool import HUMAN, MODEL, ContentPool
from ecosystem.results import Divergences
from ecosystem.retention import Retention, Rows
from ecosystem.scenario import Scenario, ScenarioError
from ecosystem.scrape import RETENTIONS, Block, Policies, Reading, Sources, scrape
from ecosystem.seeding import Seeds
from ecosystem.worlds import Batch, build_world
from ecosystem.worlds.base import Facts
from ecosystem.worlds.communities import concept_weights

TRAIN_METRICS = ("train_synthetic_share", "train_lineage_depth", "train_size")
ECOSYSTEM_METRICS = ("nll_spread", "divergence", "pool_size", "pool_synthetic_share", "pool_lineage_depth",
                     "reference_nll", "baseline_nll")  # fmt: skip
RELEASE_ABOVE = 1 << 16  # pool items below which nothing is released (small runs keep their whole history)


class EcosystemModel(mesa.Model):
    """An ecosystem of model developers and human authors on a reading network.

    Parameters
    ----------
    scenario : the validated scenario; the default ``Scenario()`` is a small Gaussian ecosystem.
    """

    def __init__(self, scenario: Scenario | None = None) -> None:
        scenario = scenario if scenario is not None else Scenario()
        seeds = Seeds.from_root(scenario.seed)
        super().__init__(rng=seeds.mesa)
        self.scenario = scenario
        self.device = resolve_device(scenario.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seeds.torch)
        self.prompter = torch.Generator(device=self.device).manual_seed(seeds.prompts)  # publish.prompt's draws
        devs = scenario.developers
        n = devs.count
        self.world = build_world(scenario, self.device, seeds.world)
        self.edges = build_edges(scenario.network, n, seeds.network, devs.groups)
        self.reading = Reading.from_matrix(self.edges.reading_matrix())  # W, row k = what k reads
        self.family = build_family(scenario, self.world, self.device)
        self.state = self.family.init(n, self.generator)
        self.pool = ContentPool(self.world.item_shape, self.world.dtype, self.device, self.world.storage_dtype)
        self.communities = [c.name for c in scenario.communities]
        self.measurement = Measurement(scenario.metrics, self.world, self.family, self.communities, n,
                                       seeds.measure, devs.publish.prompt_tokens)
        self.reference = self.world.reference()
        self.detecting = any(p.detector is not None for p in devs.policies())  # draw detector scores?

        self.public = Block(self._add_real(self.world.public()), len(self.world.public()))
        originals = self.world.originals()
        self.original = Block(self._add_real(originals), len(originals) // n)
        weights = concept_weights(scenario.communities, self.world.n_concepts).numpy()  # (K, C)
        for k, community in enumerate(scenario.communities):
            for _ in range(community.authors):
                HumanAuthor(self, k, weights[k], community.rate)
        groups = np.repeat(np.arange(len(devs.groups)), devs.groups) if devs.groups else np.zeros(n, dtype=int)
        policies = devs.policies()
        for slot in range(n):
            ModelDeveloper(self, slot, int(groups[slot]), policies[groups[slot]])
        self.authors = self.agents_by_type[HumanAuthor]
        # Authors of one community share its preferences and rate: (author ids, preferences (C,), rate).
        self.writers = [(np.array([a.unique_id for a in self.authors if a.community == k], dtype=np.int64),
                         weights[k], c.rate) for k, c in enumerate(scenario.communities)]
        self.developers = sorted(self.agents_by_type[ModelDeveloper], key=lambda d: d.slot)
        self.groups = groups
        self.policies = Policies.stack([d.policy for d in self.developers], devs.train.samples)
        self.retention = Retention(self.policies)
        # Running statistics when every developer accumulates and the family fits from additive ones
        # (no set is revisited: a generation costs the new batch, not the whole history).
        accumulating = bool((self.policies.retention == RETENTIONS.index("accumulate")).all())
        empty = np.zeros((n, 0), dtype=np.int64)
        self.running = (self._statistics(empty, np.zeros((n, 0)))
                        if accumulating and self.family.additive else None)
        self.published = Block()  # the models' newest outputs (none before the first generation)
        self.release_at = 0  # pool size at which to look for items to release
        self.depth = np.zeros(n)  # lineage depth of each model: 1 + mean depth of the data it last trained on
        self.generation = 0
        self.summary: dict[str, float] = {}
        self.history: list[dict[str, np.ndarray]] = []  # per-developer metrics of each generation
        self.divergence_history: list[tuple[int, np.ndarray]] = []  # (generation, (P,) pair divergences)
        self.kept_samples: list[tuple[int, list[str]]] = []  # (generation, N·keep texts, developer-major)

        self.datacollector = mesa.DataCollector(
            model_reporters={"step": "generation"} | {m: _reporter(m) for m in self.metric_names()})

    # ── phases ─────────────────────────────────────────────────────────────────────────────────────────

    def step(self) -> None:
        self.generation = t = self.generation + 1
        fresh = self._write_human(t)
        pool = self.pool
        sources = Sources(self.original, self.public, fresh, self.published, pool.column("author_kind"),
                          pool.column("detector_score"), pool.column("verified"))
        acquired = scrape(self.policies, sources, self.reading, self.rng)
        batch = Rows.from_flat(len(self.developers), acquired.row, acquired.item, acquired.weight)
        train = self.retention.update(batch, self.rng)
        if self.running is not None:  # every set only grows: fit the new batch's statistics into the running ones
            idx, weight = batch.padded()  # (N, B)
            self.running = self._combine(self.running, self._statistics(idx, weight))
            self.state = self.family.fit_statistics(self.state, self.running[0])
            sums = self.running[1]
        else:
            idx, weight = train.padded()  # (N, B)
            self.state = self.family.fit(self.state, pool.take(idx), torch.as_tensor(weight, device=self.device),
                                         self.generator)
            sums = self._training_sums(idx, weight)
        stats = _training_stats(sums, train.n)
        samples = self._sample()
        self._keep_samples(t, samples)
        facts = self._publish(samples, t, stats["train_lineage_depth"])
        self._measure(t, samples, facts, stats)
        self._release()
        self.datacollector.collect(self)

    def _write_human(self, t: int) -> Block:
        """Every author writes ``rate`` items on concepts drawn from its community's preferences: one draw per
        community for all its authors, one batched call of the world for the content."""
        concepts, authors, community = [], [], []
        for k, (ids, prefs, rate) in enumerate(self.writers):
            if rate == 0 or len(ids) == 0:
                continue
            concepts.append(self.rng.choice(len(prefs), size=len(ids) * rate, p=prefs))
            authors.append(np.repeat(ids, rate))
            community.append(np.full(len(ids) * rate, k))
        if not concepts:
            return Block(self.pool.size, 0)
        c = np.concatenate(concepts)
        items = self.world.sample(torch.as_tensor(c, device=self.device), self.generator)
        start = self.pool.add(items, author_kind=HUMAN, author=np.concatenate(authors), step=t, concept=c,
                              community=np.concatenate(community), depth=0.0, detector_score=self._scores(len(c)),
                              verified=self.world.verify(items).cpu().numpy())
        return Block(start, len(c))

    def _sample(self) -> torch.Tensor:
        publish = self.scenario.developers.publish
        return self.family.sample(self.state, publish.samples, self.generator, temperature=publish.temperature,
                                  top_p=publish.top_p, prompts=self._prompts())

    def _prompts(self) -> torch.Tensor | None:
        """What the models condition on ``(N, k, ...)``: the world's own (the features of a conditional world)
        or, with ``publish.prompt``, prefixes from its source, drawn from their own stream. The prefix stays
        in the published item: it is a whole sequence."""
        publish = self.scenario.developers.publish
        if publish.prompt_tokens == 0:
            return self.world.prompts(publish.samples, self.generator)
        return self.world.prefixes(publish.prompt.source, publish.prompt.tokens, publish.samples,
                                   len(self.developers), self.prompter)

    def _keep_samples(self, t: int, samples: torch.Tensor) -> None:
        """Keep the decoded text of each developer's first ``samples.keep`` published items (token worlds)."""
        keep = min(self.scenario.samples.keep, samples.shape[1])
        texts = self.world.to_text(samples[:, :keep]) if keep > 0 else None
        if texts is not None:
            self.kept_samples.append((t, texts))

    def _training_sums(self, idx: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """``(3, N)``: per developer Σw, Σw·[synthetic] and Σw·depth over padded indices ``idx (N, B)``."""
        synthetic = self.pool.column("author_kind")[idx] == MODEL
        return np.stack([weight.sum(1), (synthetic * weight).sum(1), (self.pool.column("depth")[idx] * weight).sum(1)])

    def _statistics(self, idx: np.ndarray, weight: np.ndarray) -> tuple[Any, np.ndarray]:
        """The family's additive statistics of the padded sets ``idx (N, B)`` and their training sums."""
        w = torch.as_tensor(weight, device=self.device)
        return self.family.statistics(self.pool.take(idx), w), self._training_sums(idx, weight)

    def _combine(self, a: tuple[Any, np.ndarray], b: tuple[Any, np.ndarray]) -> tuple[Any, np.ndarray]:
        return self.family.combine(a[0], b[0]), a[1] + b[1]

    def _publish(self, samples: torch.Tensor, t: int, train_depth: np.ndarray) -> Facts:
        """Add every model's samples to the pool, with what the world reads off them (once)."""
        n, k = samples.shape[:2]
        flat = samples.reshape(n * k, *samples.shape[2:])
        facts = self.world.facts(flat)
        # A model that got no data keeps its parameters, hence its depth.
        self.depth = np.where(np.isfinite(train_depth), 1.0 + train_depth, self.depth)
        start = self.pool.add(flat, author_kind=MODEL, author=np.repeat(np.arange(n), k), step=t,
                              concept=facts.concepts.cpu().numpy(), community=-1, depth=np.repeat(self.depth, k),
                              detector_score=self._scores(n * k), verified=facts.verified.cpu().numpy())
        self.published = Block(start, k)
        return Facts(facts.concepts.view(n, k), facts.verified.view(n, k))

    def _measure(self, t: int, samples: torch.Tensor, facts: Facts, stats: dict[str, np.ndarray]) -> None:
        n = len(self.developers)
        values: dict[str, np.ndarray] = {}
        divergence = None
        if self.scenario.metrics.measured(t, self.scenario.steps):
            per_dev, divergence = self.measurement.measure(self.state, samples, facts)
            values = {name: v.double().cpu().numpy() for name, v in per_dev.items()}
            if divergence is not None:
                self.divergence_history.append((t, divergence.astype(np.float32)))
        values = {name: values.get(name, np.full(n, math.nan)) for name in self.measurement.names()} | stats
        self.history.append(values)
        self.summary = {name: float(v.mean()) for name, v in values.items()}
        self.summary |= {
            "nll_spread": float(np.std(values["nll"])) if "nll" in values else math.nan,
            "divergence": float(divergence.mean()) if divergence is not None and len(divergence) else math.nan,
            "pool_size": float(self.pool.written.items),
            "pool_synthetic_share": self.pool.written.synthetic_share,
            "pool_lineage_depth": self.pool.written.mean_depth,
            **self.reference,
        }

    def _release(self) -> None:
        """Release the pool items no developer can read again: compact the pool when they are most of it."""
        pool = self.pool
        if pool.size < max(RELEASE_ABOVE, self.release_at):
            return
        self.release_at = 2 * pool.size  # look again when the pool has doubled: O(1) per item written
        live = np.zeros(pool.size, dtype=bool)
        for block, owners in ((self.original, len(self.developers)), (self.public, 1),
                              (self.published, len(self.developers))):
            live[block.start : block.start + block.size * owners] = True
        held = {id(rows): rows for rows in self.retention.live()}.values()  # training sets may share storage
        for rows in held:
            live[rows.idx[rows.valid()]] = True
        if 2 * live.sum() > pool.size:
            return
        new_index = pool.compact(live)
        self.release_at = 2 * pool.size
        for rows in held:
            rows.remap(new_index)
        self.original, self.public, self.published = (
            Block(int(new_index[b.start]) if b.size else 0, b.size) for b in (self.original, self.public,
                                                                               self.published))

    # ── helpers ────────────────────────────────────────────────────────────────────────────────────────

    def _add_real(self, batch: Batch) -> int:
        """Add a world's fixed data set (step 0, no author); returns where it starts."""
        if len(batch) == 0:
            return self.pool.size
        return self.pool.add(batch.items, author_kind=HUMAN, author=-1, step=0,
                             concept=batch.concepts.cpu().numpy(), community=batch.communities.cpu().numpy(),
                             depth=0.0, detector_score=self._scores(len(batch)),
                             verified=self.world.verify(batch.items).cpu().numpy())

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The reading network as a networkx graph (built on first use: the simulation reads ``edges``)."""
        return self.edges.graph()

    def _scores(self, n: int) -> np.ndarray:
        """Detector scores of new items (see ``ecosystem.pool``), drawn only when some developer uses one."""
        return self.rng.random(n) if self.detecting else np.ones(n)

    def agent_names(self) -> list[str]:
        """Per-developer metric names, in column order."""
        return [*self.measurement.names(), *TRAIN_METRICS]

    def metric_names(self) -> list[str]:
        """Ecosystem-level metric names (``model.parquet`` columns after ``step``), with the world's own
        reference values (the ``corpus`` world's ``unigram_nll``)."""
        return [*self.agent_names(), *ECOSYSTEM_METRICS, *(k for k in self.reference if k not in ECOSYSTEM_METRICS)]

    # ── results ────────────────────────────────────────────────────────────────────────────────────────

    def model_frame(self) -> pd.DataFrame:
        """One row per generation so far: ``step`` and the ecosystem-level metrics."""
        return self.datacollector.get_model_vars_dataframe().reset_index(drop=True)

    def developer_frame(self) -> pd.DataFrame:
        """One row per generation × developer: ``step, developer, group`` and the per-developer metrics."""
        n, steps = len(self.developers), len(self.history)
        columns = {"step": np.repeat(np.arange(1, steps + 1), n), "developer": np.tile(np.arange(n), steps),
                   "group": np.tile(self.groups, steps)}
        for name in self.agent_names():
            columns[name] = np.concatenate([h[name] for h in self.history]) if steps else np.empty(0)
        return pd.DataFrame(columns)

    def samples_frame(self) -> pd.DataFrame | None:
        """What the models wrote: one row per kept sample, ``step, developer, text``; None when the world's
        items are not text or ``samples.keep`` is 0."""
        if not self.kept_samples:
            return None
        n = len(self.developers)
        steps, texts = zip(*self.kept_samples, strict=True)
        keep = len(texts[0]) // n
        return pd.DataFrame({"step": np.repeat(np.array(steps), n * keep),
                             "developer": np.tile(np.repeat(np.arange(n), keep), len(steps)),
                             "text": [x for batch in texts for x in batch]})

    def divergences(self) -> Divergences | None:
        """The pairwise divergences measured so far, or None when none were."""
        if not self.divergence_history:
            return None
        steps, values = zip(*self.divergence_history, strict=True)
        m = self.measurement
        return Divergences(len(self.developers), np.array(steps), m.i, m.j, np.stack(values))


def _training_stats(sums: np.ndarray, size: np.ndarray) -> dict[str, np.ndarray]:
    """Per developer ``(N,)``: synthetic share, lineage depth and size of the set it just trained on
    (share and depth NaN for an empty set)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share, depth = sums[1] / sums[0], sums[2] / sums[0]
    return {"train_synthetic_share": share, "train_lineage_depth": depth, "train_size": size.astype(float)}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when it is available, else the CPU; asking for ``cuda`` without it is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("device: 'cuda' was asked for but CUDA is not available; use 'cpu' or 'auto'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _reporter(name: str):
    def report(model: EcosystemModel) -> float:
        return model.summary[name]

    return report
