"""Memory stays flat: items no developer can read again are released, and releasing changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import ecosystem.model
from ecosystem.model import EcosystemModel
from ecosystem.scenario import validate_scenario
from tests.conftest import tiny


def run(steps: int, retention: str, publish: int = 20, **data) -> tuple[EcosystemModel, list[int]]:
    raw = tiny(steps=steps, metrics={"every": 10})
    raw["developers"]["publish"] = {"samples": publish}
    raw["developers"]["data"] = {"synthetic": 0.5, "human_fresh": 0.3, "original": 0.2, "retention": retention,
                                 "window": 3, **data}
    model = EcosystemModel(validate_scenario(raw))
    sizes = []
    for _ in range(steps):
        model.step()
        sizes.append(model.pool.size)
    return model, sizes


@pytest.mark.parametrize("retention", ["replace", "window", "incremental"])
def test_the_pool_stays_flat_and_releasing_changes_nothing(monkeypatch, retention):
    kept, _ = run(40, retention)  # 40 × 110 items: never reaches the release threshold
    monkeypatch.setattr(ecosystem.model, "RELEASE_ABOVE", 300)
    released, sizes = run(40, retention)
    assert max(sizes[30:]) <= 1.5 * max(sizes[:10])  # flat, not growing with the generations
    assert kept.pool.size > 3 * released.pool.size
    for column in ("nll", "train_size", "train_synthetic_share", "train_lineage_depth", "divergence"):
        np.testing.assert_array_equal(released.model_frame()[column], kept.model_frame()[column], err_msg=column)
    for k in range(len(kept.developers)):  # the same training sets, item for item
        a, b = kept.developers[k].training_set, released.developers[k].training_set
        np.testing.assert_array_equal(kept.pool.take(a[0]).numpy(), released.pool.take(b[0]).numpy())
        np.testing.assert_array_equal(a[1], b[1])


def test_accumulate_keeps_what_it_must(monkeypatch):
    kept, _ = run(20, "accumulate", publish=200)  # most of what is published is never read
    monkeypatch.setattr(ecosystem.model, "RELEASE_ABOVE", 300)
    model, sizes = run(20, "accumulate", publish=200)
    assert sizes[-1] < kept.pool.size  # what no training set holds (unread outputs) is still released
    for k in range(len(kept.developers)):
        a, b = kept.developers[k].training_set[0], model.developers[k].training_set[0]
        assert len(a) == 20 * 20
        np.testing.assert_array_equal(kept.pool.take(a).numpy(), model.pool.take(b).numpy())
    np.testing.assert_array_equal(kept.model_frame()["nll"], model.model_frame()["nll"])


TOKENS = {"kind": "topic_markov", "vocab": 12, "concepts": 3, "seq_len": 6, "heldout": 50}


@pytest.mark.parametrize(("family", "world"), [({"kind": "gaussian", "estimator": "mle"}, None),
                                               ({"kind": "gaussian", "estimator": "unbiased"}, None),
                                               ({"kind": "ngram", "order": 2}, TOKENS)])
def test_accumulate_fits_from_running_statistics_as_from_the_whole_set(family, world):
    """Under `accumulate` additive families are fitted from running statistics (each batch visited once):
    the same models as fitting every generation on the whole retained set."""
    def accumulate(running: bool) -> EcosystemModel:
        raw = tiny(steps=12, **({"world": world} if world else {}))
        raw["developers"]["family"] = family
        raw["developers"]["data"] = {"synthetic": 0.6, "human_fresh": 0.4, "retention": "accumulate"}
        model = EcosystemModel(validate_scenario(raw))
        assert model.running is not None  # every developer accumulates: the running path is taken
        if not running:
            model.running = None  # the generic path: fit on the whole padded training set
        for _ in range(12):
            model.step()
        return model

    fast, whole = accumulate(True), accumulate(False)
    for name, value in vars(fast.state).items():
        np.testing.assert_allclose(value.numpy(), getattr(whole.state, name).numpy(), rtol=1e-5 if world else 1e-9,
                                   atol=1e-12, err_msg=name)
    a, b = fast.developer_frame(), whole.developer_frame()
    for column in ("train_size", "train_synthetic_share", "train_lineage_depth"):
        np.testing.assert_allclose(a[column], b[column], rtol=1e-12, err_msg=column)
