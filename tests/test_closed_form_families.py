from __future__ import annotations

import numpy as np
import torch

from ecosystem.families.gaussian import GaussianFamily, GaussianState, sqrtm_psd
from ecosystem.families.linear import LinearFamily
from ecosystem.scenario import GaussianFamilySpec, LinearFamilySpec
from tests.conftest import divergence_matrix

CPU = torch.device("cpu")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_fit_matches_numpy_per_developer_with_padding():
    g = gen()
    items = torch.randn(3, 12, 2, generator=g, dtype=torch.float64)
    weights = torch.ones(3, 12, dtype=torch.float64)
    weights[1, 7:] = 0  # developer 1 has 7 items, the rest is padding
    for estimator, ddof in (("mle", 0), ("unbiased", 1)):
        fam = GaussianFamily(GaussianFamilySpec(estimator=estimator), 2, CPU)
        state = fam.fit(fam.init(3, g), items, weights, g)
        for k, n in ((0, 12), (1, 7), (2, 12)):
            x = items[k, :n].numpy()
            np.testing.assert_allclose(state.mean[k].numpy(), x.mean(0))
            np.testing.assert_allclose(state.cov[k].numpy(), np.cov(x, rowvar=False, ddof=ddof), atol=1e-12)


def test_gaussian_sampling_log_prob_and_temperature():
    fam = GaussianFamily(GaussianFamilySpec(), 2, CPU)
    state = GaussianState(torch.tensor([[1.0, -2.0]], dtype=torch.float64),
                          torch.tensor([[[2.0, 0.5], [0.5, 1.0]]], dtype=torch.float64))
    x = fam.sample(state, 20000, gen(1))[0].numpy()
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=4 * np.sqrt(2.0 / 20000))
    np.testing.assert_allclose(np.cov(x, rowvar=False), [[2.0, 0.5], [0.5, 1.0]], atol=0.06)
    hot = fam.sample(state, 20000, gen(1), temperature=2.0)[0].numpy()
    assert abs(np.var(hot[:, 0]) / np.var(x[:, 0]) - 2.0) < 0.1
    from scipy.stats import multivariate_normal

    point = torch.tensor([[[0.3, -1.0]]], dtype=torch.float64)
    expected = multivariate_normal([1.0, -2.0], [[2.0, 0.5], [0.5, 1.0]]).logpdf([0.3, -1.0])
    assert abs(fam.log_prob(state, point).item() - expected) < 1e-12


def test_w2_divergence_matches_explicit_square_roots():
    g = gen(2)
    for d in (1, 2, 3):
        a = torch.randn(4, d, d, generator=g, dtype=torch.float64)
        cov = a @ a.transpose(1, 2) + 0.1 * torch.eye(d, dtype=torch.float64)
        mean = torch.randn(4, d, generator=g, dtype=torch.float64)
        out = divergence_matrix(GaussianFamily(GaussianFamilySpec(), d, CPU), GaussianState(mean, cov), None, 4)
        for i in range(4):
            for j in range(4):
                ra = sqrtm_psd(cov[i])
                ref = ((mean[i] - mean[j]) ** 2).sum() + torch.trace(cov[i] + cov[j]) - 2 * torch.trace(
                    sqrtm_psd(ra @ cov[j] @ ra))
                assert abs(out[i, j] - (0 if i == j else ref)) < 1e-10
        assert torch.allclose(out, out.T)


def test_linear_weighted_least_squares_matches_numpy():
    g = gen(3)
    x = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(2, 30, generator=g,
                                                                                      dtype=torch.float64)
    w = torch.rand(2, 30, generator=g, dtype=torch.float64)
    fam = LinearFamily(LinearFamilySpec(), 3, CPU)
    state = fam.fit(fam.init(2, g), torch.cat([x, y[..., None]], -1), w, g)
    for k in range(2):
        sw = np.sqrt(w[k].numpy())
        theta, *_ = np.linalg.lstsq(x[k].numpy() * sw[:, None], y[k].numpy() * sw, rcond=None)
        np.testing.assert_allclose(state.theta[k].numpy(), theta, atol=1e-12)
    prompts = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    fixed = LinearFamily(LinearFamilySpec(noise=1e-9), 3, CPU).sample(state, 5, g, prompts=prompts)
    np.testing.assert_allclose(fixed[..., -1].numpy(), torch.einsum("nkd,nd->nk", prompts, state.theta).numpy(),
                               atol=1e-7)
