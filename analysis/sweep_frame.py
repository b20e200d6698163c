"""Read a whole sweep: one tidy pandas frame with the design's parameters as columns, or DuckDB views.

Parameters are named by their dotted scenario path (``developers.data.synthetic``); a swept section
(``network: {kind: ring, k: 4}``) becomes one column per field (``network.kind``, ``network.k``). In SQL
the dotted names need double quotes::

    con = connect("sweeps/topology")
    con.sql('select "network.kind", step, avg(homogenization) from model group by all order by all').df()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from ecosystem.results import COLUMNS, read_manifest

TABLES = ("model", "agents")
KEYS = ["run_id", "point", "replication", "seed"]


def runs_frame(folder: str | Path) -> pd.DataFrame:
    """One row per run of the sweep's design: run_id, point, replication, seed, the parameters as columns,
    then status, error and timings."""
    manifest = read_manifest(folder)
    params = _tidy(pd.json_normalize(manifest["params"].tolist(), sep=".")) if len(manifest) else pd.DataFrame()
    params.index = manifest.index
    return pd.concat([manifest[KEYS], params, manifest.drop(columns=[*KEYS, "params"])], axis=1)


def swept_factors(folder: str | Path) -> pd.DataFrame:
    """The design's factors, one column per swept path and one row per run (index ``run_id``), taken from
    the design's own record of what each run set (the manifest's ``params``), so that every swept path is
    a factor whatever its values. Numbers stay numbers; anything else becomes a readable label: ``none``
    for null, ``fpr=0.05, tpr=0.8`` for a mapping, ``ring (k=4)`` for one with a kind, ``[6, 6]`` for a
    list. Levels are ordered as the design lists them (categorical columns), not alphabetically. A path
    whose value is the same in every run is not a factor."""
    manifest = read_manifest(folder)
    records = manifest["params"].tolist()
    paths = list(dict.fromkeys(k for r in records for k in r))  # the design's order
    factors = pd.DataFrame(index=pd.Index(manifest["run_id"], name="run_id"))
    for path in paths:
        values = [r.get(path) for r in records]
        if len({json.dumps(v, sort_keys=True) for v in values}) < 2:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            factors[path] = values
        else:
            labels = [level_label(v) for v in values]
            factors[path] = pd.Categorical(labels, categories=list(dict.fromkeys(labels)))
    return factors


def level_label(value: object) -> str:
    """A readable label of one level of a factor."""
    if value is None:
        return "none"
    if isinstance(value, dict):  # a network {kind: ring, k: 4} reads "ring (k=4)"
        rest = ", ".join(f"{k}={level_label(v)}" for k, v in value.items() if k != "kind")
        return f"{value['kind']} ({rest})" if "kind" in value and rest else str(value.get("kind", rest))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(level_label(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def connect(folder: str | Path, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (new, or ``con``) with a table ``runs`` (see :func:`runs_frame`) and views
    ``model`` and ``agents``: every finished run's Parquet rows, prefixed with its run_id, point,
    replication, seed and parameter columns. The views read the files where they lie, so queries over
    thousands of runs never load them all into memory."""
    folder = Path(folder)
    con = con if con is not None else duckdb.connect()
    runs = runs_frame(folder)
    con.register("_runs_frame", runs)
    con.execute("create or replace table runs as select * from _runs_frame")
    con.unregister("_runs_frame")
    done = runs.loc[runs["status"] == "done", "run_id"].tolist()
    keys = ", ".join(f'r."{c}"' for c in runs.columns if c in KEYS or c not in COLUMNS)  # ids and parameters
    for table in TABLES:
        if not done:  # no finished run yet: an empty view with the run columns only
            con.execute(f"create or replace view {table} as select {keys} from runs r where false")
            continue
        files = ", ".join(_quote(str(folder / "runs" / run_id / f"{table}.parquet")) for run_id in done)
        con.execute(
            f"create or replace view {table} as select {keys}, t.* exclude (filename) "
            f"from read_parquet([{files}], filename = true, union_by_name = true) t "
            "join runs r on r.run_id = regexp_extract(t.filename, '([^/]+)/[^/]+$', 1)"
        )
    return con


def load_sweep(folder: str | Path, table: Literal["model", "agents"] = "model") -> pd.DataFrame:
    """Every finished run's ``model`` (one row per step) or ``agents`` (per step × developer) table in one
    tidy frame, with run_id, point, replication, seed and the parameters as leading columns."""
    if table not in TABLES:
        raise ValueError(f"table: must be one of {', '.join(TABLES)}, got {table!r}")
    order = "point, replication, step" + (", developer" if table == "agents" else "")
    return connect(folder).sql(f"select * from {table} order by {order}").df()


def _tidy(params: pd.DataFrame) -> pd.DataFrame:
    """Parameter columns DuckDB can hold: lists (e.g. developers.groups) and mixed types become JSON text."""
    for column in params.columns:
        kinds = {float if type(v) is int else type(v) for v in params[column].dropna()}  # ints mix with floats
        if len(kinds) > 1 or kinds & {list, dict}:
            params[column] = params[column].map(lambda v: None if v is None else json.dumps(v))
    return params


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
