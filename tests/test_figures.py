"""Figures that read: the report's matplotlib figures inspected as objects (panels, titles, level order,
colour scales, regression lines), from a small real sweep and run and from small frames."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.collections import LineCollection, PathCollection

from analysis import figures
from analysis.report import analyze
from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from ecosystem.sweep import run_sweep

BASE = {
    "name": "order",
    "seed": 2,
    "steps": 3,
    "world": {"kind": "gaussian", "dim": 2, "concepts": 2, "heldout": 100},
    "communities": [{"name": "a", "authors": 6, "concepts": [0, 1]}],
    "developers": {"count": 4, "groups": [2, 2], "train": {"samples": 24}, "publish": {"samples": 24},
                   "data": {"synthetic": 0.9, "human_fresh": 0.1}},
    "network": {"kind": "ring"},
}
# Levels listed out of alphabetical order: the figures must keep the design's order.
NETWORKS = ["ring", "complete"]
DETECTORS = ["none", "tpr=0.9, fpr=0.1"]
CONDITIONS = [f"kind={k} · detector={d}" for k in NETWORKS for d in DETECTORS]


def _capture(monkeypatch) -> dict[str, plt.Figure]:
    """Keep every figure the report saves, by file name, instead of closing it."""
    kept: dict[str, plt.Figure] = {}

    def save(ax_or_fig, path: Path) -> Path:
        fig = ax_or_fig if isinstance(ax_or_fig, plt.Figure) else ax_or_fig.figure
        fig.savefig(path, dpi=20)
        kept[path.name] = fig
        return path

    monkeypatch.setattr(figures, "save", save)
    return kept


@pytest.fixture(scope="module")
def sweep_figures(tmp_path_factory) -> tuple[dict[str, plt.Figure], str]:
    base = tmp_path_factory.mktemp("figures")
    design = {**BASE, "sweep": {"grid": {"network.kind": NETWORKS,
                                         "developers.data.detector": [None, {"tpr": 0.9, "fpr": 0.1}]},
                                "replications": 2}}
    (base / "sweep.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    folder = run_sweep(base / "sweep.yaml", out=base / "out", backend="serial", progress=False).folder
    with pytest.MonkeyPatch.context() as mp:
        kept = _capture(mp)
        html = analyze(folder, base / "report").read_text()
    yield kept, html
    plt.close("all")


def _fits(ax) -> list[str]:
    """The OLS lines of a scatter, by gid (seaborn also adds empty lines for its legend)."""
    return [line.get_gid() for line in ax.get_lines() if line.get_gid()]


def _visible(fig: plt.Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


@pytest.mark.slow
def test_sweep_metrics_are_small_multiples_one_panel_per_condition_in_the_sweep_order(sweep_figures):
    fig = sweep_figures[0]["metrics.png"]
    axes = _visible(fig)
    blocks = [axes[k:k + len(CONDITIONS)] for k in range(0, len(axes), len(CONDITIONS))]
    assert len(axes) % len(CONDITIONS) == 0
    for block in blocks:
        # Each panel names its condition, in the design's order; one y axis per metric.
        assert [ax.get_title().replace("\n", " ").split(": ", 1)[1] for ax in block] == CONDITIONS
        assert all(block[0].get_shared_y_axes().joined(block[0], ax) for ax in block[1:])
        assert all(ax.has_data() for ax in block)  # no empty panel
    ylabels = [block[0].get_ylabel() for block in blocks]
    # The training set's size and synthetic share are drawn: the detector's shrinkage is visible.
    assert figures.label("train_size") in ylabels and figures.label("train_synthetic_share") in ylabels
    size = blocks[ylabels.index(figures.label("train_size"))]
    grey = [c for c in size[0].collections if isinstance(c, LineCollection)]
    assert len(grey) == 1 and len(grey[0].get_segments()) == 2 * 4  # replications × developers, few: drawn
    final = [ax.get_lines()[0].get_ydata()[-1] for ax in size]
    assert final[1] < final[0] and final[3] < final[2]  # a detector without refill shrinks the training set


@pytest.mark.slow
def test_sweep_heatmap_and_intervals_keep_the_sweep_order(sweep_figures):
    kept, _ = sweep_figures
    heat = kept["heatmap.png"].axes[0]
    assert [t.get_text() for t in heat.get_xticklabels()] == NETWORKS
    assert [t.get_text() for t in heat.get_yticklabels()] == DETECTORS
    assert "divergence" in heat.get_title()
    conditions = kept["conditions.png"]
    for ax in _visible(conditions):
        assert [t.get_text() for t in ax.get_xticklabels()] == NETWORKS
        assert ax.get_legend() is None  # one legend for both panels, outside the axes
    assert [t.get_text() for t in conditions.legends[0].get_texts()] == DETECTORS


@pytest.mark.slow
def test_network_panels_share_one_colour_scale_and_one_colourbar_per_row(sweep_figures):
    fig = sweep_figures[0]["networks.png"]
    panels = _visible(fig)
    nodes = [c for ax in panels for c in ax.collections if isinstance(c, PathCollection)]
    images = [im for ax in panels for im in ax.images]
    assert len(nodes) == len(images) == len(NETWORKS)  # one example per network setting
    assert len({(c.norm.vmin, c.norm.vmax) for c in nodes}) == 1
    assert len({im.get_clim() for im in images}) == 1
    values = np.concatenate([c.get_array() for c in nodes])
    assert nodes[0].norm.vmin == pytest.approx(values.min()) and nodes[0].norm.vmax == pytest.approx(values.max())
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 2
    assert [ax.get_title().replace("\n", " ").rsplit(": ", 1)[1] for ax in panels[:2]] == [
        f"kind={k} · detector=none" for k in NETWORKS]


@pytest.mark.slow
def test_network_effects_draw_one_ols_line_per_level_of_the_other_factor(sweep_figures):
    fig = sweep_figures[0]["network_effects.png"]
    for ax in _visible(fig):
        assert sorted(_fits(ax)) == sorted(f"ols {d}" for d in DETECTORS)
        assert ax.get_legend() is None
    assert [t.get_text() for t in fig.legends[0].get_texts()] == DETECTORS


@pytest.mark.slow
def test_the_final_values_table_scrolls_within_the_page(sweep_figures):
    assert '<div class="scroll"><table' in sweep_figures[1]


def test_run_metrics_show_the_training_set(tmp_path, monkeypatch):
    folder = run_scenario(validate_scenario({**BASE, "developers": {
        **BASE["developers"], "data": {"synthetic": 0.9, "human_fresh": 0.1, "detector": {"tpr": 0.9, "fpr": 0.1}}}}),
        tmp_path / "run", progress=False)
    kept = _capture(monkeypatch)
    analyze(folder, tmp_path / "report")
    axes = _visible(kept["metrics.png"])
    titles = [ax.get_title().replace("\n", " ") for ax in axes]
    assert f"{figures.label('train_size')} (order)" in titles
    assert all(ax.has_data() for ax in axes)
    assert all(ax.get_legend() is None for ax in axes)  # the truth's line is named below the panels
    plt.close("all")


def test_scatter_fits_one_line_per_hue_level_in_its_order():
    frame = pd.DataFrame({"x": np.tile([0.0, 1.0, 2.0], 3), "y": np.arange(9.0),
                          "hue": pd.Categorical(np.repeat(["b", "c", "a"], 3), categories=["b", "c", "a"])})
    ax = figures.scatter(frame, "x", "y", hue="hue")
    assert _fits(ax) == ["ols b", "ols c", "ols a"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "c", "a"]
    pooled = figures.scatter(frame, "x", "y", hue="hue", fit="pooled")
    assert _fits(pooled) == ["ols"]
    plt.close("all")


def test_heatmap_follows_the_given_level_order():
    cells = pd.DataFrame({"a": [0.5, 0.5, 0.1, 0.1], "b": ["z", "y", "z", "y"], "v": [1.0, 2.0, 3.0, 4.0]})
    ax = figures.heatmap(cells, "a", "b", "v", x_order=[0.5, 0.1], y_order=["z", "y"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "0.1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z", "y"]
    plt.close("all")
