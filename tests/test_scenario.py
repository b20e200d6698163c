from __future__ import annotations

import pytest

from ecosystem.scenario import Scenario, ScenarioError, load_scenario, validate_scenario


def error_of(data: dict, tmp_path=None) -> str:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data, base_dir=tmp_path or ".")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_every_field_has_a_default():
    s = Scenario()
    assert s.developers.data.shares() == {"original": 0.0, "public": 0.0, "human_fresh": 0.5, "synthetic": 0.5}
    assert s.world.kind == "gaussian" and s.network.kind == "complete"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"developers": {"data": {"synthetic": 1.4}}}, "developers.data.synthetic: must be between 0 and 1, got 1.4"),
        ({"colour": "red"}, "colour: unknown field; allowed: communities, description, developers"),
        ({"world": {"dim": "two"}}, "world.dim: must be a valid integer"),
        ({"developers": {"data": {"synthetic": 0.7, "original": 0.5}}}, "developers.data: shares must sum to 1"),
        ({"world": {"kind": "fractal"}}, "world.kind: unknown kind; allowed: gaussian, linear, topic_markov, logic"),
        ({"developers": {"family": {"kind": "diffusion"}}}, "developers.family.kind: unknown kind; allowed: gaussian"),
        ({"network": {"kind": "hypercube"}}, "network.kind: unknown kind; allowed: complete, empty, ring"),
        ({"network": {"kind": "ring", "p": 0.2}}, "network.p: unknown field; allowed: k, kind, self_loops"),
        ({"steps": 0}, "steps: must be ≥ 1, got 0"),
        ({"developers": {"data": {"retention": "forever"}}}, "developers.data.retention: must be 'replace'"),
        ({"developers": {"family": {"kind": "linear"}}}, "developers.family.kind: 'linear' cannot model a 'gaussian'"),
        ({"communities": [{"concepts": [7]}]}, "communities[0].concepts: must be between 0 and 3"),
        ({"network": {"kind": "stochastic_block"}}, "developers.groups: required by network.kind 'stochastic_block'"),
        ({"developers": {"count": 4}, "network": {"kind": "ring", "k": 3}}, "network.k: must be even and below"),
        ({"developers": {"data": {"alpha": 0.5, "synthetic": 0.7}}}, "developers.data: give either alpha/beta"),
        ({"developers": {"data": {"verifier": {}}}}, "developers.data.verifier: the gaussian world has no verifier"),
        ({"developers": {"count": 8}, "network": {"kind": "watts_strogatz", "k": 3}}, "network.k: must be even"),
        ({"communities": [{"name": "spread"}]}, "communities[0].name: must be letters, digits and _, not 'spread'"),
        ({"world": {"seed": 2**64}}, "world.seed: must be ≥ 0 and < 9223372036854775808"),
        ({"world": {"kind": "topic_markov", "vocab": 16, "concepts": 8, "branching": 3},
          "developers": {"family": {"kind": "ngram"}}},
         "world.branching: must be at most vocab // concepts = 2, got 3"),
        ({"world": {"kind": "logic", "min_depth": 4, "max_depth": 3}, "developers": {"family": {"kind": "ngram"}}},
         "world.min_depth: must be at most max_depth=3, got 4"),
    ],
)
def test_bad_values_name_the_field(data, expected):
    assert error_of(data).startswith(expected)


def test_missing_edge_list_file_is_named(tmp_path):
    assert error_of({"network": {"kind": "edge_list", "path": "nowhere.txt"}}, tmp_path).startswith(
        "network.path: file not found:"
    )


def test_alpha_beta_state_the_same_shares_as_vu_et_al():
    data = validate_scenario({"developers": {"data": {"alpha": 0.4, "beta": 0.25}}}).developers.data
    assert data.shares() == pytest.approx({"original": 0.15, "public": 0.45, "human_fresh": 0.0, "synthetic": 0.4})


def test_a_resolved_scenario_reloads_to_itself():
    from ecosystem.scenario import Scenario

    for data in ({"developers": {"data": {"alpha": 0.3, "beta": 0.5}}}, {}, {"developers": {"groups": [3, 5]}}):
        s = validate_scenario(data)
        assert Scenario.model_validate(s.model_dump()) == s


def test_naming_one_share_zeroes_the_others():
    assert validate_scenario({"developers": {"data": {"synthetic": 1}}}).developers.data.shares()["human_fresh"] == 0


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"not valid YAML \(line"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match="must be a mapping"):
        load_scenario(tmp_path / "list.yaml")


def test_overrides_set_dotted_paths(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("developers: {count: 3}\n")
    s = load_scenario(path, overrides={"developers.data.synthetic": 0.2, "developers.data.human_fresh": 0.8})
    assert s.developers.count == 3 and s.developers.data.synthetic == 0.2


def test_the_readme_example_is_a_valid_scenario():
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"An annotated example.*?```yaml\n(.*?)```", readme, re.S).group(1)
    s = validate_scenario(yaml.safe_load(block))
    assert s.name == "small-world-collapse" and s.developers.data.retention == "accumulate"
    assert s.developers.group_concepts == [[0, 1, 2, 3], [4, 5]]
