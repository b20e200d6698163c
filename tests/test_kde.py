"""The kernel density family (issue 12, item 2): bandwidth rules by hand, log-densities against scipy and a
plain numpy sum, batched against one developer at a time, sampling, the Monte Carlo divergence, the running
statistics of accumulation, bad settings, and Kazdan et al.'s replace / accumulate / subsample direction."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy.special import logsumexp
from scipy.stats import gaussian_kde

import ecosystem.families.kde as kde_module
from ecosystem import scenario as schema
from ecosystem.families.kde import KdeFamily, KdeState, log_density
from ecosystem.model import EcosystemModel
from ecosystem.run import simulate
from ecosystem.scenario import KdeFamilySpec, ScenarioError, memory_estimate, validate_scenario
from tests.conftest import tiny

CPU = torch.device("cpu")
F64 = torch.float64


def family(dim: int, **spec) -> KdeFamily:
    """A KDE family whose ``reg`` is negligible (the rules' formulas exactly) unless given."""
    return KdeFamily(KdeFamilySpec(**({"reg": 1e-300} | spec)), dim, CPU)


def fitted(fam: KdeFamily, items: np.ndarray, weights: np.ndarray | None = None) -> KdeState:
    x = torch.as_tensor(items, dtype=F64)[None]
    w = torch.ones(x.shape[:2], dtype=F64) if weights is None else torch.as_tensor(weights, dtype=F64)[None]
    g = torch.Generator().manual_seed(0)
    return fam.fit(fam.init(1, g), x, w, g)


def bandwidth(state: KdeState) -> np.ndarray:
    return (state.chol @ state.chol.transpose(1, 2))[0].numpy()


def test_bandwidth_rules_match_their_formulas_by_hand():
    # 1-D, x = 0..4: mean 2, unbiased variance 10/4 = 2.5, n = 5, d = 1.
    x = np.arange(5.0)[:, None]
    np.testing.assert_allclose(bandwidth(fitted(family(1, bandwidth="scott"), x)), [[5 ** (-2 / 5) * 2.5]],
                               rtol=1e-12)
    np.testing.assert_allclose(bandwidth(fitted(family(1, bandwidth="silverman"), x)),
                               [[(5 * 3 / 4) ** (-2 / 5) * 2.5]], rtol=1e-12)
    np.testing.assert_allclose(bandwidth(fitted(family(1, bandwidth="fixed", width=0.3), x)), [[0.09]], rtol=1e-12)
    # 2-D, weights 1, 1, 2: ŵ = (¼, ¼, ½), n_eff = 1/(1/16 + 1/16 + 1/4) = 8/3, mean (1/2, 1);
    # centred rows (−½, −1), (½, −1), (0, 1): Σŵ(x−x̄)(x−x̄)ᵀ = [[1/8, 0], [0, 1]], over 1 − 3/8 = 5/8.
    x2, w2 = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 2.0]]), np.array([1.0, 1.0, 2.0])
    cov = np.array([[1 / 8, 0.0], [0.0, 1.0]]) / (5 / 8)
    # (in 2-D Silverman's factor (n_eff (d + 2)/4)^(−1/6) equals Scott's; the 1-D case above tells them apart)
    for rule, factor in (("scott", (8 / 3) ** (-1 / 6)), ("silverman", (8 / 3 * 4 / 4) ** (-1 / 6))):
        np.testing.assert_allclose(bandwidth(fitted(family(2, bandwidth=rule), x2, w2)), factor**2 * cov,
                                   rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bandwidth(fitted(family(2, bandwidth="fixed", width=2.0, reg=0.5), x2, w2)),
                               4.5 * np.eye(2), rtol=1e-12)  # reg lands on the diagonal


@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("weighted", [False, True])
def test_log_prob_matches_scipy_gaussian_kde(rule, weighted):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 0.7]])
    w = rng.uniform(0.2, 2.0, size=40) if weighted else None
    q = rng.normal(size=(25, 3)) * 3  # some far in the tails
    state = fitted(family(3, bandwidth=rule), x, w)
    want = gaussian_kde(x.T, bw_method=rule, weights=w).logpdf(q.T)
    got = family(3, bandwidth=rule).log_prob(state, torch.as_tensor(q)[None])[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_log_prob_with_a_fixed_bandwidth_is_the_plain_mixture_sum():
    x, q, h = np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5]]), np.array([[0.2, 0.1], [10.0, -4.0]]), 0.7
    state = fitted(family(2, bandwidth="fixed", width=h), x)
    sq = ((q[:, None, :] - x[None]) ** 2).sum(-1)  # (Q, B)
    want = logsumexp(-0.5 * sq / h**2, axis=1) - np.log(3) - np.log(2 * np.pi * h**2)
    np.testing.assert_allclose(family(2, bandwidth="fixed", width=h).log_prob(state, torch.as_tensor(q)[None])[0],
                               want, rtol=1e-12)


@pytest.mark.parametrize("rule", ["scott", "fixed"])
def test_batched_fit_and_log_prob_equal_one_developer_at_a_time(rule, monkeypatch):
    spec = {"bandwidth": rule} | ({"width": 0.5} if rule == "fixed" else {})
    g = torch.Generator().manual_seed(3)
    items = torch.randn(4, 30, 2, generator=g, dtype=F64) * torch.tensor([1.0, 3.0], dtype=F64)
    weights = torch.ones(4, 30, dtype=F64)
    weights[1, 12:] = 0  # a shorter set
    weights[2] = torch.rand(30, generator=g, dtype=F64) + 0.1
    weights[3, ::2] = 0  # padding in between
    queries = torch.randn(4, 50, 2, generator=g, dtype=F64) * 2
    fam = family(2, **spec)
    monkeypatch.setattr(kde_module, "KDE_BLOCK", 4 * 30 * 7)  # blocks of 7 query points
    batched = fam.fit(fam.init(4, g), items, weights, g)
    logp = fam.log_prob(batched, queries)
    for n in range(4):
        keep = weights[n] > 0
        alone = fam.fit(fam.init(1, g), items[n][keep][None], weights[n][keep][None], g)
        np.testing.assert_allclose(batched.chol[n].numpy(), alone.chol[0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(logp[n].numpy(), fam.log_prob(alone, queries[n][None])[0].numpy(), rtol=1e-11)
    # A developer without data keeps its previous model.
    weights[0] = 0
    again = fam.fit(batched, items, weights, g)
    np.testing.assert_allclose(fam.log_prob(again, queries)[0].numpy(), logp[0].numpy(), rtol=1e-12)


def test_samples_have_the_kde_moments_and_follow_the_weights():
    x = np.array([[-5.0, 0.0], [5.0, 1.0], [0.0, 4.0]])
    w = np.array([0.2, 0.5, 0.3])
    fam = family(2, bandwidth="fixed", width=0.8)
    state = fitted(fam, x, w)
    k = 40_000
    s = fam.sample(state, k, torch.Generator().manual_seed(4))[0].numpy()
    mean = w @ x
    cov = (w[:, None] * (x - mean)).T @ (x - mean) + 0.64 * np.eye(2)
    se_mean = np.sqrt(np.diag(cov) / k)
    assert np.all(np.abs(s.mean(0) - mean) < 4 * se_mean)
    # standard error of a sample covariance entry: √((σ_ii σ_jj + σ_ij²)/k) (Gaussian approximation is
    # conservative enough at 5 SE for this mixture's fourth moments)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / k)
    assert np.all(np.abs(np.cov(s.T) - cov) < 5 * se_cov), (np.cov(s.T), cov)
    nearest = np.argmin(((s[:, None] - x[None]) ** 2).sum(-1), 1)  # kernels are far apart
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / k, w, atol=4 * np.sqrt(0.25 / k))
    described = fam.describe(state)
    np.testing.assert_allclose(described["bandwidth"].numpy(), [0.8], rtol=1e-12)
    np.testing.assert_allclose(described["variance"].numpy(), [np.trace(cov) / 2], rtol=1e-12)


def test_divergence_is_a_symmetric_kl_on_shared_draws():
    g = torch.Generator().manual_seed(5)
    fam = family(2, bandwidth="fixed", width=0.5, divergence_samples=400)
    items = torch.randn(3, 20, 2, generator=g, dtype=F64)
    items[1] = items[0]  # developer 1 equals developer 0
    items[2] = items[0] + torch.tensor([3.0, 0.0], dtype=F64)  # developer 2 is developer 0 shifted
    state = fam.fit(fam.init(3, g), items, torch.ones(3, 20, dtype=F64), g)
    i, j = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])
    div = fam.divergence(state, torch.empty(0), i, j).numpy()
    assert div[0] == 0.0  # the same model on the same draws
    np.testing.assert_allclose(div[1], div[2], rtol=1e-12)
    np.testing.assert_allclose(fam.divergence(state, torch.empty(0), j, i).numpy(), div, rtol=1e-12)
    # The estimate by hand: KL(p‖q) = mean over p's shared draws of log p − log q, both ways.
    draws = fam.shared_draws(state)
    lp = lambda n, x: log_density(KdeState(state.points[n:n + 1], state.log_weights[n:n + 1],  # noqa: E731
                                           state.chol[n:n + 1]), x[None])[0]
    by_hand = (lp(0, draws[0]) - lp(2, draws[0])).mean() + (lp(2, draws[2]) - lp(0, draws[2])).mean()
    np.testing.assert_allclose(div[1], by_hand.item(), rtol=1e-10)
    # A translated copy: the true Jeffreys divergence is at most that of one kernel shifted by 3
    # (|δ|²/h² = 36, by joint convexity) and positive.
    assert 0 < div[1] < 36


def test_accumulate_fits_from_the_growing_set_as_from_the_whole_set():
    def accumulate(running: bool) -> EcosystemModel:
        raw = tiny(steps=6)
        raw["developers"]["family"] = {"kind": "kde", "bandwidth": "silverman"}
        raw["developers"]["data"] = {"synthetic": 0.6, "human_fresh": 0.4, "retention": "accumulate"}
        model = EcosystemModel(validate_scenario(raw))
        assert model.running is not None
        if not running:
            model.running = None
        for _ in range(6):
            model.step()
        return model

    fast, whole = accumulate(True), accumulate(False)
    assert fast.state.points.shape[1] == 6 * 20
    for name in ("points", "log_weights", "chol"):
        np.testing.assert_allclose(getattr(fast.state, name).numpy(), getattr(whole.state, name).numpy(),
                                   rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(fast.model_frame()["nll"], whole.model_frame()["nll"], rtol=1e-12)


def error_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(("family_spec", "start"), [
    ({"kind": "kde", "bandwidth": "fixed"}, "developers.family.width: give it with bandwidth 'fixed'"),
    ({"kind": "kde", "width": 0.5}, "developers.family.width: give it with bandwidth 'fixed'"),
    ({"kind": "kde", "bandwidth": "fixed", "width": -1.0}, "developers.family.width"),
    ({"kind": "kde", "bandwidth": "gauss"}, "developers.family.bandwidth"),
    ({"kind": "kde", "reg": 0.0}, "developers.family.reg"),
])
def test_bad_kde_settings_get_one_line(family_spec, start):
    assert error_of(tiny(developers={"family": family_spec})).startswith(start)


def test_kde_needs_a_vector_world_and_oversized_sets_are_refused(monkeypatch):
    linear = tiny(world={"kind": "linear"}, developers={"family": {"kind": "kde"}})
    assert error_of(linear).startswith("developers.family.kind: 'kde' cannot model a 'linear' world")
    monkeypatch.setenv(schema.MEMORY_ENV, "64G")
    raw = tiny(steps=200, developers={"count": 1000, "family": {"kind": "kde"}, "train": {"samples": 20_000},
                                      "data": {"synthetic": 1.0, "retention": "accumulate"}})
    assert error_of(raw).startswith("developers.train.samples: a run needs about")
    small = validate_scenario(tiny(steps=50, developers={
        "count": 10, "family": {"kind": "kde"}, "train": {"samples": 100},
        "data": {"synthetic": 1.0, "retention": "accumulate"}}))
    assert memory_estimate(small)["the models"][1] >= 8 * 10 * 100 * 50 * 3  # every kept item, 2-D + weight


def final_nll(retention: str, steps: int) -> np.ndarray:
    """Per-developer held-out NLL after ``steps`` generations minus after the first (40 chains)."""
    raw = yaml.safe_load(Path("scenarios/papers/kazdan_kde.yaml").read_text())
    raw.pop("sweep")
    raw["steps"], raw["developers"]["data"]["retention"] = steps, retention
    raw["metrics"] = {"pairwise": "none", "measure": ["quality"], "every": steps}
    model, _ = simulate(validate_scenario(raw))
    frame = model.developer_frame()
    rise = frame[frame.step == steps].nll.to_numpy() - frame[frame.step == 1].nll.to_numpy()
    return rise


def test_kazdan_kde_replace_degrades_accumulate_holds_subsample_between():
    """Kazdan et al. (2024): refitting KDEs on their own samples, the held-out NLL rises most when data are
    replaced, least when they accumulate, and between when the accumulated data are subsampled to one batch.
    Each gap exceeds 3 standard errors of the difference of means over 40 independent chains."""
    rises = {r: final_nll(r, 8) for r in ("replace", "accumulate_subsample", "accumulate")}
    order = list(rises)
    for worse, better in pairwise(order):
        a, b = rises[worse], rises[better]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert a.mean() - b.mean() > 3 * se, (worse, better, a.mean(), b.mean(), se)
    assert rises["accumulate"].mean() < 0.2  # stays near its start (nats per item)


def test_a_degenerate_set_keeps_a_finite_density():
    """Scott's rule on identical items gives Σ̂ = 0; ``reg`` keeps H proper and the log-density finite."""
    fam = KdeFamily(KdeFamilySpec(), 2, CPU)
    state = fitted(fam, np.ones((5, 2)))
    logp = fam.log_prob(state, torch.tensor([[[1.0, 1.0], [1.0, 1.0 + 1e-5]]], dtype=F64))
    assert torch.isfinite(logp).all() and logp[0, 0] > logp[0, 1]
