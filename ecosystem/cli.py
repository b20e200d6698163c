"""The ``ecosim`` command line: validate, run, sweep, analyze and visualise scenarios.

Bad input (a malformed file, an unknown field, an impossible value) is one line on stderr naming the field,
exit status 2, no traceback, and nothing written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ecosystem.network import NetworkError, read_edge_list
from ecosystem.processes import exit_code, terminate_as_interrupt
from ecosystem.results import ResultsError
from ecosystem.scenario import (
    MEMORY_ENV,
    EdgeListNet,
    Scenario,
    ScenarioError,
    SweepSpec,
    load_scenario,
    output_folder,
    read_yaml,
    scenario_warnings,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ecosim: a laboratory for generative models that train on each other's outputs.")

FileArg = Annotated[Path, typer.Argument(help="scenario YAML file", show_default=False)]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def check(path: Path) -> Scenario:
    """Load and validate a scenario, including what only reading it can check (an edge-list's content, a
    corpus's text against ``seq_len``); nothing large is built (not the network, not the world)."""
    try:
        scenario = load_scenario(path)
        _check_edges([scenario])
        _check_worlds([scenario])
    except (ScenarioError, NetworkError) as err:
        raise fail(str(err)) from None
    _warn([scenario])
    return scenario


def _check_edges(scenarios: list[Scenario]) -> None:
    read = set()
    for s in scenarios:
        key = (getattr(s.network, "path", None), s.developers.count)
        if isinstance(s.network, EdgeListNet) and key not in read:
            read_edge_list(Path(s.network.path), s.developers.count)
            read.add(key)


def _check_worlds(scenarios: list[Scenario]) -> None:
    """Each distinct world of ``scenarios`` read once (with the first seed that uses it: a corpus's split, so
    its parts' sizes, changes a little with the seed)."""
    from ecosystem.worlds import check_world

    read = set()
    for s in scenarios:
        key = (s.world.model_dump_json(), s.developers.count, s.developers.train.samples)
        if key not in read:
            check_world(s)
            read.add(key)


def _warn(scenarios: list[Scenario]) -> None:
    for warning in dict.fromkeys(w for s in scenarios for w in scenario_warnings(s)):
        typer.echo(f"warning: {warning}", err=True)


def _is_design(path: Path) -> bool:
    """Whether ``path`` holds a sweep: a scenario with a ``sweep:`` section, or a sweep file (``base:``)."""
    try:
        data = read_yaml(path, "scenario file")
    except ScenarioError as err:
        raise fail(str(err)) from None
    return isinstance(data, dict) and (data.get("sweep") is not None or bool(data.keys() & {"base",
                                                                                            *SweepSpec.model_fields}))


@app.command()
def validate(file: FileArg) -> None:
    """Check a scenario or sweep file: prints `ok`, or one line naming the field that is wrong.

    A sweep (a `sweep:` section, or a sweep file with `base:`) is expanded and every run of it checked.
    """
    if not _is_design(file):
        check(file)
        typer.echo("ok")
        return
    from ecosystem.design import expand, load_design

    try:
        design = load_design(file)
        runs = expand(design)
        _check_edges([run.scenario for run in runs])
        _check_worlds([run.scenario for run in runs])
    except (ScenarioError, NetworkError) as err:
        raise fail(str(err)) from None
    _warn([run.scenario for run in runs])
    typer.echo(f"ok: {_design_size(design.sweep)}")


def _design_size(sweep: SweepSpec) -> str:
    points, runs = sweep.size()
    r = sweep.replications
    return (f"{runs:,} run{'s' * (runs > 1)} ({points:,} design point{'s' * (points > 1)} × {r:,} "
            f"replication{'s' * (r > 1)})")


def _out_of_memory(err: BaseException) -> bool:
    """A MemoryError, or an allocator's error from torch (CPU or CUDA)."""
    text = str(err).lower()
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "alloc" in text.split(":")[0]))


def _os_error(err: OSError, option: str) -> str:
    if err.strerror and err.filename:
        return f"{option}: cannot write {err.filename}: {err.strerror}"
    return f"{option}: {' '.join(str(err).split())}"


@contextlib.contextmanager
def _no_orphans(out: Path) -> Iterator[None]:
    """Remove the folders above ``out`` that a failed command created and left empty (e.g. ``runs/``)."""
    out = out.absolute()
    missing = [p for p in [out.parent, *out.parent.parents] if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in missing:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


@app.command()
def run(
    file: FileArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder [default: runs/<name>]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    threads: Annotated[int | None, typer.Option("--threads", "-t", min=1,
                                                help="torch threads [default: the cores not busy]")] = None,
) -> None:
    """Run one scenario and write its run folder (results, graph, metadata and a summary figure)."""
    import torch

    from analysis.summary import write_summary
    from ecosystem.run import default_threads, run_scenario

    scenario = check(file)
    torch.set_num_threads(threads or default_threads())
    if scenario.sweep is not None:
        typer.echo(f"note: {file} has a sweep section; running its base scenario once "
                   f"(`ecosim sweep {file}` runs the design)", err=True)
    try:
        out = out or _free_folder(output_folder("runs", scenario.name))
    except ScenarioError as err:
        raise fail(str(err)) from None
    if out.exists() and not out.is_dir():
        raise fail(f"--out: {out} is a file; give a folder")
    if (out / "meta.json").exists() or (out.exists() and any(out.iterdir())):
        raise fail(f"--out: {out} is not empty; choose another folder")
    try:
        with _no_orphans(out), terminate_as_interrupt():
            folder = run_scenario(scenario, out, progress=not quiet, summary=write_summary)
    except ScenarioError as err:  # e.g. cuda asked for and absent
        raise fail(str(err)) from None
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the temporary folder is gone
        typer.echo("interrupted: nothing was written", err=True)
        raise typer.Exit(code=exit_code(err)) from None
    except OSError as err:  # the output folder: unwritable, a file in the way, a full disk
        raise fail(_os_error(err, "--out")) from None
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        raise fail(f"out of memory running {file}: lower the sizes in the scenario (the limit it was "
                   f"validated against is set by {MEMORY_ENV})") from None
    typer.echo(f"wrote {folder}")


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="scenario with a `sweep:` section, or a sweep file with `base:`",
                                         show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="sweep folder [default: sweeps/<name>]")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="parallel runs [default: CPU cores]")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="process | ray | serial")] = "process",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (ray backend)")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume",
                                         help="skip finished runs; --no-resume refuses an existing sweep")] = True,
    force: Annotated[bool, typer.Option("--force", help="extend this sweep even if its base scenario changed")
                     ] = False,
    figures: Annotated[bool, typer.Option("--figures", help="a summary.png in every run folder (slower)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the runs, how many are finished, and the time "
                                          "the rest would take; run and write nothing")] = False,
) -> None:
    """Run every variant of a sweep (grid, zip, random designs × replications), resumably."""
    from analysis.summary import write_summary
    from ecosystem.design import load_design
    from ecosystem.sweep import plan_sweep, run_sweep

    if dry_run:
        try:
            with terminate_as_interrupt():
                typer.echo(plan_sweep(file, out=out, workers=workers).table())
        except (ScenarioError, NetworkError, ValueError) as err:
            raise fail(str(err)) from None
        except KeyboardInterrupt as err:
            raise typer.Exit(code=exit_code(err)) from None
        return

    if backend not in ("process", "ray", "serial"):
        raise fail(f"--backend: must be process, ray or serial, got {backend!r}")
    try:
        design = load_design(file)
    except ScenarioError as err:
        raise fail(str(err)) from None
    typer.echo(f"sweep {design.name}: {_design_size(design.sweep)}")  # before the design is expanded
    try:
        with terminate_as_interrupt():
            result = run_sweep(file, out=out, workers=workers, backend=backend, address=address, resume=resume,
                               force=force, progress=not quiet, figures=write_summary if figures else None)
    except (FileNotFoundError, FileExistsError) as err:
        raise fail(str(err)) from None
    except OSError as err:  # the sweep folder: unwritable, a file in the way, a full disk
        raise fail(_os_error(err, "--out")) from None
    except MemoryError:
        raise fail(f"out of memory expanding or running {file}") from None
    except (ScenarioError, NetworkError, RuntimeError, ValueError) as err:
        raise fail(str(err)) from None
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: the workers are stopped
        typer.echo("interrupted: finished runs are kept; run the same command again to resume", err=True)
        raise typer.Exit(code=exit_code(err)) from None
    except ImportError as err:
        raise fail(f"--backend: {backend} is not installed ({err}); pip install 'ecosim[{backend}]'") from None
    typer.echo(result.table())  # ends with the sweep folder
    if result.counts["failed"]:
        raise typer.Exit(code=1)  # the failures are recorded in the manifest; finished runs are kept


@app.command()
def analyze(
    folder: Annotated[Path, typer.Argument(help="a run folder or a sweep folder", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="report folder [default: FOLDER/report]")] = None,
    by: Annotated[str | None, typer.Option("--by", help="factors analysed, e.g. network.kind,human_fresh; the "
                                           "others are pooled [default: every swept factor]", show_default=False)
                  ] = None,
    where: Annotated[str | None, typer.Option("--where", help="runs analysed, e.g. \"network.kind == 'ring'\"",
                                              show_default=False)] = None,
) -> None:
    """Write figures, tables and a self-contained HTML report for a run or a sweep.

    For a sweep, the report's factorial effects (effects.csv) are the main effects and interactions of the
    swept factors, or of those named by --by; --where keeps the runs for which an expression is true.
    """
    from analysis.report import analyze as build_report
    from analysis.selection import SelectionError

    if not folder.is_dir():
        raise fail(f"{folder}: no such folder")
    if out is not None and out.exists() and not out.is_dir():
        raise fail(f"--out: {out} is a file; give a folder")
    try:
        factors = [name.strip() for name in by.split(",") if name.strip()] if by is not None else None
        report = build_report(folder, out, by=factors, where=where)
    except (FileNotFoundError, FileExistsError, ResultsError, SelectionError) as err:
        raise fail(str(err)) from None
    except OSError as err:  # the report folder: unwritable, a full disk
        raise fail(_os_error(err, "--out")) from None
    typer.echo(f"wrote {report}")


@app.command()
def viz(
    path: Annotated[Path, typer.Argument(help="a run folder, a sweep folder or a scenario file (live)",
                                         show_default=False)],
    host: Annotated[str, typer.Option("--host", help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="port [default: a free one]", show_default=False)] = 0,
    no_open: Annotated[bool, typer.Option("--no-open", help="do not open a browser")] = False,
) -> None:
    """Serve an interactive page: a run's network over generations, a sweep's conditions, or a scenario live."""
    from analysis.dashboard.serve import DashboardError, bind, kind_of, require_viz, serve

    try:
        kind = kind_of(path)
        if kind == "scenario":
            check(path)
        require_viz()
        sock = bind(host, port)
    except DashboardError as err:
        raise fail(str(err)) from None
    serve(path, kind, sock, open_browser=not no_open)


@app.command()
def samples(
    folder: Annotated[Path, typer.Argument(help="a run folder", show_default=False)],
    developer: Annotated[int | None, typer.Option("--developer", "-d", help="one developer [default: all]")] = None,
    steps: Annotated[str | None, typer.Option("--steps", "-s", help="generations, e.g. 1,9 [default: first,last]")]
    = None,
    width: Annotated[int, typer.Option("--width", help="characters per column")] = 48,
) -> None:
    """Print what the models wrote at some generations, side by side, so drift is read, not inferred."""
    import textwrap

    from ecosystem.results import ResultsError, RunFolder

    try:
        table = RunFolder(folder).samples
    except ResultsError as err:
        raise fail(str(err)) from None
    if table is None or table.empty:
        raise fail(f"{folder}: the run kept no samples (a world whose items are not text, or samples.keep: 0)")
    known = sorted(table["step"].unique().tolist())
    try:
        chosen = [int(x) for x in steps.split(",")] if steps else sorted({known[0], known[-1]})
    except ValueError:
        raise fail(f"--steps: must be generations separated by commas, e.g. 1,9, got {steps!r}") from None
    if missing := [s for s in chosen if s not in known]:
        raise fail(f"--steps: generation {missing[0]} was not kept; kept: {known[0]}–{known[-1]}")
    developers = sorted(table["developer"].unique().tolist())
    if developer is not None and developer not in developers:
        raise fail(f"--developer: must be between 0 and {developers[-1]}, got {developer}")
    for k in [developer] if developer is not None else developers:
        typer.echo(f"developer {k}")
        columns = [table[(table.developer == k) & (table.step == s)]["text"].tolist() for s in chosen]
        typer.echo("  " + " | ".join(f"generation {s}".ljust(width) for s in chosen))
        for row in zip(*columns, strict=True):
            # newlines and tabs shown as symbols so each sample stays in its column
            wrapped = [textwrap.wrap(t.replace("\n", "⏎").replace("\t", "⇥"), width, drop_whitespace=False) or [""]
                       for t in row]
            for line in range(max(map(len, wrapped))):
                typer.echo("  " + " | ".join((w[line] if line < len(w) else "").ljust(width) for w in wrapped))
            typer.echo("")


def _free_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``… : never overwrite an earlier run."""
    candidate, i = base, 1
    while candidate.exists():
        i += 1
        candidate = base.with_name(f"{base.name}-{i}")
    return candidate


if __name__ == "__main__":  # pragma: no cover
    app()
