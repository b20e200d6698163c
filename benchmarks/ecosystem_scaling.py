"""The time of each phase of one ecosystem generation, for N = 16 … 2048 developers, and ecosim against the
per-chain loop a researcher writes.

    python benchmarks/ecosystem_scaling.py [--quick] [--device cpu|cuda] [--sizes 16,64,256,1024,2048]
        [--transformer-max 256] [--generations 3] [--families gaussian,ngram] [--graphs complete]
        [--skip-kazdan] [--out benchmarks/ecosystem_scaling.json]

For each family (gaussian, ngram = bigram, transformer on topic_markov) and graph (complete, small world
k = 4), times the phases of a generation by wrapping the model's phase methods from outside (write, scrape
+ retention, fit, sample, publish, measure, release, collect), with the scenario's default ``metrics:``
section; the first generation is a warm-up, the table gives the median of the others. Then the resident
memory after 10 and after 100 generations under ``replace``, and Kazdan et al.'s "Collapse or Thrive?"
Gaussian grid (d ∈ {1, 10}, n ∈ {10, 100}, replace / accumulate / accumulate_subsample, 50 fits, 100 chains
on an ``empty`` network with self-loops) against a per-chain numpy loop, interleaved, one torch thread.
Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import ecosystem.model as model_module
from ecosystem.model import EcosystemModel
from ecosystem.scenario import validate_scenario

PHASES = ("write", "scrape", "fit", "sample", "publish", "measure", "release", "collect")
FAMILIES = {
    "gaussian": {"world": {"kind": "gaussian"}, "family": {"kind": "gaussian"}},
    "ngram": {"world": {"kind": "topic_markov"}, "family": {"kind": "ngram", "order": 2}},
    "transformer": {"world": {"kind": "topic_markov"},
                    "family": {"kind": "transformer", "d_model": 32, "layers": 1, "heads": 2}},
}
GRAPHS = {"complete": {"kind": "complete"}, "small_world": {"kind": "watts_strogatz", "k": 4, "p": 0.1}}


def scenario(family: str, graph: str, n: int, steps: int, device: str, **data):
    spec = FAMILIES[family]
    developers = {"count": n, "family": spec["family"], "train": {"samples": 128, "steps": 50, "batch": 8},
                  "publish": {"samples": 128}}
    if data:
        developers["data"] = data
    return validate_scenario({"steps": steps, "device": device, "world": spec["world"], "developers": developers,
                              "network": GRAPHS[graph]})


def timed_model(sc) -> tuple[EcosystemModel, dict[str, float]]:
    """The model with every phase wrapped by a timer (seconds accumulated per phase)."""
    m = EcosystemModel(sc)
    spent = dict.fromkeys(PHASES, 0.0)

    def wrap(name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return timed

    m._write_human = wrap("write", m._write_human)
    m.retention.update = wrap("scrape", m.retention.update)
    m.family.fit = wrap("fit", m.family.fit)
    if hasattr(m.family, "fit_statistics"):  # closed-form families under accumulate fit running statistics
        m.family.fit_statistics = wrap("fit", m.family.fit_statistics)
    m._sample = wrap("sample", m._sample)
    m._publish = wrap("publish", m._publish)
    m._measure = wrap("measure", m._measure)
    m._release = wrap("release", m._release)
    m.datacollector.collect = wrap("collect", m.datacollector.collect)
    return m, spent


def phase_times(family: str, graph: str, n: int, generations: int, device: str) -> dict[str, float]:
    original = model_module.scrape
    m, spent = timed_model(scenario(family, graph, n, generations, device))
    scrape_spent = [0.0]

    def scrape(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            scrape_spent[0] += time.perf_counter() - start

    model_module.scrape = scrape
    rows = []
    try:
        for _ in range(generations):
            before = dict(spent) | {"scrape": spent["scrape"] + scrape_spent[0]}
            start = time.perf_counter()
            m.step()
            total = time.perf_counter() - start
            after = dict(spent) | {"scrape": spent["scrape"] + scrape_spent[0]}
            rows.append({p: after[p] - before[p] for p in PHASES} | {"total": total})
    finally:
        model_module.scrape = original
    kept = rows[1:] or rows
    return {k: statistics.median(r[k] for r in kept) for k in (*PHASES, "total")}


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(family: str, n: int, device: str) -> dict[str, float]:
    m = EcosystemModel(scenario(family, "small_world", n, 100, device, retention="replace"))
    out = {}
    for t in range(1, 101):
        m.step()
        if t in (10, 100):
            out[f"rss_{t}"] = rss_mib()
            out[f"pool_{t}"] = float(m.pool.size)
    return out


# ── Kazdan et al.'s grid: ecosim vs the per-chain numpy loop ──────────────────────────────────────────


LEAN = {"measure": ["model"], "pairwise": "none"}  # what the loop computes: each chain's fitted variance


def kazdan_scenario(d: int, n: int, retention: str, chains: int, fits: int, metrics: dict | None = None):
    return validate_scenario({
        "steps": fits, "device": "cpu", "world": {"kind": "gaussian", "dim": d, "concepts": 1},
        "metrics": metrics or {},
        "developers": {"count": chains, "train": {"samples": n}, "publish": {"samples": n},
                       "data": {"synthetic": 1.0, "retention": retention}},
        "network": {"kind": "empty", "self_loops": True}})


def ecosim_chains(d: int, n: int, retention: str, chains: int, fits: int, metrics: dict | None = None) -> np.ndarray:
    """Each chain's final fitted variance per dimension."""
    m = EcosystemModel(kazdan_scenario(d, n, retention, chains, fits, metrics))
    for _ in range(fits):
        m.step()
    return np.asarray(m.history[-1]["variance"])


def loop_chains(d: int, n: int, retention: str, chains: int, fits: int, seed: int) -> np.ndarray:
    """Each chain its own numpy Gaussian: fit (MLE mean, covariance), sample n, keep data by retention."""
    rng = np.random.default_rng(seed)
    finals = []
    for _ in range(chains):
        history = [rng.standard_normal((n, d))]  # everything gathered so far, real data first
        held = history[0]
        for _ in range(fits):
            mean, cov = held.mean(0), np.atleast_2d(np.cov(held, rowvar=False, bias=True))
            history.append(rng.multivariate_normal(mean, cov, size=n))
            if retention == "replace":
                held = history[-1]
            elif retention == "accumulate":
                held = np.concatenate(history)
            else:  # a fresh subsample of size n of everything gathered (Kazdan et al.)
                everything = np.concatenate(history)
                held = everything[rng.choice(len(everything), size=n, replace=False)]
        finals.append(float(np.trace(cov)) / d)
    return np.array(finals)


def kazdan(chains: int, fits: int, repeats: int, metrics: dict | None = None) -> list[dict]:
    """Time and final variance of both, per cell; the variances agree when their difference is within a
    few standard errors (each over the chains of all repeats)."""
    torch.set_num_threads(1)
    out = []
    for d in (1, 10):
        for n in (10, 100):
            for retention in ("replace", "accumulate", "accumulate_subsample"):
                ours, loop, ours_v, loop_v = [], [], [], []
                for r in range(repeats):  # interleaved
                    start = time.perf_counter()
                    ours_v.append(ecosim_chains(d, n, retention, chains, fits, metrics))
                    ours.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    loop_v.append(loop_chains(d, n, retention, chains, fits, r))
                    loop.append(time.perf_counter() - start)
                a, b = np.concatenate(ours_v), np.concatenate(loop_v)
                se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
                row = {"d": d, "n": n, "retention": retention, "ecosim_s": statistics.median(ours),
                       "loop_s": statistics.median(loop), "ecosim_variance": float(a.mean()),
                       "loop_variance": float(b.mean()), "z": float((a.mean() - b.mean()) / se) if se else 0.0}
                row["speedup"] = row["loop_s"] / row["ecosim_s"]
                print(f"| {d} | {n} | {retention} | {row['ecosim_s']:.2f} | {row['loop_s']:.2f} | "
                      f"{row['speedup']:.2f}× | {row['ecosim_variance']:.4g} | {row['loop_variance']:.4g} | "
                      f"{row['z']:+.1f} |", flush=True)
                out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="16,64,256,1024,2048")
    parser.add_argument("--transformer-max", type=int, default=256)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--skip-kazdan", action="store_true")
    parser.add_argument("--kazdan-metrics", choices=["default", "lean"], default="lean",
                        help="lean: measure only what the loop computes (the fitted variance); default: the "
                             "scenario's default metrics section")
    parser.add_argument("--out", default="benchmarks/ecosystem_scaling.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [16, 64, 256] if args.quick else [int(s) for s in args.sizes.split(",")]
    tmax = 64 if args.quick else args.transformer_max
    results: dict = {"phases": [], "memory": {}, "kazdan": []}
    print("| family | graph | N | " + " | ".join(PHASES) + " | generation s |")
    print("|---" * (len(PHASES) + 4) + "|")
    for family in args.families.split(","):
        for graph in args.graphs.split(","):
            for n in sizes:
                if family == "transformer" and n > tmax:
                    continue
                t = phase_times(family, graph, n, args.generations, args.device)
                results["phases"].append({"family": family, "graph": graph, "n": n} | t)
                print(f"| {family} | {graph} | {n} | " + " | ".join(f"{t[p]:.3f}" for p in PHASES)
                      + f" | {t['total']:.3f} |", flush=True)
    results["memory"] = memory("gaussian", 64 if args.quick else 256, args.device)
    print("memory (gaussian, replace):", results["memory"], flush=True)
    if not args.skip_kazdan:
        print("| d | n | retention | ecosim s | loop s | loop / ecosim | ecosim variance | loop variance | z |\n"
              "|---|---|---|---|---|---|---|---|---|")
        results["kazdan"] = kazdan(chains=20 if args.quick else 100, fits=10 if args.quick else 50,
                                   repeats=1 if args.quick else 3,
                                   metrics=LEAN if args.kazdan_metrics == "lean" else None)
        ours, loop = (sum(r[k] for r in results["kazdan"]) for k in ("ecosim_s", "loop_s"))
        print(f"whole grid: ecosim {ours:.2f} s, loop {loop:.2f} s, loop / ecosim {loop / ours:.2f}×")
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
