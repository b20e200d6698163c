"""Stopping rules (issue 12, item 6): a run ends at the first measured generation where its `stop:`
condition holds, and says so in meta.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecosystem.run import run_scenario, simulate
from ecosystem.scenario import ScenarioError, validate_scenario
from tests.conftest import tiny

STEPS = 8


def raw(**overrides) -> dict:
    # Replace with the models' own samples: the variance shrinks generation after generation.
    scenario = tiny(steps=STEPS, **overrides)
    scenario["developers"]["data"] = {"synthetic": 1.0}
    scenario["developers"]["train"] = {"samples": 6}
    scenario["network"] = {"kind": "empty", "self_loops": True}
    return scenario


@pytest.fixture(scope="module")
def full():
    model, _ = simulate(validate_scenario(raw()))
    return model.developer_frame()


def first_step(frame, holds) -> int:
    return next(step for step, rows in frame.groupby("step") if holds(rows.variance.to_numpy()))


@pytest.mark.parametrize("every", [True, False])
def test_the_run_ends_at_the_first_generation_where_the_condition_holds(full, every):
    summary = np.max if every else np.mean
    threshold = float(summary(full[full.step == 5].variance)) * (1 + 1e-9)  # it holds by generation 5
    expected = first_step(full, lambda v: summary(v) < threshold)
    assert expected < STEPS
    model, _ = simulate(validate_scenario(raw(stop={"metric": "variance", "below": threshold, "all": every})))
    frame = model.developer_frame()
    assert frame.step.max() == expected
    # Stopping changes nothing before it: the rows are those of the full run.
    np.testing.assert_array_equal(frame.variance.to_numpy(), full[full.step <= expected].variance.to_numpy())


def test_meta_records_where_the_run_stopped(full, tmp_path):
    threshold = float(full[full.step == 5].variance.max()) * (1 + 1e-9)
    expected = first_step(full, lambda v: v.max() < threshold)
    folder = run_scenario(validate_scenario(raw(stop={"metric": "variance", "below": threshold})), tmp_path / "r",
                          progress=False)
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["steps"], meta["steps_run"], meta["stopped_at"]) == (STEPS, expected, expected)
    never = run_scenario(validate_scenario(raw(stop={"metric": "variance", "above": 1e9})), tmp_path / "n",
                         progress=False)
    meta = json.loads((never / "meta.json").read_text())
    assert (meta["steps_run"], meta["stopped_at"]) == (STEPS, None)


def test_a_stop_condition_needs_one_threshold_and_a_measured_metric():
    with pytest.raises(ScenarioError, match="stop"):
        validate_scenario(raw(stop={"metric": "variance", "below": 1.0, "above": 2.0}))
    with pytest.raises(ScenarioError, match="stop"):
        validate_scenario(raw(stop={"metric": "variance"}))
    with pytest.raises(ScenarioError, match=r"stop\.metric: .*got 'entropy'"):
        simulate(validate_scenario(raw(stop={"metric": "entropy", "below": 1.0})))
