"""Processes that end cleanly: workers that die with their parent, SIGTERM handled like Ctrl-C, and temporary
folders named by the process that writes them so that the ones left by dead processes can be removed.

- A sweep's worker processes call :func:`die_with_parent` first: on Linux the kernel sends them SIGKILL when
  the driver dies (``prctl(PR_SET_PDEATHSIG)``, prctl(2)), and a thread that polls the parent's pid is the
  fallback elsewhere; without it, workers of a driver killed with SIGKILL live on idle, holding memory and
  the driver's stdout and stderr pipes (so whoever reads them never sees the end). Workers also ignore
  SIGINT: Ctrl-C reaches the whole foreground process group, and the driver alone decides what it means.
- :func:`terminate_as_interrupt` turns SIGTERM into :class:`Terminated`, a ``KeyboardInterrupt``, so that a
  ``kill`` unwinds like Ctrl-C (temporaries removed, workers stopped) and exits 143 (128 + SIGTERM).
- :func:`temporary` names a sibling of a final path ``.NAME.tmp-HOST-PID``; :func:`remove_stale` deletes those
  whose process is gone. Only this host's can be checked: others (a cluster on shared storage) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_S = 1.0  # how often the fallback checks that the parent is still there


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (see :func:`terminate_as_interrupt`)."""


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's status for a process ended by this interrupt: 128 + the signal's number."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the handler before is restored."""

    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread within the block, for the processes started inside it.

    They inherit the blocked signal (the mask survives fork and exec), so a Ctrl-C while a worker is still
    importing cannot print its traceback before :func:`die_with_parent` ignores it. This process still
    gets its Ctrl-C: another thread takes the signal, or this one once the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def die_with_parent(parent: int) -> None:
    """Make this process exit when the process ``parent`` (its parent, by pid) exits; ignore Ctrl-C.

    The initializer of a sweep's worker processes. Linux: the kernel sends SIGKILL at the parent's death
    (``PR_SET_PDEATHSIG``; strictly, at the exit of the parent's thread that started this process: start
    workers from a thread that outlives them). Everywhere: a daemon thread checks every ``POLL_S`` seconds
    that the parent is still this process's parent, and ends the process when it is not. Either way the
    process ends at once (no Python clean-up), like a worker killed by the kernel: the half-written run it
    leaves is named by its pid and removed by :func:`remove_stale`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    watch = threading.Thread(target=_watch_parent, args=(parent,), name="die-with-parent", daemon=True)
    watch.start()
    if os.getppid() != parent:  # the parent died before the kernel knew to tell us
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(1)  # from a thread: ends the whole process at once


# ── temporary folders named by their writer ──────────────────────────────────────────────────────────

_TEMPORARY = re.compile(r"\.(?P<stem>.+)\.tmp-(?P<host>[A-Za-z0-9_.-]+)-(?P<pid>\d+)")


def host() -> str:
    """This machine's name as it appears in temporary names (letters, digits, ``_.-`` only)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def temporary(final: Path) -> Path:
    """The hidden sibling ``.NAME.tmp-HOST-PID`` of ``final`` where this process writes it before renaming."""
    return final.with_name(f".{final.name}.tmp-{host()}-{os.getpid()}")


def writer(path: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of the process that wrote the temporary ``path``; None if it is not one."""
    match = _TEMPORARY.fullmatch(path.name)
    return (match["host"], int(match["pid"])) if match else None


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporaries in ``folder`` whose writer ran on this host and is gone; returns them.

    A live writer's temporary is left alone (it may be renamed into place any moment), as is one from another
    host, whose process cannot be checked from here. This process counts as gone: a temporary with its pid
    was left by an earlier process that had the same pid.
    """
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in folder.iterdir():
            who = writer(entry)
            if who is not None and who[0] == host() and not alive(who[1]) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process other than this one (a zombie has finished running)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # not a pid at all
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): trust the signal check
        return True
