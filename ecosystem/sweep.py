"""Run a sweep: expand its design, run each run once through an executor, and never lose finished work.

The sweep folder (default ``sweeps/<name>`` under the current directory)::

    sweep.yaml          the design file as given (by the latest invocation)
    base.yaml           the base scenario it varies; a changed base is refused unless forced
    manifest.jsonl      append-only log: one JSON line per run that finished or failed, written as it happens
    manifest.parquet    the current design's runs and their status (rewritten at the start and the end)
    runs/<run_id>/      one folder per finished run (the ``ecosystem.run`` layout)
    sweep.lock          held while a sweep runs here, so two invocations cannot share the folder

A worker writes its run inside ``runs/.<run_id>.tmp-<host>-<pid>/`` and renames it to ``runs/<run_id>`` only
once it is complete, so a folder under a run's final name is always whole, and it is what "done" means: running
the same sweep again skips those runs and redoes failed or missing ones. A run that raises is recorded as
failed, with its error, and the others go on. Workers return a small record (status, timings), never data.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from tqdm import tqdm

from ecosystem.design import Run, expand, load_design
from ecosystem.executors import BACKENDS, make_executor
from ecosystem.processes import remove_stale, temporary
from ecosystem.results import COLUMNS, RUNS, Manifest, write_atomic
from ecosystem.scenario import Scenario, output_folder

if TYPE_CHECKING:
    from ecosystem.run import Summary

DEFAULT_RUNNER = "ecosystem.run:run_scenario"
BASE = "base.yaml"  # the resolved base scenario, copied into the sweep folder
# "module:function", or a picklable callable(scenario, out_dir, *, progress, summary) like run_scenario.
Runner = str | Callable[..., Any]


@dataclass
class SweepResult:
    """What a sweep invocation leaves: its folder and, per run of the design, its latest record."""

    folder: Path
    records: list[dict[str, Any]]
    skipped: int = 0  # runs already finished before this invocation
    elapsed_s: float = 0.0
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        statuses = [r["status"] for r in self.records]
        self.counts = {s: statuses.count(s) for s in ("done", "failed", "pending")}
        self.counts |= {"total": len(statuses), "skipped": self.skipped}

    def table(self, max_rows: int = 30) -> str:
        """The closing summary: one row per design point, then the failures."""
        frame = pd.DataFrame(self.records, columns=COLUMNS)
        frame["run_s"] = pd.to_numeric(frame["run_s"])
        rows = frame.groupby("point", sort=True).agg(
            params=("params", lambda p: _label(p.iloc[0])),
            done=("status", lambda s: int((s == "done").sum())),
            failed=("status", lambda s: int((s == "failed").sum())),
            pending=("status", lambda s: int((s == "pending").sum())),
            run_s=("run_s", "mean"),
        )
        text = rows.head(max_rows).to_string(float_format=lambda x: f"{x:.2f}")
        if len(rows) > max_rows:
            text += f"\n... {len(rows) - max_rows} more design points"
        c = self.counts
        text += (
            f"\n{c['total']} runs: {c['done']} done ({c['skipped']} earlier), {c['failed']} failed, "
            f"{c['pending']} pending in {self.elapsed_s:.1f} s → {self.folder}"
        )
        failed = frame[frame["status"] == "failed"]
        for _, r in failed.head(5).iterrows():
            text += f"\n  failed {r['run_id']} (point {r['point']}, replication {r['replication']}): {r['error']}"
        if len(failed) > 5:
            text += f"\n  ... {len(failed) - 5} more failures in manifest.jsonl"
        return text


def run_sweep(
    path: str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    backend: str = "process",
    address: str | None = None,
    resume: bool = True,
    force: bool = False,
    progress: bool = True,
    figures: Summary | None = None,
    runner: Runner = DEFAULT_RUNNER,
    gpus_per_run: float = 0.25,
) -> SweepResult:
    """Run every run of the sweep at ``path`` that is not finished yet; see the module docstring.

    Every run is validated before anything is written (a bad design value raises ``ScenarioError``).
    ``resume=False`` refuses a folder that already holds a sweep instead of continuing it. Runs asking for
    ``cuda`` (or ``auto`` where there are GPUs) take ``gpus_per_run`` of a GPU (Ray, or the process backend's
    own GPU slots). Each run's ``summary.png`` is drawn only when ``figures`` is given (a callable drawing
    into a run folder): for small runs the figure costs several times the simulation, and a sweep is read
    through its frame (``analysis.sweep_frame``).
    """
    start = time.perf_counter()
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not 0 < gpus_per_run <= 1:  # a run uses one device
        raise ValueError(f"gpus_per_run: must be above 0 and at most 1, got {gpus_per_run}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers: must be ≥ 1, got {workers}")
    design = load_design(path)
    runs = expand(design)
    folder = Path(out) if out is not None else output_folder(Path.cwd() / "sweeps", design.name)
    if backend == "ray" and address is not None:
        _check_reachable(address)  # before anything is written
    base = yaml.safe_dump(design.base, sort_keys=True)  # the base scenario as this invocation reads it
    if (folder / BASE).is_file() and (folder / BASE).read_text() != base and not force:
        raise FileExistsError(f"{folder}: the base scenario changed since this sweep began (kept in {BASE}); "
                              "choose a new --out folder, or pass --force to extend this sweep with the new base")
    if not resume and (folder / "manifest.jsonl").exists():
        raise FileExistsError(f"{folder}: holds a sweep already; resume it, or choose another output folder")
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    with _lock(folder), contextlib.closing(_Manifest(folder)) as manifest:
        write_atomic(folder / "sweep.yaml", design.text)
        write_atomic(folder / BASE, base)  # the sweep folder is self-contained
        remove_stale(folder / "runs")  # half-written runs of killed workers
        todo = manifest.recover(runs)
        skipped = len(runs) - len(todo)
        manifest.write_table(runs)
        try:
            if todo:
                tasks = [Task(run.id, run.scenario, str(folder / "runs"), runner, figures) for run in todo]
                gpus = [gpus_per_run if run.scenario.device in ("cuda", "auto") else 0.0 for run in todo]
                executor = make_executor(backend, min(workers or os.cpu_count() or 1, len(todo)), address)
                bar = tqdm(total=len(runs), initial=skipped, desc=design.name, unit="run", file=sys.stderr,
                           disable=not progress, dynamic_ncols=True)  # fmt: skip
                counts = {"done": skipped, "failed": 0}
                with bar, executor:
                    for i, outcome in executor.run(execute, tasks, gpus):
                        counts[manifest.add(todo[i], backend, outcome)["status"]] += 1
                        bar.update()
                        bar.set_postfix(done=counts["done"], failed=counts["failed"], left=bar.total - bar.n)
        finally:
            manifest.write_table(runs)
            remove_stale(folder / "runs")  # after an interrupt: the runs of the workers it stopped
        result = SweepResult(folder, manifest.records(runs), skipped, time.perf_counter() - start)
    return result  # the caller prints result.table() once (the CLI on stdout)


@dataclass
class Plan:
    """What ``ecosim sweep --dry-run`` says before anything runs: the design's runs, how many of them the
    sweep folder already holds, and the time the rest would take."""

    folder: Path
    runs: list[Run]
    finished: int
    probe_s: float  # a two-generation run of the first run, written to a temporary folder, timed here
    run_s: float  # a run's estimated time: setup and writing as probed, every generation at the probe's pace
    workers: int
    start_s: float = 0.0  # starting a worker process (a Python that imports the simulator), probed once

    @property
    def estimate_s(self) -> float:
        """The remaining runs' time, spread over the workers (whole rounds: each worker runs one at a time),
        plus starting the workers (in parallel)."""
        left = len(self.runs) - self.finished
        return self.start_s + -(-left // self.workers) * self.run_s if left else 0.0

    def table(self, max_rows: int = 40) -> str:
        """The runs (run id, point, replication and each swept path's value), then the counts and the estimate."""
        rows = pd.DataFrame([{"run_id": r.id, "point": r.point, "replication": r.replication,
                              **{k: _value(v) for k, v in r.params.items()}} for r in self.runs])
        text = rows.head(max_rows).to_string(index=False)
        if len(rows) > max_rows:
            text += f"\n... {len(rows) - max_rows} more runs"
        left = len(self.runs) - self.finished
        return text + (
            f"\n{len(self.runs)} runs: {self.finished} already finished in {self.folder}, {left} to run"
            f"\nestimated time: {_duration(self.estimate_s)} with {self.workers} worker{'s' * (self.workers > 1)} "
            f"(a two-generation probe of the first run, written to a temporary folder, took {self.probe_s:.2f} s; "
            f"a run ≈ {_duration(self.run_s)}, less where a stop condition ends it early; starting a worker "
            f"≈ {_duration(self.start_s)})"
            "\ndry run: nothing was run or written")


def plan_sweep(path: str | Path, *, out: str | Path | None = None, workers: int | None = None) -> Plan:
    """The :class:`Plan` of the sweep at ``path``: its runs, those already finished under ``out`` (default
    ``sweeps/<name>``), and an estimate of the time left.

    The estimate comes from probes timed here: the first run cut to two generations, run and written into a
    temporary folder that is then removed (one torch thread, as a sweep worker has; the second generation
    gives the pace, the first carries warm-up), and one start of a Python that imports the simulator (what a
    process-backend worker pays once). Nothing is written to the sweep folder."""
    from ecosystem.run import run_scenario

    if workers is not None and workers < 1:
        raise ValueError(f"workers: must be ≥ 1, got {workers}")
    design = load_design(path)
    runs = expand(design)
    folder = Path(out) if out is not None else output_folder(Path.cwd() / "sweeps", design.name)
    finished = sum((folder / RUNS / run.id).is_dir() for run in runs)
    first = runs[0].scenario
    probe_steps = min(2, first.steps)
    with _one_thread(), tempfile.TemporaryDirectory(prefix="ecosim-dry-run-") as scratch:
        start = time.perf_counter()
        written = run_scenario(first.model_copy(update={"steps": probe_steps}), Path(scratch) / "run",
                               progress=False, summary=None)
        probe = time.perf_counter() - start
        per_step = json.loads((written / "meta.json").read_text())["timings"]["per_step_s"]
    run_s = probe - sum(per_step) + first.steps * per_step[-1]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ecosystem.run"], check=False, capture_output=True)
    left = len(runs) - finished
    return Plan(folder, runs, finished, probe, run_s, max(1, min(workers or os.cpu_count() or 1, left)),
                time.perf_counter() - start)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# ── the worker ────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Task:
    """What a worker needs for one run (pickled to it): the resolved scenario and where to write."""

    run_id: str
    scenario: Scenario
    runs_dir: str
    runner: Runner
    figures: Summary | None = None


def execute(task: Task) -> dict[str, Any]:
    """Run one sweep run in a private temporary folder, rename it into place, return a small record."""
    final = Path(task.runs_dir) / task.run_id
    scratch = temporary(final)  # the runner's own temporaries go here too
    record = {"run_id": task.run_id, "status": "done", "error": None, "traceback": None,
              "started": time.time(), "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip
    t0 = time.perf_counter()
    try:
        runner = _resolve(task.runner)
        shutil.rmtree(scratch, ignore_errors=True)  # left by a dead process that had the same pid
        scratch.mkdir()
        t0 = time.perf_counter()  # run_s is the run itself; started/finished also cover imports
        with _one_thread():
            runner(task.scenario, scratch / "run", progress=False, summary=task.figures)
        _publish(scratch / "run", final)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        record |= {"status": "failed", "error": f"{type(err).__name__}: {first}", "traceback": traceback.format_exc()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record | {"run_s": time.perf_counter() - t0, "finished": time.time()}


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch thread per run: the sweep's parallelism is across runs, and torch's parallel reductions
    sum in an order that depends on the thread count, so this keeps a run's numbers the same on every
    backend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve(runner: Runner) -> Callable[..., Any]:
    if callable(runner):
        return runner
    module, _, name = runner.partition(":")
    return getattr(importlib.import_module(module), name)


def _publish(tmp: Path, final: Path) -> None:
    try:
        tmp.rename(final)
    except OSError:
        # A worker left over from a killed invocation finished the same run first: same id, same content.
        if not (final.is_dir() and any(final.iterdir())):
            raise


# ── the driver ────────────────────────────────────────────────────────────────────────────────────────


class _Manifest(Manifest):
    """The manifest (``ecosystem.results.Manifest``) with the sweep's own bookkeeping of outcomes."""

    def add(self, run: Run, backend: str | None, outcome: dict[str, Any] | BaseException) -> dict[str, Any]:
        """Log an outcome: the run's place in the design and what its worker reported (or why it died)."""
        if isinstance(outcome, BaseException):  # the worker itself failed: killed, or unreachable
            outcome = {"status": "failed", "error": f"{type(outcome).__name__}: {outcome}"}
        elif outcome["status"] == "done" and not (self.folder / RUNS / run.id).is_dir():
            where = f"{outcome.get('host')}:{self.folder / RUNS / run.id}"
            outcome |= {"status": "failed", "error": f"written to {where}, which this machine cannot see; "
                        "a cluster's workers need the sweep folder on shared storage"}  # fmt: skip
        record = {"run_id": run.id, "point": run.point, "replication": run.replication, "seed": run.seed,
                  "params": run.params, "backend": backend} | outcome  # fmt: skip
        return self.append(record)

    def recover(self, runs: list[Run]) -> list[Run]:
        """The runs still to do. A run folder with no "done" line (the driver died between a worker's
        rename and the log write) is complete by construction, so it is logged as done, not redone."""
        todo = []
        for run in runs:
            if not (self.folder / RUNS / run.id).is_dir():
                todo.append(run)
            elif self.latest.get(run.id, {}).get("status") != "done":
                self.add(run, None, {"status": "done", "error": None, "recovered": True})
        return todo


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a Ray address (``host:port`` or ``ray://host:port``) that nothing answers on; ``auto`` and
    ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address: must be host:port, ray://host:port or auto, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise RuntimeError(f"--address: no Ray cluster answers at {address} ({err.strerror or err}); "
                           "nothing was written") from None


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    with open(folder / "sweep.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{folder}: another sweep is running in this folder") from None
        yield  # closing the file releases the lock, as does the death of this process


def _label(params: dict[str, Any]) -> str:
    """``synthetic=0.9, network={"kind":"ring"}``: each path's last name, unless two paths share it."""
    last = [k.rsplit(".", 1)[-1] for k in params]
    names = [short if last.count(short) == 1 else k for k, short in zip(params, last, strict=True)]
    values = [json.dumps(v, separators=(",", ":")) for v in params.values()]
    return ", ".join(f"{k}={v}" for k, v in zip(names, values, strict=True)) or "(the base scenario)"
