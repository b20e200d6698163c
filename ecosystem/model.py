"""The ecosystem: a Mesa model whose step is one generation of writing, scraping, training and publishing.

Data flows one way through a step (design.md)::

    authors write ─▶ pool ─▶ developers gather (indices) ─▶ Family.fit (one batched call)
    ─▶ Family.sample (one batched call) ─▶ pool ─▶ metrics ─▶ DataCollector

Agents decide (what to write, what to train on); the model orchestrates the phases and does the
batched arithmetic.
"""

from __future__ import annotations

import mesa
import numpy as np
import torch

from agents.author import HumanAuthor
from agents.developer import ModelDeveloper, Sources
from ecosystem import metrics
from ecosystem.families import build_family
from ecosystem.network import build_network, reading_matrix
from ecosystem.pool import HUMAN, MODEL, ContentPool
from ecosystem.scenario import TOKEN_WORLDS, Scenario, ScenarioError
from ecosystem.seeding import Seeds
from ecosystem.worlds import Batch, build_world
from ecosystem.worlds.communities import concept_weights

POOL_METRICS = ("pool_size", "pool_synthetic_share", "pool_lineage_depth")
TRAIN_METRICS = ("train_synthetic_share", "train_lineage_depth", "train_size")
MAX_DIVERGENCE_HISTORY = 512  # developers; above this keeping (steps, N, N) costs too much memory


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
        devs = scenario.developers
        n = devs.count
        self.world = build_world(scenario, self.device, seeds.world)
        self.graph = build_network(scenario.network, n, seeds.network, devs.groups)
        self.reading = reading_matrix(self.graph)  # W (N, N), row v = what v reads
        self.family = build_family(scenario, self.world, self.device)
        self.state = self.family.init(n, self.generator)
        self.pool = ContentPool(self.world.item_shape, self.world.dtype, self.device)
        self.communities = [c.name for c in scenario.communities]
        self.heldout = self.world.heldout()
        self.detecting = any(p.detector is not None for p in devs.policies())  # draw detector scores?

        self.public = self._add_human(self.world.public(), step=0)
        weights = concept_weights(scenario.communities, self.world.n_concepts).numpy()  # (K, C)
        for k, community in enumerate(scenario.communities):
            for _ in range(community.authors):
                HumanAuthor(self, k, weights[k], community.rate)
        groups = np.repeat(np.arange(len(devs.groups)), devs.groups) if devs.groups else np.zeros(n, dtype=int)
        policies = devs.policies()
        for slot in range(n):
            dev = ModelDeveloper(self, slot, int(groups[slot]), policies[groups[slot]], devs.train.samples)
            dev.original = self._add_human(self.world.original(slot), step=0)
        self.authors = self.agents_by_type[HumanAuthor]
        self.developers = sorted(self.agents_by_type[ModelDeveloper], key=lambda d: d.slot)
        self.fresh = np.empty(0, dtype=np.int64)
        self.summary: dict[str, float] = {}
        self.divergence = np.zeros((n, n))
        self.divergence_history: list[np.ndarray] = []  # (N, N) per generation, for the run folder

        names = self.metric_names()
        self.datacollector = mesa.DataCollector(
            model_reporters={"step": "steps"} | {m: _reporter(m) for m in names},
            agenttype_reporters={
                ModelDeveloper: {"developer": "slot", "group": "group"} | {m: _reporter(m) for m in self.agent_names()}
            },
        )

    # ── phases ─────────────────────────────────────────────────────────────────────────────────────────

    def step(self) -> None:
        t = self.steps  # Mesa counts the step before calling us: 1 for the first generation
        self.authors.shuffle_do("write")
        self._write_human(t)
        self.agents_by_type[ModelDeveloper].shuffle_do("gather")
        items, weights = self._training_batch()
        self.state = self.family.fit(self.state, items, weights, self.generator)
        train = self._training_stats()
        samples = self._sample()
        self._publish(samples, t, train["train_lineage_depth"])
        self._measure(samples, train)
        self.datacollector.collect(self)

    def _write_human(self, t: int) -> None:
        concepts = np.concatenate([a.concepts for a in self.authors] + [np.empty(0, dtype=np.int64)])
        authors = np.concatenate([np.full(a.rate, a.unique_id) for a in self.authors] + [np.empty(0)])
        community = np.concatenate([np.full(a.rate, a.community) for a in self.authors] + [np.empty(0)])
        c = torch.as_tensor(concepts, dtype=torch.int64, device=self.device)
        items = self.world.sample(c, self.generator)
        self.fresh = self.pool.add(items, author_kind=HUMAN, author=authors, step=t, concept=concepts,
                                   community=community, depth=0.0, detector_score=self._scores(len(c)),
                                   verified=self._verify(items))

    def sources_for(self, dev: ModelDeveloper) -> Sources:
        row = self.reading[dev.slot]
        upstream = [(self.developers[j].published, float(row[j])) for j in np.flatnonzero(row)]
        return Sources(original=dev.original, public=self.public, fresh=self.fresh, upstream=upstream,
                       author_kind=self.pool.column("author_kind"),
                       detector_score=self.pool.column("detector_score"), verified=self.pool.column("verified"))

    def _training_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All developers' training sets padded to one ``(N, B)`` index matrix with weights (0 = padding)."""
        b = max(1, max(len(d.train_idx) for d in self.developers))
        idx = np.zeros((len(self.developers), b), dtype=np.int64)
        w = np.zeros((len(self.developers), b))
        for d in self.developers:
            idx[d.slot, : len(d.train_idx)] = d.train_idx
            w[d.slot, : len(d.train_w)] = d.train_w
        idx_t = torch.as_tensor(idx, device=self.device)
        return self.pool.items[idx_t], torch.as_tensor(w, device=self.device)  # (N, B, *item), (N, B)

    def _sample(self) -> torch.Tensor:
        publish = self.scenario.developers.publish
        prompts = None
        if hasattr(self.world, "prompts"):
            prompts = torch.stack([self.world.prompts(d.slot, publish.samples, self.generator)
                                   for d in self.developers])  # (N, k, D)
        return self.family.sample(self.state, publish.samples, self.generator, temperature=publish.temperature,
                                  top_p=publish.top_p, prompts=prompts)  # (N, k, *item)

    def _training_stats(self) -> dict[str, np.ndarray]:
        """Per developer ``(N,)``: synthetic share, lineage depth and size of the set it just trained on
        (share and depth NaN for an empty set)."""
        kind, depth = self.pool.column("author_kind"), self.pool.column("depth")
        return {
            "train_synthetic_share": np.array([_weighted_mean(kind[d.train_idx] == MODEL, d.train_w)
                                               for d in self.developers]),
            "train_lineage_depth": np.array([_weighted_mean(depth[d.train_idx], d.train_w)
                                             for d in self.developers]),
            "train_size": np.array([float(len(d.train_idx)) for d in self.developers]),
        }

    def _publish(self, samples: torch.Tensor, t: int, train_depth: np.ndarray) -> None:
        n, k = samples.shape[:2]
        flat = samples.reshape(n * k, *samples.shape[2:])
        for d in self.developers:  # a model that got no data keeps its parameters, hence its depth
            if np.isfinite(train_depth[d.slot]):
                d.depth = 1.0 + train_depth[d.slot]
        depth = np.array([d.depth for d in self.developers])
        idx = self.pool.add(flat, author_kind=MODEL, author=np.repeat(np.arange(n), k), step=t,
                            concept=self.world.concept_of(flat), community=-1, depth=np.repeat(depth, k),
                            detector_score=self._scores(n * k), verified=self._verify(flat))
        for d in self.developers:
            d.published = idx[d.slot * k : (d.slot + 1) * k]

    def _measure(self, samples: torch.Tensor, train: dict[str, np.ndarray]) -> None:
        per_dev, divergence = metrics.measure(self.world, self.family, self.state, samples, self.heldout,
                                              self.communities)
        values = {name: v.double().cpu().numpy() for name, v in per_dev.items()} | train  # each (N,)
        for d in self.developers:
            d.metrics = {name: float(v[d.slot]) for name, v in values.items()}
        self.divergence = divergence.double().cpu().numpy()
        n = len(self.developers)
        if n <= MAX_DIVERGENCE_HISTORY:
            self.divergence_history.append(self.divergence)
        off = ~np.eye(n, dtype=bool)
        kind = self.pool.column("author_kind")
        self.summary = {name: float(values[name].mean()) for name in self.agent_names()}
        self.summary |= {
            "nll_spread": float(np.std(values["nll"])),
            "divergence": float(self.divergence[off].mean()) if n > 1 else 0.0,
            "pool_size": float(len(self.pool)),
            "pool_synthetic_share": float((kind == MODEL).mean()),
            "pool_lineage_depth": float(self.pool.column("depth").mean()),
        }

    # ── helpers ────────────────────────────────────────────────────────────────────────────────────────

    def _add_human(self, batch: Batch, step: int) -> np.ndarray:
        if len(batch) == 0:
            return np.empty(0, dtype=np.int64)
        return self.pool.add(batch.items, author_kind=HUMAN, author=-1, step=step, concept=batch.concepts,
                             community=batch.communities, depth=0.0, detector_score=self._scores(len(batch)),
                             verified=self._verify(batch.items))

    def _scores(self, n: int) -> np.ndarray:
        """Detector scores of new items (see ``ecosystem.pool``), drawn only when some developer uses one."""
        return self.rng.random(n) if self.detecting else np.ones(n)

    def _verify(self, items: torch.Tensor) -> np.ndarray | bool:
        if self.scenario.world.kind not in TOKEN_WORLDS:
            return True
        return self.world.verify(items).cpu().numpy()

    def agent_names(self) -> list[str]:
        """Per-developer metric names, in column order."""
        return [*metrics.names(self.world, self.family, self.communities), *TRAIN_METRICS]

    def metric_names(self) -> list[str]:
        return [*self.agent_names(), "nll_spread", "divergence", *POOL_METRICS]


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when it is available, else the CPU; asking for ``cuda`` without it is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("device: 'cuda' was asked for but CUDA is not available; use 'cpu' or 'auto'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _reporter(name: str):
    def report(obj) -> float:
        return obj.summary[name] if isinstance(obj, EcosystemModel) else obj.metrics[name]

    return report


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else float("nan")
