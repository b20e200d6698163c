"""Vu, Reeves & Wenger (2025), Tables 3, 6, 7 on the linear surrogate: the α × β grid's stated pattern.

Two models on different private tasks plus shared public data, t = 0..15 (generations 1..16), from
``scenarios/papers/vu_alpha_beta_grid.yaml``. The pattern is checked on the exact expected task losses
(Theorem 1's moments on the scenario's own world, :func:`analysis.vu_paper.expected_losses`); the slow test
checks that the simulated losses match those expectations within Monte Carlo error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.vu_paper import LEVELS, expected_losses, grid_scenario, own_cross, simulate_losses

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_alpha_beta_grid.yaml"
Z = 4.0


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


@pytest.fixture(scope="module")
def grid(base) -> dict[tuple[float, float], tuple[np.ndarray, np.ndarray]]:
    return {(a, b): own_cross(expected_losses(grid_scenario(base, a, b))) for a in LEVELS for b in LEVELS}


def test_alpha_zero_no_cross_task_gain(grid, base):
    for b in LEVELS:
        own, cross = grid[0.0, b]
        np.testing.assert_allclose(cross, cross[0], rtol=1e-9)
        np.testing.assert_allclose(own, own[0], rtol=1e-9)
    # The simulator agrees exactly: at α = 0 every generation refits the same real data.
    losses = simulate_losses(grid_scenario(base, 0.0, 0.5).model_copy(update={"steps": 4}), 1)[0]
    np.testing.assert_allclose(losses, np.broadcast_to(losses[0], losses.shape), rtol=1e-9)


def test_alpha_half_keeps_own_task_and_learns_the_other(grid):
    for b in (0.5, 1.0):  # β = 0: no private data, so no own task to keep or other task to learn
        own, cross = grid[0.5, b]
        own_1, _ = grid[1.0, b]
        assert cross[-1] < 0.3 * cross[0]  # the other task improves a lot
        # Own task kept: any rise is under a tenth of what α = 1 does to it.
        assert own[-1] - own[0] < 0.1 * (own_1[-1] - own_1[0])


def test_alpha_one_degrades_own_task(grid):
    for b in (0.5, 1.0):
        own, _ = grid[1.0, b]
        assert own[-1] > 5 * own[0]


def test_alpha_beta_half_is_best_overall(grid):
    overall = {cell: (own[-1] + cross[-1]) / 2 for cell, (own, cross) in grid.items()}
    best = min(overall, key=overall.get)
    assert best == (0.5, 0.5), overall
    runner_up = sorted(overall.values())[1]
    assert overall[0.5, 0.5] < 0.9 * runner_up


@pytest.mark.slow
@pytest.mark.parametrize("cell", [(0.5, 0.5), (1.0, 0.5)])
def test_simulated_losses_match_the_expected(base, cell):
    reps = 40
    scenario = grid_scenario(base, *cell)
    own, cross = own_cross(simulate_losses(scenario, reps))  # (R, T)
    own_e, cross_e = own_cross(expected_losses(scenario))
    for sim, exp in ((own, own_e), (cross, cross_e)):
        se = sim.std(0, ddof=1) / np.sqrt(reps)
        assert np.all(np.abs(sim.mean(0) - exp) <= Z * se + 1e-9), np.c_[sim.mean(0), exp, se]


def test_cli_rejects_bad_input(tmp_path, capsys):
    from analysis.vu_paper import main

    assert main(["grid", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("world: {kind: linear, dim: 0}\n")
    assert main(["grid", str(bad)]) == 2
    assert main(["grid", str(SCENARIO), "--reps", "1"]) == 2
    err = capsys.readouterr().err
    assert "world.dim" in err and "--reps" in err and "Traceback" not in err


def test_contraction_rises_with_alpha_and_reaches_one(base):
    # Vu et al. Thm 3: convergence slows as α → 1 and stops at α = 1 (ρ(Q) = 1).
    from analysis.vu_paper import contraction

    rho = [contraction(grid_scenario(base, a, 0.5)) for a in (0.25, 0.5, 0.75, 0.9, 1.0)]
    assert all(r < 1 for r in rho[:-1]) and np.all(np.diff(rho) > 0), rho
    assert rho[-1] == pytest.approx(1.0, abs=1e-9)


def test_alpha_one_loss_grows_linearly(grid):
    # At α = 1 under uniform Π the models agree from t = 1 on and the error random-walks: the expected own
    # loss (bias fixed, variance growing) rises by the same amount every generation (Vu et al., Thm 3).
    own, _ = grid[1.0, 0.5]
    step = np.diff(own)[1:]
    assert step.min() > 0
    np.testing.assert_allclose(step, step[0], rtol=1e-6)
