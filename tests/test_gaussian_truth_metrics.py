"""The Gaussian family's metrics relative to the truth (issue 12, item 5): ‖μ̂ − μ‖² and
log det Σ̂ − log det Σ against the human mixture's moment-matched Gaussian (Kazdan et al. 2024)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ecosystem.families.gaussian import GaussianFamily, GaussianState
from ecosystem.model import EcosystemModel
from ecosystem.scenario import GaussianFamilySpec, validate_scenario
from tests.conftest import tiny

F64 = torch.float64


class Truth:
    """A stand-in world whose moment-matched Gaussian is N((1, 2), diag(2, 3))."""

    def moments(self):
        return torch.tensor([1.0, 2.0], dtype=F64), torch.diag(torch.tensor([2.0, 3.0], dtype=F64))


def test_mean_error_and_logdet_ratio_by_hand():
    fam = GaussianFamily(GaussianFamilySpec(), 2, torch.device("cpu"))
    mean = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    cov = torch.tensor([[[2.0, 1.0], [1.0, 2.0]], [[2.0, 0.0], [0.0, 3.0]]], dtype=F64)  # det 3, det 6
    out = fam.truth(GaussianState(mean, cov), Truth())
    np.testing.assert_allclose(out["mean_error"].numpy(), [1 + 4, 0.0], atol=1e-15)
    np.testing.assert_allclose(out["logdet_ratio"].numpy(), [math.log(3 / 6), 0.0], atol=1e-14)
    collapsed = GaussianState(mean[:1], torch.zeros(1, 2, 2, dtype=F64))
    assert fam.truth(collapsed, Truth())["logdet_ratio"].item() == -math.inf


def test_the_run_records_them_per_developer_against_the_mixtures_moments():
    model = EcosystemModel(validate_scenario(tiny(steps=2)))
    for _ in range(2):
        model.step()
    frame = model.developer_frame()
    last = frame[frame.step == 2].sort_values("developer")
    mu, sigma = (x.numpy() for x in model.world.moments())
    state = model.state
    expected_error = ((state.mean.numpy() - mu) ** 2).sum(1)
    expected_ratio = np.linalg.slogdet(state.cov.numpy())[1] - np.linalg.slogdet(sigma)[1]
    np.testing.assert_allclose(last.mean_error.to_numpy(), expected_error, rtol=1e-12)
    np.testing.assert_allclose(last.logdet_ratio.to_numpy(), expected_ratio, rtol=1e-10, atol=1e-12)
    no_distance = EcosystemModel(validate_scenario(tiny(steps=1, metrics={"measure": ["quality"]})))
    no_distance.step()
    assert "mean_error" not in no_distance.developer_frame().columns
