"""Generation 1 is the t = 0 of Vu, Reeves & Wenger (2025): real data only, weights β and 1 − β, in every mix.

Hand-built pools check the weights and counts the scrape gives in generations 1 and 2; a linear ecosystem
at α = 1 checks that the first model is the weighted least-squares fit on real data (it used to train on
nothing), and that Theorem 1's moments, started from that fit, still hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.theory import vu_moments
from ecosystem.model import EcosystemModel
from ecosystem.network import reading_matrix
from ecosystem.scenario import DataSpec, validate_scenario
from ecosystem.scrape import ORIGINAL, PUBLIC, SYNTHETIC, Block, Policies, Reading, Sources, scrape

N, S_ORIGINAL, S_PUBLIC, S_PUBLISHED = 2, 4, 3, 12
BETA = 0.75


def sources(published: bool) -> Sources:
    size = N * S_ORIGINAL + S_PUBLIC + N * S_PUBLISHED
    start = N * S_ORIGINAL + S_PUBLIC
    return Sources(Block(0, S_ORIGINAL), Block(N * S_ORIGINAL, S_PUBLIC), Block(start, 0),
                   Block(start, S_PUBLISHED) if published else Block(0, 0),
                   np.zeros(size, dtype=np.int8), np.ones(size), np.ones(size, dtype=bool))


def acquire(alpha: float, mix: str, published: bool, samples: int = 20):
    p = Policies.stack([DataSpec(alpha=alpha, beta=BETA, mix=mix, retention="replace")] * N, samples)
    reading = Reading.from_matrix(np.full((N, N), 1 / N))
    return scrape(p, sources(published), reading, np.random.default_rng(0))


def weight_by_source(a, row: int) -> dict[int, set[float]]:
    mine = a.row == row
    return {tag: set(np.round(a.weight[mine & (a.source == tag)], 12)) for tag in (ORIGINAL, PUBLIC, SYNTHETIC)}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_generation_one_weights_are_beta_and_one_minus_beta(alpha):
    a = acquire(alpha, "weight", published=False)
    for k in range(N):
        got = weight_by_source(a, k)
        # Every private item of k's own set at weight β, every public item at 1 − β, nothing synthetic.
        assert got == {ORIGINAL: {BETA}, PUBLIC: {1 - BETA}, SYNTHETIC: set()}
        assert sorted(a.item[(a.row == k) & (a.source == ORIGINAL)]) == list(range(k * S_ORIGINAL,
                                                                                   (k + 1) * S_ORIGINAL))
        assert np.sum((a.row == k) & (a.source == PUBLIC)) == S_PUBLIC


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_generation_two_weights_apply_alpha(alpha):
    a = acquire(alpha, "weight", published=True)
    want = {ORIGINAL: {(1 - alpha) * BETA}, PUBLIC: {(1 - alpha) * (1 - BETA)}, SYNTHETIC: {alpha / N}}
    want = {tag: {round(w, 12) for w in ws if w > 0} for tag, ws in want.items()}  # zero weights are dropped
    for k in range(N):
        assert weight_by_source(a, k) == want


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_generation_one_counts_in_the_sample_mix(alpha):
    # 20 draws at t = 0: 15 private, 5 public whatever α (was 20(1−α)β + the synthetic shortfall private).
    a = acquire(alpha, "sample", published=False)
    for k in range(N):
        mine = a.row == k
        assert [int(np.sum(mine & (a.source == tag))) for tag in (ORIGINAL, PUBLIC, SYNTHETIC)] == [15, 5, 0]
    later = acquire(alpha, "sample", published=True)
    assert int(np.sum((later.row == 0) & (later.source == SYNTHETIC))) == round(20 * alpha)


def linear_scenario(alpha: float, seed: int, network=None) -> dict:
    return {
        "seed": seed, "steps": 4, "device": "cpu",
        "world": {"kind": "linear", "dim": 3, "noise": 1.0, "private_samples": 8, "public_samples": 6,
                  "domain_overlap": 0.3, "heldout": 10, "seed": 11},
        "communities": [{"authors": 1, "rate": 0}],
        "developers": {"count": 3, "family": {"kind": "linear", "noise": 1.0}, "publish": {"samples": 7},
                       "data": {"alpha": alpha, "beta": BETA, "mix": "weight", "retention": "replace"}},
        "network": network or {"kind": "complete"},
    }


def test_alpha_one_first_model_is_the_real_data_fit():
    model = EcosystemModel(validate_scenario(linear_scenario(1.0, 0)))
    model.step()
    world = model.world
    xp, yp = world.public().items[:, :-1].numpy(), world.public().items[:, -1].numpy()
    for k in range(3):
        x, y = world.original(k).items[:, :-1].numpy(), world.original(k).items[:, -1].numpy()
        # Reference: weighted least squares by stacking √w-scaled rows.
        a = np.vstack([np.sqrt(BETA) * x, np.sqrt(1 - BETA) * xp])
        b = np.concatenate([np.sqrt(BETA) * y, np.sqrt(1 - BETA) * yp])
        want = np.linalg.lstsq(a, b, rcond=None)[0]
        np.testing.assert_allclose(model.state.theta[k].numpy(), want, atol=1e-9)
        assert np.abs(want).max() > 0.1  # not θ = 0, where the models used to start


@pytest.mark.slow
def test_alpha_one_theorem_1_moments_from_the_real_fit():
    # At α = 1 the models then only read each other: the mean stays the t = 0 fit propagated by Q, the
    # covariance grows; both match the recursion within Monte Carlo error.
    reps, steps, z = 300, 4, 4.0
    thetas = []
    for r in range(reps):
        model = EcosystemModel(validate_scenario(linear_scenario(1.0, r)))
        per = []
        for _ in range(steps):
            model.step()
            per.append(model.state.theta.numpy().ravel().copy())
        thetas.append(per)
    flat = np.array(thetas)  # (R, T, K·D)
    world = model.world
    arrays = [(b.items[:, :-1].numpy(), b.items[:, -1].numpy()) for b in (world.original(i) for i in range(3))]
    public = (world.public().items[:, :-1].numpy(), world.public().items[:, -1].numpy())
    designs = list(world.prompts(7, model.generator).numpy())
    means, covs = vu_moments(arrays, public, designs, reading_matrix(model.graph), 1.0, BETA, 1.0, steps)
    np.testing.assert_allclose(flat[:, 0], np.broadcast_to(means[0].ravel(), flat[:, 0].shape), atol=1e-9)
    for t in range(1, steps):
        var = np.diag(covs[t])
        assert np.all(np.abs(flat[:, t].mean(0) - means[t].ravel()) <= z * np.sqrt(var / reps))
        emp_var = flat[:, t].var(0, ddof=1)
        assert np.all(np.abs(emp_var - var) <= z * var * np.sqrt(2 / (reps - 1)))
    assert np.all(np.diag(covs[-1]) > np.diag(covs[1]))  # no convergence at α = 1: the variance grows
