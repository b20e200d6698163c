"""The scenario's `metrics:` section: what is measured, how often, over which pairs; the worlds' reference.

Measurement draws from its own generator, so what is measured never changes what is simulated: every test
here compares a run that measures less against the same run measuring everything.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ecosystem.model import EcosystemModel
from ecosystem.scenario import validate_scenario
from tests.conftest import tiny

SIMULATED = ["train_synthetic_share", "train_lineage_depth", "train_size", "pool_size", "pool_synthetic_share"]


def run(steps: int = 7, metrics: dict | None = None, count: int = 8) -> EcosystemModel:
    raw = tiny(steps=steps, metrics=metrics or {})
    raw["developers"]["count"] = count
    raw["developers"]["data"] = {"synthetic": 0.8, "human_fresh": 0.2}
    raw["network"] = {"kind": "complete"}
    model = EcosystemModel(validate_scenario(raw))
    for _ in range(steps):
        model.step()
    return model


@pytest.fixture(scope="module")
def everything() -> EcosystemModel:
    return run()


def test_every_k_measures_the_first_every_kth_and_last_generation_and_changes_nothing_else(everything):
    sparse = run(metrics={"every": 3})
    frame, full = sparse.model_frame(), everything.model_frame()
    measured = frame.loc[frame["nll"].notna(), "step"].tolist()
    assert measured == [1, 3, 6, 7]
    assert sparse.scenario.metrics.measured_count(7) == 4
    np.testing.assert_array_equal(frame[SIMULATED], full[SIMULATED])  # same simulation, bit for bit
    at = frame["step"].isin(measured)
    np.testing.assert_array_equal(frame.loc[at, "nll"], full.loc[at, "nll"])
    assert frame.loc[~at, ["nll", "divergence", "variance"]].isna().all().all()
    assert list(sparse.divergences().steps) == measured


def test_pairwise_sample_is_a_fixed_subset_of_all_pairs(everything):
    sampled = run(metrics={"pairwise": "sample", "pairs": 10})
    every, some = everything.divergences(), sampled.divergences()
    assert every.complete and len(every.i) == 8 * 7 // 2
    assert len(some.i) == 10 and not some.complete
    assert len(set(zip(some.i.tolist(), some.j.tolist(), strict=True))) == 10  # distinct pairs
    assert (some.i < some.j).all()
    for k, step in enumerate(some.steps):  # the same pairs every measured generation, equal to all-pairs values
        full = every.matrix(list(every.steps).index(step))
        np.testing.assert_allclose(some.values[k], full[some.i, some.j], rtol=1e-6)
    np.testing.assert_array_equal(sampled.model_frame()[SIMULATED], everything.model_frame()[SIMULATED])


def test_auto_compares_all_pairs_up_to_the_limit_then_samples():
    spec = validate_scenario(tiny(metrics={"pairs": 6})).metrics
    assert spec.pair_count(4) == 6 and spec.pair_count(5) == 6 and spec.pair_count(3) == 3
    assert validate_scenario(tiny(metrics={"pairwise": "all"})).metrics.pair_count(2048) == 2048 * 2047 // 2


def test_pairwise_none_stores_no_divergences_and_keeps_the_other_metrics(everything):
    model = run(metrics={"pairwise": "none"})
    assert model.divergences() is None
    frame = model.model_frame()
    assert frame["divergence"].isna().all()
    np.testing.assert_array_equal(frame["nll"], everything.model_frame()["nll"])


def test_measure_groups_choose_the_columns(everything):
    model = run(metrics={"measure": ["quality"]})
    frame = model.model_frame()
    assert frame["nll"].notna().all()
    assert "distance" not in frame.columns and "variance" not in frame.columns
    assert {"distance", "variance"} <= set(everything.model_frame().columns)


def test_the_gaussian_reference_is_the_truths_own_heldout_nll():
    model = EcosystemModel(validate_scenario(tiny()))
    world = model.world
    held = world.heldout()
    x, community = held.items.double().numpy(), held.communities.numpy()
    means = world.means.double().numpy()
    # tiny(): community a writes concepts 0 and 1 (equal weights), community b concept 2
    pdf = [stats.multivariate_normal(mu, world.std**2 * np.eye(x.shape[1])).pdf(x) for mu in means]
    density = np.where(community == 0, (pdf[0] + pdf[1]) / 2, pdf[2])
    assert set(community) == {0, 1}
    assert model.reference["reference_nll"] == pytest.approx(-np.log(density).mean(), rel=1e-9)
    assert math.isnan(model.reference["baseline_nll"])


def test_the_token_reference_is_the_heldout_estimate_of_the_exact_entropy():
    """reference_nll is the truth's mean NLL over the held-out sample: within Monte Carlo error of the
    entropy computed by the chain rule; the baseline is a uniform model's T log V."""
    raw = tiny(world={"kind": "topic_markov", "vocab": 24, "concepts": 3, "seq_len": 12, "heldout": 2000},
               communities=[{"name": "all", "authors": 4, "rate": 5}])  # one community: the whole mixture
    raw["developers"]["family"] = {"kind": "ngram", "order": 2}
    model = EcosystemModel(validate_scenario(raw))
    world = model.world
    nll = -world.log_prob(world.heldout().items).double()
    se = float(nll.std()) / math.sqrt(len(nll))
    assert abs(model.reference["reference_nll"] - world.entropy()) < 4 * se
    assert model.reference["baseline_nll"] == pytest.approx(12 * math.log(24))
    model.step()
    assert model.model_frame()["reference_nll"].iloc[0] == model.reference["reference_nll"]
    assert torch.isfinite(nll).all()


def test_a_community_that_writes_nothing_new_still_has_a_finite_reference():
    """Held-out items of a community with rate 0 are scored under that community's own distribution."""
    raw = tiny(world={"kind": "topic_markov", "vocab": 24, "concepts": 4, "seq_len": 8, "heldout": 300},
               communities=[{"name": "shared", "authors": 4, "concepts": [2, 3], "rate": 5},
                            {"name": "task", "authors": 1, "concepts": [0, 1], "rate": 0}])
    raw["developers"]["family"] = {"kind": "ngram", "order": 2}
    world = EcosystemModel(validate_scenario(raw)).world
    held = world.heldout()
    by_community = [float(-world.log_prob_concepts(held.items[held.communities == k])[:, list(c)]
                          .logsumexp(-1).sub(math.log(2)).mean()) for k, c in ((0, (2, 3)), (1, (0, 1)))]
    assert math.isfinite(world.reference()["reference_nll"])
    assert world.reference()["reference_nll"] == pytest.approx(np.mean(by_community), rel=1e-9)
