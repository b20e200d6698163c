"""Sweep throughput: runs per minute and per-run overhead of each backend against running one after another.

The same small sweep (Gaussian world, default 32 runs) goes through the ``serial`` backend (the runs one
after another in this process, imports already paid: the baseline), the ``process`` backend, and Ray twice:
cold (``ray.init`` and the workers' imports inside the timing, as a local user sees it) and warm (a second
sweep on the same Ray, as on a running cluster). Per-run overhead is the capacity not spent running:
(wall time × worker slots − Σ run time) / runs, where run time is what each worker measured around the run.

    python benchmarks/sweep_throughput.py [--runs 32] [--steps 50] [--workers N]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import yaml

from ecosystem.sweep import run_sweep

SCENARIO = {
    "name": "throughput",
    "seed": 1,
    "device": "cpu",
    "world": {"kind": "gaussian", "dim": 2, "concepts": 4, "heldout": 500},
    "developers": {"count": 12, "train": {"samples": 32}, "publish": {"samples": 32}},
}


def measure(label: str, design: Path, out: Path, slots: int, setup=None, **options) -> dict[str, float | str]:
    """Time ``setup()`` (if any) plus the sweep; ``slots`` is how many runs can go at once."""
    start = time.perf_counter()
    if setup is not None:
        setup()
    result = run_sweep(design, out=out, progress=False, **options)
    wall = time.perf_counter() - start
    assert result.counts["done"] == result.counts["total"], result.table()
    n = result.counts["total"]
    busy = sum(r["run_s"] for r in result.records)
    return {"backend": label, "workers": slots, "runs": n, "wall_s": wall, "runs_per_min": 60 * n / wall,
            "run_s": busy / n, "overhead_s": (wall * slots - busy) / n}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32, help="runs in the sweep (a multiple of 4)")
    parser.add_argument("--steps", type=int, default=50, help="generations per run")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel workers")
    args = parser.parse_args()

    import ecosystem.run  # noqa: F401  (the serial baseline runs in this process: pay its imports first)

    kinds = ["complete", "ring", "star", "watts_strogatz"]
    sweep = {"grid": {"network.kind": kinds}, "replications": max(args.runs // len(kinds), 1)}
    with tempfile.TemporaryDirectory() as tmp:
        design = Path(tmp) / "throughput.yaml"
        design.write_text(yaml.safe_dump({**SCENARIO, "steps": args.steps, "sweep": sweep}))
        rows = [measure("serial", design, Path(tmp) / "serial", 1, backend="serial")]
        rows.append(measure("process", design, Path(tmp) / "process", args.workers, workers=args.workers))
        try:
            import ray
        except ImportError:
            print("ray is not installed: skipping the ray backend (pip install 'ecosim[ray]')")
        else:
            start_ray = functools.partial(ray.init, num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            rows.append(measure("ray (cold)", design, Path(tmp) / "ray-cold", args.workers, start_ray, backend="ray"))
            rows.append(measure("ray (warm)", design, Path(tmp) / "ray-warm", args.workers, backend="ray"))
            ray.shutdown()

    base = rows[0]
    load = os.getloadavg()[0]  # other work on the machine slows the parallel backends most
    print(f"{base['runs']} runs of {args.steps} generations, 12 developers, Gaussian world; "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")  # fmt: skip
    print(f"{'backend':<12} {'workers':>7} {'wall s':>8} {'runs/min':>9} {'run s':>7} {'overhead s/run':>15} "
          f"{'throughput × serial':>20}")  # fmt: skip
    for r in rows:
        print(f"{r['backend']:<12} {r['workers']:>7} {r['wall_s']:>8.2f} {r['runs_per_min']:>9.1f} {r['run_s']:>7.3f} "
              f"{r['overhead_s']:>15.3f} {r['runs_per_min'] / base['runs_per_min']:>20.2f}")  # fmt: skip


if __name__ == "__main__":  # the process backend spawns workers that import this file
    main()
