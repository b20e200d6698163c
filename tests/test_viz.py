"""What the dashboard shows, checked without a browser: the numbers behind the network, the developer panel,
the heat map and the sweep comparison, live mode's stepping, and `ecosim viz`'s one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib import colormaps
from matplotlib.colors import to_hex

from analysis.dashboard.live import LiveSession
from analysis.dashboard.views import DISTINCTIVENESS, RunData, SweepData, network_picture
from ecosystem.model import EcosystemModel
from ecosystem.results import RunFolder
from ecosystem.run import run_scenario
from ecosystem.scenario import ScenarioError, validate_scenario
from ecosystem.sweep import run_sweep
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parents[1]


def grouped(**overrides) -> dict:
    """Six developers in two cohorts on two blocks that never read each other, one reading itself."""
    base = tiny(steps=4)
    base["developers"] = {"count": 6, "groups": [3, 3], "train": {"samples": 20}, "publish": {"samples": 20},
                          "group_data": [{"synthetic": 1.0, "retention": "replace"},
                                         {"human_fresh": 0.5, "synthetic": 0.5, "retention": "replace"}]}
    base["network"] = {"kind": "stochastic_block", "p_in": 1.0, "p_out": 0.0, "self_loops": True}
    return base | overrides


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_scenario(validate_scenario(grouped()), tmp_path_factory.mktemp("viz") / "run", progress=False)


@pytest.fixture(scope="module")
def data(run_dir) -> RunData:
    return RunData.from_folder(run_dir)


def test_run_data_reads_the_folder(data, run_dir):
    folder = RunFolder(run_dir)
    assert data.n == 6 and data.generations == 4
    assert data.groups.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.metrics()[:2] == ["nll", DISTINCTIVENESS]
    assert {"train_synthetic_share", "train_lineage_depth"} <= set(data.metrics())
    pivot = folder.agents.pivot(index="step", columns="developer", values="nll")
    for g in (1, 4):
        np.testing.assert_array_equal(data.values("nll", g), pivot.loc[g].to_numpy())


def test_distinctiveness_is_the_mean_divergence_to_the_others(data, run_dir):
    matrices = RunFolder(run_dir).divergence.matrices()  # (S, N, N)
    k = len(matrices) - 1
    expected = [np.mean([matrices[k, i, j] for j in range(6) if j != i]) for i in range(6)]
    np.testing.assert_allclose(data.values(DISTINCTIVENESS, 4), expected, rtol=1e-6)
    t = data.trajectory(DISTINCTIVENESS, 2)
    np.testing.assert_allclose(t["value"], [np.mean(np.delete(m[2], 2)) for m in matrices], rtol=1e-6)


def test_network_picture_colours_sizes_and_edges(data):
    first, last = network_picture(data, "nll", 1), network_picture(data, "nll", 4)
    assert len(first["nodes"]) == len(last["nodes"]) == 6
    # every edge but the self-loops, each from a reader's source to the reader
    assert {(e["source"], e["target"]) for e in last["edges"]} == {(u, v) for u, v in data.graph.edges if u != v}
    assert all(data.groups[e["source"]] == data.groups[e["target"]] for e in last["edges"])
    # the colour scale spans every generation: its ends are the extreme values, drawn as the map's ends
    everything = data.agents["nll"].to_numpy()
    assert last["low"] == pytest.approx(everything.min()) and last["high"] == pytest.approx(everything.max())
    at = data.agents.loc[data.agents["nll"].idxmax()]
    hottest = network_picture(data, "nll", int(at["step"]))["nodes"][int(at["developer"])]
    assert hottest["fill"] == to_hex(colormaps["viridis"](1.0))
    assert [n["fill"] for n in first["nodes"]] != [n["fill"] for n in last["nodes"]]
    # sized by influence: the order of radii is the order of PageRank
    radii = np.array([n["r"] for n in last["nodes"]])
    assert np.argmax(radii) == np.argmax(data.influence)
    assert all(0 <= n["x"] <= last["size"] and 0 <= n["y"] <= last["size"] for n in last["nodes"])


def test_developer_reading_and_heat_map_order(data):
    for dev in range(6):
        reads = dict(data.reads(dev))
        assert set(reads) == {u for u in data.graph.predecessors(dev)}
        assert sum(reads.values()) == pytest.approx(1.0)
        assert dev in reads  # self_loops: each developer reads itself too
        assert set(data.read_by(dev)) == set(data.graph.successors(dev))
    assert data.groups[data.community_order()].tolist() == sorted(data.groups.tolist())
    assert data.measured_index(0) is None and data.measured_index(4) == len(data.divergence.steps) - 1
    assert data.wrote(0, 4) == []  # a Gaussian world keeps no text


def test_what_a_developer_wrote_and_unmeasured_metrics(data):
    from dataclasses import replace

    samples = pd.DataFrame({"step": [1, 1, 2, 2], "developer": [0, 1, 0, 0], "text": ["a b", "c", "d", "e f"]})
    agents = data.agents.assign(validity=np.nan)  # a metric this world does not have
    kept = replace(data, samples=samples, agents=agents)
    assert kept.wrote(0, 2) == ["d", "e f"] and kept.wrote(1, 1) == ["c"] and kept.wrote(1, 2) == []
    assert "validity" not in kept.metrics()


def test_figures_draw(data):
    from analysis.dashboard.views import heatmap_figure, model_figure, trajectory_figure

    assert len(trajectory_figure(data, 1, ["nll", DISTINCTIVENESS], 2).axes) == 2
    assert len(model_figure(data, 2).axes) >= 2
    heat = heatmap_figure(data, 3)
    assert heat.axes[0].images[0].get_array().shape == (6, 6)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("viz-sweep")
    design = {**tiny(steps=4), "name": "viz-sweep",
              "sweep": {"grid": {"network": [{"kind": "ring", "k": 2}, {"kind": "complete"}]},
                        "replications": 3}}
    (base / "sweep.yaml").write_text(yaml.safe_dump(design))
    result = run_sweep(base / "sweep.yaml", out=base / "out", backend="serial", progress=False)
    assert result.counts["done"] == 6
    return base / "out"


@pytest.mark.slow  # subprocesses or whole runs: seconds each
def test_sweep_points_and_conditions(sweep_dir):
    sweep = SweepData.from_folder(sweep_dir)
    assert "network.kind" in sweep.axes
    points = sweep.points()
    assert points["condition"].str.startswith("kind=").all()
    assert ["ring" in c for c in points["condition"]] == [True, False]
    assert points["done"].tolist() == [3, 3] and points["runs"].tolist() == [3, 3]
    assert sweep.replications(1) == [0, 1, 2]
    assert "divergence" in sweep.outcomes()
    table = sweep.conditions("divergence")
    # by hand: each run's last generation (4 steps: the final quarter is one generation), then a t-interval
    from scipy import stats

    for point in (0, 1):
        finals = [RunFolder(sweep_dir / "runs" / sweep.run_id(point, r)).model["divergence"].iloc[-1]
                  for r in range(3)]
        row = table[table["point"] == point].iloc[0]
        half = stats.t.ppf(0.975, 2) * np.std(finals, ddof=1) / np.sqrt(3)
        assert row["mean"] == pytest.approx(np.mean(finals)) and row["n"] == 3
        assert row["ci_high"] - row["mean"] == pytest.approx(half)


@pytest.mark.slow  # subprocesses or whole runs: seconds each
def test_live_session_steps_like_the_model(tmp_path):
    path = tmp_path / "live.yaml"
    design = grouped(sweep={"grid": {"network": [{"kind": "complete"}, {"kind": "ring", "k": 2}]}})
    path.write_text(yaml.safe_dump(design))
    session = LiveSession.open(path)
    assert session.snapshot.generations == 0 and not session.finished
    assert [label for label, _ in session.points] == ["network=complete", "network=ring"]
    for _ in range(2):
        snap = session.step()
    reference = EcosystemModel(validate_scenario({k: v for k, v in design.items() if k != "sweep"}))
    reference.step()
    reference.step()
    pd.testing.assert_frame_equal(snap.agents, reference.developer_frame())  # same seed: the same run
    session.reset(point=1, seed=11)
    assert session.snapshot.generations == 0 and session.model.scenario.network.kind == "ring"
    assert session.model.scenario.seed == 11
    with pytest.raises(ScenarioError, match="steps"):
        session.reset(steps=0)
    assert session.steps == 4 and session.point == 1  # an invalid change leaves the session as it was
    while not session.finished:
        session.step()
    assert session.step().generations == 4  # nothing past the last generation


def viz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecosystem.cli", "viz", *args, "--no-open"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # subprocesses or whole runs: seconds each
def test_errors_are_one_line(tmp_path, run_dir):
    cases = [
        (tmp_path / "missing", f"error: {tmp_path / 'missing'}: no such file or folder"),
        (tmp_path, f"error: {tmp_path}: not a run folder (meta.json), a sweep folder (runs/ and manifest.jsonl) "
                   "or a scenario file (.yaml)"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(tiny(steps=0)))
    cases.append((bad, "error: steps: "))
    for path, message in cases:
        res = viz(str(path))
        assert res.returncode == 2, res.stderr
        assert res.stderr.startswith(message) and res.stderr.count("\n") == 1, res.stderr
        assert "Traceback" not in res.stderr and res.stdout == ""


@pytest.mark.slow  # subprocesses or whole runs: seconds each
def test_port_in_use_is_one_line(run_dir):
    pytest.importorskip("solara")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        res = viz(str(run_dir), "--port", str(port))
    finally:
        taken.close()
    assert res.returncode == 2
    assert res.stderr == f"error: --port: {port} on 127.0.0.1 cannot be used (in use); choose another port, or " \
                         "leave --port out for a free one\n"


@pytest.mark.slow  # subprocesses or whole runs: seconds each
def test_core_imports_no_web_code():
    code = ("import sys, ecosystem.cli, ecosystem.model, analysis.report, analysis.dashboard.views, "
            "analysis.dashboard.serve; print(sorted(m for m in ('solara', 'uvicorn', 'starlette', 'playwright') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
