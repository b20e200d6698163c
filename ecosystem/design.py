"""Sweep designs: expand a ``sweep:`` section (or a sweep file) into fully resolved, validated runs.

A design is ``grid`` (every combination) × ``zip`` (parallel lists) × ``random`` (uniform or Latin-hypercube
points in ranges) × ``replications``. Each run is the base scenario with the design point's dotted-path
overrides and its own seed, validated as a whole before anything runs, and named by a hash of the resolved
scenario, so the same run has the same id in every invocation.

Seeds use common random numbers: replication ``r`` of every design point gets the seed of
``SeedSequence(scenario seed).spawn(...)[r]``, i.e. ``SeedSequence(seed, spawn_key=(r,))``. The seed depends
on ``r`` alone, so adding replications or design points later keeps every earlier run's seed, and two design
points compared at the same replication share their world and human data — a paired comparison whose
differences are the treatment's (Law, *Simulation Modeling and Analysis*, 5th ed., §11.2).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from ecosystem.scenario import Name, Scenario, ScenarioError, SweepSpec, check_name, read_yaml, validate_scenario


class SweepFile(SweepSpec):
    """A sweep kept apart from its scenario: ``base`` (path relative to this file) plus a SweepSpec."""

    base: str
    name: Name | None = None  # the sweep's name; default: the file's stem


@dataclass(frozen=True)
class Design:
    """A sweep as written: the base scenario (without ``sweep:``), where it lives, and the design."""

    name: str
    base: dict[str, Any]
    base_dir: Path
    sweep: SweepSpec
    text: str  # the file as given, copied into the sweep folder


Point = tuple[dict[str, Any], dict[str, tuple[str, str]]]  # values, and where each was set


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its design point, replication, seed and fully resolved scenario."""

    id: str
    point: int
    replication: int
    seed: int
    params: dict[str, Any]  # dotted path → value, as the design set it
    scenario: Scenario


def load_design(path: str | Path) -> Design:
    """Read a scenario with a ``sweep:`` section, or a sweep file with ``base: scenario.yaml``."""
    path = Path(path)
    data = _read_yaml(path)
    text = path.read_text()
    if "base" in data or data.keys() & SweepSpec.model_fields.keys():  # a sweep file, not a scenario
        spec = _validate_sweep_file(data, path)
        base_path = (path.parent / spec.base).resolve()
        base = _read_yaml(base_path)
        if base.get("sweep") is not None:
            raise ScenarioError(f"{path}: base {spec.base} has its own sweep: section; keep one design")
        sweep = SweepSpec.model_validate(spec.model_dump(exclude={"base", "name"}))
        if spec.name is None:
            try:
                check_name(path.stem)
            except ValueError as err:
                raise ScenarioError(f"{path}: name: the file name is not a safe sweep name: {err}") from None
        return Design(spec.name or path.stem, base, base_path.parent, sweep, text)
    scenario = validate_scenario(data, base_dir=path.parent)
    if scenario.sweep is None:
        raise ScenarioError(f"{path}: no sweep: section (and no base: for a sweep file); nothing to sweep")
    base = {k: v for k, v in data.items() if k != "sweep"}
    return Design(scenario.name, base, path.parent, scenario.sweep, text)


def expand(design: Design | str | Path) -> list[Run]:
    """Every run of the design, validated: grid × zip × random points × replications, in that order.

    Raises :class:`ScenarioError` with a one-line message naming the design entry that makes a run invalid,
    e.g. ``sweep.grid.developers.data.synthetic[1]: must be between 0 and 1, got 1.4``.
    """
    if not isinstance(design, Design):
        design = load_design(design)
    sweep = design.sweep
    base = validate_scenario(design.base, base_dir=design.base_dir)  # the base alone must be valid
    points = design_points(sweep, base.seed)
    seeds = replication_seeds(base.seed, sweep.replications)
    runs: list[Run] = []
    seen: dict[str, Run] = {}
    for p, (params, origin) in enumerate(points):
        for r, seed in enumerate(seeds):
            overrides = {**params, "seed": seed, "sweep": None}
            try:
                scenario = validate_scenario(design.base, base_dir=design.base_dir, overrides=overrides)
            except ScenarioError as err:
                raise ScenarioError(_blame(str(err), origin)) from None
            run = Run(run_id(scenario), p, r, seed, params, scenario)
            if run.id in seen:
                raise ScenarioError(
                    f"sweep: design points {seen[run.id].point} and {p} resolve to the same scenario "
                    f"({_describe(seen[run.id].params)} and {_describe(params)}); remove the duplicate"
                )
            seen[run.id] = run
            runs.append(run)
    return runs


def design_points(sweep: SweepSpec, seed: int) -> list[Point]:
    """The design points: (dotted path → value, dotted path → (design entry, which value))."""
    sections = [_grid(sweep.grid), _zip(sweep.zip), _random(sweep.random, seed)]
    owner: dict[str, str] = {}
    for name, paths in (("grid", sweep.grid), ("zip", sweep.zip), ("random", _ranges(sweep))):
        for dotted in paths:
            if dotted in ("seed", "sweep") or dotted.startswith(("seed.", "sweep.")):
                raise ScenarioError(
                    f"sweep.{name}.{dotted}: cannot be swept; run seeds come from the scenario seed and replications"
                )
            if dotted in owner:
                raise ScenarioError(f"sweep.{name}.{dotted}: already set by sweep.{owner[dotted]}")
            owner[dotted] = name
    points = []
    for combo in itertools.product(*sections):
        params = {k: v for part, _ in combo for k, v in part.items()}
        origin = {k: v for _, part in combo for k, v in part.items()}
        points.append((params, origin))
    return points


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Seed of replication r = ``SeedSequence(seed).spawn(R)[r]``, which does not depend on R."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def run_id(scenario: Scenario) -> str:
    """A short stable name for a resolved scenario: the hash of its canonical JSON."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# ── the three kinds of design ─────────────────────────────────────────────────────────────────────────


def _grid(grid: dict[str, list[Any]]) -> list[Point]:
    for dotted, values in grid.items():
        if not values:
            raise ScenarioError(f"sweep.grid.{dotted}: needs at least one value, got []")
    points = []
    for index in itertools.product(*(range(len(values)) for values in grid.values())):
        params = {k: grid[k][i] for k, i in zip(grid, index, strict=True)}
        points.append((params, {k: (f"sweep.grid.{k}", f"[{i}]") for k, i in zip(grid, index, strict=True)}))
    return points


def _zip(table: dict[str, list[Any]]) -> list[Point]:
    if not table:
        return [({}, {})]
    lengths = {len(v) for v in table.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in table.items())
        raise ScenarioError(f"sweep.zip: lists must have equal lengths, got {sizes}")
    n = lengths.pop()
    if n == 0:
        raise ScenarioError(f"sweep.zip.{next(iter(table))}: needs at least one value, got []")
    return [({k: v[i] for k, v in table.items()}, {k: (f"sweep.zip.{k}", f"[{i}]") for k in table}) for i in range(n)]


def _random(spec: Any, seed: int) -> list[Point]:
    """Uniform or Latin-hypercube points in ``ranges``, drawn from the scenario seed's own stream.

    Latin hypercube (McKay, Beckman & Conover, Technometrics 1979): each range is cut into ``samples``
    equal strata, each stratum is hit once, and the strata are paired across dimensions at random.
    """
    if spec is None:
        return [({}, {})]
    keys = list(spec.ranges)
    for dotted in spec.integer:
        if dotted not in spec.ranges:
            raise ScenarioError(f"sweep.random.integer: {dotted} has no entry in sweep.random.ranges")
    for dotted, (lo, hi) in spec.ranges.items():
        if not lo <= hi:
            raise ScenarioError(f"sweep.random.ranges.{dotted}: low must be ≤ high, got [{lo:g}, {hi:g}]")
    if not keys:
        raise ScenarioError("sweep.random.ranges: needs at least one dotted path with [low, high]")
    # Spawn key 2**32 cannot collide with a replication's (r,) below 2**32.
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**32,)))
    n, d = spec.samples, len(keys)
    if spec.method == "lhs":
        strata = np.stack([rng.permutation(n) for _ in range(d)], axis=1)  # (n, d)
        unit = (strata + rng.random((n, d))) / n
    else:
        unit = rng.random((n, d))  # row-major: growing `samples` keeps the earlier points
    lo, hi = np.array([spec.ranges[k] for k in keys]).T
    values = lo + unit * (hi - lo)  # (n, d)
    points = []
    for i in range(n):
        row = zip(keys, values[i].tolist(), strict=True)
        params = {k: round(v) if k in spec.integer else v for k, v in row}
        points.append((params, {k: (f"sweep.random.ranges.{k}", f" (sample {i})") for k in keys}))
    return points


def _ranges(sweep: SweepSpec) -> dict[str, Any]:
    return sweep.random.ranges if sweep.random is not None else {}


# ── errors and files ──────────────────────────────────────────────────────────────────────────────────


def _blame(message: str, origin: dict[str, tuple[str, str]]) -> str:
    """Re-address a run's validation error to the design entry (and which of its values) that caused it."""
    where, _, text = message.partition(": ")
    for dotted, (entry, which) in origin.items():
        if where == dotted:
            # A wrong path is the key's fault, whatever its value; a wrong value is that value's.
            return f"{entry}: {text}" if text.startswith("unknown field") else f"{entry}{which}: {text}"
        if where.startswith((dotted + ".", dotted + "[")) or dotted.startswith(where + "."):
            return f"{entry}{which}: {message}"  # the error sits inside or above the swept field: keep its path
    return message


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "the base scenario"


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: must be a mapping of fields, got {type(data).__name__}")
    return data


def _validate_sweep_file(data: dict[str, Any], path: Path) -> SweepFile:
    try:
        return SweepFile.model_validate(data)
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        head = e["loc"][0] if e["loc"] else ""
        if head in SweepSpec.model_fields or not e["loc"]:
            # The design keys read exactly like a scenario's own sweep: section, so say it in its words.
            validate_scenario({"sweep": {k: data[k] for k in SweepSpec.model_fields if k in data}})
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(SweepFile.model_fields))
            raise ScenarioError(f"{path}: {head}: unknown field; allowed: {allowed}") from None
        if e["type"] == "missing":
            raise ScenarioError(f"{path}: {head}: required field is missing") from None
        if e["type"] == "value_error":  # e.g. an unsafe name: the message says what it got
            raise ScenarioError(f"{path}: {head}: {e['msg'].removeprefix('Value error, ')}") from None
        text = e["msg"].replace("Input should be", "must be")
        raise ScenarioError(f"{path}: {head}: {text}, got {e.get('input')!r}") from None
