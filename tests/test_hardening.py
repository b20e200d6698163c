"""Bad input of every class gets one line naming what is wrong (issue 11): names, sizes, encodings,
non-finite numbers, sweep designs, duplicate keys, strict types, orphan folders."""

from __future__ import annotations

import errno
import math
import random
import time
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from ecosystem import scenario as schema
from ecosystem.cli import app
from ecosystem.network import NetworkError, read_edge_list
from ecosystem.scenario import ScenarioError, load_scenario, output_folder, scenario_warnings, validate_scenario
from tests.conftest import tiny
from tests.fuzz_scenarios import SHIPPED, mutate

ROOT = Path(__file__).resolve().parents[1]


def error_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data)
    assert "\n" not in str(err.value)
    return str(err.value)


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exit_code not in (0, 1, 2):
        raise result.exception
    return result


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.output
    assert isinstance(result.exception, SystemExit)


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ── 1. names ──────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "", ".", "..", "a" * 300, "a\x00b", "a\nb", "a/b", "-x"])
def test_unsafe_names_are_refused(name):
    assert error_of({"name": name}).startswith("name: must be 1 to 64 letters")


def test_safe_names_are_kept():
    assert validate_scenario({"name": "run_1.v-2"}).name == "run_1.v-2"


def test_output_folders_stay_inside_their_parent(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere")
    assert output_folder(tmp_path / "runs", "ok") == (tmp_path / "runs" / "ok").resolve()
    with pytest.raises(ScenarioError, match="leads outside"):
        output_folder(tmp_path / "runs", "link")
    with pytest.raises(ScenarioError, match="name: must be"):
        output_folder(tmp_path / "runs", "..")


def test_a_sweep_file_name_must_be_safe(tmp_path):
    from ecosystem.design import load_design

    write(tmp_path / "base.yaml", tiny())
    path = write(tmp_path / "s.yaml", {"base": "base.yaml", "name": "../../out", "replications": 2})
    with pytest.raises(ScenarioError, match="name: must be"):
        load_design(path)


def test_run_with_an_unsafe_name_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "s.yaml", tiny(name="../../escape"))
    one_line_error(cli("run", str(path)), "name: must be")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


# ── 2. resource bounds ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"developers": {"count": 10**9}}, "developers.count"),
        ({"developers": {"count": 100_000}}, "developers.count"),
        ({"world": {"heldout": 10**10}}, "world.heldout"),
        ({"developers": {"train": {"samples": 10**10}}}, "developers.train.samples"),
        ({"communities": [{"authors": 10**9}]}, "communities"),
        ({"world": {"kind": "topic_markov", "vocab": 10**6}, "developers": {"family": {"kind": "ngram", "order": 3}}},
         "developers.family"),
        ({"world": {"kind": "topic_markov", "seq_len": 10**7}, "developers": {"family": {"kind": "transformer"}}},
         "world.seq_len"),
        ({"world": {"kind": "topic_markov", "seq_len": 10**5}, "developers": {"family": {"kind": "ngram"}},
          "metrics": {"probes": 10**5}}, "metrics.probes"),
    ],
)
def test_what_cannot_fit_is_refused_at_once(data, field, monkeypatch):
    monkeypatch.setenv(schema.MEMORY_ENV, "64G")
    start = time.perf_counter()
    message = error_of(data)
    assert time.perf_counter() - start < 1.0  # arithmetic on the sizes, nothing built
    assert message.startswith(f"{field}: a run needs about") and schema.MEMORY_ENV in message


def test_the_memory_limit_can_be_raised(monkeypatch):
    data = {"developers": {"count": 20_000}}  # a dense 20 000² reading matrix alone is ~3 GB
    monkeypatch.setenv(schema.MEMORY_ENV, "4G")
    assert "above the limit of 4 GB" in error_of(data)
    monkeypatch.setenv(schema.MEMORY_ENV, "2T")
    assert validate_scenario(data).developers.count == 20_000
    monkeypatch.setenv(schema.MEMORY_ENV, "lots")
    assert "ECOSIM_MEMORY_LIMIT: must be a size" in error_of({})


def test_shipped_scenarios_fit_in_a_small_machine(monkeypatch):
    monkeypatch.setenv(schema.MEMORY_ENV, "1G")
    for path in SHIPPED:
        load_scenario(path)


def test_validate_builds_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv(schema.MEMORY_ENV, "1T")
    path = write(tmp_path / "s.yaml", tiny(developers={"count": 20_000}, network={"kind": "complete"}))
    start = time.perf_counter()
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start < 5.0  # a complete graph of 20 000 nodes takes minutes


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. "
                                                                 "DefaultCPUAllocator: can't allocate memory: you "
                                                                 "tried to allocate 10 bytes.\nmore")])
def test_out_of_memory_is_one_line(tmp_path, monkeypatch, error):
    import ecosystem.run

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(ecosystem.run, "run_scenario", fail)
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("run", str(write(tmp_path / "s.yaml", tiny()))), "out of memory running")
    assert not (tmp_path / "runs").exists()


# ── 3. encodings, nesting, output paths ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("raw", ["name: x\n".encode("utf-16"), "name: é\n".encode("latin-1"), bytes(range(256))])
def test_scenario_files_must_be_utf8(tmp_path, raw):
    (tmp_path / "s.yaml").write_bytes(raw)
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(tmp_path / "s.yaml")


def test_binary_edge_list_is_one_line(tmp_path):
    (tmp_path / "e.txt").write_bytes(bytes(range(256)))
    with pytest.raises(NetworkError, match=r"network\.path: e\.txt: not UTF-8 text"):
        read_edge_list(tmp_path / "e.txt", 4)


@pytest.mark.parametrize("depth", [40, 5000])
def test_deep_nesting_is_one_line(tmp_path, depth):
    (tmp_path / "s.yaml").write_text("description: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ScenarioError, match="nested too deeply"):
        load_scenario(tmp_path / "s.yaml")


def test_alias_bombs_and_cycles_are_refused(tmp_path):
    from tests.fuzz_scenarios import BOMB

    (tmp_path / "bomb.yaml").write_text(f"description: {BOMB}\n")
    with pytest.raises(ScenarioError, match="more than 1,000,000 values"):
        load_scenario(tmp_path / "bomb.yaml")
    (tmp_path / "cycle.yaml").write_text("description: &a [*a]\n")
    with pytest.raises(ScenarioError, match="refers to the collection that contains it"):
        load_scenario(tmp_path / "cycle.yaml")


def test_out_paths_that_cannot_be_written_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = write(tmp_path / "s.yaml", tiny())
    (tmp_path / "file").write_text("x")
    one_line_error(cli("run", str(scenario), "--out", str(tmp_path / "file")), "--out:")
    one_line_error(cli("run", str(scenario), "--out", str(tmp_path / "file" / "run")), "--out: cannot write")
    sweep = write(tmp_path / "w.yaml", {**tiny(), "sweep": {"replications": 1}})
    one_line_error(cli("sweep", str(sweep), "--out", str(tmp_path / "file"), "-b", "serial", "-q"), "--out:")
    one_line_error(cli("analyze", str(tmp_path), "--out", str(tmp_path / "file")), "--out:")
    assert (tmp_path / "file").read_text() == "x"


def test_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import ecosystem.run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x"))

    monkeypatch.setattr(ecosystem.run, "run_scenario", full)
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("run", str(write(tmp_path / "s.yaml", tiny()))), "No space left on device")
    assert not (tmp_path / "runs").exists()  # no empty runs/ left behind


# ── 4. finite numbers, edge lines ─────────────────────────────────────────────────────────────────────


def _poison(annotation: object) -> object:
    """A value of ``annotation``'s shape with a non-finite float inside, or None if it holds no float."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is float:
        return math.inf
    if origin is typing.Annotated:
        return _poison(args[0])
    if origin in (typing.Union, __import__("types").UnionType):
        return next((v for a in args if (v := _poison(a)) is not None), None)
    if origin is list:
        inner = _poison(args[0])
        return None if inner is None else [0.0, inner]
    if origin is dict:
        inner = _poison(args[1])
        return None if inner is None else {"x": inner}
    return None


FLOAT_FIELDS = [(cls, name, value) for cls in vars(schema).values()
                if isinstance(cls, type) and issubclass(cls, schema.Strict) and cls is not schema.Strict
                for name, f in cls.model_fields.items() if (value := _poison(f.annotation)) is not None]


def test_there_are_float_fields_to_check():
    assert len(FLOAT_FIELDS) >= 20


@pytest.mark.parametrize(("cls", "name", "value"), FLOAT_FIELDS,
                         ids=[f"{c.__name__}.{n}" for c, n, _ in FLOAT_FIELDS])
def test_every_float_must_be_finite(cls: type[BaseModel], name, value):
    for bad in (value, _replace_inf(value, math.nan), _replace_inf(value, -math.inf)):
        with pytest.raises(ValidationError) as err:
            cls.model_validate({name: bad})
        assert any(e["type"] == "finite_number" for e in err.value.errors()), err.value


def _replace_inf(value: object, by: float) -> object:
    if isinstance(value, float):
        return by if math.isinf(value) else value
    if isinstance(value, list):
        return [_replace_inf(v, by) for v in value]
    return {k: _replace_inf(v, by) for k, v in value.items()}  # type: ignore[union-attr]


def test_a_non_finite_value_names_the_field():
    assert error_of({"world": {"spread": math.inf}}) == "world.spread: must be a finite number, got inf"
    assert error_of({"developers": {"train": {"lr": math.nan}}}).startswith("developers.train.lr: must be a finite")


@pytest.mark.parametrize(
    ("line", "message"),
    [("0 1 nan", "weight must be a finite number > 0, got nan"), ("0 1 inf", "got inf"), ("0 1 0", "got 0"),
     ("0 1 -2", "got -2"), ("0 1 1 7", "expected 'u v [weight]'"), ("0", "expected 'u v [weight]'"),
     ("0 x", "expected 'u v [weight]'"), ("0 1.5", "expected 'u v [weight]'")],
)
def test_edge_lines_must_be_well_formed(tmp_path, line, message):
    (tmp_path / "e.txt").write_text(f"# comment\n0 1\n{line}\n")
    with pytest.raises(NetworkError, match="line 3") as err:
        read_edge_list(tmp_path / "e.txt", 4)
    assert message in str(err.value)


# ── 5. sweep designs ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "sweep",
    [{"grid": {"developers.count": list(range(2, 1002)), "steps": list(range(1, 1001))}},
     {"replications": 10**8},
     {"random": {"samples": 10**8, "ranges": {"developers.data.keep": [0, 1]}}}],
)
def test_huge_designs_are_counted_and_refused_before_expanding(sweep):
    start = time.perf_counter()
    message = error_of({**tiny(), "sweep": sweep})
    assert time.perf_counter() - start < 1.0
    assert message.startswith("sweep.max_runs: the design has") and "set max_runs:" in message


def test_a_larger_design_runs_when_asked():
    s = validate_scenario({**tiny(), "sweep": {"replications": 20_000, "max_runs": 20_000}})
    assert s.sweep.size() == (1, 20_000)
    s = validate_scenario({**tiny(), "sweep": {"grid": {"steps": [1, 2, 3]}, "zip": {"seed": [1, 2]},
                                               "replications": 5}})
    assert s.sweep.size() == (6, 30)


def test_an_alias_bomb_inside_a_sweep_is_refused(tmp_path):
    from ecosystem.design import load_design
    from tests.fuzz_scenarios import BOMB

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny()) + f"sweep:\n  grid:\n    description: {BOMB}\n")
    with pytest.raises(ScenarioError, match="more than 1,000,000 values"):
        load_design(path)


def test_validate_checks_sweep_files_and_designs(tmp_path):
    ok = cli("validate", str(ROOT / "scenarios" / "sweeps" / "topology.yaml"))
    assert ok.exit_code == 0 and ok.output.strip() == "ok: 80 runs (10 design points × 8 replications)"
    write(tmp_path / "base.yaml", tiny())
    sweep_file = write(tmp_path / "s.yaml", {"base": "base.yaml", "grid": {"steps": [1, 2]}, "replications": 2})
    ok = cli("validate", str(sweep_file))
    assert ok.exit_code == 0 and ok.output.strip() == "ok: 4 runs (2 design points × 2 replications)"
    bad = write(tmp_path / "bad.yaml", {"base": "base.yaml", "grid": {"developers.data.synthetic": [0.5, 1.7]}})
    one_line_error(cli("validate", str(bad)), "sweep.grid.developers.data.synthetic[0]:")
    huge = write(tmp_path / "huge.yaml", {"base": "base.yaml", "replications": 10**8})
    one_line_error(cli("validate", str(huge)), "max_runs: the design has 100,000,000 runs")


def test_sweep_prints_the_run_count_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "s.yaml", {**tiny(steps=1), "sweep": {"replications": 2}})
    result = cli("sweep", str(path), "-b", "serial", "-q")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "sweep tiny: 2 runs (1 design point × 2 replications)"


# ── 8. small ones ─────────────────────────────────────────────────────────────────────────────────────


def test_duplicate_keys_are_refused(tmp_path):
    (tmp_path / "s.yaml").write_text("seed: 1\ndevelopers:\n  count: 3\n  count: 4\n")
    with pytest.raises(ScenarioError, match=r"\(line 4, column 3\): duplicate key 'count'"):
        load_scenario(tmp_path / "s.yaml")
    (tmp_path / "m.yaml").write_text("x: &x {count: 3}\ndevelopers:\n  <<: *x\n  count: 4\n")  # merge keys override
    assert yaml.safe_load((tmp_path / "m.yaml").read_text())["developers"]["count"] == 4


@pytest.mark.parametrize("seed", [True, "7", 7.0])
def test_types_are_strict(seed):
    assert error_of({"seed": seed}).startswith("seed: must be a valid integer")


def test_floats_accept_integers():
    assert validate_scenario({"world": {"spread": 2}}).world.spread == 2.0


def test_share_sums_are_reported_exactly():
    message = error_of({"developers": {"data": {"synthetic": 0.50000001, "human_fresh": 0.5}}})
    assert "synthetic 0.50000001" in message and "= 1.00000001" in message


def test_a_ray_address_nobody_answers_fails_before_writing(tmp_path):
    from ecosystem.sweep import run_sweep

    path = write(tmp_path / "s.yaml", {**tiny(), "sweep": {"replications": 2}})
    with pytest.raises(RuntimeError, match=r"no Ray cluster answers at 127\.0\.0\.1:9"):
        run_sweep(path, out=tmp_path / "out", backend="ray", address="127.0.0.1:9", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_singular_gaussian_fit_is_warned(tmp_path):
    singular = validate_scenario(tiny(world={"dim": 4}, developers={"count": 4, "train": {"samples": 4}}))
    assert scenario_warnings(singular)[0].startswith("developers.train.samples: 4 items per generation")
    assert scenario_warnings(validate_scenario(tiny())) == []
    result = cli("validate", str(write(tmp_path / "s.yaml", singular.model_dump(mode="json"))))
    assert result.exit_code == 0 and "warning: developers.train.samples" in result.output


# ── the loader as a whole ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), source=st.sampled_from(SHIPPED))
def test_the_loader_raises_only_scenario_errors(tmp_path, seed, source):
    path = tmp_path / source.name
    path.write_bytes(mutate(source, random.Random(seed)))
    try:
        load_scenario(path)
    except ScenarioError as err:
        assert str(err) and "\n" not in str(err)
