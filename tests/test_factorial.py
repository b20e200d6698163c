"""Factorial analysis of a sweep: planted effects found, null factors not; --by and --where choose what is
analysed; --dry-run plans a sweep and writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from analysis.factorial import BLOCK, factorial_effects
from ecosystem.cli import app
from ecosystem.sweep import run_sweep

# Independent chains (each developer reads only itself): fresh human data holds the fitted Gaussians near
# the truth, while the number of developers changes nothing but the noise of the ecosystem's mean.
PLANTED = {
    "name": "planted",
    "seed": 11,
    "steps": 6,
    "world": {"kind": "gaussian", "dim": 2, "concepts": 2, "heldout": 200},
    "communities": [{"name": "a", "authors": 8, "concepts": [0, 1], "rate": 4}],
    "developers": {"count": 4, "family": {"kind": "gaussian", "estimator": "mle"}, "train": {"samples": 16},
                   "publish": {"samples": 16}, "data": {"synthetic": 1.0, "human_fresh": 0.0, "retention": "replace"}},
    "network": {"kind": "empty"},
    "sweep": {"grid": {"developers.count": [4, 6]},
              "zip": {"developers.data.human_fresh": [0.0, 0.5], "developers.data.synthetic": [1.0, 0.5]},
              "replications": 4},
}
FRESH, COUNT = "developers.data.human_fresh", "developers.count"


def _frame(rng: np.random.Generator, replications: int = 4, effect: float = -0.3, noise: float = 0.05) -> pd.DataFrame:
    """A 2 × 2 design (plus a constant factor) with a planted effect of ``fresh`` and none of ``net``; each
    replication shares a random offset (common random numbers), which the block must absorb."""
    rows = []
    for rep in range(replications):
        shared = rng.normal(0, 1.0)
        for fresh in (0.0, 0.5):
            for net in ({"kind": "ring", "k": 2}, {"kind": "complete"}):
                rows.append({"replication": rep, "fresh": fresh, "net": net, "tag": "same",
                             "y": 3.0 + effect * (fresh > 0) + shared + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def _level(table: pd.DataFrame, term: str, outcome: str = "y") -> pd.Series:
    return table[(table["outcome"] == outcome) & (table["term"] == term) & table["level"].notna()].iloc[0]


def test_planted_effect_found_null_factor_not_and_the_block_absorbs_shared_noise() -> None:
    frame = _frame(np.random.default_rng(0))
    table, notes = factorial_effects(frame, ["fresh", "net", "tag"], ["y"])
    fresh, net = _level(table, "fresh"), _level(table, "net")
    assert (fresh["level"], fresh["reference"]) == ("0.5", "0")  # numbers labelled, the design's order
    assert (net["level"], net["reference"]) == ("complete", "ring (k=2)")  # mappings labelled
    assert fresh["ci_low"] <= -0.3 <= fresh["ci_high"] and fresh["ci_high"] < 0  # the planted value, not zero
    assert net["ci_low"] <= 0 <= net["ci_high"]
    # balanced: the level effect is the difference of the level means (cells weighted equally)
    means = frame.groupby("fresh")["y"].mean()
    assert fresh["estimate"] == pytest.approx(means[0.5] - means[0.0], abs=1e-10)
    # the shared offsets (sd 1) would swamp a 0.3 effect without the block: its interval is about noise wide
    assert fresh["ci_high"] - fresh["ci_low"] < 10 * 0.05
    terms = set(table.loc[table["level"].isna(), "term"])
    assert terms == {"fresh", "net", "fresh × net", BLOCK}
    assert any("tag has a single level" in n for n in notes)
    eta = table[(table["term"] == "fresh") & table["level"].isna()]["partial_eta2"].iloc[0]
    assert 0.9 < eta <= 1


def test_unbalanced_too_small_and_failed_cells_fall_back_to_main_effects_and_say_so() -> None:
    frame = _frame(np.random.default_rng(1), replications=2)
    table, notes = factorial_effects(frame.iloc[:-2], ["fresh", "net"], ["y"])  # two runs failed: 6 of 8
    assert set(table["model"]) == {"main effects"}
    assert not table["term"].str.contains("×").any()
    assert any("fewer than 3 runs" in n for n in notes)
    assert any("Interactions left out" in n for n in notes)
    fresh = _level(table, "fresh")
    assert fresh["ci_low"] < fresh["estimate"] < fresh["ci_high"]
    # one replication of one cell each: nothing is estimable, and that is said rather than a crash
    table, notes = factorial_effects(frame[frame["replication"] == 0].iloc[:3], ["fresh", "net"], ["y"])
    assert table.empty and any("too few" in n for n in notes)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("planted")
    (tmp / "planted.yaml").write_text(yaml.safe_dump(PLANTED, sort_keys=False))
    return run_sweep(tmp / "planted.yaml", out=tmp / "sweep", backend="serial", progress=False).folder


@pytest.mark.slow
def test_sweep_with_a_planted_effect_reports_it_and_not_the_null_factor(planted, tmp_path) -> None:
    result = CliRunner().invoke(app, ["analyze", str(planted), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "r" / "effects.csv")
    fresh, count = _level(table, FRESH, "nll"), _level(table, COUNT, "nll")
    assert fresh["ci_high"] < 0  # fresh human data lowers the final NLL
    assert count["ci_low"] <= 0 <= count["ci_high"]  # the number of independent chains does not move it
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Factorial effects" in html and f"{FRESH} = 0.5 (vs 0) lowers final nll by" in html
    assert f"{COUNT} has no detectable effect on final nll" in html


@pytest.mark.slow
def test_by_and_where_choose_factors_and_runs_and_bad_input_is_one_line(planted, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(planted), "-o", str(tmp_path / "by"), "--by", "human_fresh"])
    assert result.exit_code == 0, result.output
    conditions = pd.read_csv(tmp_path / "by" / "conditions.csv")
    assert FRESH in conditions.columns and COUNT not in conditions.columns
    assert set(conditions.loc[conditions["metric"] == "nll", "n"]) == {8}  # pooled over the count: 2 × 4 runs
    assert f"Pooled over {COUNT}" in (tmp_path / "by" / "report.html").read_text()

    result = runner.invoke(app, ["analyze", str(planted), "-o", str(tmp_path / "where"),
                                 "--where", f"{COUNT} == 6 and replication < 3"])
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(tmp_path / "where" / "runs.csv")
    assert len(runs) == 6 and set(runs[COUNT]) == {6}

    for args, says in ((["--by", "nope"], f"its factors are: {COUNT}, {FRESH}"),
                       (["--where", "network.kind == 'ring'"], "--where: cannot evaluate"),
                       (["--where", f"{COUNT} =="], "--where: cannot evaluate"),
                       (["--where", f"{COUNT} == 5"], "keeps none of the 16 runs")):
        result = runner.invoke(app, ["analyze", str(planted), "-o", str(tmp_path / "bad"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_dry_run_lists_the_runs_counts_the_finished_and_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(PLANTED, sort_keys=False))
    result = CliRunner().invoke(app, ["sweep", "planted.yaml", "--dry-run", "-w", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planted.yaml"]  # no sweeps/ folder
    assert "16 runs: 0 already finished" in result.output and "16 to run" in result.output
    assert "estimated time" in result.output and "2 workers" in result.output
    listed = [line for line in result.output.splitlines() if line.split()[:1] and len(line.split()[0]) == 12]
    assert len(listed) == 16  # one line per run: its id, point, replication and levels


@pytest.mark.slow
def test_dry_run_counts_runs_already_finished(planted) -> None:
    result = CliRunner().invoke(app, ["sweep", str(planted / "sweep.yaml"), "--dry-run", "-o", str(planted)])
    assert result.exit_code == 0, result.output
    assert "16 runs: 16 already finished" in result.output
