"""The learning check: a run says in words when its models have not learned their world."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ecosystem.checks import learning_warning
from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from tests.conftest import tiny


def transformer(train_steps: int) -> dict:
    raw = tiny(steps=1, world={"kind": "topic_markov", "vocab": 16, "concepts": 2, "seq_len": 8, "heldout": 200},
               communities=[{"name": "all", "authors": 4, "rate": 5}], network={"kind": "complete"})
    raw["developers"] = {"count": 2, "family": {"kind": "transformer", "d_model": 32, "layers": 1, "heads": 2},
                         "train": {"samples": 128, "steps": train_steps, "batch": 16, "lr": 1e-2},
                         "publish": {"samples": 32}}
    return raw


@pytest.mark.parametrize(("train_steps", "warned"), [pytest.param(1, True, marks=pytest.mark.slow), (60, False)])
def test_the_warning_fires_on_an_untrained_transformer_and_not_on_a_trained_one(tmp_path, train_steps, warned):
    folder = run_scenario(validate_scenario(transformer(train_steps)), tmp_path / "run", progress=False)
    warnings = json.loads((folder / "meta.json").read_text())["warnings"]
    assert bool(warnings) == warned
    if warned:
        assert warnings[0].startswith("the models have not learned") and "train.steps" in warnings[0]


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({"step": [1, 2], **{k: [v, v] for k, v in columns.items()}})


def test_the_threshold_is_a_share_of_the_gap_from_uniform_to_the_truth():
    # gap 10 nats: closing 20% warns, closing 30% does not
    assert "closed 20%" in learning_warning(frame(nll=18.0, reference_nll=10.0, baseline_nll=20.0))
    assert learning_warning(frame(nll=17.0, reference_nll=10.0, baseline_nll=20.0)) is None
    # a model that learned the likelihood but writes nothing valid is warned too
    assert "valid" in learning_warning(frame(nll=11.0, reference_nll=10.0, baseline_nll=20.0, validity=0.01))
    # vector worlds have no uniform baseline: never warned on the NLL
    assert learning_warning(frame(nll=50.0, reference_nll=1.0, baseline_nll=float("nan"))) is None
