"""Figures for runs and sweeps: functions take tidy frames and column names and return Axes.

Presentation only (seaborn style): every number drawn was computed elsewhere (analysis.homogenization,
analysis.effects, analysis.network_stats). Each function draws into ``ax`` (a new figure when None), labels
its axes with units from :data:`LABELS` and titles it with what is plotted and for which condition. Sweep
figures keep the design's order of levels (never alphabetical), share one colour scale across panels of one
metric, and place legends off the data (:func:`shared_legend`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # files only, never a window: analysis runs headless on servers and in CI

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator

from analysis import layout

# Axis labels with units; a column not listed is shown by its name.
LABELS = {
    "step": "generation",
    "nll": "held-out human NLL (nats/item)",
    "reference_nll": "truth's held-out NLL (nats/item)",
    "baseline_nll": "uniform model's held-out NLL (nats/item)",
    "unigram_nll": "unigram model's held-out NLL (nats/item)",
    "train_size": "training set size (items)",
    "nll_spread": "NLL spread across developers (nats/item)",
    "distance": "distance to the truth (world's unit)",
    "variance": "model variance (mean per dimension)",
    "homogenization": "mean pairwise divergence",
    "divergence": "mean pairwise divergence",
    "divergence_within": "pairwise divergence within communities",
    "divergence_between": "pairwise divergence between communities",
    "effective_models": "effective number of distinct models",
    "time_to_consensus": "time to consensus (generations)",
    "distinctiveness": "mean divergence to the other developers",
    "entropy": "sample entropy (nats/token)",
    "distinct_2": "distinct bigrams (fraction)",
    "levenshtein": "normalised Levenshtein diversity",
    "unique_fraction": "unique samples (fraction)",
    "validity": "valid samples (fraction)",
    "coverage": "concepts covered (fraction)",
    "perplexity": "held-out perplexity",
    "train_synthetic_share": "synthetic share of training data",
    "train_lineage_depth": "lineage depth of training data (generations)",
    "pool_synthetic_share": "synthetic share of the pool",
    "pool_lineage_depth": "lineage depth of the pool (generations)",
    "in_degree": "in-degree (developers read)",
    "out_degree": "out-degree (readers)",
    "pagerank": "PageRank (influence)",
    "betweenness": "betweenness centrality",
    "density": "network density",
    "clustering": "clustering coefficient",
    "avg_path_length": "mean shortest path (reachable pairs)",
    "efficiency": "global efficiency",
    "modularity": "modularity of developer communities",
    "spectral_gap": "spectral gap of W (1 − |λ₂|)",
    "slem": "second-largest |eigenvalue| of W",
    "reciprocity": "reciprocity",
}


DIVERGENCE_CMAP = "magma_r"


def label(column: str) -> str:
    """The axis label of a column: its unit-bearing description, or ``nll_<community>`` spelled out."""
    if column in LABELS:
        return LABELS[column]
    if column.startswith("nll_"):
        return f"NLL on {column[4:]} (nats/item)"
    return column.replace("_", " ")


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> Axes:
    return ax if ax is not None else plt.figure(figsize=size).add_subplot()


def wrap(text: str, width: int = 48) -> str:
    """A long title (a condition of several factors) broken into lines of at most ``width`` characters."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def panels(n: int, cols: int = 3, size: tuple[float, float] = (4.6, 3.8)) -> tuple[plt.Figure, list[Axes]]:
    """A figure with ``n`` panels wrapped into rows of ``cols`` (the spare panels of the last row hidden)."""
    rows, cols = -(-n // cols), min(n, cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def facets(blocks: int, n: int, cols: int = 6, size: tuple[float, float] = (3.0, 2.5)
           ) -> tuple[plt.Figure, list[list[Axes]]]:
    """Small multiples: ``blocks`` blocks (e.g. metrics) of ``n`` panels each (e.g. conditions), every block
    starting on a new row and wrapped into rows of at most ``cols`` (balanced: 7 panels are 4 + 3, not 6 + 1).
    Panels of one block share their y axis (tick labels on the first column only); returns the figure and
    one list of ``n`` axes per block."""
    per_block = -(-n // cols)
    cols = -(-n // per_block)
    fig, grid = plt.subplots(blocks * per_block, cols, figsize=(size[0] * cols, size[1] * blocks * per_block),
                             squeeze=False, layout="constrained")
    out = []
    for b in range(blocks):
        flat = list(grid[b * per_block:(b + 1) * per_block].flat)
        for ax in flat[n:]:
            ax.set_visible(False)
        for k, ax in enumerate(flat[1:n], start=1):
            ax.sharey(flat[0])
            if k % cols:
                ax.tick_params(labelleft=False)
        out.append(flat[:n])
    return fig, out


def unit_lines(frame: pd.DataFrame, x: str, y: str, units: Sequence[str], color: str = "0.6", ax: Axes | None = None,
               lw: float = 0.6, alpha: float = 0.5, hue: str | None = None, palette: Mapping | None = None) -> Axes:
    """One thin line per unit (e.g. per run × developer), drawn as one collection (fast with many units); with
    ``hue``, each line in ``palette[its hue]`` and one legend entry per hue level."""
    ax = _axes(ax)
    groups = [g for _, g in frame.groupby(list(units), sort=False)]
    parts = [g[[x, y]].dropna().sort_values(x).to_numpy(float) for g in groups]
    colours = [palette[g[hue].iloc[0]] for g in groups] if hue else [color] * len(groups)
    kept = [k for k, p in enumerate(parts) if len(p)]
    ax.add_collection(LineCollection([parts[k] for k in kept], colors=[colours[k] for k in kept], linewidths=lw,
                                     alpha=alpha, zorder=1))
    for level, colour in (palette.items() if hue else ()):
        ax.plot([], [], color=colour, lw=lw, label=str(level))
    ax.autoscale_view()
    return ax


def over_time(
    frame: pd.DataFrame,
    y: str,
    hue: str | None = None,
    units: str | None = None,
    color: str | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """A metric over generations; with several rows per step (replications or developers) a 95% CI band.

    ``hue`` colours by condition; ``units`` (e.g. ``developer``) draws one thin line per unit instead of
    a band, for the developers of a single run.
    """
    ax = _axes(ax)
    if units is None:
        sns.lineplot(data=frame, x="step", y=y, hue=hue, color=color, errorbar=("ci", 95), n_boot=200, seed=0,
                     ax=ax)
    elif hue is None:  # one collection: thousands of developers draw at once
        unit_lines(frame, "step", y, [units], color=color or "0.6", ax=ax, lw=0.8, alpha=0.6)
    else:
        sns.lineplot(data=frame, x="step", y=y, hue=hue, units=units, color=color, estimator=None, lw=0.8,
                     alpha=0.6, ax=ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    ax.set(xlabel=label("step"), ylabel=label(y), title=title)
    return ax


def overlay(ax: Axes, frame: pd.DataFrame, x: str, y: str, name: str) -> Axes:
    """A reference curve (e.g. a closed-form prediction) drawn dashed over an existing plot (its legend entry
    gathered by :func:`shared_legend`)."""
    ax.plot(frame[x], frame[y], "k--", lw=1.5, label=name)
    return ax


def reference(ax: Axes, value: float, name: str) -> Axes:
    """A horizontal reference line (e.g. the truth's exact NLL); its legend entry is gathered by
    :func:`shared_legend`, off the data."""
    ax.axhline(value, color="0.35", ls=":", lw=1.2, label=name)
    return ax


def heatmap(table: pd.DataFrame, x: str, y: str, value: str, title: str = "", ax: Axes | None = None,
            x_order: Sequence | None = None, y_order: Sequence | None = None) -> Axes:
    """A heatmap of ``value`` over two sweep axes; ``table`` has one row per (x, y) cell (already averaged).

    Rows and columns follow ``y_order`` and ``x_order`` (the sweep's order of levels) where given."""
    ax = _axes(ax)
    grid = table.pivot(index=y, columns=x, values=value)
    grid = grid.reindex(index=list(y_order) if y_order is not None else None,
                        columns=list(x_order) if x_order is not None else None)
    sns.heatmap(grid, annot=True, fmt=".3g", cmap="viridis", cbar_kws={"label": label(value)}, ax=ax)
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def network(
    graph: nx.DiGraph,
    values: Mapping[int, float] | pd.Series,
    value_name: str,
    groups: Sequence[int] | None = None,
    seed: int = 0,
    title: str = "",
    ax: Axes | None = None,
    norm: Normalize | None = None,
    colorbar: bool = True,
) -> Axes:
    """The reading network (self-loops hidden), nodes coloured by a per-developer value.

    ``norm`` fixes the colour scale (one scale for every panel of a figure: pass the same norm and draw one
    colourbar with :func:`colourbar`); ``colorbar`` draws this panel's own.

    Laid out by :func:`analysis.layout.positions` (a seeded spring layout, or a circle by community above
    ``SPRING_UP_TO`` developers); above ``EDGES_DRAWN`` edges a seeded sample is drawn and the caption says how
    many of how many. Node labels up to 60 developers.
    """
    ax = _axes(ax, (5.5, 4.5))
    n = graph.number_of_nodes()
    xy = layout.positions(graph, groups, seed)
    edges, total = layout.drawn_edges(graph, seed=seed)
    size = 160 if n <= 60 else max(4.0, 160 * 60 / n)
    if total == len(edges):
        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        g.add_edges_from(map(tuple, edges))
        nx.draw_networkx_edges(g, dict(enumerate(xy)), ax=ax, alpha=0.3, arrowsize=6, node_size=size)
    else:  # a sample of a dense graph: plain segments, fainter, no arrowheads
        ax.add_collection(LineCollection(xy[edges], colors="0.5", alpha=0.15, linewidths=0.5))
        ax.text(0.5, -0.02, f"{len(edges):,} of {total:,} edges drawn (a seeded sample)", transform=ax.transAxes,
                ha="center", va="top", fontsize=7, color="0.3")
    colours = [float(values[u]) for u in range(n)]
    nodes = ax.scatter(xy[:, 0], xy[:, 1], c=colours, cmap="viridis", norm=norm, s=size, zorder=2,
                       edgecolors="none")
    if n <= 60:
        for u in range(n):
            ax.text(*xy[u], str(u), fontsize=6, color="white", ha="center", va="center", zorder=3)
    if colorbar:
        ax.figure.colorbar(nodes, ax=ax, label=label(value_name))
    ax.set(title=title)
    ax.set_axis_off()
    return ax


def similarity_matrix(
    divergence: np.ndarray, groups: Sequence[int], title: str = "", ax: Axes | None = None,
    norm: Normalize | None = None, colorbar: bool = True,
) -> Axes:
    """The developer × developer divergence matrix ``(N, N)``, rows and columns ordered by community.

    Thin lines separate the communities, so homogenization inside and between them reads at a glance. Where
    only a sample of pairs was measured (NaN elsewhere; large runs), the community × community means of the
    measured pairs are drawn instead, each cell saying how many pairs it averages. ``norm`` and ``colorbar`` as
    in :func:`network`.
    """
    ax = _axes(ax, (5.5, 4.5))
    labels = np.asarray(groups)
    d = np.asarray(divergence, dtype=float)
    n = len(labels)
    off = ~np.eye(n, dtype=bool)
    if n > 1 and np.isfinite(d[off]).mean() < 0.5:
        return _community_blocks(d, labels, title, ax, norm, colorbar)
    order = np.argsort(labels, kind="stable")
    d = d[np.ix_(order, order)]
    image = ax.imshow(d, cmap=DIVERGENCE_CMAP, norm=norm, interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=label("divergence").replace("mean ", ""))
    for edge in np.flatnonzero(np.diff(labels[order])) + 0.5:
        ax.axhline(edge, color="white", lw=1)
        ax.axvline(edge, color="white", lw=1)
    if n <= 40:  # each developer named; above, the default ticks (positions in community order)
        ax.set_xticks(range(n), order, fontsize=6)
        ax.set_yticks(range(n), order, fontsize=6)
    ax.set(xlabel="developer (ordered by community)", ylabel="developer", title=title)
    return ax


def _community_blocks(d: np.ndarray, labels: np.ndarray, title: str, ax: Axes, norm: Normalize | None = None,
                      colorbar: bool = True) -> Axes:
    """Mean measured divergence for each pair of communities (a sampled divergence matrix)."""
    names = np.unique(labels)
    i, j = np.nonzero(np.triu(np.isfinite(d), 1))  # each measured pair once
    a, b = np.searchsorted(names, labels[i]), np.searchsorted(names, labels[j])
    g = len(names)
    sums = np.bincount(a * g + b, weights=d[i, j], minlength=g * g).reshape(g, g)
    counts = np.bincount(a * g + b, minlength=g * g).reshape(g, g)
    diagonal = np.eye(g, dtype=bool)  # a pair of communities in either order, counted once
    sums, counts = np.where(diagonal, sums, sums + sums.T), np.where(diagonal, counts, counts + counts.T)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    image = ax.imshow(means, cmap=DIVERGENCE_CMAP, norm=norm, interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=label("divergence"))
    for (r, c), m in np.ndenumerate(means):
        text = f"{m:.3g}\n({counts[r, c]:,} pairs)" if counts[r, c] else "no pair"
        ax.text(c, r, text, ha="center", va="center", fontsize=7, color="0.5")
    ax.set_xticks(range(g), names)
    ax.set_yticks(range(g), names)
    ax.set(xlabel="community", ylabel="community", title=f"{title} (sampled pairs)" if title else "sampled pairs")
    return ax


def scatter(
    frame: pd.DataFrame, x: str, y: str, hue: str | None = None,
    fit: Literal["per_level", "pooled"] | None = "per_level", title: str = "", ax: Axes | None = None,
) -> Axes:
    """One point per row (e.g. developer or run), coloured by ``hue`` in the order of its levels (categorical:
    the sweep's), with OLS lines: ``per_level`` one per hue level in its colour (where ``x`` varies within
    it), ``pooled`` (or without ``hue``) one black line over all rows with its 95% band, None none.

    Each line's ``gid`` is ``ols <level>`` (``ols`` for the pooled one), so tests and readers can find them."""
    ax = _axes(ax)
    hues = levels(frame[hue]) if hue else []
    palette = dict(zip(hues, sns.color_palette(n_colors=len(hues)), strict=True)) if hue else None
    sns.scatterplot(data=frame, x=x, y=y, hue=hue, hue_order=hues or None, palette=palette, ax=ax, s=25)
    if fit == "per_level" and hue:
        parts = [(f"ols {h}", frame[frame[hue] == h], palette[h], None) for h in hues]
    else:
        parts = [("ols", frame, "k", 95)] if fit else []
    for gid, part, colour, band in parts:
        if part[x].nunique() > 1:
            sns.regplot(data=part, x=x, y=y, scatter=False, color=colour, ci=band, line_kws={"lw": 1.2, "gid": gid},
                        n_boot=200, seed=0, ax=ax)
    ax.set(xlabel=label(x), ylabel=label(y), title=title)
    return ax


def levels(values: pd.Series) -> list:
    """The levels of a column in the sweep's order: a categorical's categories (the present ones), numbers
    ascending, anything else as it comes; never alphabetical."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if (values == c).any()]
    if pd.api.types.is_numeric_dtype(values):
        return sorted(values.dropna().unique().tolist())
    return list(dict.fromkeys(values.dropna()))


def intervals(
    table: pd.DataFrame, x: str, hue: str | None = None, title: str = "", ax: Axes | None = None
) -> Axes:
    """Means with confidence intervals (``mean``, ``ci_low``, ``ci_high`` columns), one point per row.

    Rows are placed by ``x`` and, with ``hue``, side by side in one colour per hue level.
    """
    ax = _axes(ax)
    t = table.reset_index(drop=True)
    levels = list(dict.fromkeys(t[x].astype(str)))
    hues = list(dict.fromkeys(t[hue].astype(str))) if hue else [None]
    width = 0.7 / len(hues)
    for k, level in enumerate(hues):
        part = t if level is None else t[t[hue].astype(str) == level]
        where = np.array([levels.index(v) for v in part[x].astype(str)]) + (k - (len(hues) - 1) / 2) * width
        err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]])
        ax.errorbar(where, part["mean"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=level)
    ax.set_xticks(range(len(levels)), levels, rotation=30, ha="right")
    metric = t["metric"].iloc[0] if "metric" in t.columns and len(t) else ""
    ax.set(xlabel=x, ylabel=label(metric), title=title)
    if hue:
        ax.legend(title=hue, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # off the data
    return ax


def shared_legend(axes: Sequence[Axes], title: str = "") -> None:
    """One legend for panels that share their hues, placed below the figure: every panel's entries, each label
    once, in the order they were drawn (the panels' own legends removed)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(name, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if entries:
        axes[0].figure.legend(list(entries.values()), list(entries), title=title, loc="outside lower center",
                              ncols=min(len(entries), 4))


def colour_scale(values: Sequence[np.ndarray | pd.Series]) -> Normalize:
    """One colour scale for every panel of a figure that shows the same quantity (finite values only)."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values] or [np.empty(0)])
    finite = finite[np.isfinite(finite)]
    return Normalize(*(finite.min(), finite.max()) if len(finite) else (0.0, 1.0))


def colourbar(fig: plt.Figure, axes: Sequence[Axes], norm: Normalize, cmap: str, value_name: str) -> None:
    """One colourbar for panels drawn with the same ``norm``, beside them."""
    fig.colorbar(ScalarMappable(norm, cmap), ax=list(axes), label=label(value_name), shrink=0.8)


def save(ax_or_fig: Axes | plt.Figure, path: Path) -> Path:
    """Write the figure holding ``ax_or_fig`` to a PNG and close it (analysis makes many figures)."""
    fig = ax_or_fig if isinstance(ax_or_fig, plt.Figure) else ax_or_fig.figure
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
