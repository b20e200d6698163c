"""Vu, Reeves & Wenger (2025), their K = 3 experiment on the linear surrogate: a third model on a third task,
the same α grid at β = 0.5, curves over t = 0..15 (``scenarios/papers/vu_three_models.yaml``).

The stated pattern is checked on Theorem 1's exact expected losses on the scenario's own world; a short
simulation checks the curves match them within Monte Carlo error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.vu_paper import LEVELS, expected_losses, grid_frame, grid_scenario, own_cross, simulate_losses

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_three_models.yaml"
Z = 4.0


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


@pytest.fixture(scope="module")
def curves(base) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    return {a: own_cross(expected_losses(grid_scenario(base, a, 0.5))) for a in LEVELS}


def test_three_models_on_three_tasks(base):
    scenario = grid_scenario(base, 0.5, 0.5)
    assert scenario.developers.count == 3 and scenario.world.dim == 3
    # Each model's private features live on its own coordinate (the third task is the third coordinate).
    from ecosystem.model import EcosystemModel

    var = EcosystemModel(scenario).world.domain_var.numpy()
    np.testing.assert_array_equal(var.argmax(1), [0, 1, 2])


def test_the_alpha_pattern_holds_with_three_models(curves):
    own_0, cross_0 = curves[0.0]
    np.testing.assert_allclose(own_0, own_0[0], rtol=1e-9)  # α = 0: nothing transfers
    np.testing.assert_allclose(cross_0, cross_0[0], rtol=1e-9)
    own, cross = curves[0.5]
    own_1, _ = curves[1.0]
    assert cross[-1] < 0.3 * cross[0]  # α = 0.5: the other tasks improve …
    assert own[-1] - own[0] < 0.1 * (own_1[-1] - own_1[0])  # … and the own task is kept
    assert own_1[-1] > 5 * own_1[0]  # α = 1: own task degraded
    overall = {a: (o[-1] + c[-1]) / 2 for a, (o, c) in curves.items()}
    assert min(overall, key=overall.get) == 0.5, overall
    # The cross-task gain arrives at t = 1 (the first generation that reads the others) and stays.
    assert np.all(cross[1:] < 0.3 * cross[0])


def test_simulated_curves_match_the_expected(base):
    reps = 30
    scenario = grid_scenario(base, 0.5, 0.5).model_copy(update={"steps": 8})
    own, cross = own_cross(simulate_losses(scenario, reps))  # (R, T)
    own_e, cross_e = own_cross(expected_losses(scenario))
    for sim, exp in ((own, own_e), (cross, cross_e)):
        se = sim.std(0, ddof=1) / np.sqrt(reps)
        assert np.all(np.abs(sim.mean(0) - exp) <= Z * se + 1e-9), np.c_[sim.mean(0), exp, se]


def test_grid_frame_gives_curves_at_one_beta(base):
    frame = grid_frame({**base, "steps": 3}, reps=2, betas=(0.5,))
    assert sorted(frame["alpha"].unique()) == list(LEVELS) and set(frame["beta"]) == {0.5}
    assert len(frame) == 3 * 3 and frame.loc[frame["alpha"] == 1.0, "rho"].iloc[0] == pytest.approx(1.0)
