"""Where a sweep's runs execute: in this process, in local worker processes, or on a Ray cluster.

Every executor has one job: call ``fn(task)`` for each task and yield ``(index, result)`` as each call
finishes, where ``result`` is the exception if the call raised or its worker died. The caller decides what a
task means; results must be small (the sweep's workers return a record, and write their data to disk).

- ``serial``: one after another in this process (debugging, and the baseline of the throughput benchmark).
- ``process`` (default): ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method, which is
  safe with torch and CUDA (a forked child inherits locks and CUDA state it cannot use). On a machine with
  GPUs, runs that want one are spread over the GPUs and at most ``1 / share`` of them share one at a time.
  Its workers die with the process that started them and ignore Ctrl-C (:mod:`ecosystem.processes`);
  closing after an error or an interrupt stops them at once.
- ``ray``: one Ray task per run (``num_cpus=1``, and a fraction of a GPU when the run wants one, so several
  small runs share a GPU); ``ray.init()`` starts a local Ray, or ``address=`` joins a running cluster.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as wait_for_exit
from typing import Any

from ecosystem.processes import die_with_parent, sigint_blocked

BACKENDS = ("process", "ray", "serial")


class WorkerDied(RuntimeError):
    """The process running a task ended without a result (killed, out of memory, or crashed)."""


class Executor:
    """Runs ``fn`` over tasks; ``gpus[i]`` is the share of a GPU task ``i`` asks for (Ray and process)."""

    workers: int = 1
    has_gpu: bool = False  # whether the executor schedules GPUs (serial runs where it is)

    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], gpus: Sequence[float] | None = None
    ) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def close(self, wait: bool = True) -> None:
        """Release the workers; ``wait=False`` (after an error or Ctrl-C) abandons the tasks in flight."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.close(wait=exc_type is None)


class SerialExecutor(Executor):
    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], gpus: Sequence[float] | None = None
    ) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            try:
                result = fn(task)
            except Exception as err:
                result = err
            yield i, result


def _on_gpu(fn: Callable[[Any], Any], task: Any, device: int) -> Any:
    """``fn(task)`` with CUDA device ``device`` current in this worker (``"cuda"`` then means that GPU); the
    worker's cached GPU memory is released afterwards, so that idle workers do not hold it."""
    import torch

    if not torch.cuda.is_available():  # only where a caller gave gpu_count without GPUs (tests)
        return fn(task)
    torch.cuda.set_device(device)
    try:
        return fn(task)
    finally:
        torch.cuda.empty_cache()


class GpuSlots:
    """Shares of ``count`` GPUs in use: ``take(share)`` gives the least loaded GPU with ``share`` free (or
    None while none has), ``give(gpu, share)`` returns it."""

    def __init__(self, count: int) -> None:
        self.load = [0.0] * count

    def take(self, share: float) -> int | None:
        gpu = min(range(len(self.load)), key=self.load.__getitem__)
        if self.load[gpu] + share > 1 + 1e-9:
            return None
        self.load[gpu] += share
        return gpu

    def give(self, gpu: int, share: float) -> None:
        self.load[gpu] -= share


def _gpu_count() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class ProcessExecutor(Executor):
    """A spawn-context process pool that keeps exactly ``workers`` tasks in flight.

    When a worker dies, ``concurrent.futures`` marks the whole pool broken and fails every task in flight,
    including those that merely shared the pool (or had just been handed to it). So the pool is rebuilt and
    each of those tasks is run again alone: one that kills its worker alone is reported as
    :class:`WorkerDied` (a crash, or the kernel's out-of-memory killer), the others give their results.

    With GPUs (``gpu_count``, detected by default), a task asking for a share of one runs on the least
    loaded GPU that has that share free, and waits while none has: without this every worker would open
    its own CUDA context on GPU 0.
    """

    def __init__(self, workers: int | None = None, gpu_count: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.gpu_count = _gpu_count() if gpu_count is None else gpu_count
        self.has_gpu = self.gpu_count > 0
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=die_with_parent, initargs=(os.getpid(),))
        return self._pool

    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], gpus: Sequence[float] | None = None
    ) -> Iterator[tuple[int, Any]]:
        if any(not 0 <= g <= 1 for g in gpus or []):
            raise ValueError("gpus: each task's share of a GPU must be between 0 and 1")
        shares = [g if self.has_gpu else 0.0 for g in (gpus or [0.0] * len(tasks))]
        pool = self._pool or self._fresh_pool()
        slots = GpuSlots(self.gpu_count)
        todo = list(range(len(tasks)))  # in order; a task waiting for a GPU lets later CPU tasks pass
        suspects: list[int] = []  # in flight when a worker died: each runs again, alone
        running: dict[Future, tuple[int, int | None]] = {}  # future → (task, GPU)
        alone: int | None = None  # the suspect running alone

        def release(device: int | None, i: int) -> None:
            if device is not None:
                slots.give(device, shares[i])

        def pick() -> tuple[int, int | None] | None:
            """The first waiting task that can start (its place in ``todo``, its GPU); None if none can."""
            for k, i in enumerate(todo):
                if shares[i] == 0:
                    return k, None
                device = slots.take(shares[i])
                if device is not None:
                    return k, device
            return None  # nothing left, or every GPU task waits for a GPU: wait for a run to finish

        def start(i: int, device: int | None) -> bool:
            try:
                with sigint_blocked():  # a worker started here must never see Ctrl-C, even while it imports
                    future = pool.submit(fn, tasks[i]) if device is None else pool.submit(_on_gpu, fn, tasks[i], device)
            except BrokenProcessPool:  # a worker died since the last wait: the task is a suspect
                release(device, i)
                suspects.append(i)
                return False
            running[future] = (i, device)
            return True

        def submit() -> None:
            nonlocal alone
            if suspects:  # once the tasks in flight are done, one suspect at a time
                if not running:
                    i = suspects.pop(0)
                    alone = i if start(i, slots.take(shares[i]) if shares[i] > 0 else None) else None
                return
            while len(running) < self.workers and (chosen := pick()) is not None:
                k, device = chosen
                if not start(todo.pop(k), device):
                    return

        submit()
        while running or todo or suspects:
            if not running:  # the pool broke with nothing in flight (a GPU always fits a share ≤ 1)
                pool = self._fresh_pool()
                submit()
                if not running:
                    raise RuntimeError("process pool: no task could be started on a fresh pool")
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                i, device = running.pop(future)
                release(device, i)
                was_alone, alone = i == alone, None if i == alone else alone
                try:
                    result = future.result()
                except BrokenProcessPool as err:
                    broken = True
                    if was_alone:
                        yield i, WorkerDied(f"worker process died while running this task alone ({err})")
                    else:
                        suspects.append(i)
                    continue
                except Exception as err:
                    result = err
                yield i, result
            if broken:
                for i, device in running.values():
                    release(device, i)
                    suspects.append(i)
                running.clear()
                pool = self._fresh_pool()
            submit()

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            if not wait:  # the runs in flight are abandoned: stop their workers rather than wait for them
                self._stop_workers()
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def _stop_workers(self, grace_s: float = 5.0) -> None:
        """SIGTERM every worker of the pool, SIGKILL those still running after ``grace_s``; returns once all
        have exited. (Python 3.14 has ``ProcessPoolExecutor.terminate_workers``; this is it for 3.11.)"""
        workers = list((getattr(self._pool, "_processes", None) or {}).values())
        for worker in workers:
            worker.terminate()
        running = {worker.sentinel: worker for worker in workers}  # a sentinel is ready once its worker exited
        deadline = time.monotonic() + grace_s
        while running and (left := deadline - time.monotonic()) > 0:
            for sentinel in wait_for_exit(list(running), timeout=left):
                running.pop(sentinel)
        for worker in running.values():
            worker.kill()
        if running:
            wait_for_exit(list(running))


class RayExecutor(Executor):
    """Ray tasks, one per run; starts a local Ray unless one is running or ``address`` names a cluster."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("backend 'ray' needs Ray: pip install 'ecosim[ray]'") from None
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            local = address is None
            ray.init(
                address=address,
                num_cpus=workers if local else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        resources = ray.cluster_resources()
        self.workers = int(resources.get("CPU", 1))
        self.has_gpu = resources.get("GPU", 0) > 0

    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], gpus: Sequence[float] | None = None
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        remote = ray.remote(_call)  # a plain module function, so fn may be any picklable callable
        gpus = gpus or [0.0] * len(tasks)
        pending = {
            remote.options(num_cpus=1, num_gpus=g if self.has_gpu else 0).remote(fn, task): i
            for i, (task, g) in enumerate(zip(tasks, gpus, strict=True))
        }
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                try:
                    yield i, ray.get(done[0])
                except ray.exceptions.RayTaskError as err:
                    yield i, err.as_instanceof_cause()
                except ray.exceptions.RayError as err:  # the worker died, or the task was cancelled
                    yield i, WorkerDied(str(err).splitlines()[0])
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self, wait: bool = True) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def _call(fn: Callable[[Any], Any], task: Any) -> Any:
    return fn(task)


def make_executor(backend: str = "process", workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``backend``: ``process`` (default), ``ray`` or ``serial``."""
    if backend == "process":
        return ProcessExecutor(workers)
    if backend == "ray":
        return RayExecutor(workers, address)
    if backend == "serial":
        return SerialExecutor()
    raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
