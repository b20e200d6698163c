"""Executors: every task comes back exactly once, errors come back as values, a dead worker is reported."""

from __future__ import annotations

import math
import os
import time

import pytest

from ecosystem.executors import GpuSlots, ProcessExecutor, RayExecutor, SerialExecutor, WorkerDied, make_executor

TASKS = [4.0, 9.0, -1.0, 16.0, 25.0]  # math.sqrt raises ValueError on -1


def check_outcomes(outcomes: list) -> None:
    assert sorted(i for i, _ in outcomes) == list(range(len(TASKS)))
    results = dict(outcomes)
    assert isinstance(results[2], ValueError)
    assert [results[i] for i in (0, 1, 3, 4)] == [2.0, 3.0, 4.0, 5.0]


def die_on_three(x: int) -> int:
    """Kills its own worker process for task 3, as an out-of-memory kill would."""
    if x == 3:
        os._exit(9)
    return x * x


def test_serial_runs_in_order_and_returns_errors():
    with SerialExecutor() as ex:
        outcomes = list(ex.run(math.sqrt, TASKS))
    check_outcomes(outcomes)
    assert [i for i, _ in outcomes] == list(range(len(TASKS)))


def test_process_pool_returns_every_task_and_survives_a_dead_worker():
    with ProcessExecutor(workers=2) as ex:
        check_outcomes(list(ex.run(math.sqrt, TASKS)))
        outcomes = dict(ex.run(die_on_three, list(range(8))))
    assert sorted(outcomes) == list(range(8))
    # The tasks in flight when the worker died (and any just handed to the broken pool) run again alone:
    # only the task that kills its worker is reported; every other task gives its result.
    assert isinstance(outcomes[3], WorkerDied)
    assert all(outcomes[i] == i * i for i in range(8) if i != 3)


def test_gpu_slots_spread_runs_and_never_oversubscribe():
    slots = GpuSlots(2)
    assert [slots.take(0.25) for _ in range(8)] == [0, 1] * 4  # least loaded first: round robin
    assert slots.take(0.25) is None  # both GPUs full
    slots.give(1, 0.25)
    assert slots.take(0.5) is None and slots.take(0.25) == 1
    assert GpuSlots(1).take(1.0) == 0


def test_process_executor_without_gpus_ignores_gpu_shares():
    with ProcessExecutor(2, gpu_count=0) as ex:
        assert not ex.has_gpu
        check_outcomes(list(ex.run(math.sqrt, TASKS, gpus=[0.25] * len(TASKS))))


def _timed(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


@pytest.mark.slow
def test_process_executor_shares_a_gpu_without_oversubscribing_or_blocking_cpu_tasks():
    # One (pretend) GPU, four half-GPU tasks and two CPU tasks on four workers: at most two GPU tasks at a
    # time, and the CPU tasks queued behind the waiting GPU tasks start at once rather than after them.
    shares = [0.5, 0.5, 0.5, 0.5, 0.0, 0.0]
    with ProcessExecutor(4, gpu_count=1) as ex:
        assert ex.has_gpu
        ex.run(_timed, [0.0], [0.0]).__next__()  # start the workers before timing
        spans = dict(ex.run(_timed, [1.0] * len(shares), shares))
    assert sorted(spans) == list(range(len(shares)))
    gpu = [spans[i] for i in range(4)]
    most = max(sum(s <= t < e for s, e in gpu) for t, _ in gpu)
    assert most == 2
    first_gpu_end = min(e for _, e in gpu)
    assert all(spans[i][0] < first_gpu_end for i in (4, 5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        list(ProcessExecutor(1, gpu_count=1).run(_timed, [0.0], [2.0]))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend: must be one of process, ray, serial, got 'dask'"):
        make_executor("dask")


@pytest.mark.slow
def test_ray_returns_every_task_and_errors():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor() as ex:
            assert ex.workers == 2 and not ex.has_gpu
            check_outcomes(list(ex.run(math.sqrt, TASKS, gpus=[0.25] * len(TASKS))))
        assert ray.is_initialized()  # it joined the running Ray, so it leaves it running
    finally:
        ray.shutdown()
