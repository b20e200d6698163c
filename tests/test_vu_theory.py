"""Vu, Reeves & Wenger (2025), the theory figures: ρ(Q) against α (Theorem 3) and the relative efficiency
over (α, β) for K = 4 (``scenarios/papers/vu_linear_interaction.yaml``), from :mod:`analysis.theory`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.theory import ols_excess_loss
from analysis.vu_paper import efficiency_frame, rho_frame, theory_figure

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_linear_interaction.yaml"
Z = 4.0


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


def test_rho_rises_with_alpha_to_one(base):
    # Thm 3: convergence slows as α → 1 (ρ(Q) increasing) and stops at α = 1 (ρ = 1); at α = 1 the
    # expected loss grows by the same amount every generation (linear variance growth).
    frame = rho_frame(base, np.linspace(0, 1, 11))
    rho = frame["rho"].to_numpy()
    assert rho[0] == pytest.approx(0.0, abs=1e-12) and np.all(np.diff(rho) > 0)
    assert np.all(rho[:-1] < 1) and rho[-1] == pytest.approx(1.0, abs=1e-9)
    assert frame.attrs["growth_at_alpha_1"] > 0


def test_ols_excess_loss_is_sigma2_trace():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    var = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2]])
    expected = [np.trace(np.diag(v) @ np.linalg.inv(x.T @ x)) * 4.0 for v in var]
    np.testing.assert_allclose(ols_excess_loss(x, 2.0, var), expected, rtol=1e-12)


@pytest.mark.slow  # 84 cells × 2 worlds: ~6 s of CPU, over 10 s on a shared machine
def test_efficiency_peaks_near_the_middle(base):
    # Their K = 4 efficiency surface peaks near α = β = 0.5; ecosim's (Theorem 1, two worlds, the last generation)
    # peaks within 0.2 of it in each coordinate, and both ends of each axis are worse.
    levels = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8)
    frame = efficiency_frame(base, levels, (*levels, 1.0), worlds=(11, 12))
    best = frame.loc[frame["efficiency"].idxmax()]
    assert abs(best["alpha"] - 0.5) <= 0.2 and abs(best["beta"] - 0.5) <= 0.2, best
    table = frame.pivot(index="alpha", columns="beta", values="efficiency")
    peak = best["efficiency"]
    assert table.iloc[0].max() < peak and table.iloc[-1].max() < peak  # α = 0 and α = 0.8
    assert table.iloc[:, 0].max() < peak and table.iloc[:, -1].max() < peak  # β = 0 and β = 1
    assert np.all(frame["efficiency"] > 0)


@pytest.mark.slow
def test_simulated_efficiency_matches_the_expected(base, tmp_path):
    reps = 40
    cells = [(0.1, 0.5), (0.5, 0.5), (0.9, 0.5)]
    frame = efficiency_frame(base, (), (), worlds=(11,), reps=reps, cells=cells)
    assert np.all(np.abs(frame["loss_simulated"] - frame["loss"]) <= Z * frame["loss_simulated_se"]), frame
    rho = rho_frame(base, (0.0, 0.5, 1.0))
    assert theory_figure(rho, frame, frame, tmp_path / "theory.png").stat().st_size > 0
