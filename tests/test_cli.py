"""The command line end to end, in real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny

ROOT = Path(__file__).resolve().parents[1]


def ecosim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecosystem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_ok_and_errors(tmp_path):
    ok = ecosim("validate", str(write(tmp_path, tiny())), cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip() == "ok"
    bad = tiny()
    bad["developers"]["data"] = {"synthetic": 1.4}
    res = ecosim("validate", str(write(tmp_path, bad, "bad.yaml")), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == "error: developers.data.synthetic: must be between 0 and 1, got 1.4"
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_bad_scenario_writes_nothing(tmp_path):
    bad = tiny(network={"kind": "edge_list", "path": "edges.txt"})
    (tmp_path / "edges.txt").write_text("0 1\n1 99\n")
    res = ecosim("run", str(write(tmp_path, bad)), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "network.path: edges.txt line 2: nodes must be 0..3" in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
    missing = ecosim("run", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such scenario file" in missing.stderr


@pytest.mark.slow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error where CUDA is absent")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    res = ecosim("run", str(write(tmp_path, tiny(device="cuda"))), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "device: 'cuda' was asked for but CUDA is not available" in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_writes_the_run_folder_and_is_deterministic(tmp_path):
    path = write(tmp_path, tiny())
    first = ecosim("run", str(path), "--out", str(tmp_path / "a"), "-q", "--threads", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout
    again = ecosim("run", str(path), "--out", str(tmp_path / "b"), "-q", "--threads", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("scenario.yaml", "model.parquet", "agents.parquet", "divergence.npz", "network.edgelist",
                 "meta.json", "summary.png"):
        assert (a / name).stat().st_size > 0, name
    for name in ("model.parquet", "agents.parquet", "divergence.npz", "scenario.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    model = pd.read_parquet(a / "model.parquet")
    agents = pd.read_parquet(a / "agents.parquet")
    assert list(model["step"]) == [1, 2, 3]
    assert len(agents) == 3 * 4 and set(agents["developer"]) == {0, 1, 2, 3}
    assert {"nll", "nll_a", "nll_b", "distance", "variance", "divergence", "train_synthetic_share",
            "pool_synthetic_share", "pool_lineage_depth"} <= set(model.columns)
    meta = json.loads((a / "meta.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    assert meta["reference"]["baseline_nll"] is None and meta["reference"]["reference_nll"] > 0
    assert meta["seed"] == 3 and meta["developers"] == 4 and len(meta["timings"]["per_step_s"]) == 3
    assert meta["threads"] == 1 and json.loads((b / "meta.json").read_text())["threads"] == 2
    assert (a / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The resolved scenario reloads to the same scenario.
    resolved = ecosim("validate", str(a / "scenario.yaml"), cwd=tmp_path)
    assert resolved.returncode == 0
    other = ecosim("run", str(write(tmp_path, tiny(seed=4), "s4.yaml")), "--out", str(tmp_path / "c"), "-q",
                   cwd=tmp_path)
    assert other.returncode == 0
    assert (tmp_path / "c" / "model.parquet").read_bytes() != (a / "model.parquet").read_bytes()


@pytest.mark.slow
def test_run_refuses_a_non_empty_out(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    res = ecosim("run", str(write(tmp_path, tiny())), "--out", str(tmp_path / "full"), cwd=tmp_path)
    assert res.returncode == 2 and "is not empty" in res.stderr
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_quickstart_validates():
    res = ecosim("validate", str(ROOT / "scenarios" / "quickstart.yaml"), cwd=ROOT)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_sweep_and_analyze_errors_are_one_line(tmp_path):
    bad = write(tmp_path, {**tiny(), "sweep": {"grid": {"developers.data.synthetic": [0.5, 1.7]}}}, "bad.yaml")
    cases = [
        (("sweep", str(tmp_path / "nope.yaml")), "no such file"),
        (("sweep", str(bad), "--out", str(tmp_path / "sw")), "sweep.grid.developers.data.synthetic[0]:"),
        (("sweep", str(write(tmp_path, tiny())), "--backend", "dask"), "--backend: must be process, ray or serial"),
        (("analyze", str(tmp_path)), "neither a run folder"),
    ]
    for args, message in cases:
        res = ecosim(*args, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "sw").exists()


def test_analyze_of_a_damaged_run_is_one_line(tmp_path):
    path = write(tmp_path, tiny(steps=2))
    assert ecosim("run", str(path), "--out", str(tmp_path / "run"), "-q", cwd=tmp_path).returncode == 0
    (tmp_path / "run" / "agents.parquet").write_bytes(b"PAR")
    res = ecosim("analyze", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "agents.parquet: unreadable" in res.stderr
    (tmp_path / "run" / "model.parquet").unlink()
    res = ecosim("analyze", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().endswith("model.parquet: missing")
    assert not (tmp_path / "run" / "report").exists()
