"""The closed forms of Shumailov et al. 2024, Kazdan et al. 2024 and Vu et al. 2025 (Thm 1), reproduced
through the real agents, data policy and families.

Each check compares a Monte Carlo mean with its closed form within a few standard errors of that mean,
estimated from the same replications.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.theory import (
    gaussian_accumulate_variance,
    gaussian_replace_mean_sq,
    gaussian_replace_variance,
    vu_moments,
)
from ecosystem.model import EcosystemModel
from ecosystem.network import build_network, reading_matrix
from ecosystem.scenario import validate_scenario
from ecosystem.seeding import Seeds

pytestmark = pytest.mark.slow  # Monte Carlo reproductions of the literature: minutes in all

Z = 4.0  # standard errors allowed


def gaussian_chains(retention: str, m: int, steps: int, chains: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``chains`` independent developers, each reading only its own outputs: per-step variances and means."""
    scenario = validate_scenario({
        "seed": seed, "steps": steps, "device": "cpu",
        "world": {"kind": "gaussian", "dim": 1, "concepts": 1, "spread": 1.0, "heldout": 50},
        "communities": [{"authors": 1, "rate": 0}],
        "developers": {"count": chains, "family": {"kind": "gaussian", "estimator": "mle"},
                       "train": {"samples": m}, "publish": {"samples": m},
                       "data": {"synthetic": 1.0, "retention": retention}},
        "network": {"kind": "empty", "self_loops": True},
    })
    model = EcosystemModel(scenario)
    variances, means = [], []
    for _ in range(steps):
        model.step()
        variances.append(model.state.cov[:, 0, 0].numpy().copy())
        means.append(model.state.mean[:, 0].numpy().copy())
    return np.array(variances), np.array(means)  # (steps, chains)


def assert_mc_close(samples: np.ndarray, expected: np.ndarray) -> None:
    """Row-wise: the mean of ``samples (steps, R)`` within Z standard errors of ``expected (steps,)``.

    A floating-point floor of 1e-9 covers rows with no Monte Carlo noise at all (a first generation fitted on
    fixed real data is the same in every replication)."""
    mean = samples.mean(axis=1)
    se = samples.std(axis=1, ddof=1) / np.sqrt(samples.shape[1])
    assert np.all(np.abs(mean - expected) <= Z * se + 1e-9), np.c_[mean, expected, se]


def test_replace_mle_variance_decays_geometrically():
    # Shumailov et al. 2024: E[σ̂²_n] = σ²((M−1)/M)^n; M = 20 gives 0.5987σ² at fit 10, 0.3585σ² at fit 20.
    variances, means = gaussian_chains("replace", m=20, steps=20, chains=1500, seed=1)
    steps = np.arange(1, 21)
    assert_mc_close(variances, gaussian_replace_variance(20, steps))
    assert_mc_close(means**2, gaussian_replace_mean_sq(20, steps))
    assert gaussian_replace_variance(20, 10) == pytest.approx(0.5987, abs=1e-4)
    # The decay is visible beyond noise: fit 20 is well below fit 1.
    assert variances[19].mean() < 0.45 < 0.9 < variances[0].mean()


def test_accumulate_mle_variance_does_not_collapse():
    # Kazdan et al. 2024, Thm 1: E[σ̂²_t] = σ² ∏_{k≤t}(1 − 1/(k²n)) → σ² sin(π/√n)/(π/√n) = 0.8434σ² for n = 10.
    variances, _ = gaussian_chains("accumulate", m=10, steps=15, chains=1500, seed=2)
    assert_mc_close(variances, gaussian_accumulate_variance(10, np.arange(1, 16)))
    replace, _ = gaussian_chains("replace", m=10, steps=15, chains=400, seed=3)
    assert variances[-1].mean() > 0.8 > 0.3 > replace[-1].mean()


def linear_runs(network: dict, alpha: float, beta: float, reps: int, k: int = 3, steps: int = 4):
    """Replications of K linear models on a fixed world (world.seed pinned), varying only the run seed."""
    base = {
        "steps": steps, "device": "cpu",
        "world": {"kind": "linear", "dim": 3, "noise": 1.0, "private_samples": 8, "public_samples": 6,
                  "domain_overlap": 0.3, "heldout": 20, "seed": 11},
        "communities": [{"authors": 1, "rate": 0}],
        "developers": {"count": k, "family": {"kind": "linear", "noise": 1.0}, "publish": {"samples": 7},
                       "data": {"alpha": alpha, "beta": beta, "mix": "weight", "retention": "replace"}},
        "network": network,
    }
    thetas = []
    for r in range(reps):
        model = EcosystemModel(validate_scenario({**base, "seed": r}))
        per_step = []
        for _ in range(steps):
            model.step()
            per_step.append(model.state.theta.numpy().copy())
        thetas.append(per_step)
    return model, np.array(thetas)  # (reps, steps, K, D)


def theory_for(model: EcosystemModel, alpha: float, beta: float, steps: int):
    world = model.world
    private = [(b.items[:, :-1].numpy(), b.items[:, -1].numpy()) for b in (world.original(i) for i in range(3))]
    public = (world.public().items[:, :-1].numpy(), world.public().items[:, -1].numpy())
    designs = list(world.prompts(7, model.generator).numpy())
    return vu_moments(private, public, designs, reading_matrix(model.graph), alpha, beta, 1.0, steps)


@pytest.mark.parametrize("network", [{"kind": "complete"}, {"kind": "star"}], ids=["uniform", "star-W"])
def test_vu_theorem_1_mean_and_covariance(network):
    # the stacked estimates have mean M_t and covariance C_t (Vu et al. 2025, Thm 1),
    # with the graph's reading matrix W in place of uniform mixing for the star.
    alpha, beta, reps, steps = 0.5, 0.5, 400, 4
    model, thetas = linear_runs(network, alpha, beta, reps, steps=steps)
    means, covs = theory_for(model, alpha, beta, steps)
    flat = thetas.reshape(reps, steps, -1)  # (R, T, K·D)
    # Generation 1 sees only real data: identical in every replication and equal to the weighted OLS.
    np.testing.assert_allclose(flat[:, 0], np.broadcast_to(means[0].ravel(), flat[:, 0].shape), atol=1e-9)
    for t in range(1, steps):
        emp_mean = flat[:, t].mean(0)
        emp_cov = np.cov(flat[:, t], rowvar=False)
        var = np.diag(covs[t])
        assert np.all(np.abs(emp_mean - means[t].ravel()) <= Z * np.sqrt(var / reps))
        # Standard error of a sample covariance of Gaussians: sqrt((C_ii C_jj + C_ij²)/(R−1)).
        se_cov = np.sqrt((np.outer(var, var) + covs[t] ** 2) / (reps - 1))
        assert np.all(np.abs(emp_cov - covs[t]) <= Z * se_cov)
    # The models read each other, so their errors are correlated across entities (off-diagonal blocks).
    assert np.abs(covs[-1][:3, 3:6]).max() > 0.05 * np.diag(covs[-1]).max()


def test_vu_reading_matrix_is_uniform_for_complete_graph_with_self_loops():
    scenario = validate_scenario({"developers": {"count": 4}, "network": {"kind": "complete"}})
    g = build_network(scenario.network, 4, Seeds.from_root(0).network)
    np.testing.assert_allclose(reading_matrix(g), np.full((4, 4), 0.25))


def test_vu_expected_distance_matches_the_simulated_distance():
    # The report's overlay for linear runs: E‖θ̂ − θ‖² from the recursion vs the mean simulated `distance`
    # over replications sharing the world (ring reading network, α = 0.5).
    from analysis.report import theory_curve
    from analysis.theory import vu_expected_distance
    from ecosystem.run import frames

    base = {
        "steps": 5, "device": "cpu",
        "world": {"kind": "linear", "dim": 3, "noise": 1.0, "private_samples": 8, "public_samples": 6,
                  "heldout": 10, "seed": 5},
        "communities": [{"authors": 1, "rate": 0}],
        "developers": {"count": 4, "family": {"kind": "linear", "noise": 1.0}, "publish": {"samples": 6},
                       "data": {"alpha": 0.5, "beta": 0.5, "mix": "weight"}},
        "network": {"kind": "ring", "k": 2},
    }
    distances = []
    for r in range(300):
        model = EcosystemModel(validate_scenario({**base, "seed": r}))
        for _ in range(5):
            model.step()
        distances.append(frames(model)[0]["distance"].to_numpy())
    expected = vu_expected_distance(validate_scenario(base))
    assert_mc_close(np.array(distances).T, expected)
    assert expected[-1] != pytest.approx(expected[0], rel=0.05)  # the synthetic generations move it
    curve = theory_curve(validate_scenario(base).model_dump(mode="json"), np.arange(1, 6))
    np.testing.assert_allclose(curve["distance"], expected)
    unweighted = {**base, "developers": {**base["developers"], "data": {"alpha": 0.5, "beta": 0.5}}}
    assert theory_curve(validate_scenario(unweighted).model_dump(mode="json"), np.arange(1, 6)) is None
