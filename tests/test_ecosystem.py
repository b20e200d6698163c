"""The Mesa ecosystem: retention policies, provenance columns, detector, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecosystem.model import EcosystemModel
from ecosystem.pool import HUMAN, MODEL
from ecosystem.run import frames
from ecosystem.scenario import validate_scenario
from ecosystem.scrape import detector_flags
from tests.conftest import tiny


def model_with(data: dict, steps: int = 3, **overrides) -> EcosystemModel:
    raw = tiny(**overrides)
    raw["developers"]["data"] = data
    model = EcosystemModel(validate_scenario(raw))
    for _ in range(steps):
        model.step()
    return model


def train_idx(model: EcosystemModel, k: int) -> np.ndarray:
    return model.developers[k].training_set[0]


def original_items(model: EcosystemModel, k: int) -> np.ndarray:
    """Pool indices of developer k's private data set."""
    block = model.original
    return block.start + k * block.size + np.arange(block.size)


def flags(model: EcosystemModel, k: int) -> np.ndarray:
    """Developer k's detector verdict on every pool item."""
    policies = model.policies
    return detector_flags(model.pool.column("author_kind"), model.pool.column("detector_score"), policies.tpr[k],
                          policies.fpr[k])


@pytest.mark.parametrize(("retention", "sizes"), [("replace", [20, 20, 20, 20]), ("accumulate", [20, 40, 60, 80]),
                                                  ("accumulate_subsample", [20, 20, 20, 20]),
                                                  ("window", [20, 40, 40, 40]),
                                                  ("incremental", [20, 20, 20, 20])])
def test_retention_through_the_model(retention, sizes):
    model = EcosystemModel(validate_scenario(tiny(developers={
        "count": 3, "train": {"samples": 20}, "publish": {"samples": 20},
        "data": {"synthetic": 1.0, "retention": retention, "window": 2}})))
    seen = []
    for _ in range(4):
        model.step()
        seen.append(len(train_idx(model, 0)))
    assert seen == sizes
    _, agents = frames(model)
    assert list(agents.loc[agents.developer == 0, "train_size"]) == sizes


def test_provenance_and_lineage_depth():
    model = model_with({"synthetic": 1.0}, steps=3)
    pool = model.pool.frame()
    human = pool[pool.author_kind == HUMAN]
    synthetic = pool[pool.author_kind == MODEL]
    assert (human.depth == 0).all() and set(human.step) == {0, 1, 2, 3}
    assert set(human.community[human.step > 0]) == {0, 1}
    # Each developer wrote 20 items per generation; generation t of a chain fed only synthetic data has depth t.
    assert len(synthetic) == 3 * 4 * 20
    assert synthetic.groupby("step").depth.mean().to_dict() == {1: 1.0, 2: 2.0, 3: 3.0}
    assert set(synthetic.author) == {0, 1, 2, 3}
    # Authors write on their community's concepts only.
    assert set(human.concept[human.community == 1]) == {2}
    summary = model.summary
    assert summary["train_synthetic_share"] == 1.0 and summary["train_lineage_depth"] == 2.0
    assert summary["pool_synthetic_share"] == pytest.approx(len(synthetic) / len(pool))


def test_first_generation_trains_on_real_data_and_shares_are_exact():
    model = model_with({"original": 0.25, "human_fresh": 0.25, "synthetic": 0.5}, steps=2)
    kinds = model.pool.column("author_kind")
    steps = model.pool.column("step")
    idx = train_idx(model, 0)
    assert len(idx) == 20
    assert (kinds[idx] == MODEL).sum() == 10  # synthetic share 0.5 of 20 at generation 2
    assert np.isin(idx, original_items(model, 0)).sum() == 5
    assert ((kinds[idx] == HUMAN) & (steps[idx] == 2)).sum() == 5


def test_detector_drops_flagged_scraped_items():
    data = {"human_fresh": 0.5, "synthetic": 0.5, "detector": {"tpr": 1.0, "fpr": 0.0}}
    model = model_with(data, steps=3)
    kinds = model.pool.column("author_kind")
    flagged = flags(model, 0)
    assert flagged[kinds == MODEL].all() and not flagged[kinds == HUMAN].any()
    for k in range(len(model.developers)):
        assert (kinds[train_idx(model, k)] == HUMAN).all()
    partial = model_with({"human_fresh": 0.5, "synthetic": 0.5, "detector": {"tpr": 0.5, "fpr": 0.1}}, steps=6)
    kinds = partial.pool.column("author_kind")
    flagged = flags(partial, 0)
    for kind, rate in ((MODEL, 0.5), (HUMAN, 0.1)):
        n_kind = (kinds == kind).sum()
        assert abs(flagged[kinds == kind].mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n_kind)
    # Synthetic share of training data falls by the detector: about (1 − tpr) of it survives.
    share = np.mean([(kinds[train_idx(partial, k)] == MODEL).mean() for k in range(4)])
    assert share < 0.45


def test_groups_can_follow_different_data_policies():
    raw = tiny(developers={"count": 4, "groups": [2, 2], "train": {"samples": 20}, "publish": {"samples": 20},
                           "group_data": [{"synthetic": 1.0}, {"human_fresh": 1.0}]})
    model = EcosystemModel(validate_scenario(raw))
    for _ in range(3):
        model.step()
    kinds = model.pool.column("author_kind")
    shares = [float((kinds[train_idx(model, k)] == MODEL).mean()) for k in range(4)]
    assert shares == [1.0, 1.0, 0.0, 0.0]


def test_same_seed_same_results_and_seed_matters():
    def run(seed):
        m = model_with({"human_fresh": 0.3, "synthetic": 0.7}, steps=4, seed=seed, network={"kind": "erdos_renyi"})
        return frames(m)

    a, b, c = run(5), run(5), run(6)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_default_model_runs():
    model = EcosystemModel()
    model.step()
    assert np.isfinite(model.summary["nll"])


def test_verifier_curates_synthetic_data():
    # Feng et al. 2024: keep correct synthetic items w.p. φ and wrong ones w.p. ψ. A heavily smoothed bigram
    # writes many invalid sequences, so the filter has something to remove.
    def run(keep_wrong: float):
        raw = tiny(world={"kind": "topic_markov", "vocab": 16, "concepts": 2, "seq_len": 8, "heldout": 16},
                   communities=[{"name": "a", "authors": 2, "rate": 10}],
                   developers={"count": 4, "family": {"kind": "ngram", "smoothing": 2.0},
                               "train": {"samples": 400}, "publish": {"samples": 400},
                               "data": {"synthetic": 1.0,
                                        "verifier": {"keep_correct": 1.0, "keep_wrong": keep_wrong}}})
        model = EcosystemModel(validate_scenario(raw))
        model.step()
        model.step()
        return model

    model = run(0.0)
    verified = model.pool.column("verified")
    published = np.concatenate([model.pool.where(author_kind=MODEL, step=1)])
    assert 0.2 < verified[published].mean() < 0.9  # the models do write wrong items
    for k in range(4):
        assert verified[train_idx(model, k)].all()
    half = run(0.5)
    verified = half.pool.column("verified")
    wrong_written = (~verified[half.pool.where(author_kind=MODEL, step=1)]).mean()
    kept = np.concatenate([train_idx(half, k) for k in range(4)])
    wrong_kept = (~verified[kept]).mean()
    expected = 0.5 * wrong_written / (1 - 0.5 * wrong_written)  # wrong share after keeping half of them
    assert abs(wrong_kept - expected) < 4 * np.sqrt(expected * (1 - expected) / len(kept))


def _token_ecosystem_twice(device: str) -> tuple[EcosystemModel, pd.DataFrame, pd.DataFrame, list]:
    """A small transformer ecosystem on ``device`` run twice with the same seed: the last model, both runs'
    per-developer frames and divergences."""
    raw = tiny(device=device, world={"kind": "topic_markov", "vocab": 24, "concepts": 3, "seq_len": 8, "heldout": 32},
               communities=[{"name": "a", "authors": 4, "rate": 10}],
               developers={"count": 6, "family": {"kind": "transformer", "d_model": 16, "heads": 2},
                           "train": {"samples": 64, "steps": 5}, "publish": {"samples": 64},
                           "data": {"human_fresh": 0.5, "synthetic": 0.5}})
    runs = []
    for _ in range(2):
        model = EcosystemModel(validate_scenario(raw))
        for _ in range(3):
            model.step()
        runs.append((model, frames(model)[0], [d for _, d in model.divergence_history]))
    (model, a, da), (_, b, db) = runs
    return model, a, b, [da, db]


def test_token_ecosystem_is_deterministic_on_the_cpu():
    """Decoding, the one held-out pass and the pairwise JSD give the same numbers for the same seed."""
    _, a, b, (da, db) = _token_ecosystem_twice("cpu")
    assert a.equals(b) and np.isfinite(a["nll"]).all() and a["nll"].std() > 0
    assert len(da) == 3 and all(np.array_equal(x, y) for x, y in zip(da, db, strict=True))
    assert all((x > 0).all() for x in da)  # the developers' models differ: the comparison can fail


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_token_ecosystem_runs_on_cuda_and_is_deterministic():
    model, a, b, _ = _token_ecosystem_twice("cuda")
    assert model.pool.items.device.type == "cuda" and model.generator.device.type == "cuda"
    assert a.equals(b) and np.isfinite(a["nll"]).all()


def test_a_developer_without_data_keeps_its_lineage_depth():
    # Review finding: a developer whose detector dropped everything used to write NaN depths into the pool.
    raw = tiny(developers={"count": 4, "groups": [1, 3], "train": {"samples": 20}, "publish": {"samples": 20},
                           "group_data": [{"human_fresh": 0.5, "synthetic": 0.5,
                                           "detector": {"tpr": 1.0, "fpr": 1.0}},
                                          {"human_fresh": 0.5, "synthetic": 0.5}]})
    model = EcosystemModel(validate_scenario(raw))
    for _ in range(3):
        model.step()
    assert len(train_idx(model, 0)) == 0
    assert np.isfinite(model.pool.column("depth")).all()
    assert np.isfinite(model.summary["pool_lineage_depth"])


def test_short_sources_are_made_up_from_original_data():
    # Few fresh human items (2 authors × 1) and synthetic shares larger than what is published: the training
    # set keeps its size and the synthetic share never exceeds what was asked.
    raw = tiny(communities=[{"name": "a", "authors": 2, "rate": 1}],
               developers={"count": 3, "train": {"samples": 100}, "publish": {"samples": 10},
                           "data": {"human_fresh": 0.5, "synthetic": 0.5}}, network={"kind": "empty"})
    model = EcosystemModel(validate_scenario(raw))
    model.step()
    model.step()
    kinds, steps = model.pool.column("author_kind"), model.pool.column("step")
    for k in range(3):
        idx = train_idx(model, k)
        assert len(idx) == 100
        assert (kinds[idx] == MODEL).sum() == 10  # all of its own 10 outputs
        assert ((kinds[idx] == HUMAN) & (steps[idx] == 2)).sum() == 2  # every fresh item there is
        assert np.isin(idx, original_items(model, k)).sum() == 88


def test_synthetic_data_is_read_in_proportion_to_w(tmp_path):
    # Developer 0 reads developer 1 with weight 3 and developer 2 with weight 1: 75% / 25% of its synthetic data.
    path = tmp_path / "edges.txt"
    path.write_text("1 0 3\n2 0 1\n0 1\n0 2\n")
    raw = tiny(developers={"count": 3, "train": {"samples": 150}, "publish": {"samples": 200},
                           "data": {"synthetic": 1.0}},
               network={"kind": "edge_list", "path": str(path), "self_loops": False})
    model = EcosystemModel(validate_scenario(raw))
    model.step()
    model.step()
    authors = model.pool.column("author")[train_idx(model, 0)]
    assert (authors == 1).sum() in (112, 113) and (authors == 2).sum() in (37, 38)


def test_developers_keep_only_the_data_their_retention_needs():
    model = model_with({"synthetic": 1.0, "retention": "replace"}, steps=6)
    assert model.retention.store.width == 0  # nothing beyond the training sets
    model = model_with({"synthetic": 1.0, "retention": "window", "window": 2}, steps=6)
    assert model.retention.store.width == 2 * 20 and len(model.retention.sizes) <= 3
    model = model_with({"synthetic": 1.0, "retention": "accumulate"}, steps=6)
    assert model.retention.store.width == 6 * 20


def test_linear_world_has_held_out_data_per_community():
    raw = {"steps": 1, "device": "cpu", "world": {"kind": "linear", "dim": 2, "heldout": 20},
           "communities": [{"name": "a"}, {"name": "b"}],
           "developers": {"count": 2, "family": {"kind": "linear"}}}
    model = EcosystemModel(validate_scenario(raw))
    model.step()
    assert np.isfinite(model.summary["nll_a"]) and np.isfinite(model.summary["nll_b"])
