"""Analysis respects the design: every swept factor an axis whatever its value kind, every family analysable,
failed and unreadable runs named, models that have not learned warned about, reference lines at the truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from analysis import report as report_module
from analysis.report import analyze
from analysis.sweep_frame import level_label
from ecosystem.cli import app
from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from ecosystem.sweep import run_sweep

BASE = {
    "name": "kinds",
    "seed": 3,
    "steps": 3,
    "world": {"kind": "gaussian", "dim": 2, "concepts": 2, "heldout": 100},
    "communities": [{"name": "a", "authors": 4, "concepts": [0, 1]}],
    "developers": {"count": 4, "groups": [2, 2], "train": {"samples": 20}, "publish": {"samples": 20},
                   "data": {"synthetic": 0.8, "human_fresh": 0.2}},
    "network": {"kind": "ring"},
}
TOKENS = {"kind": "topic_markov", "vocab": 12, "concepts": 2, "seq_len": 6, "heldout": 32}


def test_level_labels_of_every_value_kind() -> None:
    assert [level_label(v) for v in (None, 0.2, 3, "ring", {"tpr": 0.8, "fpr": 0.05}, [6, 6])] == [
        "none", "0.2", "3", "ring", "tpr=0.8, fpr=0.05", "[6, 6]"]


def _sweep(tmp: Path, grid: dict, replications: int = 2, zip_: dict | None = None) -> Path:
    file = tmp / "sweep.yaml"
    sweep = {"grid": grid, "replications": replications} | ({"zip": zip_} if zip_ else {})
    file.write_text(yaml.safe_dump({**BASE, "sweep": sweep}, sort_keys=False))
    return run_sweep(file, out=tmp / "out", backend="serial", progress=False).folder


@pytest.fixture(scope="module")
def kinds_sweep(tmp_path_factory) -> Path:
    """A 2 × 2 × 2 design whose factors are a null-or-mapping detector, lists and strings (numbers move with
    the strings in a zip, so they restate that factor)."""
    return _sweep(tmp_path_factory.mktemp("kinds"), {
        "developers.data.detector": [None, {"tpr": 0.8, "fpr": 0.05}],
        "developers.groups": [[2, 2], [1, 3]],
    }, replications=1, zip_={"network.kind": ["complete", "ring"], "developers.publish.temperature": [1.0, 0.7]})


@pytest.mark.slow
def test_an_axis_of_each_value_kind_survives_into_conditions_and_the_report(kinds_sweep, tmp_path) -> None:
    html = analyze(kinds_sweep, tmp_path / "r").read_text()
    conditions = pd.read_csv(tmp_path / "r" / "conditions.csv")
    expected = {"developers.data.detector": ["none", "tpr=0.8, fpr=0.05"],
                "network.kind": ["complete", "ring"], "developers.groups": ["[2, 2]", "[1, 3]"]}
    for axis, levels in expected.items():
        assert axis in conditions.columns, axis
        assert list(dict.fromkeys(conditions[axis])) == levels  # the sweep's order, not sorted
        assert axis in html
    assert "developers.publish.temperature" not in conditions.columns  # a zip partner restates network.kind
    assert conditions["condition"].nunique() == 8
    assert "detector=tpr=0.8, fpr=0.05" in html
    assert "fewer than 3 finished replications" in html  # one replication per cell is said in words


@pytest.mark.slow
def test_sweep_with_a_failed_design_point_names_the_missing_runs(tmp_path) -> None:
    # The first design point asks for CUDA, which is absent here: it fails in every replication.
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make the first point fail")
    folder = _sweep(tmp_path, {"device": ["cuda", "cpu"]})
    html = analyze(folder, tmp_path / "r").read_text()
    assert "2 run(s) of the design are not in this analysis" in html and "device=cuda" in html
    assert set(pd.read_csv(tmp_path / "r" / "conditions.csv")["device"]) == {"cpu"}

    # All failed: one line, exit 2, no report folder; a `null` manifest line does not crash either.
    for run in (folder / "runs").iterdir():
        shutil.rmtree(run)
    with open(folder / "manifest.jsonl", "a") as log:
        log.write("null\n")
    result = CliRunner().invoke(app, ["analyze", str(folder), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no finished run to analyse" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "none").exists()


@pytest.mark.slow
def test_deleted_and_truncated_run_files_are_named(kinds_sweep, tmp_path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(kinds_sweep, folder, ignore=shutil.ignore_patterns("report"))
    first, second = sorted(p for p in (folder / "runs").iterdir())[:2]
    (first / "model.parquet").unlink()
    (second / "agents.parquet").write_bytes((second / "agents.parquet").read_bytes()[:200])
    html = analyze(folder, tmp_path / "r").read_text()
    assert f"{first.name}/model.parquet: missing" in html
    assert f"{second.name}/agents.parquet: unreadable" in html
    assert len(pd.read_csv(tmp_path / "r" / "runs.csv")) == 6


FAMILIES = {
    "gaussian": {**BASE},
    "linear": {**BASE, "world": {"kind": "linear", "dim": 2},
               "communities": [{"name": "a", "authors": 4, "concepts": [0]}], "developers": {
        **BASE["developers"], "family": {"kind": "linear"}}},
    "ngram": {**BASE, "world": TOKENS, "developers": {**BASE["developers"], "family": {"kind": "ngram"}}},
    "gmm": {**BASE, "developers": {**BASE["developers"], "family": {"kind": "gmm", "components": 2}}},
    "kde": {**BASE, "developers": {**BASE["developers"], "family": {"kind": "kde"}}},
    "logistic": {**BASE, "world": {"kind": "labels", "classes": 3, "heldout": 60},
                 "communities": [{"name": "a", "authors": 4}], "developers": {
        **BASE["developers"], "family": {"kind": "logistic"}}},
    "transformer": {**BASE, "world": TOKENS, "steps": 2, "developers": {
        **BASE["developers"], "family": {"kind": "transformer", "d_model": 8, "heads": 1},
        "train": {"samples": 20, "steps": 2}}},
}


@pytest.mark.parametrize("family", [f if f == "gaussian" else pytest.param(f, marks=pytest.mark.slow)
                                    for f in FAMILIES])  # the quick suite analyses one family; all run in full
def test_analyze_a_single_run_of_every_family(family, tmp_path) -> None:
    folder = run_scenario(validate_scenario({**FAMILIES[family], "name": family}), tmp_path / family,
                          progress=False, summary=None)
    html = analyze(folder, tmp_path / "r").read_text()
    assert (tmp_path / "r" / "metrics.png").is_file() and "Main findings" in html
    model = pd.read_parquet(folder / "model.parquet")
    drawn = report_module._measured(model, report_module.OUTCOMES)
    assert all(np.isfinite(model[c]).any() for c in drawn)  # no empty panel
    if family == "transformer":
        assert "distance" not in drawn and model["distance"].isna().all()


def _learning_run(tmp: Path, steps: int) -> Path:
    scenario = {**FAMILIES["transformer"], "name": f"learn{steps}", "steps": 1,
                "world": {**TOKENS, "vocab": 24, "seq_len": 8, "heldout": 64},
                "network": {"kind": "complete"},
                "developers": {"count": 2, "family": {"kind": "transformer", "d_model": 32, "heads": 2},
                               "train": {"samples": 256, "steps": steps, "batch": 32, "lr": 1e-2},
                               "publish": {"samples": 32}}}
    return run_scenario(validate_scenario(scenario), tmp / f"s{steps}", progress=False, summary=None)


@pytest.mark.slow
def test_learning_warning_fires_on_an_untrained_transformer_and_not_on_a_trained_one(tmp_path) -> None:
    untrained, trained = _learning_run(tmp_path, 1), _learning_run(tmp_path, 300)
    assert json.loads((untrained / "meta.json").read_text())["warnings"]
    assert not json.loads((trained / "meta.json").read_text())["warnings"]
    assert "the models have not learned" in analyze(untrained, tmp_path / "u").read_text()
    assert "the models have not learned" not in analyze(trained, tmp_path / "t").read_text()


def test_reference_lines_equal_the_worlds_exact_values(tmp_path) -> None:
    folder = run_scenario(validate_scenario({**FAMILIES["ngram"], "name": "ref"}), tmp_path / "ref",
                          progress=False, summary=None)
    model = pd.read_parquet(folder / "model.parquet")
    import matplotlib.pyplot as plt

    ax = plt.figure().add_subplot()
    report_module._reference_lines(ax, model)
    drawn = sorted(line.get_ydata()[0] for line in ax.get_lines())
    plt.close(ax.figure)
    # The world's own values, from a freshly built world: the truth's exact NLL on the held-out set and a
    # uniform model's L·log V.
    from ecosystem.model import EcosystemModel

    world = EcosystemModel(validate_scenario({**FAMILIES["ngram"], "name": "ref"})).world
    truth = world.reference()
    np.testing.assert_allclose(drawn, sorted([truth["reference_nll"], truth["baseline_nll"]]), rtol=1e-6)
    assert truth["baseline_nll"] == pytest.approx(TOKENS["seq_len"] * np.log(world.vocab_size))


def test_a_changed_base_is_refused_unless_forced(tmp_path) -> None:
    base, sweep = tmp_path / "base.yaml", tmp_path / "sweep.yaml"
    base.write_text(yaml.safe_dump({**BASE, "steps": 1}))
    sweep.write_text(yaml.safe_dump({"base": "base.yaml", "grid": {"network.kind": ["ring", "complete"]}}))
    out = tmp_path / "out"
    folder = run_sweep(sweep, out=out, backend="serial", progress=False).folder
    assert yaml.safe_load((folder / "base.yaml").read_text()) == {**BASE, "steps": 1}  # self-contained
    base.write_text(yaml.safe_dump({**BASE, "steps": 2}))
    result = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "-q", "--backend", "serial"])
    assert result.exit_code == 2 and "base scenario changed" in result.output
    assert len(list((out / "runs").iterdir())) == 2  # nothing re-run beside the old runs
    result = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "-q", "--backend", "serial",
                                      "--force"])
    assert result.exit_code == 0 and len(list((out / "runs").iterdir())) == 4
    assert result.output.count("runs:") == 1  # the summary is printed once


@pytest.mark.parametrize("metrics", [{"pairwise": "none"}, {"every": 2}, {"pairwise": "sample", "pairs": 5}])
def test_analyze_reads_every_measurement_setting(metrics, tmp_path) -> None:
    """Runs that measure no pairs, some generations or a sample of pairs are analysed; the report's divergence
    per generation is the run's own ``divergence`` column (the mean over the measured pairs) at the right
    generations, and what cannot be computed is said, not faked."""
    scenario = {**BASE, "name": "measured", "steps": 5, "developers": {**BASE["developers"], "count": 6,
                                                                       "groups": [3, 3]}, "metrics": metrics}
    folder = run_scenario(validate_scenario(scenario), tmp_path / "run", progress=False, summary=None)
    html = analyze(folder, tmp_path / "r").read_text()
    homog = pd.read_csv(tmp_path / "r" / "homogenization.csv")
    model = pd.read_parquet(folder / "model.parquet")
    assert list(homog["step"]) == list(model["step"])
    np.testing.assert_allclose(homog["divergence"], model["divergence"], rtol=1e-5)  # NaN where not measured
    if metrics.get("pairwise") == "none":
        assert homog["divergence"].isna().all() and "was not measured (metrics.pairwise: none)" in html
        assert not (tmp_path / "r" / "similarity.png").exists()
    if "every" in metrics:
        assert list(homog.dropna(subset=["divergence"])["step"]) == [1, 2, 4, 5]
        assert homog["effective_models"].notna().sum() == 4
    if metrics.get("pairwise") == "sample":  # 5 of 15 pairs: means over them; effective models need all
        assert homog["divergence"].notna().all() and homog["effective_models"].isna().all()
        assert "measured a sample of pairs" in html
        assert (tmp_path / "r" / "similarity.png").is_file()


@pytest.mark.slow
def test_a_sweep_without_pairwise_divergences_is_analysed(tmp_path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump({**BASE, "metrics": {"pairwise": "none"},
                                    "sweep": {"grid": {"network.kind": ["ring", "complete"]}, "replications": 2}}))
    folder = run_sweep(file, out=tmp_path / "out", backend="serial", progress=False).folder
    html = analyze(folder, tmp_path / "r").read_text()
    assert "Main findings" in html and (tmp_path / "r" / "networks.png").is_file()
    conditions = pd.read_csv(tmp_path / "r" / "conditions.csv")
    assert not conditions.loc[conditions["metric"] == "divergence", "mean"].notna().any()


@pytest.mark.slow
def test_a_closed_form_too_large_to_draw_is_named_not_waited_for(tmp_path) -> None:
    """400 independent linear chains meet Vu et al.'s assumptions, but their joint covariance (K·D = 1600)
    is past what the report draws: the report says so (it used to run the recursion for many minutes)."""
    scenario = yaml.safe_load(open("scenarios/papers/dohmatob_regression.yaml"))
    scenario.pop("sweep")
    folder = run_scenario(validate_scenario({**scenario, "steps": 2}), tmp_path / "run", progress=False,
                          summary=None)
    assert report_module.vu_applicable(validate_scenario({**scenario, "steps": 2}))
    html = analyze(folder, tmp_path / "r").read_text()
    assert "Theorem 1 is not drawn" in html and "K·D = 1600" in html
