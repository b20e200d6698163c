"""Where the linear surrogate's synthetic features come from (Vu, Reeves & Wenger 2025, Theorems 1–2).

``world.synthetic_features``: each model's own domain (``own``), one distribution spanning ℝ^d (``shared``,
their Theorem 2 setting: private knowledge crosses over and the bias decays geometrically at the rate ρ(Q))
or the private design reused (``real``). Theorem 1's moments condition on the designs, so they are the
overlay for every source; the simulator must match them within Monte Carlo error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.theory import vu_limit, vu_moments
from analysis.vu_paper import expected_losses, grid_scenario, own_cross, simulate_thetas, theory_inputs, transition
from ecosystem.model import EcosystemModel
from ecosystem.scenario import ScenarioError, validate_scenario

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_alpha_beta_grid.yaml"
Z = 4.0
SOURCES = ("own", "shared", "real")


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


def cell(base: dict, source: str, alpha: float = 0.5, beta: float = 0.5, **more):
    return grid_scenario(base, alpha, beta, overrides={"world.synthetic_features": source} | more)


def test_schema_names_the_field_and_the_choices(base):
    data = {k: v for k, v in base.items() if k != "sweep"}
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data, overrides={"world.synthetic_features": "everywhere"})
    assert "world.synthetic_features" in str(err.value) and "shared" in str(err.value)
    assert validate_scenario(data).world.synthetic_features == "own"  # today's behaviour is the default


def test_each_source_draws_its_designs(base):
    worlds = {s: EcosystemModel(cell(base, s, **{"developers.publish.samples": 100})).world for s in SOURCES}
    x_own = worlds["own"].prompts(100, None)  # (N, k, D); fixed designs ignore the generator
    x_shared = worlds["shared"].prompts(100, None)
    var = worlds["own"].domain_var  # (N, D): 1 on a model's own coordinates, 0.02 elsewhere
    # The same seeded draw, scaled by the domain's standard deviation (own) or not (shared).
    np.testing.assert_allclose(x_own.numpy(), (x_shared * var[:, None].sqrt()).numpy(), rtol=1e-12)
    # shared spans ℝ^d: unit variance on every coordinate (χ² with 100 dof: sd of the mean square ≈ 0.14).
    assert np.all(np.abs((x_shared**2).mean(1).numpy() - 1) < Z * np.sqrt(2 / 100))
    # real: the private design's 40 rows, cycled to 100.
    world = worlds["real"]
    private = world.original(1).items[:, :-1]
    x_real = world.prompts(100, None)[1]
    np.testing.assert_array_equal(x_real[:40].numpy(), private.numpy())
    np.testing.assert_array_equal(x_real[80:].numpy(), private[:20].numpy())


@pytest.mark.parametrize("source", SOURCES)
def test_bias_decays_geometrically_at_rho(base, source):
    # Vu et al. Thm 2: m_t − m_∞ = Q^{t−1}(m_1 − m_∞), so ‖m_t − m_∞‖ shrinks by ρ(Q) per generation.
    scenario = cell(base, source)
    inputs, _ = theory_inputs(scenario)
    means, _ = vu_moments(**inputs, sigma=1.0, steps=120)
    q = transition(scenario)
    limit = vu_limit(means, q)
    gap0 = (means[1] - limit).ravel()
    for t in (2, 7, 30):
        np.testing.assert_allclose((means[t] - limit).ravel(), np.linalg.matrix_power(q, t - 1) @ gap0, atol=1e-10)
    # The rate, measured far out where the slower modes are gone (the top eigenvalues can be a complex
    # pair, so single ratios oscillate; the mean rate over 300 generations does not).
    rho = np.abs(np.linalg.eigvals(q)).max()
    far = [np.linalg.norm(np.linalg.matrix_power(q, t) @ gap0) for t in (100, 400)]
    assert (far[1] / far[0]) ** (1 / 300) == pytest.approx(rho, abs=2e-3)
    assert 0 < rho < 1


def test_shared_features_carry_private_knowledge_across(base):
    # Thm 2 setting: model 0's limit depends on model 1's private labels when α > 0, never at α = 0.
    for alpha, moved in ((0.5, True), (0.0, False)):
        inputs, _ = theory_inputs(cell(base, "shared", alpha))
        q = transition(cell(base, "shared", alpha))
        x1, y1 = inputs["private"][1]
        limits = []
        for shift in (0.0, 1.0):
            inputs["private"][1] = (x1, y1 + shift * x1[:, 1])  # model 1 learns θ[1] one unit higher
            means, _ = vu_moments(**inputs, sigma=1.0, steps=3)
            limits.append(vu_limit(means, q)[0])
        change = abs(limits[1][1] - limits[0][1])
        assert (change > 0.05) if moved else (change < 1e-9), (alpha, change)
    # And the other model's task improves while the own task is kept (their Tables 3, 6, 7 pattern).
    own, cross = own_cross(expected_losses(cell(base, "shared")))
    own_1, _ = own_cross(expected_losses(cell(base, "shared", 1.0)))
    assert cross[-1] < 0.3 * cross[0]
    assert own[-1] - own[0] < 0.1 * (own_1[-1] - own_1[0])


@pytest.mark.parametrize("source", ["shared", "real"])
def test_simulation_matches_theorem_1_for_each_source(base, source):
    reps = 40
    scenario = cell(base, source).model_copy(update={"steps": 8})
    thetas, _ = simulate_thetas(scenario, reps)  # (R, T, K, D)
    inputs, _ = theory_inputs(scenario)
    means, _ = vu_moments(**inputs, sigma=1.0, steps=8)
    se = thetas.std(0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(thetas.mean(0) - means) <= Z * se + 1e-12), np.abs(thetas.mean(0) - means) / se
