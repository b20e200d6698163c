"""``ecosim analyze``: turn a run folder or a sweep folder into tables, figures and one HTML report.

A run folder has ``meta.json`` (results contract); a sweep folder has ``runs/`` with one run folder per run
and a manifest, read through :func:`analysis.sweep_frame.load_sweep`. Everything lands in ``out`` (default
``<path>/report``): CSV tables, PNG figures and a self-contained ``report.html`` (figures embedded) with the
main findings in numbers and the scenario or design that produced them.

Conventions: ``divergence`` is the run's mean pairwise divergence between developers' models, so a
*lower* value means *more* homogeneous models; "final" values average the last quarter of the generations.
"""

from __future__ import annotations

import base64
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
import yaml

from analysis import effects, factorial, figures
from analysis.homogenization import distinctiveness, homogenization_over_time, quality_spread, time_to_consensus
from analysis.network_stats import network_statistics, node_statistics
from analysis.selection import Selection, SelectionError, select
from analysis.selection import is_network as _is_network
from analysis.sweep_frame import runs_frame, swept_factors
from analysis.theory import (
    gaussian_accumulate_variance,
    gaussian_replace_variance,
    vu_applicable,
    vu_expected_distance,
)
from ecosystem.results import ResultsError, RunFolder, read_manifest

# Whole-ecosystem outcomes in the order the report shows them; absent columns are skipped (token worlds add
# diversity measures, gaussian worlds have no entropy).
OUTCOMES = ["divergence", "effective_models", "nll", "distance", "variance", "entropy", "distinct_2",
            "levenshtein", "unique_fraction", "validity", "coverage", "perplexity"]
# Per-developer outcomes compared with centrality and between developer communities.
DEVELOPER_OUTCOMES = ["nll", "distance", "variance", "distinctiveness", "entropy", "distinct_2", "validity"]
CENTRALITIES = ["in_degree", "out_degree", "pagerank", "betweenness"]
NETWORK_STATS = ["density", "reciprocity", "clustering", "avg_path_length", "efficiency", "modularity",
                 "spectral_gap"]
# Drawn over generations: the outcomes, then the training sets (their size shrinks where a detector drops
# synthetic items and nothing refills them; their synthetic share says how much got through).
FIGURE_METRICS = [*OUTCOMES, "train_size", "train_synthetic_share"]
DEVELOPER_LINES_UP_TO = 32  # developers per run; above, sweep panels show the means only
SMALL_N = 3  # finished replications per condition below which the report warns
CONSENSUS_FRACTION = 0.5  # time to consensus: generations until the mean pairwise divergence halves
# "Final" values average the last quarter of the generations (at least one): a single generation's value
# carries that generation's Monte Carlo noise, which a window averages out.
FINAL_SHARE = 0.25


def final_window(steps: int) -> int:
    """How many of the last generations the "final" values average."""
    return max(1, math.ceil(FINAL_SHARE * steps))


# What "pairwise divergence" is for each family (Family.divergence), stated in the report.
DIVERGENCES = {
    "gaussian": "the squared 2-Wasserstein distance between two developers' Gaussians (world units²)",
    "linear": "the mean squared difference of two developers' predictions on probe features",
    "logistic": "the symmetric KL divergence of two developers' label distributions on held-out features (nats)",
    "ngram": "the Jensen–Shannon divergence of next-token distributions on human probe text (nats)",
    "transformer": "the Jensen–Shannon divergence of next-token distributions on human probe text (nats)",
}


def divergence_note(scenario: dict) -> str:
    """One sentence naming the divergence of the scenario's family."""
    family = scenario.get("developers", {}).get("family", {}).get("kind", "")
    return f"Pairwise divergence is {DIVERGENCES.get(family, 'the family’s pairwise divergence')}."


CAPTIONS = {
    "metrics.png": "Ecosystem metrics over generations, the training sets' size and synthetic share included (thin "
                   "grey lines: developers; colour: the mean, in a sweep with a 95% CI band over replications, one "
                   "panel per condition on a shared y axis; dashed: closed form where one exists).",
    "homogenization.png": "Mean pairwise divergence within and between developer communities, and the effective "
                          "number of distinct models (Leinster–Cobbold diversity of order 1).",
    "conditions.png": "Final mean pairwise divergence and quality per condition, in the sweep's order: means with "
                      "95% t-intervals over replications.",
    "contrasts.png": "Final mean pairwise divergence minus that of the reference level, paired by replication (same "
                     "seed: same world and human data); 95% paired t-intervals.",
    "heatmap.png": "Final mean pairwise divergence over the first two sweep axes (mean over replications).",
    "network_effects.png": "Final mean pairwise divergence of each run against its network statistics: one OLS "
                           "line per level of the other swept factors (as the findings fit them), or one line with "
                           "its 95% band.",
    "network.png": "The reading network (u → v: v reads u), developers coloured by their final value.",
    "networks.png": "One run per network setting (first replication): the reading network coloured by final value "
                    "(top) and the final developer × developer divergence, ordered by community (bottom); one "
                    "colour scale per row.",
    "similarity.png": "Developer × developer divergence at the final generation, ordered by community.",
    "centrality.png": "Each developer's final quality against its influence (PageRank on who reads whom); one OLS "
                      "line per condition or community where PageRank varies.",
}


@dataclass
class Run:
    """One run folder, loaded (through :class:`ecosystem.results.RunFolder`)."""

    path: Path
    meta: dict
    scenario: dict
    model: pd.DataFrame  # one row per step
    agents: pd.DataFrame  # one row per step × developer
    divergence: np.ndarray  # (S, N, N) at the measured steps, NaN where a pair was not measured; S = 0: none
    graph: nx.DiGraph  # node attribute "group": developer community
    divergence_steps: np.ndarray  # (S,) the generation of each matrix

    @property
    def groups(self) -> np.ndarray:
        """Developer community of each developer ``(N,)``."""
        return np.array([self.graph.nodes[u]["group"] for u in range(self.graph.number_of_nodes())])

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.scenario.get("name") or self.path.name)


@dataclass
class Report:
    """What a run's or a sweep's analysis produced, before it is written out."""

    title: str
    kind: str  # "Run" or "Sweep"
    note: str  # what the divergence measures
    findings: list[str]  # sentences with numbers
    figures: list[Path]  # PNGs already written
    tables: dict[str, pd.DataFrame]  # written as <name>.csv
    design: str  # the scenario or the sweep design, as YAML text
    headline: pd.DataFrame  # the table shown in the report
    effects: list[str] = field(default_factory=list)  # the factorial effects in words (a sweep)
    effects_table: pd.DataFrame | None = None  # and in numbers
    samples: dict | None = None  # a few texts of the first and last kept generations (:func:`shown_samples`)


def load_run(path: Path) -> Run:
    """Read a run folder written by :func:`ecosystem.run.run_scenario`."""
    folder = RunFolder(path)
    pairs = folder.divergence  # None under metrics.pairwise: none
    matrices = pairs.matrices() if pairs is not None else np.empty((0, folder.n_developers, folder.n_developers))
    steps = np.asarray(pairs.steps, dtype=int) if pairs is not None else np.empty(0, dtype=int)
    return Run(folder.path, folder.meta, folder.scenario, folder.model, folder.agents, matrices, folder.graph, steps)


# ── theory ────────────────────────────────────────────────────────────────────────────────────────────


VU_MAX_SIZE = 1024  # K·D above which Vu et al.'s joint covariance recursion ((K·D)³ a generation) is not drawn


def theory_curve(scenario: dict, steps: np.ndarray) -> pd.DataFrame | None:
    """The closed-form expectation of a run's metric, where one exists: ``step`` and one metric column,
    with the curve's name in ``frame.attrs["label"]``; None otherwise.

    - ``variance``: for a single-concept gaussian world fitted by the MLE gaussian family on synthetic data
      only (share 1; the first generation fits real data): σ²((M−1)/M)^t under ``replace`` (Shumailov et al.
      2024) and σ² ∏_{k≤t}(1 − 1/(k²M)) under ``accumulate`` (Kazdan et al. 2024, Thm 1), with M =
      ``developers.train.samples``, σ = ``world.spread`` and t the generation. Both describe one chain fitting
      its own samples, exact when every developer reads only itself; a network that mixes models keeps the
      variance higher, and the gap between the curves is the network's effect.
    - ``distance``: for a linear world meeting the assumptions of Vu et al. (2025, Thm 1), the expected
      squared parameter error E‖θ̂ − θ‖² from their recursion with the network's reading matrix W
      (:func:`analysis.theory.vu_expected_distance`); up to ``VU_MAX_SIZE`` developers × dimensions (above,
      a frame without the curve whose ``attrs["skipped"]`` says why).
    """
    world, devs = scenario.get("world", {}), scenario.get("developers", {})
    steps = np.asarray(steps)
    if world.get("kind") == "linear":
        from ecosystem.scenario import validate_scenario

        resolved = validate_scenario({**scenario, "sweep": None})
        if not vu_applicable(resolved):
            return None
        size = resolved.developers.count * resolved.world.dim
        if size > VU_MAX_SIZE:  # the recursion's covariance is (K·D)², each generation (K·D)³ work
            frame = pd.DataFrame({"step": steps})
            frame.attrs["skipped"] = (f"The expected distance of Vu et al.'s Theorem 1 is not drawn: its covariance "
                                      f"recursion over K·D = {size} parameters is drawn up to {VU_MAX_SIZE}.")
            return frame
        expected = vu_expected_distance(resolved)
        frame = pd.DataFrame({"step": steps, "distance": expected[steps - 1]})
        frame.attrs["label"] = "Vu et al. Thm 1 (expected)"
        return frame
    family = devs.get("family", {})
    policies = devs.get("group_data") or [devs.get("data", {})]  # every developer community's data policy
    retention = {p.get("retention") for p in policies}
    closed_form = {"replace": gaussian_replace_variance, "accumulate": gaussian_accumulate_variance}
    if not (world.get("kind") == "gaussian" and world.get("concepts") == 1 and family.get("kind") == "gaussian"
            and family.get("estimator") == "mle" and all(p.get("synthetic") == 1.0 for p in policies)
            and len(retention) == 1 and retention <= closed_form.keys()):
        return None
    m, sigma2 = devs["train"]["samples"], world["spread"] ** 2
    frame = pd.DataFrame({"step": steps, "variance": sigma2 * closed_form[retention.pop()](m, steps)})
    frame.attrs["label"] = "closed form, one chain"
    return frame


# ── tables ────────────────────────────────────────────────────────────────────────────────────────────


def divergence_scale(divergences: list[np.ndarray]) -> float:
    """The divergence at which two models count as distinct: the median first-generation pairwise divergence.

    First-generation models differ by sampling noise alone, so "effective models" counts models that differ
    more than independent fits to real data do; one scale for all runs of a sweep keeps them comparable.
    Falls back to 1 where the first generation's models are identical.
    """
    firsts = [d[0][~np.eye(d.shape[1], dtype=bool)] for d in divergences if len(d) and d.shape[1] > 1]
    measured = np.concatenate(firsts) if firsts else np.empty(0)
    measured = measured[np.isfinite(measured)]  # a sampled run measured some pairs only
    scale = float(np.median(measured)) if len(measured) else float("nan")
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def run_tables(run: Run, scale: float) -> dict[str, pd.DataFrame]:
    """Every per-run table.

    ``homogenization`` (per step: pairwise divergence overall / within / between communities, effective
    models, NLL spread), ``network`` (one row of graph statistics), ``nodes`` (per developer: centralities,
    final metrics, distinctiveness), ``centrality`` (centrality–outcome correlations across developers),
    ``communities`` (developer-community means with t-intervals over developers) and ``summary`` (one row:
    final outcomes, time to consensus and network statistics).
    """
    homog = pd.DataFrame({"step": run.model["step"].astype(int)}).merge(  # NaN where not measured (metrics.every)
        homogenization_over_time(run.divergence, run.groups, scale, run.divergence_steps), on="step", how="left")
    if "nll" in run.agents.columns:
        homog = homog.merge(quality_spread(run.agents, "nll"), on="step", how="left")
    stats = network_statistics(run.graph)
    per_dev = [c for c in run.agents.columns if c not in ("step", "developer", "group")]
    window = final_window(len(run.model))
    final_dev = effects.final_values(run.agents, per_dev, by=["developer"], window=window)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a developer with no measured pair: NaN
        final_dev["distinctiveness"] = (np.nanmean(distinctiveness(run.divergence)[-window:], axis=0)
                                        if len(run.divergence) else np.nan)
    nodes = node_statistics(run.graph).merge(final_dev, on="developer")

    last = run.model.merge(homog.drop(columns="divergence"), on="step").tail(window)
    last = last.drop(columns="step").mean(numeric_only=True)
    measured = homog.dropna(subset=["divergence"])
    consensus = time_to_consensus(measured["divergence"], CONSENSUS_FRACTION, measured["step"])
    summary = {**last.to_dict(), "time_to_consensus": consensus, "consensus_reached": float(np.isfinite(consensus)),
               **stats}
    return {
        "homogenization": homog,
        "network": pd.DataFrame([stats]),
        "nodes": nodes,
        "centrality": effects.correlations(nodes, CENTRALITIES, DEVELOPER_OUTCOMES),
        "communities": effects.condition_means(nodes, ["group"], DEVELOPER_OUTCOMES),
        "summary": pd.DataFrame([summary]),
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _ci(row: pd.Series) -> str:
    """``mean ± half-width (n=…)`` of a condition_means row (95% t-interval)."""
    if row["n"] == 0:
        return "n/a (n=0)"
    return f"{_fmt(row['mean'])} ± {_fmt((row['ci_high'] - row['ci_low']) / 2)} (n={int(row['n'])})"


def _signed_ci(row: pd.Series) -> str:
    """``+mean ± half-width (n=…)``: a difference, with its sign always shown."""
    return f"{'+' if row['mean'] >= 0 else ''}{_ci(row)}"


def _community_columns(meta: dict, frame: pd.DataFrame) -> list[str]:
    """The per-community NLL columns (``nll_<name>``) of the human communities named in ``meta.json``."""
    return [f"nll_{c}" for c in meta.get("communities", []) if f"nll_{c}" in frame.columns]


# ── one run ───────────────────────────────────────────────────────────────────────────────────────────


def _quality(columns: pd.Index) -> str:
    """The per-developer quality shown against centrality: held-out NLL, else how far a model stands apart."""
    return "nll" if "nll" in columns else "distinctiveness"


def _centrality_finding(centrality: pd.DataFrame, quality: str) -> str:
    """PageRank against final quality (one pre-chosen pair, so no hunting for the largest of many r)."""
    row = centrality[(centrality["x"] == "pagerank") & (centrality["y"] == quality)]
    if row.empty or not np.isfinite(row["r"].iloc[0]):
        return "Every developer has the same PageRank here, so centrality cannot explain their differences."
    row = row.iloc[0]
    return (f"Across developers, PageRank (influence) and final {quality} correlate with r = {row['r']:.2f} "
            f"[{_fmt(row['r_low'])}, {_fmt(row['r_high'])}] (n={int(row['n'])}).")


def _run_report(path: Path, out: Path) -> Report:
    """Tables, figures and findings of a single run."""
    run = load_run(path)
    tables = run_tables(run, divergence_scale([run.divergence]))
    homog, nodes, summary = tables["homogenization"], tables["nodes"], tables["summary"].iloc[0]
    title, quality, pngs = run.name, _quality(tables["nodes"].columns), []

    metrics = _measured(run.model, FIGURE_METRICS)
    theory = theory_curve(run.scenario, run.model["step"].to_numpy())
    fig, axes = figures.panels(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        what = figures.wrap(f"{figures.label(metric)} ({run.name})")
        if metric in run.agents.columns and run.agents[metric].notna().any():
            figures.over_time(run.agents.dropna(subset=[metric]), metric, units="developer", color="0.7",
                              title=what, ax=ax)
        figures.over_time(run.model.dropna(subset=[metric]), metric, color="C0", title=what, ax=ax)
        if theory is not None and metric in theory.columns:
            figures.overlay(ax, theory, "step", metric, theory.attrs["label"])
        if metric == "nll":
            _reference_lines(ax, run.model)
    figures.shared_legend(axes)
    pngs.append(figures.save(fig, out / "metrics.png"))

    measured = homog.dropna(subset=["divergence"])
    if len(measured):
        pairs = {"divergence": "all pairs", "divergence_within": "within communities",
                 "divergence_between": "between communities"}
        parts = measured.rename(columns=pairs).melt(id_vars="step", value_vars=list(pairs.values()),
                                                    var_name="pairs", value_name="divergence").dropna()
        fig, axes = figures.panels(2 if measured["effective_models"].notna().any() else 1)
        figures.over_time(parts, "divergence", hue="pairs", ax=axes[0],
                          title=figures.wrap(f"Pairwise divergence by pair of communities ({title})"))
        axes[0].legend(title="pairs", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
        if len(axes) > 1:
            figures.over_time(measured, "effective_models", ax=axes[1],
                              title=figures.wrap(f"Effective number of distinct models ({title})"))
        pngs.append(figures.save(fig, out / "homogenization.png"))

    pngs.append(figures.save(figures.network(run.graph, nodes.set_index("developer")[quality], quality,
                                             run.groups, title=f"{title}: final {quality}"), out / "network.png"))
    if len(run.divergence):
        pngs.append(figures.save(figures.similarity_matrix(run.divergence[-1], run.groups,
                                                           title=f"{title}: pairwise divergence, final generation"),
                                 out / "similarity.png"))
    fig, (ax,) = figures.panels(1, size=(6.0, 4.6))
    figures.scatter(nodes.assign(community=nodes["group"].astype(str)), "pagerank", quality, hue="community", ax=ax,
                    title=figures.wrap(f"Final {quality} against PageRank, per developer ({title})", 60))
    figures.shared_legend([ax], "developer community")
    pngs.append(figures.save(fig, out / "centrality.png"))

    last = homog.iloc[-1]
    findings = _divergence_findings(run, measured, summary["time_to_consensus"])
    findings = [*_warnings([run]), *findings]
    if "nll" in run.model.columns:
        findings.append(f"Held-out NLL: {_fmt(run.model['nll'].iloc[0])} → {_fmt(run.model['nll'].iloc[-1])} "
                        f"nats/item; spread across developers at the end {_fmt(last.get('nll_std'))} (s.d.).")
    communities = _community_columns(run.meta, run.model)
    if len(communities) > 1:
        end = summary[communities].sort_values()
        findings.append("Final NLL by human community: "
                        + ", ".join(f"{c.removeprefix('nll_')} {_fmt(v)}" for c, v in end.items()) + " nats/item.")
    if theory is not None and "variance" in theory.columns and "variance" in run.model.columns:
        findings.append(f"Model variance at generation {int(last['step'])}: "
                        f"{_fmt(run.model['variance'].iloc[-1])} simulated vs {_fmt(theory['variance'].iloc[-1])} "
                        "for one chain in closed form.")
    if theory is not None and "skipped" in theory.attrs:
        findings.append(theory.attrs["skipped"])
    findings.append(_centrality_finding(tables["centrality"], quality))
    findings.append("Network: " + ", ".join(f"{k} {_fmt(summary[k])}" for k in NETWORK_STATS) + ".")
    shown = [c for c in [*OUTCOMES, "time_to_consensus", *communities, *NETWORK_STATS]
             if c in summary.index and pd.notna(summary[c])]  # no columns of n/a
    window = final_window(len(run.model))
    headline = summary[shown].to_frame(f"final (mean of the last {window} generations)")
    return Report(title, "Run", divergence_note(run.scenario), findings, pngs, tables,
                  (path / "scenario.yaml").read_text(), headline, samples=shown_samples(RunFolder(path).samples))


def _divergence_findings(run: Run, measured: pd.DataFrame, ttc: float) -> list[str]:
    """What the pairwise divergences say (or why there are none)."""
    n = run.divergence.shape[1]
    if not len(measured):
        return [f"Pairwise divergence between the {n} developers' models was not measured (metrics.pairwise: none)."]
    first, last = measured.iloc[0], measured.iloc[-1]
    out = [f"Mean pairwise divergence between the {n} developers' models went from {_fmt(first['divergence'])} at "
           f"generation {int(first['step'])} to {_fmt(last['divergence'])} at generation {int(last['step'])}; it "
           + (f"halved by generation {int(ttc)}." if np.isfinite(ttc) else "never halved.")]
    if measured["effective_models"].notna().any():
        out.append(f"Effective number of distinct models: {_fmt(first['effective_models'])} → "
                   f"{_fmt(last['effective_models'])}.")
    else:
        out.append("The effective number of distinct models needs every pair; this run measured a sample of pairs "
                   "(metrics.pairwise), so the means above are over the sampled pairs.")
    return out


def shown_samples(table: pd.DataFrame | None, developers: int = 2, per: int = 2) -> dict | None:
    """What the first ``developers`` developers wrote at the first and the last kept generation, ``per``
    texts each, as ``{"first", "last", "rows": [{"developer", "first", "last"}]}``; None without samples."""
    if table is None or table.empty:
        return None
    first, last = int(table["step"].min()), int(table["step"].max())
    rows = []
    for k in sorted(table["developer"].unique().tolist())[:developers]:
        texts = [table[(table.developer == k) & (table.step == s)]["text"].tolist()[:per] for s in (first, last)]
        rows += [{"developer": k, "first": a, "last": b} for a, b in zip(*texts, strict=True)]
    return {"first": first, "last": last, "rows": rows}


# ── a sweep ───────────────────────────────────────────────────────────────────────────────────────────


def _measured(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """The metrics of ``names`` that ``frame`` holds with at least one value (no empty panels)."""
    return [m for m in names if m in frame.columns and frame[m].notna().any()]


def _reference_lines(ax, model: pd.DataFrame) -> None:
    """The world's exact floor (the truth's own held-out NLL), a model that learned nothing and, for real
    text, the unigram model of the training text (the first baseline to beat), as lines."""
    for column, style, name in (("reference_nll", "k:", "truth (floor)"), ("baseline_nll", "r:", "uniform model"),
                                ("unigram_nll", "m:", "unigram model")):
        if column in model.columns and np.isfinite(value := float(model[column].iloc[0])):
            ax.axhline(value, color=style[0], ls=":", lw=1.2, label=f"{name}: {value:.3g}")


def _warnings(runs: list[Run]) -> list[str]:
    """What the reader must hear before any result: models that did not learn, and diversity without validity."""
    out = []
    warned = [r for r in runs if r.meta.get("warnings")]
    if warned:
        out.append(f"WARNING ({len(warned)} of {len(runs)} runs): " + warned[0].meta["warnings"][0])
    first = runs[0].model
    if "validity" in first.columns and {"entropy", "levenshtein", "distinct_2"} & set(first.columns):
        out.append("Note: diversity (entropy, distinct-2, Levenshtein) rises when models write noise; read it beside "
                   "validity, which says how much of what they write is well-formed.")
    return out


def _design_warnings(cells: pd.Series, missing: list[str]) -> list[str]:
    """Runs of the design left out of the analysis, and conditions with too few replications, in words."""
    out = []
    if missing:
        out.append(f"WARNING: {len(missing)} run(s) of the design are not in this analysis (failed, pending or "
                   "unreadable): " + "; ".join(missing[:5]) + (" …" if len(missing) > 5 else "") + ".")
    small = cells[cells < SMALL_N]
    if len(small):
        out.append(f"WARNING: {len(small)} condition(s) have fewer than {SMALL_N} finished replications ("
                   + ", ".join(f"{c}: n={n}" for c, n in small.items()) + "); their intervals are wide or "
                   "missing: add replications.")
    return out


def _non_network_axes(axes: list[str]) -> list[str]:
    """The swept axes that are not about the network: held fixed when outcomes are fitted on network statistics."""
    return [a for a in axes if not _is_network(a)]


def _sweep_runs(path: Path, chosen: Selection) -> tuple[pd.DataFrame, list[str], dict[str, Run], list[str]]:
    """Per-run parameters (index run_id: the analysed axes, the pooled ones, ``replication`` and a readable
    ``condition`` of the analysed axes), the analysed axes, the loaded finished runs, and one line per run of
    the selection left out of the analysis (failed, pending, or whose files are missing or unreadable)."""
    manifest = read_manifest(path).set_index("run_id").loc[chosen.run_ids]
    factors = swept_factors(path).loc[chosen.run_ids]
    axes = chosen.axes
    params = factors[[*axes, *chosen.pooled]].join(manifest[["replication"]])
    names = {a: a.rsplit(".", 1)[-1] for a in axes}
    params["condition"] = params.apply(
        lambda row: " · ".join(f"{names[a]}={row[a]}" for a in axes), axis=1
    ) if axes else "all runs"
    # Conditions in the sweep's order (the factors' levels as the design lists them), not alphabetically.
    order = params.sort_values(axes, kind="stable")["condition"] if axes else params["condition"]
    params["condition"] = pd.Categorical(params["condition"], categories=list(dict.fromkeys(order)), ordered=True)
    runs, missing = {}, []
    for rid, row in manifest.iterrows():
        where = f"{rid} ({params.loc[rid, 'condition']}, replication {row['replication']})"
        if row["status"] != "done":
            missing.append(f"{where}: {row['status']}" + (f" — {row['error']}" if row["error"] else ""))
            continue
        try:
            runs[rid] = load_run(path / "runs" / str(rid))
        except ResultsError as err:
            missing.append(f"{where}: {err}")
    return params.loc[list(runs)], axes, runs, missing


def _stack(per_run: dict[str, dict[str, pd.DataFrame]], name: str, params: pd.DataFrame) -> pd.DataFrame:
    """One per-run table of every run, stacked, with the run's parameters and condition."""
    stacked = pd.concat([t[name].assign(run_id=rid) for rid, t in per_run.items()], ignore_index=True)
    return stacked.merge(params, left_on="run_id", right_index=True)


def _sweep_tables(params: pd.DataFrame, axes: list[str], runs: dict[str, Run], pooled: list[str] | None = None
                  ) -> dict[str, pd.DataFrame]:
    """The sweep's tables: per run, per condition (t-intervals over replications), factorial effects of the
    axes (main effects and interactions, replication as a block), network-statistic fits, centrality
    correlations, developer and human communities, and every run's metrics over time. Runs that differ
    only in a ``pooled`` factor count as replications of one condition."""
    pooled = pooled or []
    scale = divergence_scale([r.divergence for r in runs.values()])
    per_run = {rid: run_tables(run, scale) for rid, run in runs.items()}
    by = ["condition", *axes]
    summary = _stack(per_run, "summary", params)
    nodes = _stack(per_run, "nodes", params)
    centrality = _stack(per_run, "centrality", params)
    over_time = pd.concat([r.model.merge(per_run[rid]["homogenization"][["step", "effective_models"]], on="step")
                           .assign(run_id=rid) for rid, r in runs.items()], ignore_index=True)
    communities = _community_columns(next(iter(runs.values())).meta, summary)
    outcomes = [m for m in [*OUTCOMES, "time_to_consensus", "consensus_reached", "divergence_within",
                            "divergence_between", *communities] if m in summary.columns]
    developer_outcomes = [c for c in DEVELOPER_OUTCOMES if c in nodes.columns]
    per_group = nodes.groupby(["run_id", "group"])[developer_outcomes].mean().reset_index()
    tables = {
        "runs": summary,
        "nodes": nodes,
        "conditions": effects.condition_means(summary, by, outcomes),
        "network_effects": effects.ols_fits(summary, NETWORK_STATS, outcomes, by=_non_network_axes(axes)),
        "centrality": centrality,
        "centrality_by_condition": effects.condition_means(
            centrality.assign(pair=centrality["x"] + " ~ " + centrality["y"]), [*by, "pair"], ["r"]),
        "communities": effects.condition_means(per_group.merge(params, left_on="run_id", right_index=True),
                                               [*by, "group"], developer_outcomes),
        "over_time": over_time.merge(params, left_on="run_id", right_index=True),
    }
    if axes:  # each level of the first axis against its first level, paired on replication, per other axes
        reference = params[axes[0]].iloc[0]
        tables["contrasts"] = pd.concat(
            [effects.paired_contrasts(summary, m, axes[0], reference, ["replication", *pooled], by=axes[1:])
             for m in ["divergence", "effective_models", "nll"] if m in summary.columns], ignore_index=True)
    if len(communities) > 1:  # the worst- against the best-served human community, paired within runs
        order = summary[communities].mean().sort_values()
        tables["community_gap"] = effects.paired_differences(summary, order.index[-1], order.index[0], by)
    return tables


def _sweep_figures(tables: dict[str, pd.DataFrame], axes: list[str], params: pd.DataFrame,
                   runs: dict[str, Run], title: str, out: Path) -> list[Path]:
    """The sweep's figures (see CAPTIONS), written into ``out``."""
    summary, over_time, conds = tables["runs"], tables["over_time"], tables["conditions"]
    quality = _quality(tables["nodes"].columns)
    conditions = figures.levels(params["condition"])
    colours = dict(zip(conditions, sns.color_palette("tab10" if len(conditions) <= 10 else "husl",
                                                     n_colors=len(conditions)), strict=True))
    pngs = [figures.save(_metrics_figure(over_time, params, runs, conditions, colours, title), out / "metrics.png")]

    measured = [m for m in ["divergence", "nll" if "nll" in summary.columns else "variance"]
                if conds.loc[conds["metric"] == m, "mean"].notna().any()]  # no empty panels
    # One or two axes read best as x and colour; more are spelled out in the condition label.
    x, hue = (axes[0], axes[1] if len(axes) == 2 else None) if 0 < len(axes) <= 2 else ("condition", None)
    if measured:
        fig, axs = figures.panels(len(measured), cols=2, size=(5.6, 4.4))
        for ax, metric in zip(axs, measured, strict=True):
            figures.intervals(conds[conds["metric"] == metric], x, hue=hue,
                              title=figures.wrap(f"Final {figures.label(metric)} by condition ({title})"), ax=ax)
        figures.shared_legend(axs, hue or "")
        pngs.append(figures.save(fig, out / "conditions.png"))

    contrasts = tables.get("contrasts", pd.DataFrame(columns=["metric"]))
    contrasts = contrasts[contrasts["metric"] == "divergence"]
    if len(contrasts):
        reference = contrasts["reference"].iloc[0]
        fig, (ax,) = figures.panels(1, size=(7.0, 5.0))
        figures.intervals(contrasts, "level", hue=axes[1] if len(axes) == 2 else None, ax=ax,
                               title=figures.wrap(f"Final mean pairwise divergence against {axes[0]}={reference}, "
                                                  f"paired by replication ({title})", 60))
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set(xlabel=axes[0], ylabel=f"Δ mean pairwise divergence vs {reference}")
        figures.shared_legend([ax], axes[1] if len(axes) == 2 else "")
        pngs.append(figures.save(fig, out / "contrasts.png"))

    if len(axes) >= 2:
        cells = effects.condition_means(summary, axes[:2], ["divergence"])
        cells = cells.rename(columns={"mean": "divergence"})
        ax = figures.heatmap(cells, axes[0], axes[1], "divergence", x_order=figures.levels(params[axes[0]]),
                             y_order=figures.levels(params[axes[1]]),
                             title=figures.wrap(f"Final mean pairwise divergence, mean over replications ({title})",
                                                60))
        pngs.append(figures.save(ax, out / "heatmap.png"))

    varying = [s for s in NETWORK_STATS if summary[s].nunique() > 1]
    if varying:
        # One line per level of the factors held fixed in the fits the findings report (the non-network ones).
        fixed = _non_network_axes(axes)
        frame = summary.assign(**{"fitted within": summary[fixed].astype(str).agg(" · ".join, axis=1)}) \
            if fixed else summary
        if fixed:
            order = list(dict.fromkeys(frame.sort_values("condition", kind="stable")["fitted within"]))
            frame["fitted within"] = pd.Categorical(frame["fitted within"], categories=order)
        fig, axs = figures.panels(len(varying), cols=4, size=(4.2, 3.8))
        for ax, stat in zip(axs, varying, strict=True):
            figures.scatter(frame, stat, "divergence", hue="fitted within" if fixed else "condition",
                            fit="per_level" if fixed else "pooled", ax=ax,
                            title=figures.wrap(f"Final divergence against {figures.label(stat)} ({title})", 40))
        figures.shared_legend(axs, " · ".join(a.rsplit(".", 1)[-1] for a in fixed) if fixed else "condition")
        pngs.append(figures.save(fig, out / "network_effects.png"))

    pngs.append(figures.save(_networks_figure(tables["nodes"], params, axes, runs, quality), out / "networks.png"))
    fig, (ax,) = figures.panels(1, size=(7.0, 5.0))
    figures.scatter(tables["nodes"], "pagerank", quality, hue="condition", ax=ax,
                    title=figures.wrap(f"Final {quality} against PageRank, per developer ({title})", 70))
    figures.shared_legend([ax], "condition")
    pngs.append(figures.save(fig, out / "centrality.png"))
    return pngs


def _metrics_figure(over_time: pd.DataFrame, params: pd.DataFrame, runs: dict[str, Run], conditions: list,
                    colours: dict, title: str) -> plt.Figure:
    """Small multiples: one row block per metric, one panel per condition (the sweep's order) on a shared y
    axis; each run's developers as thin grey lines where they are few, the mean over runs in the condition's
    colour with its 95% band, and the closed form where one exists."""
    metrics = _measured(over_time, FIGURE_METRICS)
    agents = pd.concat([r.agents.assign(run_id=rid) for rid, r in runs.items()
                        if r.agents["developer"].nunique() <= DEVELOPER_LINES_UP_TO], ignore_index=True) \
        if any(r.agents["developer"].nunique() <= DEVELOPER_LINES_UP_TO for r in runs.values()) else None
    if agents is not None:
        agents = agents.merge(params[["condition"]], left_on="run_id", right_index=True)
    examples = params.reset_index().drop_duplicates("condition").set_index("condition")["run_id"]
    fig, blocks = figures.facets(len(metrics), len(conditions))
    for metric, axs in zip(metrics, blocks, strict=True):
        for ax, cond in zip(axs, conditions, strict=True):
            if agents is not None and metric in agents.columns:
                mine = agents[agents["condition"] == cond]
                figures.unit_lines(mine, "step", metric, ["run_id", "developer"], ax=ax)
            mine = over_time[over_time["condition"] == cond].dropna(subset=[metric])
            figures.over_time(mine, metric, color=colours[cond], ax=ax,
                              title=figures.wrap(f"{figures.label(metric)}: {cond}", 44))
            ax.title.set_fontsize(8)
            if ax is not axs[0]:
                ax.set_ylabel("")
            if metric == "nll":
                _reference_lines(ax, over_time)
            theory = theory_curve(runs[examples[cond]].scenario, mine["step"].unique())
            if theory is not None and metric in theory.columns:
                figures.overlay(ax, theory, "step", metric, theory.attrs["label"])
    fig.suptitle(f"{title}: metrics over generations, one panel per condition")
    figures.shared_legend([ax for axs in blocks for ax in axs])
    return fig


def _networks_figure(nodes: pd.DataFrame, params: pd.DataFrame, axes: list[str], runs: dict[str, Run],
                     quality: str) -> plt.Figure:
    """One example run per network setting (the first replication): its graph coloured by final ``quality``
    (top) and its final divergence matrix (bottom; where measured), each row on one colour scale with one
    colourbar."""
    network_axes = [a for a in axes if _is_network(a)]
    examples = params.reset_index().drop_duplicates(network_axes or ["replication"]).head(8)
    values = {rid: nodes[nodes["run_id"] == rid].set_index("developer")[quality] for rid in examples["run_id"]}
    node_norm = figures.colour_scale(list(values.values()))
    matrices = all(len(runs[rid].divergence) for rid in examples["run_id"])  # not under metrics.pairwise: none
    matrix_norm = figures.colour_scale([runs[rid].divergence[-1] for rid in examples["run_id"]] if matrices else [])
    rows = 2 if matrices else 1
    fig, axs = plt.subplots(rows, len(examples), figsize=(4.6 * len(examples) + 1.2, 4.5 * rows), squeeze=False,
                            layout="constrained")
    for k, (rid, cond) in enumerate(zip(examples["run_id"], examples["condition"], strict=True)):
        run = runs[rid]
        figures.network(run.graph, values[rid], quality, run.groups, ax=axs[0][k], norm=node_norm, colorbar=False,
                        title=figures.wrap(f"Reading network, final {quality}: {cond}", 40))
        if matrices:
            figures.similarity_matrix(run.divergence[-1], run.groups, ax=axs[1][k], norm=matrix_norm, colorbar=False,
                                      title=figures.wrap(f"Pairwise divergence, final generation: {cond}", 40))
    figures.colourbar(fig, axs[0], node_norm, "viridis", quality)
    if matrices:
        figures.colourbar(fig, axs[1], matrix_norm, figures.DIVERGENCE_CMAP, "divergence")
    return fig


def _sweep_findings(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The sentences of the sweep report: orderings with intervals, the best-fitting network statistic,
    centrality and the community gap."""
    conds, findings = tables["conditions"], []
    quality = _quality(tables["nodes"].columns)
    rows = conds[conds["metric"] == "divergence"].dropna(subset=["mean"]).sort_values("mean", ascending=False)
    if len(rows) > 1:
        least, most = rows.iloc[0], rows.iloc[-1]
        findings.append(
            f"{least['condition']} homogenizes least: final mean pairwise divergence {_ci(least)} vs "
            f"{most['condition']} {_ci(most)}. Order from least to most homogeneous: "
            + " > ".join(f"{r['condition']} ({_fmt(r['mean'])})" for _, r in rows.iterrows()) + ".")
    rows = conds[conds["metric"] == "nll"].dropna(subset=["mean"]).sort_values("mean")
    if len(rows) > 1:
        findings.append(f"Final held-out NLL is lowest for {rows.iloc[0]['condition']}: {_ci(rows.iloc[0])}, "
                        f"highest for {rows.iloc[-1]['condition']}: {_ci(rows.iloc[-1])} (nats/item).")
    rows = conds[conds["metric"] == "effective_models"].dropna(subset=["mean"]).sort_values("mean")
    if len(rows) > 1:
        findings.append(f"Effective number of distinct models at the end: {_ci(rows.iloc[0])} for "
                        f"{rows.iloc[0]['condition']} up to {_ci(rows.iloc[-1])} for {rows.iloc[-1]['condition']}.")
    # The spectral gap is the statistic that theory ties to consensus speed (DeGroot averaging), so it is
    # the one reported here; network_effects.csv holds every statistic.
    contrasts = tables.get("contrasts", pd.DataFrame(columns=["metric"]))
    contrasts = contrasts[contrasts["metric"] == "divergence"].dropna(subset=["mean"])
    fixed = list(contrasts.columns[: contrasts.columns.get_loc("factor")]) if len(contrasts) else []
    groups = contrasts.groupby(fixed, sort=False, observed=True) if fixed else [((), contrasts)]
    for key, part in groups if len(contrasts) else []:
        key = key if isinstance(key, tuple) else (key,)
        where = ", ".join(f"{c.rsplit('.', 1)[-1]}={v}" for c, v in zip(fixed, key, strict=True))
        factor, reference = part["factor"].iloc[0], part["reference"].iloc[0]
        findings.append(
            f"Paired by replication (same world and human data){f', at {where}' if where else ''}: final mean "
            f"pairwise divergence minus that of {factor}={reference}: "
            + "; ".join(f"{r['level']} {_signed_ci(r)}" for _, r in part.iterrows()) + ".")
    fits = tables["network_effects"]
    fits = fits[(fits["y"] == "divergence") & (fits["x"] == "spectral_gap")].dropna(subset=["r"])
    for _, row in fits.iterrows():
        fixed = ", ".join(f"{c.rsplit('.', 1)[-1]}={row[c]}" for c in fits.columns[: fits.columns.get_loc("x")])
        findings.append(f"Final mean pairwise divergence against the spectral gap of W{f' ({fixed})' if fixed else ''}"
                        f": slope {_fmt(row['slope'])} [{_fmt(row['slope_low'])}, {_fmt(row['slope_high'])}] per "
                        f"unit of gap, r = {row['r']:.2f} (n={int(row['n'])} runs).")
    pair = tables["centrality"]
    mean, low, high, n = effects.t_interval(pair[(pair["x"] == "pagerank") & (pair["y"] == quality)]["r"])
    if n:
        findings.append(f"Within runs, developers' PageRank and final {quality} correlate with mean r = "
                        f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}] over the {n} runs where PageRank varies.")
    if "community_gap" in tables:
        gap = tables["community_gap"].sort_values("mean")
        worse, better = (gap["a"].iloc[0].removeprefix("nll_"), gap["b"].iloc[0].removeprefix("nll_"))
        pooled = effects.paired_differences(tables["runs"], gap["a"].iloc[0], gap["b"].iloc[0]).iloc[0]
        findings.append(f"The {worse} community is served worse than the {better} community: final NLL higher by "
                        f"{_ci(pooled)} nats/item over all runs; least under {gap['condition'].iloc[0]} "
                        f"({_ci(gap.iloc[0])}), most under {gap['condition'].iloc[-1]} ({_ci(gap.iloc[-1])}).")
    return findings


# The outcomes whose factorial effects the report says in words (effects.csv holds every outcome), and units.
EFFECT_SENTENCES = ["divergence", "nll", "variance", "distance", "validity"]
UNITS = {"nll": "nats/item"}


def _factorial(summary: pd.DataFrame, chosen: Selection, outcomes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The factorial effects of the analysed factors (:mod:`analysis.factorial`) and what the reader must
    know to read them: factors pooled, runs selected, decisions of the fit, effects in words."""
    table, notes = factorial.factorial_effects(summary, chosen.axes, outcomes, small_n=SMALL_N)
    said = []
    if chosen.where:
        said.append(f"Runs analysed: the {len(chosen.run_ids)} of {chosen.total} for which {chosen.where}.")
    if chosen.pooled:
        said.append(f"Pooled over {', '.join(chosen.pooled)} (not analysed as a factor): runs that differ only "
                    "there count as replications of one condition, and that factor's effect widens the intervals.")
    if len(table):
        blocked = (table["term"] == factorial.BLOCK).any()
        said.append(f"Model: {table['model'].iloc[0]} of {', '.join(chosen.axes)}"
                    f"{', replication as a block (common random numbers)' if blocked else ''}; Type II ANOVA "
                    "and level effects (marginal mean minus the reference level's, 95% CI) in effects.csv.")
    sentences = factorial.effect_sentences(table, [m for m in EFFECT_SENTENCES if m in outcomes], UNITS)
    return table, [*said, *notes, *sentences]


def _sweep_report(path: Path, out: Path, chosen: Selection | None = None) -> Report:
    """Tables, figures, findings and the design description of a sweep (of the factors and runs ``chosen``,
    by default all)."""
    chosen = chosen or select(path)
    params, axes, runs, missing = _sweep_runs(path, chosen)
    if not runs:
        raise ResultsError(f"{path}: no finished run to analyse ({len(missing)} failed, pending or unreadable"
                           f"{'; first: ' + missing[0] if missing else ''})")
    first = next(iter(runs.values()))
    tables = _sweep_tables(params, axes, runs, chosen.pooled)
    tables["effects"], effect_notes = _factorial(tables["runs"], chosen, list(tables["conditions"]["metric"].unique()))
    title = f"{first.name}: sweep of {len(runs)} runs"
    pngs = _sweep_figures(tables, axes, params, runs, first.name, out)
    status = runs_frame(path).set_index("run_id").loc[chosen.run_ids, "status"].value_counts().to_dict()
    cells = params.groupby("condition", sort=False).size()
    design = yaml.safe_dump({"swept": {a: params[a].drop_duplicates().tolist() for a in axes},
                             **({"pooled": {a: params[a].drop_duplicates().tolist() for a in chosen.pooled}}
                                if chosen.pooled else {}),
                             **({"where": chosen.where} if chosen.where else {}),
                             "replications": int(params["replication"].nunique()),
                             "runs": {str(k): int(v) for k, v in status.items()},
                             "runs analysed per condition": {str(k): int(v) for k, v in cells.items()},
                             "runs left out": missing}, sort_keys=False, allow_unicode=True)
    if (path / "sweep.yaml").is_file():
        design += "\n# the sweep file as given\n" + (path / "sweep.yaml").read_text()
    design += "\n# first run, fully resolved\n" + yaml.safe_dump(first.scenario, sort_keys=False)
    conds = tables["conditions"]
    conds = conds[conds["metric"].isin([*OUTCOMES, "time_to_consensus", "consensus_reached"])]
    conds = conds[conds["metric"].isin(conds.dropna(subset=["mean"])["metric"])]  # no columns of n/a
    headline = conds.assign(value=conds.apply(_ci, axis=1)).pivot(index="condition", columns="metric", values="value")
    findings = [*_warnings(list(runs.values())), *_design_warnings(cells, missing), *_sweep_findings(tables)]
    return Report(title, "Sweep", divergence_note(first.scenario), findings, pngs, tables, design, headline,
                  effect_notes, tables["effects"])


# ── the report ────────────────────────────────────────────────────────────────────────────────────────

TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecosim report: {{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
img { max-width: 100%; border: 1px solid #ddd; } figure { margin: 1.5em 0; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 2px 6px; }
.scroll { overflow-x: auto; max-width: 100%; } .scroll th { min-width: 6em; } .scroll td { min-width: 6em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }
td pre { margin: 0; padding: 0.3em; white-space: pre-wrap; max-width: 480px; }
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ kind }} at <code>{{ path }}</code>, analysed {{ created }} by ecosim. {{ note }} Lower mean pairwise
divergence (<code>divergence</code>) means more homogeneous models. "Final" values are means over the last
quarter of the generations; intervals are 95% (t over replications for means and slopes, Fisher z for correlations).</p>
<h2>Main findings</h2>
<ul>{% for f in findings %}<li>{{ f }}</li>{% endfor %}</ul>
{% if effects %}<h2>Factorial effects</h2>
<ul>{% for f in effects %}<li>{{ f }}</li>{% endfor %}</ul>
{{ effects_table | safe }}
{% endif %}<h2>Figures</h2>
{% for fig in figures %}<figure><img alt="{{ fig.name }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption><b>{{ fig.name }}</b>: {{ fig.caption }}</figcaption></figure>
{% endfor %}
{% if samples %}<h2>What the models wrote</h2>
<p>Generation {{ samples.first }} beside generation {{ samples.last }}, a few samples of the first developers
(<code>ecosim samples {{ path }}</code> prints them all).</p>
<table><tr><th>developer</th><th>generation {{ samples.first }}</th><th>generation {{ samples.last }}</th></tr>
{% for r in samples.rows %}<tr><td>{{ r.developer }}</td><td><pre>{{ r.first }}</pre></td>
<td><pre>{{ r.last }}</pre></td></tr>{% endfor %}</table>{% endif %}
<h2>Final values</h2>
<div class="scroll">{{ headline | safe }}</div>
<p>All tables are written next to this report as CSV: {% for t in tables %}<code>{{ t }}.csv</code> {% endfor %}</p>
<h2>{{ "Design" if kind == "Sweep" else "Scenario" }}</h2>
<pre>{{ design }}</pre>
</body></html>
""")


def analyze(path: Path, out: Path | None = None, by: list[str] | None = None, where: str | None = None) -> Path:
    """Analyse a run folder (with ``meta.json``) or a sweep folder (with ``runs/``); returns ``report.html``.

    Writes CSV tables, PNG figures and a self-contained ``report.html`` into ``out``
    (default ``<path>/report``). For a sweep, ``by`` names the factors analysed (the others are pooled) and
    ``where`` selects runs (:mod:`analysis.selection`); a name or an expression that does not fit raises
    :class:`analysis.selection.SelectionError` before anything is written.
    """
    path = Path(path)
    out = Path(out) if out is not None else path / "report"
    if (path / "meta.json").is_file():
        if by or where:
            raise SelectionError(f"--by/--where: {path} is a single run; they choose factors and runs of a sweep")
        build = _run_report
    elif (path / "runs").is_dir():
        chosen = select(path, by, where)

        def build(path: Path, out: Path) -> Report:
            return _sweep_report(path, out, chosen)
    else:
        raise FileNotFoundError(f"{path}: neither a run folder (meta.json) nor a sweep folder (runs/)")
    if out.exists() and any(out.iterdir()) and not (out / "report.html").is_file():
        raise FileExistsError(f"--out: {out} is not empty and holds no report; choose another folder")
    final, out = out, out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        html_path = _write_report(build(path, out), path, out)
        if final.exists():
            shutil.rmtree(final)
        out.rename(final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a failed analysis leaves no half-written report
        raise
    return final / html_path.name


def _write_report(report: Report, path: Path, out: Path) -> Path:
    """The report's tables and its self-contained HTML page, written into ``out``."""
    for name, table in report.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    html_path = out / "report.html"
    html_path.write_text(TEMPLATE.render(
        title=report.title, kind=report.kind, note=report.note, path=str(path),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        findings=report.findings, tables=list(report.tables), design=report.design, samples=report.samples,
        headline=report.headline.to_html(float_format=lambda x: f"{x:.3g}", border=0),
        effects=report.effects, effects_table=_effects_html(report.effects_table),
        figures=[{"name": p.name, "caption": CAPTIONS.get(p.name, ""),
                  "data": base64.b64encode(p.read_bytes()).decode()} for p in report.figures],
    ))
    return html_path


def _effects_html(table: pd.DataFrame | None) -> str:
    """The factorial effects as an HTML table: the ANOVA terms, then the level effects, without empty columns."""
    if table is None or table.empty:
        return ""
    shown = table.drop(columns="model").dropna(axis=1, how="all")
    return shown.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.3g}", border=0)
