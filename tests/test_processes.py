"""Processes end cleanly: workers die with their driver and release its pipes, SIGTERM and Ctrl-C stop a run or
a sweep with one line and nothing half-written, and temporaries of dead processes are removed (real
subprocesses and signals; Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ecosystem import processes
from ecosystem.processes import Terminated, alive, exit_code, host, remove_stale, temporary, writer
from ecosystem.run import run_scenario
from ecosystem.scenario import validate_scenario
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SWEEP = {
    "name": "slowish", "seed": 5, "steps": 60, "device": "cpu",
    "world": {"kind": "gaussian", "heldout": 200},
    "communities": [{"name": "everyone", "authors": 5, "rate": 10}],
    "developers": {"count": 4, "train": {"samples": 40}, "publish": {"samples": 40}},
    "sweep": {"grid": {"network.kind": ["complete", "ring", "star"]}, "replications": 3},
}  # fmt: skip
RUNS = 9
SWEEP_MESSAGE = "interrupted: finished runs are kept; run the same command again to resume"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def children(pid: int, marker: bytes = b"spawn_main") -> list[int]:
    """The processes whose parent is ``pid`` and whose command line holds ``marker`` (spawned workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def wait_until(condition, timeout: float = 120.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ecosim(*args: str, cwd: Path) -> subprocess.Popen:
    """``ecosim ARGS`` in its own session (so that a signal to its group is a terminal's Ctrl-C), with pipes."""
    return subprocess.Popen([sys.executable, "-m", "ecosystem.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip


def send(proc: subprocess.Popen, signum: int) -> None:
    """SIGINT goes to the whole process group, as a terminal's Ctrl-C does; other signals to the process."""
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)


# ── temporaries named by their writer ─────────────────────────────────────────────────────────────────


def test_temporary_names_identify_their_writer():
    tmp = temporary(Path("runs") / "a.tmp-b-7")  # a final name that itself looks like a temporary
    assert tmp.parent == Path("runs") and tmp.name == f".a.tmp-b-7.tmp-{host()}-{os.getpid()}"
    assert writer(tmp) == (host(), os.getpid())
    assert writer(Path(".x.tmp-node-3.cluster-42")) == ("node-3.cluster", 42)
    for name in ("x", ".x", ".x.tmp-", ".x.tmp-host", ".x.tmp-host-", ".x.tmp-ho/st-1", "x.tmp-host-1", ".tmp-h-1"):
        assert writer(Path(name)) is None, name


def test_only_temporaries_of_dead_processes_on_this_host_are_removed(tmp_path):
    dead, live = dead_pid(), os.getppid()
    made = {
        "dead": tmp_path / f".a.tmp-{host()}-{dead}",
        "mine": tmp_path / f".b.tmp-{host()}-{os.getpid()}",  # an earlier process with this pid left it
        "live": tmp_path / f".c.tmp-{host()}-{live}",
        "elsewhere": tmp_path / f".d.tmp-another-host-{dead}",  # its process cannot be checked from here
        "not ours": tmp_path / f".e.tmp-{dead}",
        "final": tmp_path / "a",
    }
    for path in made.values():
        path.mkdir()
        (path / "model.parquet").write_bytes(b"half")
    a_file = tmp_path / f".f.tmp-{host()}-{dead}"
    a_file.write_text("a file, not a folder")
    assert sorted(remove_stale(tmp_path)) == sorted([made["dead"], made["mine"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [made[k].name for k in ("live", "elsewhere", "not ours", "final")] + [a_file.name]
    )
    assert remove_stale(tmp_path / "missing") == []
    assert not alive(dead) and alive(live) and not alive(os.getpid()) and not alive(0)


def test_a_run_removes_the_temporaries_that_killed_runs_left_beside_it(tmp_path):
    runs = tmp_path / "runs"
    stale, live = runs / f".tiny.tmp-{host()}-{dead_pid()}", runs / f".tiny.tmp-{host()}-{os.getppid()}"
    for path in (stale, live):
        path.mkdir(parents=True)
    run_scenario(validate_scenario(tiny(steps=1)), runs / "tiny", progress=False)
    assert sorted(p.name for p in runs.iterdir()) == sorted(["tiny", live.name])


# ── signals ───────────────────────────────────────────────────────────────────────────────────────────


def test_sigterm_becomes_an_interrupt_only_inside_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught, processes.terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at once, so this never finishes
    assert isinstance(caught.value, KeyboardInterrupt) and exit_code(caught.value) == 143
    assert exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is before


def test_processes_started_while_sigint_is_blocked_inherit_the_block():
    check = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    with pytest.raises(KeyboardInterrupt):
        with processes.sigint_blocked():
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # pending for this thread
            time.sleep(0.2)  # not interrupted
            inside = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout
            reached = True
        time.sleep(5)  # the pending Ctrl-C is delivered as the block ends
    assert reached and inside.strip() == "True"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"


# A parent that starts one child and sleeps; the child (the parent's pid its argument) arranges to die with
# it, then says so.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
print(child.pid, flush=True)
time.sleep(120)
"""
CHILD = {
    "kernel and polling": "import sys, time; from ecosystem.processes import die_with_parent; "
                          "die_with_parent(int(sys.argv[1])); print('ready', flush=True); time.sleep(120)",
    "polling alone": "import sys, threading, time; from ecosystem import processes; processes.POLL_S = 0.05; "
                     "threading.Thread(target=processes._watch_parent, args=(int(sys.argv[1]),), daemon=True).start(); "
                     "print('ready', flush=True); time.sleep(120)",
}  # fmt: skip


@pytest.mark.parametrize("how", list(CHILD))
def test_a_child_dies_with_its_parent(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD[how]], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = int(parent.stdout.readline())
    assert parent.stdout.readline() == "ready\n"
    parent.kill()
    parent.wait()
    wait_until(lambda: not alive(child), timeout=10, what="the orphan to exit")
    assert parent.stdout.read() == ""  # and the pipe it shared is closed


def test_a_child_whose_parent_is_already_gone_exits_at_once():
    code = "from ecosystem.processes import die_with_parent; die_with_parent(1); import time; time.sleep(60)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)  # pid 1 is not its parent
    assert res.returncode == 1


# ── the command line ──────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def sweep_file(tmp_path) -> Path:
    path = tmp_path / "slowish.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    return path


def start_sweep(sweep_file: Path) -> tuple[subprocess.Popen, list[int]]:
    """A two-worker sweep, once both workers are running and at least one run has finished."""
    out = sweep_file.parent / "out"
    proc = ecosim("sweep", str(sweep_file), "--out", str(out), "--workers", "2", "-q", cwd=sweep_file.parent)

    def started() -> bool:
        assert proc.poll() is None, proc.communicate()
        log = out / "manifest.jsonl"
        return len(children(proc.pid)) == 2 and log.exists() and log.read_text().count("\n") >= 1

    wait_until(started, what="two workers and a finished run")
    return proc, children(proc.pid)


def resume(sweep_file: Path) -> None:
    """Running the sweep again finishes it, and no temporary folder is left."""
    out = sweep_file.parent / "out"
    args = ["sweep", str(sweep_file), "--out", str(out), "--backend", "serial", "-q"]
    done = subprocess.run([sys.executable, "-m", "ecosystem.cli", *args], cwd=sweep_file.parent, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    names = [p.name for p in (out / "runs").iterdir()]
    assert len(names) == RUNS and not [n for n in names if n.startswith(".")]


@pytest.mark.slow
def test_workers_of_a_killed_sweep_exit_and_release_its_pipes(sweep_file):
    proc, workers = start_sweep(sweep_file)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as the out-of-memory killer would
    proc.communicate(timeout=60)  # end of file: no process holds the driver's stdout and stderr any more
    wait_until(lambda: not any(alive(w) for w in workers), timeout=10, what="the workers to exit")
    assert len([p for p in (sweep_file.parent / "out" / "runs").iterdir() if not p.name.startswith(".")]) < RUNS
    resume(sweep_file)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_sigterm_or_ctrl_c_stops_a_sweep_with_one_line(sweep_file, signum):
    proc, workers = start_sweep(sweep_file)
    send(proc, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert err == SWEEP_MESSAGE + "\n"  # no worker's traceback, no resource tracker's warning
    assert not any(alive(w) for w in workers)
    runs = [p.name for p in (sweep_file.parent / "out" / "runs").iterdir()]
    assert len(runs) < RUNS and not [n for n in runs if n.startswith(".")]  # the stopped runs' temporaries
    resume(sweep_file)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_sigterm_or_ctrl_c_stops_a_run_and_leaves_nothing(tmp_path, signum):
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(tiny(steps=5000)))
    proc = ecosim("run", str(path), "-q", cwd=tmp_path)
    runs = tmp_path / "runs"
    wait_until(lambda: runs.is_dir() and any(writer(p) for p in runs.iterdir()), what="the run's temporary")
    time.sleep(0.5)
    send(proc, signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert err == "interrupted: nothing was written\n" and out == ""
    assert not runs.exists()  # not even the `runs/` folder the command created
