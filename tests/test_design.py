"""Sweep designs: grid, zip, random/LHS, replications, seeds, run ids, and one-line errors."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecosystem.design import expand, load_design, replication_seeds, run_id
from ecosystem.scenario import ScenarioError, validate_scenario

BASE = {"name": "tiny", "seed": 11, "steps": 2, "developers": {"count": 4, "groups": [2, 2]}}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def scenario_with(tmp_path: Path, sweep: dict, **base) -> Path:
    return write(tmp_path / "scenario.yaml", {**BASE, **base, "sweep": sweep})


def test_grid_is_every_combination_times_replications(tmp_path):
    grid = {"network.kind": ["complete", "ring", "star"], "developers.train.samples": [20, 40]}
    runs = expand(scenario_with(tmp_path, {"grid": grid, "replications": 2}))
    assert len(runs) == 3 * 2 * 2
    combos = {(r.params["network.kind"], r.params["developers.train.samples"]) for r in runs}
    assert combos == set(itertools.product(*grid.values()))
    for run in runs:  # each override lands in the resolved scenario
        assert run.scenario.network.kind == run.params["network.kind"]
        assert run.scenario.developers.train.samples == run.params["developers.train.samples"]
        assert run.scenario.seed == run.seed and run.scenario.sweep is None
    assert [(r.point, r.replication) for r in runs] == [(p, r) for p in range(6) for r in range(2)]


def test_zip_pairs_lists_and_multiplies_the_grid(tmp_path):
    sweep = {
        "grid": {"network.kind": ["complete", "ring"]},
        "zip": {"developers.data.synthetic": [0.2, 0.8], "developers.data.human_fresh": [0.8, 0.2]},
    }
    runs = expand(scenario_with(tmp_path, sweep))
    assert len(runs) == 4
    for run in runs:
        data = run.scenario.developers.data
        assert data.synthetic + data.human_fresh == pytest.approx(1.0)
        assert data.synthetic == run.params["developers.data.synthetic"]
    with pytest.raises(ScenarioError, match=r"^sweep.zip: lists must have equal lengths"):
        expand(scenario_with(tmp_path, {"zip": {"steps": [1, 2], "developers.count": [4]}}))


def test_latin_hypercube_hits_every_stratum_once_and_is_seeded(tmp_path):
    ranges = {"world.separation": [1.0, 5.0], "developers.count": [2, 40]}
    sweep = {"random": {"samples": 10, "method": "lhs", "ranges": ranges, "integer": ["developers.count"]}}
    runs = expand(scenario_with(tmp_path, sweep, developers={"count": 4}))
    sep = np.array([r.params["world.separation"] for r in runs])
    assert sorted(np.floor((sep - 1.0) / 0.4).astype(int)) == list(range(10))  # one point per tenth
    counts = [r.params["developers.count"] for r in runs]
    assert all(isinstance(c, int) and 2 <= c <= 40 for c in counts)
    assert [r.scenario.developers.count for r in runs] == counts
    again = expand(scenario_with(tmp_path, sweep, developers={"count": 4}))
    assert [r.params for r in again] == [r.params for r in runs]  # same scenario seed, same points
    other = expand(scenario_with(tmp_path, sweep, developers={"count": 4}, seed=12))
    assert [r.params for r in other] != [r.params for r in runs]


def test_uniform_random_points_keep_earlier_ones_when_samples_grow(tmp_path):
    def points(samples):
        sweep = {"random": {"samples": samples, "method": "random", "ranges": {"world.spread": [0.5, 2.0]}}}
        return [r.params["world.spread"] for r in expand(scenario_with(tmp_path, sweep))]

    few, more = points(3), points(8)
    assert more[:3] == few and all(0.5 <= v <= 2.0 for v in more)


def test_adding_replications_keeps_earlier_seeds_and_ids(tmp_path):
    grid = {"network.kind": ["complete", "ring"]}
    two = expand(scenario_with(tmp_path, {"grid": grid, "replications": 2}))
    five = expand(scenario_with(tmp_path, {"grid": grid, "replications": 5}))
    kept = {(r.point, r.replication): (r.id, r.seed) for r in five}
    assert all(kept[(r.point, r.replication)] == (r.id, r.seed) for r in two)
    assert replication_seeds(11, 5)[:2] == replication_seeds(11, 2)
    assert len(set(replication_seeds(11, 50))) == 50  # distinct seeds per replication
    # Common random numbers: the same replication of different design points shares its seed.
    assert {r.seed for r in five if r.replication == 3} == {replication_seeds(11, 4)[3]}


def test_run_ids_are_stable_hashes_of_the_resolved_scenario(tmp_path):
    path = scenario_with(tmp_path, {"grid": {"steps": [2, 3]}, "replications": 2})
    runs = expand(path)
    assert [r.id for r in runs] == [r.id for r in expand(path)]  # same file, same ids
    assert len({r.id for r in runs}) == 4 and all(len(r.id) == 12 for r in runs)
    # Key order in the file does not matter; the content does.
    reordered = dict(reversed(list({**BASE, "sweep": {"grid": {"steps": [2, 3]}, "replications": 2}}.items())))
    assert [r.id for r in expand(write(tmp_path / "reordered.yaml", reordered))] == [r.id for r in runs]
    resolved = validate_scenario({**BASE, "steps": 2, "seed": runs[0].seed})
    assert run_id(resolved) == runs[0].id
    assert run_id(validate_scenario({**BASE, "steps": 2, "seed": runs[0].seed, "description": "x"})) != runs[0].id


def test_sweep_file_with_base_gives_the_same_runs(tmp_path):
    inline = expand(scenario_with(tmp_path, {"grid": {"network.kind": ["ring", "star"]}, "replications": 2}))
    base = write(tmp_path / "base.yaml", BASE)
    (tmp_path / "sweeps").mkdir()
    sweep = {"base": "../base.yaml", "grid": {"network.kind": ["ring", "star"]}, "replications": 2}
    path = write(tmp_path / "sweeps" / "topo.yaml", sweep)
    design = load_design(path)
    assert design.name == "topo" and design.base_dir == base.parent
    assert [r.id for r in expand(design)] == [r.id for r in inline]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (
            {"zip": {"developers.data.synthetic": [0.3, 1.4], "developers.data.human_fresh": [0.7, 0.0]}},
            "sweep.zip.developers.data.synthetic[1]: must be between 0 and 1, got 1.4",
        ),
        (
            {"grid": {"developers.data.synthetic": [0.3]}},
            "sweep.grid.developers.data.synthetic[0]: developers.data: shares must sum to 1",
        ),
        ({"grid": {"network.kind": ["ring", "hypercube"]}}, "sweep.grid.network.kind[1]: unknown kind; allowed:"),
        ({"grid": {"network": [{"kind": "ring", "k": 1}]}}, "sweep.grid.network[0]: network.k: must be ≥ 2"),
        ({"grid": {"developers.cuont": [4]}}, "sweep.grid.developers.cuont: unknown field; allowed: count, data"),
        ({"grid": {"seed": [1, 2]}}, "sweep.grid.seed: cannot be swept"),
        ({"grid": {"steps": [2]}, "zip": {"steps": [3]}}, "sweep.zip.steps: already set by sweep.grid"),
        ({"grid": {"steps": [2, 2]}}, "sweep: design points 0 and 1 resolve to the same scenario"),
        ({"grid": {"steps": []}}, "sweep.grid.steps: needs at least one value"),
        (
            {"random": {"samples": 4, "ranges": {"developers.train.lr": [-1.0, 1.0]}}},
            "sweep.random.ranges.developers.train.lr (sample ",
        ),
        ({"random": {"ranges": {"steps": [2, 3]}, "integer": ["count"]}}, "sweep.random.integer: count has no"),
        ({"replications": 0}, "sweep.replications: must be ≥ 1, got 0"),
        ({"grids": {}}, "sweep.grids: unknown field; allowed: grid, max_runs, random, replications, zip"),
    ],
)
def test_a_bad_design_is_one_line_naming_its_entry(tmp_path, sweep, message):
    with pytest.raises(ScenarioError) as err:
        expand(scenario_with(tmp_path, sweep))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_sweep_file_errors_name_the_field(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    cases = [
        ({"grid": {"steps": [2]}}, "base: required field is missing"),
        ({"base": "base.yaml", "replicates": 3}, "replicates: unknown field; allowed: base, grid, max_runs, name"),
        ({"base": "base.yaml", "grid": [1, 2]}, "sweep.grid: must be a valid dictionary"),
        ({"base": "missing.yaml"}, "missing.yaml: no such file"),
    ]
    for data, message in cases:
        with pytest.raises(ScenarioError, match=re.escape(message)):
            expand(write(tmp_path / "sweep.yaml", data))
    # A base with a bad value is reported as the base's own error, before any design point.
    write(tmp_path / "base.yaml", {**BASE, "steps": 0})
    with pytest.raises(ScenarioError, match=r"^steps: must be ≥ 1, got 0$"):
        expand(write(tmp_path / "sweep.yaml", {"base": "base.yaml", "grid": {"network.kind": ["ring"]}}))


def test_a_scenario_without_a_sweep_is_an_error(tmp_path):
    with pytest.raises(ScenarioError, match="no sweep: section"):
        load_design(write(tmp_path / "plain.yaml", BASE))
