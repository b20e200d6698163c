"""Homogenization as Vu, Reeves & Wenger (2025, Table 4) measure it, on the linear surrogate: the pairwise
cosine similarity of the models' outputs ŷ_k = X θ̂_k on probes from each private set and from the public
domain, t = 0 (generation 1) against t = 15, from ``scenarios/papers/vu_alpha_beta_grid.yaml`` at β = 0.5.

Their statement: homogenization on public data at every α, on private data only when α > 0. In the linear
surrogate a model refits the same real data every generation, so at α = 0 nothing moves on any probe set
(the public part of their statement holds for α > 0 only; their LMs keep training on the public data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.vu_paper import grid_scenario, homogenization, output_similarity

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_alpha_beta_grid.yaml"
Z = 4.0


def test_output_similarity_is_the_cosine_of_predictions():
    rng = np.random.default_rng(0)
    x, thetas = rng.normal(size=(30, 3)), rng.normal(size=(3, 3))
    y = x @ thetas.T  # (P, K)
    pairs = [(0, 1), (0, 2), (1, 2)]
    want = np.mean([y[:, i] @ y[:, j] / np.sqrt((y[:, i] @ y[:, i]) * (y[:, j] @ y[:, j])) for i, j in pairs])
    assert output_similarity(thetas, x) == pytest.approx(want, rel=1e-12)
    assert output_similarity(np.stack([thetas[0], 2 * thetas[0]]), x) == pytest.approx(1.0)


@pytest.mark.slow
def test_homogenization_on_private_data_only_when_alpha_positive():
    base = yaml.safe_load(SCENARIO.read_text())
    for alpha, reps in ((0.0, 1), (0.5, 8), (1.0, 2)):
        sims = homogenization(grid_scenario(base, alpha, 0.5), reps)
        assert set(sims) == {"private 0", "private 1", "public"}
        for name, s in sims.items():
            rise = s[:, -1] - s[:, 0]
            if alpha == 0:
                assert np.all(np.abs(rise) < 1e-9), name
            else:
                se = rise.std(ddof=1) / np.sqrt(reps)
                assert rise.mean() > Z * se and rise.mean() > 0.05, (alpha, name, rise.mean(), se)
