"""The report builds from small real runs and a small real sweep; the theory overlay is the closed form."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from analysis import figures
from analysis.report import analyze, theory_curve
from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from ecosystem.sweep import run_sweep
from tests.conftest import tiny

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SMALL = {
    "name": "small-ring",
    "seed": 5,
    "steps": 4,
    "world": {"kind": "gaussian", "dim": 2, "concepts": 2, "heldout": 200},
    "communities": [{"name": "majority", "authors": 9, "concepts": [0]},
                    {"name": "minority", "authors": 3, "concepts": [1]}],
    "developers": {"count": 6, "groups": [3, 3], "train": {"samples": 30}, "publish": {"samples": 30},
                   "data": {"synthetic": 0.8, "human_fresh": 0.2}},
    "network": {"kind": "ring"},
}


def assert_valid_pngs(folder: Path, expected: set[str]) -> None:
    pngs = {p.name for p in folder.glob("*.png")}
    assert expected <= pngs, f"missing figures: {expected - pngs}"
    for name in pngs:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        with Image.open(folder / name) as image:
            image.verify()
        with Image.open(folder / name) as image:
            assert image.size[0] > 100 and image.size[1] > 100, name


def assert_self_contained(report: Path, figures_in: Path) -> str:
    text = report.read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(embedded) == len(list(figures_in.glob("*.png")))
    assert not re.search(r'src="(?!data:)', text)  # no figure linked from outside the file
    return text


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_scenario(validate_scenario(SMALL), tmp_path_factory.mktemp("run") / "small", progress=False)


def test_report_from_a_real_run(run_dir, tmp_path):
    report = analyze(run_dir, tmp_path / "report")
    assert report == tmp_path / "report" / "report.html"
    out = report.parent
    assert_valid_pngs(out, {"metrics.png", "homogenization.png", "network.png", "similarity.png", "centrality.png"})
    text = assert_self_contained(report, out)
    assert "small-ring" in text and "Mean pairwise divergence" in text
    assert "minority" in text  # the per-community NLL finding

    homog = pd.read_csv(out / "homogenization.csv")
    model = pd.read_parquet(run_dir / "model.parquet")
    # The run's own divergence column is the same mean pairwise divergence, recomputed from the array.
    np.testing.assert_allclose(homog["divergence"], model["divergence"], rtol=1e-5)
    nodes = pd.read_csv(out / "nodes.csv")
    assert len(nodes) == 6 and {"pagerank", "betweenness", "nll", "distinctiveness"} <= set(nodes.columns)
    network = pd.read_csv(out / "network.csv").iloc[0]
    assert network["density"] == pytest.approx(0.4) and network["spectral_gap"] == pytest.approx(1 / 3)


def test_default_output_folder(run_dir):
    report = analyze(run_dir)
    assert report == run_dir / "report" / "report.html" and report.stat().st_size > 10_000


@pytest.mark.slow
def test_report_from_a_token_world_run(tmp_path):
    # Different columns (no distance or variance; token diversity where measured): the report uses what exists.
    scenario = validate_scenario({
        "name": "tokens", "seed": 1, "steps": 3,
        "world": {"kind": "topic_markov", "vocab": 16, "concepts": 2, "seq_len": 8, "heldout": 32},
        "developers": {"count": 4, "family": {"kind": "ngram"}, "train": {"samples": 32},
                       "publish": {"samples": 32}},
        "network": {"kind": "star"},
    })
    folder = run_scenario(scenario, tmp_path / "tokens", progress=False)
    report = analyze(folder, tmp_path / "report")
    assert_valid_pngs(report.parent, {"metrics.png", "network.png", "similarity.png"})
    assert "tokens" in assert_self_contained(report, report.parent)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("sweep")
    design = {**SMALL, "name": "mini-topology",
              "sweep": {"grid": {"network.kind": ["ring", "complete"],
                                 "developers.data": [{"synthetic": 0.5, "human_fresh": 0.5},
                                                     {"synthetic": 0.9, "human_fresh": 0.1}]},
                        "replications": 2}}
    (base / "sweep.yaml").write_text(yaml.safe_dump(design))
    result = run_sweep(base / "sweep.yaml", out=base / "out", backend="serial", progress=False)
    assert result.counts["done"] == 8
    return base / "out"


@pytest.mark.slow
def test_report_from_a_real_sweep(sweep_dir, tmp_path):
    report = analyze(sweep_dir, tmp_path / "report")
    out = report.parent
    assert_valid_pngs(out, {"metrics.png", "conditions.png", "contrasts.png", "heatmap.png", "network_effects.png",
                            "networks.png", "centrality.png"})
    text = assert_self_contained(report, out)
    assert "homogenizes least" in text and "network.kind" in text

    conds = pd.read_csv(out / "conditions.csv")
    homog = conds[conds["metric"] == "divergence"]
    assert len(homog) == 4 and (homog["n"] == 2).all()  # the human_fresh column restates synthetic: 2 axes
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8
    ring = runs[runs["network.kind"] == "ring"]
    assert ring["density"].tolist() == pytest.approx([0.4] * 4)
    # Each condition's mean is the mean of its runs' final divergence.
    expected = runs.groupby("condition")["divergence"].mean()
    np.testing.assert_allclose(homog.set_index("condition")["mean"].loc[expected.index], expected)
    # Network statistics are fitted within each level of the non-network axis: 4 runs per fit.
    fits = pd.read_csv(out / "network_effects.csv")
    assert {"spectral_gap", "density"} <= set(fits["x"]) and set(fits.loc[fits["y"] == "divergence", "n"]) == {4}
    fixed = fits.columns[: fits.columns.get_loc("x")].tolist()  # the swept mapping is one factor, as designed
    assert fixed == ["developers.data"]
    assert set(fits[fixed[0]]) == {"human_fresh=0.5, synthetic=0.5", "human_fresh=0.1, synthetic=0.9"}
    # complete against ring (the first level), paired on replication, one contrast per share: 2 pairs each.
    contrasts = pd.read_csv(out / "contrasts.csv")
    contrasts = contrasts[contrasts["metric"] == "divergence"].set_index(fixed[0])
    assert len(contrasts) == 2 and (contrasts["level"] == "complete").all() and (contrasts["reference"] == "ring").all()
    assert (contrasts["n"] == 2).all()
    diff = runs.set_index(["network.kind", fixed[0], "replication"])["divergence"]
    diff = (diff.loc["complete"] - diff.loc["ring"]).groupby(level=0).mean()
    np.testing.assert_allclose(contrasts["mean"].loc[diff.index], diff)


def test_theory_overlay_is_the_closed_form():
    m, spread, steps = 20, 1.5, np.arange(1, 11)
    scenario = validate_scenario({
        "steps": 10, "world": {"kind": "gaussian", "concepts": 1, "spread": spread},
        "developers": {"count": 4, "train": {"samples": m}, "data": {"synthetic": 1.0, "retention": "replace"}},
        "network": {"kind": "empty"},
    }).model_dump(mode="json")
    replace = theory_curve(scenario, steps)
    np.testing.assert_allclose(replace["variance"], spread**2 * ((m - 1) / m) ** steps)
    assert replace["variance"].iloc[9] == pytest.approx(spread**2 * 0.5987, abs=1e-4)  # Shumailov et al. 2024

    scenario["developers"]["data"]["retention"] = "accumulate"
    accumulate = theory_curve(scenario, steps)
    expected = spread**2 * np.cumprod([1 - 1 / (k**2 * m) for k in steps])
    np.testing.assert_allclose(accumulate["variance"], expected)

    ax = figures.over_time(pd.DataFrame({"step": steps, "variance": np.ones(10)}), "variance")
    figures.overlay(ax, accumulate, "step", "variance", "closed form")
    drawn = ax.get_lines()[-1]
    np.testing.assert_allclose(drawn.get_ydata(), expected)
    np.testing.assert_allclose(drawn.get_xdata(), steps)
    plt.close(ax.figure)


@pytest.mark.parametrize("change", [
    ("world", "concepts", 2), ("developers.data", "synthetic", 0.5), ("developers.family", "estimator", "unbiased"),
    ("developers.data", "retention", "window"),
])
def test_no_overlay_without_a_closed_form(change):
    scenario = validate_scenario({
        "world": {"kind": "gaussian", "concepts": 1},
        "developers": {"data": {"synthetic": 1.0}}}).model_dump(mode="json")
    assert theory_curve(scenario, np.arange(1, 4)) is not None
    section, key, value = change
    node = scenario
    for part in section.split("."):
        node = node[part]
    node[key] = value
    assert theory_curve(scenario, np.arange(1, 4)) is None


def test_a_failed_analysis_leaves_no_report_folder(tmp_path):
    folder = run_scenario(validate_scenario(tiny(steps=2)), tmp_path / "run", progress=False)
    (folder / "agents.parquet").write_bytes(b"truncated")
    with pytest.raises(Exception):  # noqa: B017 - the command line turns it into one line (tests/test_cli.py)
        analyze(folder, tmp_path / "report")
    assert not (tmp_path / "report").exists() and not list(tmp_path.glob(".report.tmp-*"))
