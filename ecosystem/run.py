"""Run one scenario and write its run folder (layout in the README)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ecosystem.checks import learning_warning
from ecosystem.model import EcosystemModel
from ecosystem.processes import remove_stale, temporary
from ecosystem.results import is_run, write_run
from ecosystem.scenario import Scenario, ScenarioError, to_yaml

Summary = Callable[[Path], None]
"""Draws into a finished run folder (the command line passes :func:`analysis.summary.write_summary`)."""


def default_threads() -> int:
    """Torch threads for one run that do not oversubscribe the machine: the cores this process may use,
    less those other processes keep busy (the one-minute load average), and at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, cores - round(os.getloadavg()[0])))


def run_scenario(scenario: Scenario, out_dir: str | Path, *, progress: bool = True,
                 summary: Summary | None = None) -> Path:
    """Run ``scenario`` and write its folder ``out_dir`` atomically; returns the folder.

    Everything is written to a temporary sibling folder (``.NAME.tmp-HOST-PID``) that is renamed into place at
    the end, so a failed or interrupted run leaves nothing under ``out_dir``; temporaries that killed runs
    left beside it are removed first (:func:`ecosystem.processes.remove_stale`). ``summary``, if given, draws
    into the folder before it is renamed (so a run folder with a ``summary.png`` is whole).
    """
    out_dir = Path(out_dir)
    if is_run(out_dir):
        raise FileExistsError(f"{out_dir} already holds a finished run")
    remove_stale(out_dir.parent)
    tmp = temporary(out_dir)
    tmp.mkdir(parents=True)
    try:
        _run_into(scenario, tmp, progress=progress, summary=summary)
        if out_dir.exists():
            out_dir.rmdir()  # an empty folder made by the caller; a non-empty one is an error
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def simulate(scenario: Scenario, progress: bool = False) -> tuple[EcosystemModel, dict[str, object]]:
    """Build the model and run every generation, or until the scenario's ``stop`` condition holds on a
    measured generation; returns it with setup and per-step timings.

    If the first generation's models have not learned (:func:`ecosystem.checks.learning_warning`), the
    warning is printed at once (with ``progress``) so a long run can be stopped early.
    """
    start = time.perf_counter()
    model = EcosystemModel(scenario)
    stop = scenario.stop
    if stop is not None and stop.metric not in model.agent_names():
        raise ScenarioError(f"stop.metric: must be a per-developer metric of this run "
                            f"({', '.join(model.agent_names())}), got {stop.metric!r}")
    setup = time.perf_counter() - start
    per_step = []
    warned = False
    steps = range(scenario.steps)
    # No tqdm at all without a bar: its class-wide lock is a named semaphore, which a sweep worker stopped by
    # a signal leaves to multiprocessing's resource tracker (and its warning on the sweep's stderr).
    bar = tqdm(steps, desc=scenario.name, unit="gen", leave=False) if progress else None
    for _ in steps if bar is None else bar:
        t0 = time.perf_counter()
        model.step()
        per_step.append(time.perf_counter() - t0)
        if bar is not None:
            bar.set_postfix(nll=f"{model.summary['nll']:.3f}", div=f"{model.summary['divergence']:.3g}")
            if not warned and (warning := learning_warning(model.model_frame())):
                tqdm.write(f"warning: {warning}", file=sys.stderr)
                warned = True
        if stop is not None and stop.holds(model.history[-1][stop.metric]):
            break
    return model, {"setup_s": setup, "per_step_s": per_step, "total_s": time.perf_counter() - start}


def frames(model: EcosystemModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tidy tables of a model's run so far: one row per step, and one per step × developer."""
    return model.model_frame(), model.developer_frame()


def _run_into(scenario: Scenario, folder: Path, progress: bool, summary: Summary | None) -> None:
    model, timings = simulate(scenario, progress=progress)
    model_df, agents_df = frames(model)
    warning = learning_warning(model_df)
    meta = {
        "name": scenario.name,
        "seed": scenario.seed,
        "steps": scenario.steps,
        "steps_run": len(model.history),  # fewer than steps when the stop condition ended the run
        "stopped_at": _stopped_at(scenario, model),
        "developers": scenario.developers.count,
        "groups": scenario.developers.groups or [scenario.developers.count],
        "communities": model.communities,
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "reference": model.reference,
        "warnings": [warning] if warning else [],
        "versions": _versions(),
        "timings": timings,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_run(folder, scenario_text=to_yaml(scenario), model=model_df, agents=agents_df,
              divergence=model.divergences(), graph=model.edges, meta=meta, samples=model.samples_frame(),
              files=model.world.artifacts())
    if summary is not None:
        summary(folder)


def _stopped_at(scenario: Scenario, model: EcosystemModel) -> int | None:
    """The generation at which the scenario's stop condition held and ended the run, else None."""
    stop = scenario.stop
    if stop is None or not model.history or not stop.holds(model.history[-1][stop.metric]):
        return None
    return len(model.history)


def _versions() -> dict[str, str]:
    import mesa

    from ecosystem import __version__

    return {"ecosim": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "mesa": mesa.__version__, "numpy": np.__version__, "pandas": pd.__version__}
