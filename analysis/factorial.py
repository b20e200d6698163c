"""Factorial effects of a sweep's design: main effects and interactions, with replication as a block.

Every finished run is one observation of each outcome (its final value). For each outcome the model is the
linear model of the design (Montgomery, *Design and Analysis of Experiments*, ch. 5)::

    outcome ~ A + B + … + A:B + …  (+ replication, as a block)

with every factor categorical (each level its own mean, numbers included) and the interactions of every
pair of factors. Replication r of every design point shares a seed (common random numbers: the same world
and human data), so where there is more than one replication it enters as a block, which removes the
variation the runs of one replication share (Law, *Simulation Modeling and Analysis*, §11.2).

Two tables come out of one fit, as rows of one frame (one row per term, then per level, per outcome):

- the Type II ANOVA (Langsrud 2003): each term's F, degrees of freedom, p-value and partial η² =
  SS_term / (SS_term + SS_residual);
- each factor's level effects: the difference of a level's marginal mean from the reference level's (the
  first level as the design lists it), with cells weighted equally, so that a failed run does not shift
  one factor's effect into another's, and a t-interval from the fit's residual variance.

Factors coded sum-to-zero (Σ levels = 0) make the marginal mean of a level the intercept plus that level's
coefficient, so each level effect is one linear contrast of the coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from analysis.sweep_frame import level_label

COLUMNS = ["outcome", "model", "term", "level", "reference", "estimate", "ci_low", "ci_high", "p_value", "F", "df",
           "partial_eta2", "n"]
BLOCK = "replication (block)"
INTERACTION = " × "
MIN_RESIDUAL_DF = 2  # fewer residual degrees of freedom than this and a model has too many terms for the data


def factorial_effects(
    runs: pd.DataFrame,
    factors: Sequence[str],
    outcomes: Sequence[str],
    replication: str = "replication",
    level: float = 0.95,
    small_n: int = 3,
) -> tuple[pd.DataFrame, list[str]]:
    """The ANOVA terms and level effects of every outcome (columns ``COLUMNS``), and notes in words.

    ``runs`` has one row per finished run, the ``factors`` as columns (any values: they are labelled with
    :func:`analysis.sweep_frame.level_label`, in the order they first appear) and the outcomes. The notes
    say what the analysis decided: factors with a single level dropped, cells with fewer than ``small_n``
    runs, an unbalanced design, interactions left out because the data cannot estimate them.
    """
    notes: list[str] = []
    data, names, kept = _coded(runs, factors, notes)
    blocked = replication in runs.columns and runs[replication].nunique() > 1
    if blocked:
        data["_block"] = runs[replication].astype(str).to_numpy()
    rows: list[dict] = []
    if not kept:
        notes.append("No swept factor varies among the runs analysed, so there is no factorial effect to estimate.")
        return pd.DataFrame(rows, columns=COLUMNS), notes
    cells = data.groupby(list(names), observed=False).size()
    if cells.min() < small_n:
        empty = int((cells == 0).sum())
        notes.append(f"WARNING: {int((cells < small_n).sum())} of {len(cells)} cells of the factorial design have "
                     f"fewer than {small_n} runs ({empty} empty); effects resting on them are imprecise.")
    elif cells.nunique() > 1:
        notes.append(f"The design is unbalanced ({cells.min()} to {cells.max()} runs per cell): level effects "
                     "weight every cell equally.")
    said: set[str] = set()
    for outcome in outcomes:
        if outcome not in runs.columns:
            continue
        frame = data.assign(_y=pd.to_numeric(runs[outcome], errors="coerce").to_numpy())
        frame = frame[np.isfinite(frame["_y"])]
        if len(frame) < 2 or np.isclose(frame["_y"].min(), frame["_y"].max(), rtol=1e-12, atol=0):
            continue  # nothing varies: no effect to apportion
        for code in names:  # a level whose runs all failed is not in this outcome's model
            frame[code] = frame[code].cat.remove_unused_categories()
        fit, model = _fit(frame, [c for c in names if frame[c].nunique() > 1], blocked)
        if fit is None:
            notes.append(f"Final {outcome} has a value in {len(frame)} runs only: too few to estimate even the main "
                         f"effects of {', '.join(kept)}.")
            continue
        if model == "main effects" and "main" not in said:
            notes.append(f"Interactions left out: {len(frame)} runs cannot estimate them beside the main effects "
                         "(too many terms for the data, or empty cells); main effects only.")
            said.add("main")
        rows += _anova_rows(fit, outcome, model, names, len(frame))
        rows += _level_rows(fit, frame, outcome, model, names, level)
    return pd.DataFrame(rows, columns=COLUMNS), notes


def _coded(runs: pd.DataFrame, factors: Sequence[str], notes: list[str]) -> tuple[pd.DataFrame, dict, list[str]]:
    """The factors as categorical columns ``f0, f1…`` of their level labels (formula-safe names), the map
    from code to factor, and the factors kept (those with more than one level among the runs)."""
    data = pd.DataFrame(index=runs.index)
    names: dict[str, str] = {}
    for factor in factors:
        labels = runs[factor].map(lambda v: v if isinstance(v, str) else level_label(v))
        levels = list(dict.fromkeys(labels))
        if len(levels) < 2:
            notes.append(f"{factor} has a single level ({levels[0] if levels else 'none'}) among the runs "
                         "analysed: dropped from the factorial model.")
            continue
        code = f"f{len(names)}"
        data[code] = pd.Categorical(labels, categories=levels)
        names[code] = factor
    return data, names, list(names.values())


def _fit(frame: pd.DataFrame, codes: list[str], blocked: bool):
    """The full model (main effects and pairwise interactions), else main effects only, else None."""
    terms = [f"C({c}, Sum)" for c in codes]
    block = " + C(_block, Sum)" if blocked else ""
    formulas = []
    if len(codes) > 1:
        formulas.append(("main effects and interactions", f"_y ~ ({' + '.join(terms)})**2{block}"))
    formulas.append(("main effects", f"_y ~ {' + '.join(terms)}{block}"))
    for model, formula in formulas:
        ols = smf.ols(formula, frame)
        rows, columns = ols.exog.shape
        if rows - columns >= MIN_RESIDUAL_DF and np.linalg.matrix_rank(ols.exog) == columns:  # estimable
            return ols.fit(), model
    return None, None


def _term_name(term: str, names: dict[str, str]) -> str:
    """``C(f0, Sum):C(f1, Sum)`` → ``developers.data.human_fresh × network.kind``."""
    if term == "C(_block, Sum)":
        return BLOCK
    return INTERACTION.join(names[part[2:part.index(",")]] for part in term.split(":"))


def _anova_rows(fit, outcome: str, model: str, names: dict[str, str], n: int) -> list[dict]:
    table = anova_lm(fit, typ=2)
    residual = table.loc["Residual", "sum_sq"]
    return [{"outcome": outcome, "model": model, "term": _term_name(term, names), "F": row["F"], "df": row["df"],
             "p_value": row["PR(>F)"], "partial_eta2": row["sum_sq"] / (row["sum_sq"] + residual), "n": n}
            for term, row in table.drop(index="Residual").iterrows()]


def _level_rows(fit, frame: pd.DataFrame, outcome: str, model: str, names: dict[str, str],
                level: float) -> list[dict]:
    """Each non-reference level's marginal mean minus the reference's, with a t-interval and p-value."""
    exog = fit.model.exog_names
    rows = []
    for code, factor in names.items():
        levels = list(frame[code].cat.categories)
        if len(levels) < 2:
            continue

        def marginal(lv: str, code: str = code, levels: list[str] = levels) -> np.ndarray:
            # sum-to-zero coding: the last level's coefficient is minus the sum of the others'
            vector = np.zeros(len(exog))
            for other in levels[:-1]:
                weight = 1.0 if other == lv else (-1.0 if lv == levels[-1] else 0.0)
                vector[exog.index(f"C({code}, Sum)[S.{other}]")] += weight
            return vector

        reference = levels[0]
        for lv in levels[1:]:
            test = fit.t_test(marginal(lv) - marginal(reference))
            low, high = np.asarray(test.conf_int(alpha=1 - level)).ravel()
            rows.append({"outcome": outcome, "model": model, "term": factor, "level": lv, "reference": reference,
                         "estimate": float(np.asarray(test.effect).ravel()[0]), "ci_low": float(low),
                         "ci_high": float(high), "p_value": float(np.asarray(test.pvalue).ravel()[0]),
                         "n": int(((frame[code] == lv) | (frame[code] == reference)).sum())})
    return rows


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _g(x: float) -> str:
    return f"{x:.3g}"


def effect_sentences(table: pd.DataFrame, outcomes: Sequence[str], units: dict[str, str] | None = None
                     ) -> list[str]:
    """The level effects and the interactions of ``outcomes`` in words, e.g. "developers.data.human_fresh
    = 0.5 (vs 0) lowers final nll by 0.31 [0.22, 0.40] nats/item (p < 0.001)"; an interval that spans zero
    is said to show no detectable effect."""
    units = units or {}
    out = []
    for outcome in outcomes:
        rows = table[table["outcome"] == outcome]
        unit = f" {units[outcome]}" if outcome in units else ""
        levels = rows[rows["level"].notna()]
        for factor, part in levels.groupby("term", sort=False):
            parts, null = [], []
            for _, r in part.iterrows():
                if r["ci_low"] <= 0 <= r["ci_high"]:
                    null.append(f"{r['level']} vs {r['reference']}: {_g(r['estimate'])} "
                                f"[{_g(r['ci_low'])}, {_g(r['ci_high'])}]")
                    continue
                # a decrease is said as "lowers by" a positive amount, its interval turned the same way
                sign, verb = (1, "raises") if r["estimate"] > 0 else (-1, "lowers")
                low, high = sorted((sign * r["ci_low"], sign * r["ci_high"]))
                parts.append(f"{factor} = {r['level']} (vs {r['reference']}) {verb} final {outcome} by "
                             f"{_g(sign * r['estimate'])} [{_g(low)}, {_g(high)}]{unit} ({_p(r['p_value'])}).")
            out += parts
            if null:
                out.append(f"{factor} has no detectable effect on final {outcome} (the interval spans zero: "
                           + "; ".join(null) + ").")
        for _, r in rows[rows["term"].str.contains(INTERACTION, regex=False) & rows["level"].isna()].iterrows():
            if r["p_value"] < 0.05:
                a, b = r["term"].split(INTERACTION)
                out.append(f"{a} and {b} interact on final {outcome} (F = {_g(r['F'])}, {_p(r['p_value'])}, "
                           f"partial η² = {_g(r['partial_eta2'])}): the effect of one depends on the level of the "
                           "other; read the cell means in conditions.csv.")
    return out
