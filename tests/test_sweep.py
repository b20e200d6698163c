"""Sweeps end to end with the real runner: identical runs on every backend, failures recorded as data,
resumption after a SIGKILL with every run present exactly once, and the sweep read back as one frame."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.sweep_frame import connect, load_sweep, runs_frame
from ecosystem.design import expand
from ecosystem.processes import host
from ecosystem.results import read_manifest
from ecosystem.run import run_scenario
from ecosystem.scenario import ScenarioError
from ecosystem.sweep import run_sweep

TINY = {
    "name": "tiny",
    "seed": 5,
    "steps": 3,
    "device": "cpu",
    "world": {"kind": "gaussian", "heldout": 200},
    "communities": [{"name": "everyone", "authors": 5, "rate": 10}],
    "developers": {"count": 4, "train": {"samples": 40}, "publish": {"samples": 40}},
}
RUN_FILES = ["scenario.yaml", "model.parquet", "agents.parquet", "divergence.npz", "network.edgelist", "meta.json"]


def write_sweep(path: Path, sweep: dict) -> Path:
    path.write_text(yaml.safe_dump({**TINY, "sweep": sweep}))
    return path


def failing_runner(scenario, out_dir, **options):
    """The real runner, except that every ring network raises."""
    if scenario.network.kind == "ring":
        raise ValueError("ring networks are broken today\nsecond line of the message")
    return run_scenario(scenario, out_dir, **options)


def log_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def assert_same_runs(folder: Path, reference: Path, ids: list[str]) -> None:
    for run_id in ids:
        a, b = folder / "runs" / run_id, reference / "runs" / run_id
        for table in ("model", "agents"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / f"{table}.parquet"), pd.read_parquet(b / f"{table}.parquet")
            )
        assert (a / "divergence.npz").read_bytes() == (b / "divergence.npz").read_bytes()
        assert (a / "network.edgelist").read_text() == (b / "network.edgelist").read_text()


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    # A dict-valued parameter, to check that it becomes one column per field when read back.
    grid = {"network": [{"kind": "complete"}, {"kind": "ring", "k": 2}]}
    return write_sweep(tmp_path_factory.mktemp("design") / "tiny.yaml", {"grid": grid, "replications": 2})


@pytest.fixture(scope="module")
def serial(design, tmp_path_factory) -> Path:
    """The reference: the design run one after another in this process."""
    result = run_sweep(design, out=tmp_path_factory.mktemp("serial") / "tiny", backend="serial", progress=False)
    assert result.counts == {"done": 4, "failed": 0, "pending": 0, "total": 4, "skipped": 0}
    return result.folder


def test_sweep_folder_layout(serial, design):
    ids = [run.id for run in expand(design)]
    assert sorted(os.listdir(serial / "runs")) == sorted(ids)
    assert all((serial / "runs" / i / name).is_file() for i in ids for name in RUN_FILES)
    assert (serial / "sweep.yaml").read_text() == design.read_text()
    manifest = read_manifest(serial)
    assert manifest["run_id"].tolist() == ids and (manifest["status"] == "done").all()
    assert (manifest["run_s"] > 0).all()
    assert manifest["params"][3] == {"network": {"kind": "ring", "k": 2}}


@pytest.mark.slow
def test_process_backend_gives_identical_runs(serial, design, tmp_path):
    result = run_sweep(design, out=tmp_path / "tiny", workers=2, progress=False)
    assert result.counts["done"] == 4
    assert_same_runs(result.folder, serial, [r["run_id"] for r in result.records])


@pytest.mark.slow
def test_ray_backend_gives_identical_runs(serial, design, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_sweep(design, out=tmp_path / "tiny", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert result.counts["done"] == 4, [r["error"] for r in result.records]
    assert {r["backend"] for r in result.records} == {"ray"}
    assert_same_runs(result.folder, serial, [r["run_id"] for r in result.records])


def test_rerunning_skips_finished_runs(serial, design):
    before = {p: p.stat().st_mtime_ns for p in (serial / "runs").rglob("*")}
    lines = len(log_lines(serial))
    result = run_sweep(design, out=serial, backend="serial", progress=False)
    assert result.counts["skipped"] == 4 and result.counts["done"] == 4
    assert len(log_lines(serial)) == lines
    assert {p: p.stat().st_mtime_ns for p in (serial / "runs").rglob("*")} == before


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_rest_finish(design, serial, tmp_path):
    out = tmp_path / "tiny"
    result = run_sweep(design, out=out, workers=2, runner=failing_runner, progress=False)
    assert result.counts == {"done": 2, "failed": 2, "pending": 0, "total": 4, "skipped": 0}
    failed = [r for r in result.records if r["status"] == "failed"]
    assert {r["params"]["network"]["kind"] for r in failed} == {"ring"}
    assert all(r["error"] == "ValueError: ring networks are broken today" for r in failed)
    assert all("Traceback" in line["traceback"] for line in log_lines(out) if line["status"] == "failed")
    assert sorted(os.listdir(out / "runs")) == sorted(r["run_id"] for r in result.records if r["status"] == "done")
    assert "ValueError: ring networks are broken today" in result.table()
    # Running the same sweep again redoes only the failed runs.
    again = run_sweep(design, out=out, backend="serial", progress=False)
    assert again.counts == {"done": 4, "failed": 0, "pending": 0, "total": 4, "skipped": 2}
    assert_same_runs(out, serial, [r["run_id"] for r in again.records])


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_every_run_exactly_once(serial, tmp_path):
    # Same runs as the reference (ring's default k is 2) plus a third topology.
    design = write_sweep(
        tmp_path / "tiny.yaml", {"grid": {"network.kind": ["complete", "ring", "star"]}, "replications": 2}
    )
    out = tmp_path / "sweep"
    code = "import sys; from ecosystem.sweep import run_sweep; run_sweep(sys.argv[1], out=sys.argv[2], workers=2)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(design), str(out)], start_new_session=True, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "manifest.jsonl").exists() and len(log_lines(out)) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
    proc.wait()
    with contextlib.suppress(ProcessLookupError):  # until the workers are gone too
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.05)
    finished = [p for p in (out / "runs").iterdir() if not p.name.startswith(".")]
    assert 2 <= len(finished) < 6, "the kill should land mid-sweep"
    for run in finished:  # whatever has its final name is whole
        assert all((run / name).is_file() for name in RUN_FILES)
        pd.read_parquet(run / "model.parquet")

    result = run_sweep(design, out=out, backend="serial", progress=False)
    ids = [r["run_id"] for r in result.records]
    assert result.counts["done"] == 6 and result.counts["skipped"] == len(finished)
    assert sorted(os.listdir(out / "runs")) == sorted(ids)  # no temporary folder left
    done_lines = [line["run_id"] for line in log_lines(out) if line["status"] == "done"]
    assert sorted(done_lines) == sorted(ids)  # every run recorded as done exactly once
    assert (pd.read_parquet(out / "manifest.parquet")["status"] == "done").all()
    reference = set(os.listdir(serial / "runs"))
    assert len(reference & set(ids)) == 4
    assert_same_runs(out, serial, sorted(reference & set(ids)))  # the crash changed no number


def test_a_bad_design_value_fails_before_anything_is_written(tmp_path):
    design = write_sweep(tmp_path / "bad.yaml", {"grid": {"developers.publish.temperature": [1.0, -0.5]}})
    with pytest.raises(ScenarioError, match=r"^sweep.grid.developers.publish.temperature\[1\]: must be > 0"):
        run_sweep(design, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_an_existing_sweep_is_not_started_over_or_shared(serial, design):
    with pytest.raises(FileExistsError, match="holds a sweep already"):
        run_sweep(design, out=serial, resume=False, progress=False)
    with open(serial / "sweep.lock") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a sweep running in another process would
        with pytest.raises(RuntimeError, match="another sweep is running"):
            run_sweep(design, out=serial, progress=False)


def test_stale_temporaries_torn_lines_and_unlogged_runs_are_repaired(serial, design, tmp_path):
    out = shutil.copytree(serial, tmp_path / "tiny")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / "runs" / f".0123456789ab.tmp-{host()}-{dead.pid}"
    stale.mkdir()
    (stale / "model.parquet").write_bytes(b"PAR1 half a file")
    lines = (out / "manifest.jsonl").read_text().splitlines()
    unlogged = json.loads(lines[0])["run_id"]  # as if the driver died between the rename and the log write
    (out / "manifest.jsonl").write_text("\n".join(lines[1:]) + '\n{"run_id": "torn')
    result = run_sweep(design, out=out, backend="serial", progress=False)
    assert result.counts["skipped"] == 4 and result.counts["done"] == 4
    assert not stale.exists()
    records = log_lines(out)  # every line parses again
    assert [r["run_id"] for r in records if r.get("recovered")] == [unlogged]


def test_the_sweep_reads_back_as_one_tidy_frame(serial):
    runs = runs_frame(serial)
    assert list(runs.columns[:6]) == ["run_id", "point", "replication", "seed", "network.kind", "network.k"]
    model = load_sweep(serial)
    assert len(model) == 4 * TINY["steps"]
    assert model.groupby("network.kind")["run_id"].nunique().to_dict() == {"complete": 2, "ring": 2}
    one = model[model["run_id"] == runs["run_id"][3]].drop(columns=runs.columns[:6]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, pd.read_parquet(serial / "runs" / runs["run_id"][3] / "model.parquet"))
    agents = load_sweep(serial, "agents")
    assert len(agents) == 4 * TINY["steps"] * TINY["developers"]["count"]
    query = 'select "network.kind" as kind, count(*) as n, avg(nll) as nll from model group by kind order by kind'
    by_kind = connect(serial).sql(query).df()
    assert by_kind["n"].tolist() == [6, 6]
    expected = model.groupby("network.kind")["nll"].mean().to_numpy()
    np.testing.assert_allclose(by_kind["nll"].to_numpy(), expected, rtol=1e-12)
