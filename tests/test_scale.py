"""No cliffs: a run of 2048 developers is simulated, written and analyzed end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecosystem.results import RunFolder

N = 2048


def ecosim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecosystem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("network", [{"kind": "watts_strogatz", "k": 6, "p": 0.1}, {"kind": "complete"}])
def test_thousands_of_developers_run_and_are_analyzed(tmp_path, network):
    scenario = {
        "name": "many", "seed": 5, "steps": 3, "device": "cpu",
        "world": {"kind": "gaussian", "dim": 2, "concepts": 4, "heldout": 200},
        "communities": [{"name": "majority", "authors": 40, "concepts": [0, 1, 2], "rate": 20},
                        {"name": "minority", "authors": 10, "concepts": [3], "rate": 20}],
        "developers": {"count": N, "groups": [N // 2, N // 2], "train": {"samples": 32}, "publish": {"samples": 32},
                       "data": {"synthetic": 0.6, "human_fresh": 0.3, "original": 0.1}},
        "network": network,
    }
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(scenario))
    ran = ecosim("run", str(path), "--out", str(tmp_path / "run"), "-q", "--threads", "1", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run = RunFolder(tmp_path / "run")
    assert run.n_developers == N and len(run.model) == 3 and len(run.agents) == 3 * N
    divergence = run.divergence
    assert divergence is not None and not divergence.complete and len(divergence.i) == 1024  # a seeded sample
    assert np.isfinite(divergence.values).all() and (divergence.values >= 0).all()
    analyzed = ecosim("analyze", str(tmp_path / "run"), cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    report = tmp_path / "run" / "report"
    assert (report / "report.html").stat().st_size > 0 and list(report.glob("*.png"))
