"""The designs of the regression literature on the ``linear`` world (issue 12, item 4), and the test error on
a finite held-out set.

A model's synthetic labels are drawn on the developer's real design X₀ reused every generation (Dohmatob et
al. 2024, "Model collapse demystified: the case of regression"; Gerstgrasser et al. 2024, "Is model
collapse inevitable?"), on a fresh design each generation, or on a fixed design of its own. With the real
design, a chain that trains only on its own labels has E‖θ̂_t − θ‖² = t σ² tr((X₀ᵀX₀)⁻¹) (``replace``) and
σ² tr((X₀ᵀX₀)⁻¹) Σ_{k≤t} 1/k² (``accumulate``, every generation pooled equally). Each check runs 400
independent developers (an ``empty`` network with self-loops: each reads only itself) and compares their
mean with the closed form, written out here independently of :mod:`analysis.theory`, within 4 standard
errors of the simulated spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from analysis.theory import regression_fresh_design_error, regression_relabel_error
from ecosystem.design import expand
from ecosystem.model import EcosystemModel
from ecosystem.scenario import ScenarioError, validate_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "papers" / "dohmatob_regression.yaml"
Z = 4.0  # standard errors allowed
CHAINS, STEPS, D, N, SIGMA = 400, 8, 4, 12, 1.0
DESIGNS = {"real": {"synthetic_features": "real"},
           "fresh": {"synthetic_features": "shared", "fixed_design": False},
           "own": {"synthetic_features": "own", "fixed_design": True}}


def scenario(retention: str, design: str, seed: int = 1, chains: int = CHAINS, publish: int = N) -> dict:
    """The shipped ``scenarios/papers/dohmatob_regression.yaml`` at one design point: ``chains`` developers,
    each its own chain, fit 1 on its n real rows, then only its own labels (whole sets, equally weighted per
    item: ``mix: weight``)."""
    raw = yaml.safe_load(SCENARIO.read_text())
    raw.pop("sweep")
    raw["world"] |= {"heldout": 200, **DESIGNS[design]}
    raw["developers"]["data"]["retention"] = retention
    raw["developers"]["count"], raw["developers"]["publish"]["samples"] = chains, publish
    return raw | {"seed": seed, "steps": STEPS, "metrics": {"pairwise": "none"}}


def test_the_scenario_is_the_papers_setting():
    raw = yaml.safe_load(SCENARIO.read_text())
    world, devs = raw["world"], raw["developers"]
    assert (world["dim"], world["private_samples"], world["noise"], devs["family"]["noise"]) == (D, N, SIGMA, SIGMA)
    assert devs["publish"]["samples"] == N and world["domain_overlap"] == 1.0  # X₀ exactly; x ~ N(0, I)
    runs = expand(SCENARIO)
    designs = {(r.scenario.world.synthetic_features, r.scenario.world.fixed_design) for r in runs}
    assert len(runs) == 6 and designs == {("real", True), ("shared", False), ("own", True)}


def chains(retention: str, design: str, **kw) -> tuple[EcosystemModel, dict[str, np.ndarray]]:
    model = EcosystemModel(validate_scenario(scenario(retention, design, **kw)))
    for _ in range(STEPS):
        model.step()
    frame = model.developer_frame().sort_values(["step", "developer"])
    n = model.scenario.developers.count
    return model, {k: frame[k].to_numpy().reshape(STEPS, n) for k in ("distance", "test_mse")}  # (T, N)


def real_designs(model: EcosystemModel) -> np.ndarray:
    items = model.world.originals().items.numpy()
    return items[:, :-1].reshape(model.scenario.developers.count, N, D)  # (N_dev, n, D)


def assert_mc_close(samples: np.ndarray, expected: np.ndarray) -> None:
    """Row-wise: the mean of ``samples (T, R)`` within Z standard errors of ``expected (T,)``."""
    mean = samples.mean(axis=1)
    se = samples.std(axis=1, ddof=1) / np.sqrt(samples.shape[1])
    assert np.all(np.abs(mean - expected) <= Z * se), np.c_[mean, expected, se]


# ── the three designs ─────────────────────────────────────────────────────────────────────────────────


def test_the_three_designs_of_the_synthetic_labels():
    g = torch.Generator().manual_seed(0)
    real = EcosystemModel(validate_scenario(scenario("replace", "real", chains=3)))
    np.testing.assert_array_equal(real.world.prompts(N, g).numpy(), real_designs(real))  # exactly X₀
    cycled = real.world.prompts(N + 2, g).numpy()
    np.testing.assert_array_equal(cycled[:, N:], real_designs(real)[:, :2])  # rows cycled past n
    own = EcosystemModel(validate_scenario(scenario("replace", "own", chains=3))).world
    np.testing.assert_array_equal(own.prompts(N, g).numpy(), own.prompts(N, g).numpy())  # drawn once
    fresh = EcosystemModel(validate_scenario(scenario("replace", "fresh", chains=3))).world
    assert not np.allclose(fresh.prompts(N, g).numpy(), fresh.prompts(N, g).numpy())  # new each generation


def test_a_real_design_cannot_be_fresh():
    data = scenario("replace", "real")
    data["world"]["fixed_design"] = False
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data)
    assert "fixed_design" in str(err.value) and "real" in str(err.value)


def test_test_mse_is_the_held_out_squared_error_in_both_frames():
    model, _ = chains("replace", "real", chains=5)
    held = model.world.heldout().items.numpy()
    theta = model.state.theta.numpy()  # (N, D)
    expected = ((held[:, -1:] - held[:, :-1] @ theta.T) ** 2).mean(0)
    frame = model.developer_frame()
    last = frame[frame.step == STEPS].sort_values("developer")
    np.testing.assert_allclose(last.test_mse.to_numpy(), expected, rtol=1e-12)
    assert model.model_frame().test_mse.iloc[-1] == pytest.approx(expected.mean(), rel=1e-12)


# ── the closed forms ──────────────────────────────────────────────────────────────────────────────────


def relabel_expectations(model: EcosystemModel, retention: str) -> tuple[np.ndarray, np.ndarray]:
    """Closed forms, averaged over developers: E‖θ̂_t − θ‖² and E[test_mse_t] for t = 1..STEPS.

    Per developer with design X₀: δ_t = Σ_{k≤t} c_k e_k, e_k ~ N(0, σ²(X₀ᵀX₀)⁻¹) independent, c_k = 1
    (replace) or 1/k (accumulate). On the held-out set (X_H, y_H) the test error is
    (1/H)‖y_H − X_Hθ‖² − (2/H) (y_H − X_Hθ)ᵀX_H δ_t + δ_tᵀ Σ̂_H δ_t with Σ̂_H = X_HᵀX_H / H, and E δ_t = 0.
    """
    x0 = real_designs(model)
    inv = np.linalg.inv(np.einsum("nsi,nsj->nij", x0, x0))  # (N_dev, D, D)
    held = model.world.heldout().items.numpy()
    xh, yh = held[:, :-1], held[:, -1]
    sigma_h = xh.T @ xh / len(xh)
    t = np.arange(1, STEPS + 1)
    c2 = np.cumsum(np.ones(STEPS) if retention == "replace" else 1.0 / t**2)  # Σ_{k≤t} c_k²
    tr = SIGMA**2 * np.trace(inv, axis1=1, axis2=2).mean()
    tr_h = SIGMA**2 * np.einsum("ij,nji->n", sigma_h, inv).mean()
    floor = ((yh - xh @ model.world.theta.numpy()) ** 2).mean()
    return c2 * tr, floor + c2 * tr_h


@pytest.mark.parametrize("retention", ["replace", "accumulate"])
def test_real_design_reused_matches_the_closed_form(retention):
    model, got = chains(retention, "real")
    distance, test_mse = relabel_expectations(model, retention)
    assert_mc_close(got["distance"], distance)
    assert_mc_close(got["test_mse"], test_mse)
    # The library's closed form is the same numbers.
    x0 = real_designs(model)
    scale = SIGMA**2 * np.trace(np.linalg.inv(np.einsum("nsi,nsj->nij", x0, x0)), axis1=1, axis2=2).mean()
    np.testing.assert_allclose(regression_relabel_error(np.arange(1, STEPS + 1), retention, scale), distance)
    first = got["distance"][0].mean()
    if retention == "replace":  # linear growth: fit 8 is about 8× fit 1
        assert got["distance"][-1].mean() > 5 * first
    else:  # bounded by π²/6 times fit 1's error
        assert got["distance"][-1].mean() < np.pi**2 / 6 * first + Z * got["distance"][-1].std() / np.sqrt(CHAINS)


def test_fresh_gaussian_design_matches_the_closed_form():
    # Fit 1 on n real N(0, I) rows, then m fresh N(0, I) rows each generation: σ²(d/(n−d−1) + (t−1) d/(m−d−1)).
    m = 16
    _, got = chains("replace", "fresh", publish=m)
    t = np.arange(1, STEPS + 1)
    expected = SIGMA**2 * (D / (N - D - 1) + (t - 1) * D / (m - D - 1))
    assert_mc_close(got["distance"], expected)
    np.testing.assert_allclose(regression_fresh_design_error(t, SIGMA, D, N, m), expected)


def test_closed_forms_reject_what_they_do_not_cover():
    with pytest.raises(ValueError, match="retention"):
        regression_relabel_error(3, "window", 1.0)
    with pytest.raises(ValueError, match="rows"):
        regression_fresh_design_error(3, 1.0, d=4, n=5, m=20)
