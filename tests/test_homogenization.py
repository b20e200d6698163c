"""Homogenization measures on hand-made model sets, and the effects tables on hand-made frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import effects
from analysis.homogenization import (
    distinctiveness,
    effective_models,
    homogenization_over_time,
    pairwise_divergence,
    quality_spread,
    time_to_consensus,
)


def squared_distances(points: np.ndarray) -> np.ndarray:
    """(N, N) squared Euclidean distances: the W2² between Gaussians of equal covariance at ``points``."""
    return ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)


def test_identical_models_are_one():
    d = np.zeros((3, 5, 5))
    np.testing.assert_allclose(effective_models(d), 1.0)
    np.testing.assert_allclose(effective_models(d, q=2.0), 1.0)


def test_far_apart_models_are_n():
    points = 100.0 * np.eye(6)  # six models, pairwise W2² = 20000
    d = squared_distances(points)[None]
    np.testing.assert_allclose(effective_models(d), 6.0, rtol=1e-9)
    np.testing.assert_allclose(effective_models(d, q=2.0), 6.0, rtol=1e-9)


@pytest.mark.parametrize("sizes", [(3, 3), (2, 4)])
def test_two_tight_clusters(sizes):
    # Two clusters of near-identical models far apart: the Hill number of order 1 of the cluster shares,
    # exp(H), which is 2 for equal sizes (Leinster & Cobbold 2012); order 2 gives 1 / Σ share².
    rng = np.random.default_rng(0)
    centres = np.repeat([[0.0, 0.0], [50.0, 0.0]], sizes, axis=0)
    d = squared_distances(centres + 1e-4 * rng.standard_normal(centres.shape))[None]
    shares = np.array(sizes) / sum(sizes)
    np.testing.assert_allclose(effective_models(d), np.exp(-(shares * np.log(shares)).sum()), rtol=1e-6)
    np.testing.assert_allclose(effective_models(d, q=2.0), 1 / (shares**2).sum(), rtol=1e-6)
    if sizes == (3, 3):
        np.testing.assert_allclose(effective_models(d), 2.0, rtol=1e-6)


def test_effective_models_scale_and_asymmetry():
    # Two models at divergence s: Z = [[1, e^{−s/scale}], ...], Zp = (1 + e^{−1})/2 at s = scale, so ¹D = 2/(1+e^{−1}).
    d = np.array([[[0.0, 3.0], [1.0, 0.0]]])  # asymmetric: symmetrised to 2
    assert effective_models(d, scale=2.0)[0] == pytest.approx(2 / (1 + math.exp(-1)))
    # The diagonal is ignored (a model is identical to itself).
    d_diag = d + 5 * np.eye(2)
    assert effective_models(d_diag, scale=2.0)[0] == pytest.approx(2 / (1 + math.exp(-1)))


def test_within_and_between_parts():
    groups = [0, 0, 1, 1]
    d = np.full((2, 4, 4), 3.0)
    same = np.equal.outer(groups, groups)
    d[:, same] = 1.0
    d[:, np.eye(4, dtype=bool)] = 0.0
    d[1] *= 2  # the second step is twice as divergent
    frame = pairwise_divergence(d, groups)
    assert frame["step"].tolist() == [1, 2]
    assert frame["divergence_within"].tolist() == pytest.approx([1.0, 2.0])
    assert frame["divergence_between"].tolist() == pytest.approx([3.0, 6.0])
    # 4 within pairs at 1 and 8 between pairs at 3 among 12 ordered pairs.
    assert frame["divergence"].tolist() == pytest.approx([28 / 12, 56 / 12])

    single = pairwise_divergence(d)  # one community: everything is within
    assert single["divergence_within"].tolist() == pytest.approx(frame["divergence"].tolist())
    assert single["divergence_between"].isna().all()

    table = homogenization_over_time(d, groups, scale=1.0)
    assert list(table.columns) == ["step", "divergence", "divergence_within", "divergence_between",
                                   "effective_models"]


def test_distinctiveness_is_mean_divergence_to_others():
    points = np.array([[0.0], [1.0], [3.0]])
    d = squared_distances(points)[None]  # 1, 9 from 0; 1, 4 from 1; 9, 4 from 3
    np.testing.assert_allclose(distinctiveness(d)[0], [5.0, 2.5, 6.5])


def test_time_to_consensus():
    values = [4.0, 3.0, 2.5, 1.9, 1.0]
    assert time_to_consensus(values, fraction=0.5) == 4  # first value ≤ 2 is at step 4
    assert time_to_consensus(values, fraction=0.25) == 5
    assert time_to_consensus(values, fraction=0.5, steps=[10, 20, 30, 40, 50]) == 40
    assert math.isnan(time_to_consensus(values, fraction=0.1))  # never
    assert math.isnan(time_to_consensus([1.0, 2.0, 3.0]))  # diverging models never agree
    assert math.isnan(time_to_consensus([]))


def test_quality_spread():
    agents = pd.DataFrame({"step": [1, 1, 1, 1, 2, 2, 2, 2], "developer": [0, 1, 2, 3] * 2,
                           "nll": [1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 2.0]})
    spread = quality_spread(agents, "nll")
    assert spread["nll_std"].tolist() == pytest.approx([np.std([1, 2, 3, 4], ddof=1), 0.0])
    assert spread["nll_range"].tolist() == pytest.approx([3.0, 0.0])
    assert spread["nll_iqr"].tolist() == pytest.approx([1.5, 0.0])


# ── effects tables ────────────────────────────────────────────────────────────────────────────────────


def test_condition_means_t_interval():
    table = pd.DataFrame({"kind": ["ring"] * 3 + ["complete"] * 3, "homogenization": [1.0, 2.0, 3.0, 5, 5, 5]})
    means = effects.condition_means(table, ["kind"], ["homogenization", "absent"]).set_index("kind")
    ring = means.loc["ring"]
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd of 1, 2, 3 is 1
    assert ring["mean"] == pytest.approx(2.0)
    assert (ring["ci_low"], ring["ci_high"]) == pytest.approx((2 - half, 2 + half))
    assert ring["n"] == 3
    assert means.loc["complete", "ci_low"] == pytest.approx(5.0)  # no variation: a zero-width interval
    assert set(means["metric"]) == {"homogenization"}  # absent metrics are skipped


def test_ols_recovers_a_known_slope():
    x = np.arange(10.0)
    noise = np.array([0.1, -0.1] * 5)
    table = pd.DataFrame({"spectral_gap": x, "homogenization": 2.0 - 0.5 * x + noise, "flat": 1.0})
    fits = effects.ols_fits(table, ["spectral_gap", "flat"], ["homogenization"]).set_index("x")
    row = fits.loc["spectral_gap"]
    assert row["slope_low"] < -0.5 < row["slope_high"]
    assert row["slope"] == pytest.approx(np.polyfit(x, table["homogenization"], 1)[0])
    assert row["r"] < -0.99
    assert math.isnan(fits.loc["flat", "slope"])  # a constant statistic identifies no slope


def test_correlations_fisher_interval():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50)
    frame = pd.DataFrame({"run_id": ["a"] * 50, "pagerank": x, "nll": x + 0.5 * rng.standard_normal(50),
                          "in_degree": 2.0})
    out = effects.correlations(frame, ["pagerank", "in_degree"], ["nll"], by=["run_id"]).set_index("x")
    r = out.loc["pagerank", "r"]
    assert r == pytest.approx(np.corrcoef(x, frame["nll"])[0, 1])
    half = 1.959964 / math.sqrt(47)
    assert out.loc["pagerank", "r_low"] == pytest.approx(math.tanh(math.atanh(r) - half), rel=1e-5)
    assert out.loc["pagerank", "r_high"] == pytest.approx(math.tanh(math.atanh(r) + half), rel=1e-5)
    assert math.isnan(out.loc["in_degree", "r"])  # constant centrality (a regular graph)


def test_final_values_and_paired_differences():
    frame = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "step": [1, 2, 3] * 2,
                          "nll_minority": [1.0, 2.0, 3.0, 1.0, 2.0, 5.0], "nll_majority": [1.0] * 6})
    final = effects.final_values(frame, ["nll_minority", "nll_majority"]).set_index("run_id")
    assert final.loc["b", "nll_minority"] == 5.0
    assert effects.final_values(frame, ["nll_minority"], window=2).set_index("run_id").loc["a", "nll_minority"] == 2.5
    gap = effects.paired_differences(final.reset_index(), "nll_minority", "nll_majority").iloc[0]
    assert gap["mean"] == pytest.approx(3.0)  # final gaps 2 and 4
    assert gap["ci_low"] < 3.0 < gap["ci_high"] and gap["n"] == 2


def test_paired_contrasts_remove_the_shared_replication_effect():
    # Each replication shifts every condition by the same large amount (common random numbers); ring is
    # 0.5 above complete in every replication and star 0.5 + (−0.1, 0.1, 0): pairing recovers exactly that.
    shift = np.array([0.0, 10.0, -7.0])
    table = pd.DataFrame({
        "network.kind": ["complete"] * 3 + ["ring"] * 3 + ["star"] * 3,
        "replication": [0, 1, 2] * 3,
        "homogenization": np.concatenate([shift + 1.0, shift + 1.5, shift + 1.5 + np.array([-0.1, 0.1, 0.0])]),
    })
    out = effects.paired_contrasts(table, "homogenization", "network.kind", "complete", ["replication"])
    out = out.set_index("level")
    assert out.loc["ring", "mean"] == pytest.approx(0.5)
    assert (out.loc["ring", "ci_low"], out.loc["ring", "ci_high"]) == pytest.approx((0.5, 0.5))
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert (out.loc["star", "ci_low"], out.loc["star", "ci_high"]) == pytest.approx((0.5 - half, 0.5 + half))
    assert out.loc["star", "n"] == 3 and set(out["reference"]) == {"complete"}
    # With another design axis, one set of contrasts per level of it.
    both = pd.concat([table.assign(share=0.5), table.assign(share=0.9, homogenization=table["homogenization"] * 2)])
    per_share = effects.paired_contrasts(both, "homogenization", "network.kind", "complete", ["replication"],
                                         by=["share"]).set_index(["share", "level"])
    assert per_share.loc[(0.5, "ring"), "mean"] == pytest.approx(0.5)
    assert per_share.loc[(0.9, "ring"), "mean"] == pytest.approx(1.0)
    # Unpaired, the replication shifts swamp the difference.
    unpaired = effects.condition_means(table, ["network.kind"], ["homogenization"]).set_index("network.kind")
    assert unpaired.loc["ring", "ci_high"] - unpaired.loc["ring", "ci_low"] > 10
