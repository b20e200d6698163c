"""What the dashboard shows, computed without any web code: plain numpy, pandas, networkx and matplotlib.

A :class:`RunData` is one run's results at some point: a finished run folder, or a live model after its
latest generation. Everything the page draws is a function of it (and of the generation, metric and
developer the user picked), so it is tested here without a browser. Figures are ``matplotlib.figure.Figure``
objects (no pyplot state), which Solara renders as inline SVG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure

from analysis import effects, layout
from analysis.network_stats import node_statistics
from analysis.report import OUTCOMES, final_window
from analysis.sweep_frame import load_sweep, runs_frame
from ecosystem.network import reading_matrix
from ecosystem.results import Divergences, RunFolder

DISTINCTIVENESS = "distinctiveness"  # a developer's mean divergence to the others (from the divergence pairs)
ID_COLUMNS = ("step", "developer", "group")
# Colour metrics offered first when the run has them; any other per-developer column follows.
PREFERRED = ("nll", DISTINCTIVENESS, "train_synthetic_share", "train_lineage_depth")
COLORMAP = "viridis"


@dataclass(frozen=True)
class RunData:
    """One run's results: ``model`` (per generation), ``agents`` (per generation × developer), the pairwise
    divergences (None if none were measured), the reading graph (u → v: v reads u), developer communities
    ``groups (N,)`` and what the models wrote (``step, developer, text``; None where nothing is kept)."""

    name: str
    model: pd.DataFrame
    agents: pd.DataFrame
    divergence: Divergences | None
    graph: nx.DiGraph
    groups: np.ndarray
    samples: pd.DataFrame | None = None

    @classmethod
    def from_folder(cls, path: str | Path) -> RunData:
        folder = RunFolder(path)
        return cls(folder.name, folder.model, folder.agents, folder.divergence, folder.graph, folder.groups,
                   getattr(folder, "samples", None))  # samples.parquet: run folders that keep samples

    @classmethod
    def from_model(cls, model) -> RunData:
        """A snapshot of a live :class:`ecosystem.model.EcosystemModel` after its latest generation."""
        samples = model.samples_frame() if hasattr(model, "samples_frame") else None
        return cls(model.scenario.name, model.model_frame(), model.developer_frame(), model.divergences(),
                   model.graph.copy(), np.asarray(model.groups), samples)

    @property
    def n(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def generations(self) -> int:
        """The last generation with results (0 before the first)."""
        return int(self.model["step"].max()) if len(self.model) else 0

    @cached_property
    def influence(self) -> np.ndarray:
        """Each developer's influence ``(N,)``: PageRank of who reads whom (see ``node_statistics``)."""
        return node_statistics(self.graph, self.groups)["pagerank"].to_numpy()

    @cached_property
    def positions(self) -> np.ndarray:
        """Node positions ``(N, 2)`` in [0, 1]², the report's layout (:func:`analysis.layout.positions`)."""
        return layout.positions(self.graph, self.groups)

    @cached_property
    def edges(self) -> tuple[np.ndarray, int]:
        """The edges drawn ``(k, 2)`` and how many there are (:func:`analysis.layout.drawn_edges`)."""
        return layout.drawn_edges(self.graph)

    def metrics(self) -> list[str]:
        """Per-developer metrics the network can be coloured by (measured at least once): the preferred ones
        first, then the rest."""
        columns = [c for c in self.agents.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(
            self.agents[c]) and self.agents[c].notna().any()]  # a metric the world lacks is all NaN
        if self.divergence is not None:
            columns.append(DISTINCTIVENESS)
        return [m for m in PREFERRED if m in columns] + [m for m in columns if m not in PREFERRED]

    def measured_index(self, generation: int) -> int | None:
        """Index of the last divergence measurement at or before ``generation`` (None if there is none)."""
        if self.divergence is None:
            return None
        k = int(np.searchsorted(self.divergence.steps, generation, side="right")) - 1
        return k if k >= 0 else None

    def values(self, metric: str, generation: int) -> np.ndarray:
        """Each developer's ``metric`` after ``generation`` ``(N,)`` (NaN where it was not measured)."""
        if metric == DISTINCTIVENESS:
            k = self.measured_index(generation)
            return self.divergence.per_developer()[k] if k is not None else np.full(self.n, np.nan)
        rows = self.agents[self.agents["step"] == generation].set_index("developer")[metric]
        return rows.reindex(range(self.n)).to_numpy(dtype=float)

    def trajectory(self, metric: str, developer: int) -> pd.DataFrame:
        """``step`` and ``value`` of one developer's ``metric`` over the generations."""
        if metric == DISTINCTIVENESS:
            steps = self.divergence.steps if self.divergence is not None else np.empty(0, dtype=int)
            values = self.divergence.per_developer()[:, developer] if len(steps) else np.empty(0)
            return pd.DataFrame({"step": steps, "value": values})
        rows = self.agents[self.agents["developer"] == developer]
        return pd.DataFrame({"step": rows["step"].to_numpy(), "value": rows[metric].to_numpy(dtype=float)})

    def reads(self, developer: int) -> list[tuple[int, float]]:
        """Whom ``developer`` reads (itself included if it has a loop), with the share of its reading each one
        gets: its row of the row-stochastic reading matrix W."""
        row = self.reading[developer]
        return [(int(u), float(row[u])) for u in np.flatnonzero(row)]

    @cached_property
    def reading(self) -> np.ndarray:
        """The reading matrix W ``(N, N)``: row k says what share of its reading k gives to each developer."""
        return reading_matrix(self.graph)

    def read_by(self, developer: int) -> list[int]:
        """Who reads ``developer``'s outputs."""
        return sorted(int(v) for v in self.graph.successors(developer))

    def wrote(self, developer: int, generation: int) -> list[str]:
        """What ``developer`` wrote at ``generation``, where the run kept samples."""
        if self.samples is None or not len(self.samples):
            return []
        rows = self.samples[(self.samples["developer"] == developer) & (self.samples["step"] == generation)]
        return [str(t) for t in rows["text"]]

    def community_order(self) -> np.ndarray:
        """Developers ordered by community (stable: by slot within a community)."""
        return np.argsort(self.groups, kind="stable")


@dataclass(frozen=True)
class Node:
    id: int
    x: float
    y: float
    r: float
    fill: str
    value: float
    group: int


def network_picture(data: RunData, metric: str, generation: int, size: int = 440) -> dict:
    """The reading network as plain data for the SVG: nodes coloured by ``metric`` at ``generation`` and sized
    by influence, edges (self-loops left out: they carry no picture; above ``layout.EDGES_DRAWN`` a seeded
    sample, with the whole count in ``edges_total``), and the colour scale's range.

    The colour scale spans the metric over every generation, so moving the slider shows change, not a
    rescaled picture."""
    values = data.values(metric, generation)
    everything = _all_values(data, metric)
    finite = everything[np.isfinite(everything)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    norm, cmap = Normalize(low, high if high > low else low + 1.0), colormaps[COLORMAP]
    influence = data.influence / data.influence.max() if data.n and data.influence.max() > 0 else np.ones(data.n)
    margin = 24
    xy = margin + data.positions * (size - 2 * margin)
    nodes = [Node(u, round(float(xy[u, 0]), 1), round(float(xy[u, 1]), 1), round(5 + 11 * math.sqrt(influence[u]), 1),
                  to_hex(cmap(norm(values[u]))) if np.isfinite(values[u]) else "#bbbbbb",
                  float(values[u]) if np.isfinite(values[u]) else None, int(data.groups[u]))
             for u in range(data.n)]
    drawn, total = data.edges
    edges = [{"source": int(u), "target": int(v), "x1": nodes[u].x, "y1": nodes[u].y, "x2": nodes[v].x,
              "y2": nodes[v].y} for u, v in drawn]
    return {"nodes": [vars(n) for n in nodes], "edges": edges, "edges_total": total, "low": low, "high": high,
            "size": size,
            "gradient": [to_hex(cmap(x)) for x in np.linspace(0, 1, 6)]}


def _all_values(data: RunData, metric: str) -> np.ndarray:
    if metric == DISTINCTIVENESS:
        return data.divergence.per_developer().ravel() if data.divergence is not None else np.empty(0)
    return data.agents[metric].to_numpy(dtype=float) if len(data.agents) else np.empty(0)


# ── figures ───────────────────────────────────────────────────────────────────────────────────────────


def trajectory_figure(data: RunData, developer: int, metrics: list[str], generation: int) -> Figure:
    """One developer's metrics over generations (its line) against the other developers (grey)."""
    fig = Figure(figsize=(4.6, 1.7 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        for other in range(data.n):
            t = data.trajectory(metric, other)
            mine = other == developer
            ax.plot(t["step"], t["value"], color="C3" if mine else "0.8", lw=2 if mine else 0.7,
                    zorder=3 if mine else 1)
        ax.axvline(generation, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("generation", fontsize=8)
    axes[0].set_title(f"developer {developer} (red) among the others", fontsize=9)
    return fig


def model_figure(data: RunData, generation: int, columns: tuple[str, ...] = ("nll", "divergence",
                 "pool_synthetic_share", "pool_lineage_depth")) -> Figure:  # fmt: skip
    """The ecosystem-level metrics over generations, with the chosen generation marked."""
    columns = [c for c in columns if c in data.model.columns and data.model[c].notna().any()]
    fig = Figure(figsize=(4.6, 1.5 * max(len(columns), 1)), layout="constrained")
    axes = fig.subplots(max(len(columns), 1), 1, squeeze=False, sharex=True)[:, 0]
    for ax, column in zip(axes, columns, strict=False):
        ax.plot(data.model["step"], data.model[column], color="k", lw=1.5)
        ax.axvline(generation, color="C3", lw=0.8, ls=":")
        ax.set_ylabel(column, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("generation", fontsize=8)
    return fig


def heatmap_figure(data: RunData, generation: int) -> Figure:
    """Pairwise divergence between developers at the last measurement up to ``generation``, ordered by
    community (lines separate the communities; blank cells: pairs not measured)."""
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.subplots()
    k = data.measured_index(generation)
    if k is None:
        ax.text(0.5, 0.5, "no pairwise divergence measured yet", ha="center", va="center", fontsize=9)
        ax.set_axis_off()
        return fig
    order = data.community_order()
    matrix = data.divergence.matrix(k)[np.ix_(order, order)]
    image = ax.imshow(matrix, cmap="magma_r", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    for edge in np.flatnonzero(np.diff(data.groups[order])) + 0.5:
        ax.axhline(edge, color="w", lw=1.2)
        ax.axvline(edge, color="w", lw=1.2)
    ticks = np.arange(len(order))
    ax.set_xticks(ticks, order, fontsize=6)
    ax.set_yticks(ticks, order, fontsize=6)
    ax.set_title(f"divergence after generation {int(data.divergence.steps[k])}", fontsize=9)
    return fig


# ── sweeps ────────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SweepData:
    """A sweep folder: its runs (one row per run: ids, parameters as columns, status) and its design axes."""

    path: Path
    runs: pd.DataFrame

    @classmethod
    def from_folder(cls, path: str | Path) -> SweepData:
        return cls(Path(path), runs_frame(path))

    @cached_property
    def axes(self) -> list[str]:
        """The parameters that vary between design points (dotted scenario paths)."""
        params = [c for c in self.runs.columns if "." in c]
        return [c for c in params if self.runs[c].astype(str).nunique() > 1]

    def points(self) -> pd.DataFrame:
        """One row per design point: ``point``, a readable ``condition``, runs done / in the design."""
        frame = self.runs.assign(condition=self._condition(self.runs), done=self.runs["status"] == "done")
        return frame.groupby("point", sort=True).agg(condition=("condition", "first"), done=("done", "sum"),
                                                     runs=("run_id", "count")).reset_index()

    def run_id(self, point: int, replication: int) -> str | None:
        """The finished run of a design point and replication, or None if it is not done."""
        rows = self.runs[(self.runs["point"] == point) & (self.runs["replication"] == replication)
                         & (self.runs["status"] == "done")]
        return str(rows["run_id"].iloc[0]) if len(rows) else None

    def replications(self, point: int) -> list[int]:
        return sorted(int(r) for r in self.runs.loc[self.runs["point"] == point, "replication"])

    @cached_property
    def finals(self) -> pd.DataFrame:
        """Each finished run's final outcomes (mean over the last quarter of its generations, as the report
        computes them: :func:`analysis.effects.final_values` with :func:`analysis.report.final_window`),
        with ``point`` and ``condition``."""
        model = load_sweep(self.path, "model")
        if not len(model):
            return pd.DataFrame(columns=["run_id", "point", "condition"])
        outcomes = [m for m in OUTCOMES if m in model.columns]
        window = final_window(int(model.groupby("run_id")["step"].max().max()))
        finals = effects.final_values(model, outcomes, by=["run_id"], window=window)
        keys = self.runs[["run_id", "point"]].assign(condition=self._condition(self.runs))
        return finals.merge(keys, on="run_id")

    def outcomes(self) -> list[str]:
        return [c for c in self.finals.columns if c not in ("run_id", "point", "condition")
                and self.finals[c].notna().any()]

    def conditions(self, outcome: str) -> pd.DataFrame:
        """Mean of ``outcome`` per design point with a 95% t-interval over replications
        (:func:`analysis.effects.condition_means`)."""
        return effects.condition_means(self.finals, ["point", "condition"], [outcome])

    def _condition(self, frame: pd.DataFrame) -> pd.Series:
        if not self.axes:
            return pd.Series("all runs", index=frame.index)
        return frame[self.axes].apply(lambda row: " · ".join(f"{a.rsplit('.', 1)[-1]}={short(row[a])}"
                                                             for a in self.axes if _present(row[a])), axis=1)


def _present(value) -> bool:
    return not (isinstance(value, float) and math.isnan(value)) and value is not None


def short(value) -> str:
    """A parameter value as a condition label shows it: ``0.5``, ``ring`` (a section by its kind)."""
    if isinstance(value, dict):
        return str(value.get("kind", value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def conditions_figure(table: pd.DataFrame, outcome: str) -> Figure:
    """Condition means of ``outcome`` with their 95% intervals over replications (one row per design point)."""
    fig = Figure(figsize=(6.4, 0.9 + 0.32 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    low = (table["mean"] - table["ci_low"]).to_numpy(dtype=float)
    high = (table["ci_high"] - table["mean"]).to_numpy(dtype=float)
    ax.errorbar(table["mean"], y, xerr=np.nan_to_num(np.vstack([low, high])), fmt="o", color="k", capsize=3, ms=4)
    ax.set_yticks(y, [f"{p}: {c}" for p, c in zip(table["point"], table["condition"], strict=True)], fontsize=7)
    ax.set_xlabel(f"final {outcome} (mean, 95% CI over replications)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    return fig
