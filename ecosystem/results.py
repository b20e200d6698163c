"""What a run folder and a sweep folder hold, and the one place that reads and writes them.

``ecosystem.run`` writes run folders, ``ecosystem.sweep`` writes sweep folders and their manifest, and
``analysis`` reads both, all through this module. A run folder::

    scenario.yaml      the fully resolved scenario
    model.parquet      one row per generation (ecosystem-level metrics)
    agents.parquet     one row per generation × developer
    divergence.npz     pairwise divergences between developers' models at the measured generations
                       (:class:`Divergences`); absent when the scenario measures none
    network.edgelist   ``u v weight`` lines (u → v: v reads u)
    meta.json          seed, sizes, device, versions, timings
    samples.parquet    what the models wrote (token worlds): ``step, developer, text``, ``samples.keep`` per
                       developer per generation; absent for worlds whose items are not text
    corpus.json        the ``corpus`` world's parts (documents, tokens); ``tokenizer.json`` its BPE vocabulary
    summary.png        optional one-glance figure

A sweep folder holds ``sweep.yaml``, ``manifest.jsonl`` (an append-only log of outcomes), ``manifest.parquet``
(the design's runs and their status) and ``runs/<run_id>/`` run folders.

Older run folders are read too: ``divergence.npy`` (a dense ``(steps, N, N)`` array) and the column
``homogenization``, which is now called ``divergence`` (:data:`RENAMED`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
import yaml

if TYPE_CHECKING:
    from ecosystem.network import Edges

SCENARIO, MODEL, AGENTS, DIVERGENCE, NETWORK, META, SUMMARY = (
    "scenario.yaml", "model.parquet", "agents.parquet", "divergence.npz", "network.edgelist", "meta.json",
    "summary.png",
)  # fmt: skip
SAMPLES = "samples.parquet"
LEGACY_DIVERGENCE = "divergence.npy"
RENAMED = {"homogenization": "divergence"}  # columns of older run folders → their current names


class ResultsError(ValueError):
    """A run or sweep folder that is missing or unreadable (the message is one line naming the file)."""


# ── pairwise divergences ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Divergences:
    """Pairwise divergences between the ``n`` developers' models at the measured generations.

    ``values[s, p]`` is the divergence of the pair ``(i[p], j[p])`` (``i < j``; every family's divergence is
    symmetric) after generation ``steps[s]``. All pairs are stored, or a seeded sample of pairs that is the
    same at every step (``metrics.pairwise`` in the scenario), so the series stay comparable over time.
    """

    n: int
    steps: np.ndarray  # (S,) int
    i: np.ndarray  # (P,) int
    j: np.ndarray  # (P,) int
    values: np.ndarray  # (S, P) float32

    @classmethod
    def from_matrices(cls, steps: np.ndarray, matrices: np.ndarray) -> Divergences:
        """From dense ``(S, N, N)`` matrices (every pair)."""
        matrices = np.asarray(matrices)
        n = matrices.shape[1]
        i, j = np.triu_indices(n, 1)
        sym = (matrices[:, i, j] + matrices[:, j, i]) / 2
        return cls(n, np.asarray(steps, dtype=np.int64), i, j, sym.astype(np.float32))

    @property
    def complete(self) -> bool:
        """Whether every pair is measured."""
        return len(self.i) == self.n * (self.n - 1) // 2

    def matrix(self, k: int = -1) -> np.ndarray:
        """The ``(N, N)`` matrix at the ``k``-th measured step: symmetric, zero diagonal, NaN where a pair was
        not measured."""
        out = np.full((self.n, self.n), np.nan)
        out[self.i, self.j] = out[self.j, self.i] = self.values[k]
        np.fill_diagonal(out, 0.0)
        return out

    def matrices(self) -> np.ndarray:
        """Every measured step's matrix ``(S, N, N)`` (see :meth:`matrix`)."""
        return np.stack([self.matrix(k) for k in range(len(self.steps))]) if len(self.steps) else np.empty(
            (0, self.n, self.n))

    def mean(self, same: np.ndarray | None = None, labels: np.ndarray | None = None) -> np.ndarray:
        """Mean divergence over the measured pairs at each step ``(S,)``; with developer ``labels (N,)``,
        over pairs in the same community (``same=True``) or in different ones (``same=False``). NaN where
        no measured pair qualifies."""
        keep = np.ones(len(self.i), dtype=bool)
        if same is not None:
            labels = np.asarray(labels)
            keep = (labels[self.i] == labels[self.j]) == same
        if not keep.any():
            return np.full(len(self.steps), np.nan)
        return self.values[:, keep].astype(np.float64).mean(1)

    def per_developer(self) -> np.ndarray:
        """Each developer's mean divergence to the others over its measured pairs ``(S, N)`` (NaN if none)."""
        total = np.zeros((len(self.steps), self.n))
        count = np.bincount(self.i, minlength=self.n) + np.bincount(self.j, minlength=self.n)
        for ends in (self.i, self.j):
            np.add.at(total.T, ends, self.values.T.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count

    def save(self, path: Path) -> None:
        np.savez(path, n=self.n, steps=self.steps, i=self.i.astype(np.int32), j=self.j.astype(np.int32),
                 values=self.values.astype(np.float32))

    @classmethod
    def load(cls, path: Path) -> Divergences:
        with np.load(path) as f:
            return cls(int(f["n"]), f["steps"], f["i"].astype(np.int64), f["j"].astype(np.int64), f["values"])


# ── run folders ───────────────────────────────────────────────────────────────────────────────────────


def is_run(path: Path) -> bool:
    return (Path(path) / META).is_file()


def is_sweep(path: Path) -> bool:
    return (Path(path) / "runs").is_dir() and (Path(path) / "manifest.jsonl").exists()


class RunFolder:
    """A finished run folder, read lazily: each property loads its file on first use.

    A missing or unreadable file raises :class:`ResultsError` naming it; ``divergence`` is None when the run
    measured no pairwise divergences.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not is_run(self.path):
            raise ResultsError(f"{self.path}: not a run folder (no {META})")

    def _read(self, name: str, reader: Any) -> Any:
        try:
            return reader(self.path / name)
        except FileNotFoundError:
            raise ResultsError(f"{self.path / name}: missing") from None
        except Exception as err:  # truncated parquet, malformed JSON or YAML, ...
            raise ResultsError(f"{self.path / name}: unreadable ({type(err).__name__}: {err})") from None

    @cached_property
    def meta(self) -> dict[str, Any]:
        meta = self._read(META, lambda p: json.loads(p.read_text()))
        if not isinstance(meta, dict):
            raise ResultsError(f"{self.path / META}: unreadable (not a JSON object)")
        return meta

    @cached_property
    def scenario(self) -> dict[str, Any]:
        return self._read(SCENARIO, lambda p: yaml.safe_load(p.read_text()) or {})

    @property
    def scenario_text(self) -> str:
        return self._read(SCENARIO, lambda p: p.read_text())

    @cached_property
    def model(self) -> pd.DataFrame:
        return self._read(MODEL, pd.read_parquet).rename(columns=RENAMED)

    @cached_property
    def agents(self) -> pd.DataFrame:
        return self._read(AGENTS, pd.read_parquet).rename(columns=RENAMED)

    @cached_property
    def divergence(self) -> Divergences | None:
        if (self.path / DIVERGENCE).is_file():
            return self._read(DIVERGENCE, Divergences.load)
        if (self.path / LEGACY_DIVERGENCE).is_file():
            matrices = self._read(LEGACY_DIVERGENCE, np.load)
            return Divergences.from_matrices(np.arange(1, len(matrices) + 1), matrices)
        return None

    @cached_property
    def samples(self) -> pd.DataFrame | None:
        """What the models wrote (``step, developer, text``), or None when the run kept none."""
        if not (self.path / SAMPLES).is_file():
            return None
        return self._read(SAMPLES, pd.read_parquet)

    @property
    def n_developers(self) -> int:
        return int(self.meta.get("developers") or self.divergence.n)

    @cached_property
    def groups(self) -> np.ndarray:
        """Developer community (cohort) of each developer ``(N,)``."""
        sizes = self.meta.get("groups") or [self.n_developers]
        return np.repeat(np.arange(len(sizes)), sizes)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The reading network with node attribute ``group``."""
        from ecosystem.network import NetworkError, read_edge_list

        try:
            graph = self._read(NETWORK, lambda p: read_edge_list(p, self.n_developers))
        except NetworkError as err:
            raise ResultsError(str(err)) from None
        nx.set_node_attributes(graph, dict(enumerate(self.groups.tolist())), "group")
        return graph

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.scenario.get("name") or self.path.name)


def write_run(
    folder: Path,
    *,
    scenario_text: str,
    model: pd.DataFrame,
    agents: pd.DataFrame,
    divergence: Divergences | None,
    graph: nx.DiGraph | Edges,
    meta: dict[str, Any],
    samples: pd.DataFrame | None = None,
    files: dict[str, str] | None = None,
) -> None:
    """Write every file of a run folder into ``folder`` (which the caller renames into place when whole);
    ``files`` are the world's own (name → text)."""
    from ecosystem.network import write_edge_list

    if samples is not None:
        samples.to_parquet(folder / SAMPLES, index=False)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    (folder / SCENARIO).write_text(scenario_text)
    model.to_parquet(folder / MODEL, index=False)
    agents.to_parquet(folder / AGENTS, index=False)
    if divergence is not None:
        divergence.save(folder / DIVERGENCE)
    write_edge_list(graph, folder / NETWORK)
    (folder / META).write_text(json.dumps(_finite(meta), indent=2, allow_nan=False))


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they are written as null (e.g. the baseline of a vector world)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# ── sweep folders: the manifest ───────────────────────────────────────────────────────────────────────

MANIFEST_LOG, MANIFEST_TABLE, SWEEP_FILE, RUNS = "manifest.jsonl", "manifest.parquet", "sweep.yaml", "runs"
# The manifest's columns, one row per run of the design (the log also keeps each failure's traceback).
COLUMNS = ["run_id", "point", "replication", "seed", "params", "status", "error", "run_s", "started",
           "finished", "host", "backend"]  # fmt: skip


class Manifest:
    """A sweep's memory: an append-only log of outcomes and a summary table rewritten from it.

    Each outcome is one ``write`` of one line, flushed and fsynced: a killed driver leaves whole lines, and a
    finished run's line survives a crash. A torn last line (power loss mid-write) is dropped on opening.
    A run's status is ``done`` exactly when its folder ``runs/<run_id>`` exists (workers rename a run into
    place only when it is whole), else ``failed`` if its latest record says so, else ``pending``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        path = self.folder / MANIFEST_LOG
        self.latest, whole = read_log(path)
        if not whole:
            write_atomic(path, "".join(json.dumps(r, default=str) + "\n" for r in self.latest.values()))
        self._log = open(path, "a")  # opened after any repair, so it appends to the file that stays

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        self._log.write(json.dumps(record, default=str) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())
        self.latest[record["run_id"]] = record
        return record

    def records(self, runs: list[Any]) -> list[dict[str, Any]]:
        """One record per run of the design (objects with ``id, point, replication, seed, params``)."""
        records = []
        for run in runs:
            record = {"run_id": run.id, "point": run.point, "replication": run.replication, "seed": run.seed,
                      "params": run.params} | self.latest.get(run.id, {})  # fmt: skip
            records.append({k: record.get(k) for k in COLUMNS} | {"status": run_status(record, self.folder)})
        return records

    def write_table(self, runs: list[Any]) -> None:
        frame = pd.DataFrame(self.records(runs), columns=COLUMNS)
        frame["params"] = frame["params"].map(json.dumps)
        tmp = self.folder / f".{MANIFEST_TABLE}.tmp-{os.getpid()}"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.folder / MANIFEST_TABLE)

    def close(self) -> None:
        self._log.close()


def read_log(path: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """The latest record of each run in the log, and whether the log is whole (no torn or foreign line)."""
    latest: dict[str, dict[str, Any]] = {}
    text = path.read_text() if path.exists() else ""
    whole = not text or text.endswith("\n")
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            whole = False
            continue
        if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
            whole = False
            continue
        latest[record["run_id"]] = record
    return latest, whole


def run_status(record: dict[str, Any], folder: Path) -> str:
    if (Path(folder) / RUNS / record["run_id"]).is_dir():
        return "done"
    return "failed" if record.get("status") == "failed" else "pending"


def read_manifest(folder: str | Path) -> pd.DataFrame:
    """The current design's runs, one row each, with the :data:`COLUMNS` (params as a dict); up to date
    even while the sweep runs or after it was killed (the log overrides the table)."""
    folder = Path(folder)
    if not (folder / MANIFEST_TABLE).is_file():
        raise ResultsError(f"{folder}: not a sweep folder (no {MANIFEST_TABLE})")
    try:
        table = pd.read_parquet(folder / MANIFEST_TABLE)
    except Exception as err:
        raise ResultsError(f"{folder / MANIFEST_TABLE}: unreadable ({type(err).__name__})") from None
    latest, _ = read_log(folder / MANIFEST_LOG)
    records = []
    for row in table.to_dict("records"):
        record = row | latest.get(row["run_id"], {}) | {"params": json.loads(row["params"])}
        records.append({**record, "status": run_status(record, folder)})
    return pd.DataFrame(records, columns=COLUMNS)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old or the new."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
