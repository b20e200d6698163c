"""Network effects: outcomes against network statistics, with confidence intervals over replications.

Three questions, each answered by a tidy table (one row per estimate):

- across a sweep, how do a run's final homogenization and quality depend on its condition and on its
  network statistics (:func:`condition_means`, :func:`paired_contrasts`, :func:`ols_fits`);
- within a run, how does each developer's quality or diversity depend on its centrality
  (:func:`correlations`);
- how do communities compare (:func:`condition_means` on per-community values, :func:`paired_differences`).

Intervals are two-sided at ``level`` (default 95%): Student t over replications for means, slopes and
differences; Fisher's z transform for correlations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def final_values(
    frame: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("run_id",), window: int = 1
) -> pd.DataFrame:
    """Mean of each metric over the last ``window`` steps of each group of ``by`` (window 1: final step).

    Averaging the last few generations trades a little bias for less Monte Carlo noise per run.
    Metrics missing from ``frame`` are skipped, so token-world and vector-world runs share one call.
    """
    by = list(by)
    metrics = [m for m in metrics if m in frame.columns]
    last = frame.groupby(by, dropna=False, observed=True)["step"].transform("max")
    tail = frame[frame["step"] > last - window]
    return tail.groupby(by, dropna=False, observed=True)[metrics].mean().reset_index()


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean, lower and upper bound of the Student t interval, and n (NaN bounds when n < 2)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half, n


def condition_means(
    table: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], level: float = 0.95
) -> pd.DataFrame:
    """Mean of each metric per condition with a t-interval over the rows (replications) of that condition.

    Returns the ``by`` columns, ``metric``, ``mean``, ``sd``, ``n``, ``ci_low``, ``ci_high``; with empty
    ``by`` the whole table is one condition.
    """
    rows = []
    groups = table.groupby(list(by), dropna=False, sort=True, observed=True) if by else [((), table)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for metric in (m for m in metrics if m in table.columns):
            mean, low, high, n = t_interval(part[metric], level)
            sd = float(part[metric].std(ddof=1)) if n > 1 else float("nan")
            rows.append({**dict(zip(by, key, strict=True)), "metric": metric, "mean": mean, "sd": sd,
                         "n": n, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "sd", "n", "ci_low", "ci_high"])


def ols_fits(
    table: pd.DataFrame, xs: Sequence[str], ys: Sequence[str], by: Sequence[str] = (), level: float = 0.95
) -> pd.DataFrame:
    """Ordinary least squares y = a + b·x for every pair within each group of ``by``, with a t-interval on b.

    Each row of ``table`` (a run) is one observation, so replications inform the interval; ``by`` holds the
    other design axes fixed (e.g. one fit per synthetic share). Pairs with fewer than 3 finite observations
    or a constant x get NaN estimates (the slope is not identified).
    Returns the ``by`` columns, ``x, y, n, slope, slope_low, slope_high, intercept, r, p_value``.
    """
    rows = []
    groups = table.groupby(list(by), dropna=False, sort=True, observed=True) if by else [((), table)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for x in (c for c in xs if c in table.columns):
            for y in (c for c in ys if c in table.columns):
                both = part[[x, y]].astype(float).replace([np.inf, -np.inf], np.nan).dropna()
                n = len(both)
                row = {**dict(zip(by, key, strict=True)), "x": x, "y": y, "n": n, "slope": np.nan,
                       "slope_low": np.nan, "slope_high": np.nan, "intercept": np.nan, "r": np.nan,
                       "p_value": np.nan}
                if n >= 3 and not _constant(both[x]):
                    fit = stats.linregress(both[x], both[y])
                    half = stats.t.ppf(0.5 + level / 2, n - 2) * fit.stderr
                    row.update(slope=fit.slope, slope_low=fit.slope - half, slope_high=fit.slope + half,
                               intercept=fit.intercept, r=fit.rvalue, p_value=fit.pvalue)
                rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "x", "y", "n", "slope", "slope_low", "slope_high", "intercept", "r",
                                       "p_value"])


def correlations(
    frame: pd.DataFrame, xs: Sequence[str], ys: Sequence[str], by: Sequence[str] = (), level: float = 0.95
) -> pd.DataFrame:
    """Pearson correlation of every (x, y) pair within each group of ``by`` (e.g. per run), with Fisher-z CIs.

    The interval is tanh(atanh(r) ± z_{(1+level)/2} / √(n − 3)) (Fisher 1921), defined for n > 3.
    A constant column (e.g. degree on a ring) gives r = NaN: there is no variation to correlate.
    Returns the ``by`` columns, ``x, y, n, r, r_low, r_high, p_value``.
    """
    rows = []
    groups = frame.groupby(list(by), dropna=False, sort=True, observed=True) if by else [((), frame)]
    z = stats.norm.ppf(0.5 + level / 2)
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for x in (c for c in xs if c in frame.columns):
            for y in (c for c in ys if c in frame.columns):
                both = part[[x, y]].astype(float).dropna()
                n = len(both)
                r = p = low = high = np.nan
                if n > 2 and not (_constant(both[x]) or _constant(both[y])):
                    r, p = stats.pearsonr(both[x], both[y])
                    if n > 3:
                        fz, half = np.arctanh(np.clip(r, -0.999999, 0.999999)), z / np.sqrt(n - 3)
                        low, high = np.tanh(fz - half), np.tanh(fz + half)
                rows.append({**dict(zip(by, key, strict=True)), "x": x, "y": y, "n": n, "r": float(r),
                             "r_low": float(low), "r_high": float(high), "p_value": float(p)})
    return pd.DataFrame(rows, columns=[*by, "x", "y", "n", "r", "r_low", "r_high", "p_value"])


def _constant(values: pd.Series) -> bool:
    """Constant up to round-off (PageRank on a ring differs in the 17th digit, which is not variation)."""
    return bool(np.isclose(values.min(), values.max(), rtol=1e-9, atol=1e-12))


def paired_differences(
    table: pd.DataFrame, a: str, b: str, by: Sequence[str] = (), level: float = 0.95
) -> pd.DataFrame:
    """Mean of ``a − b`` per condition with a t-interval over runs (paired: both come from the same run).

    E.g. a = ``nll_minority``, b = ``nll_majority``: how much worse the minority community is served.
    Returns the ``by`` columns, ``a, b, mean, n, ci_low, ci_high``.
    """
    diff = table.assign(_diff=table[a] - table[b])
    means = condition_means(diff, by, ["_diff"], level).drop(columns=["metric", "sd"])
    return means.assign(a=a, b=b)[[*by, "a", "b", "mean", "n", "ci_low", "ci_high"]]


def paired_contrasts(
    table: pd.DataFrame,
    metric: str,
    factor: str,
    reference: object,
    match: Sequence[str],
    by: Sequence[str] = (),
    level: float = 0.95,
) -> pd.DataFrame:
    """Difference of ``metric`` between each level of ``factor`` and its ``reference`` level, paired on ``match``.

    Sweeps give replication r of every design point the same seed (common random numbers: the same world
    and human data), so matching runs on the replication removes the variation they share and compares like
    with like (Law, *Simulation Modeling and Analysis*, §11.2). One set of contrasts per group of ``by``
    (the other design axes); the interval is a paired t-interval over the matched pairs.
    Returns the ``by`` columns, ``factor, level, reference, metric, mean, n, ci_low, ci_high``.
    """
    rows = []
    groups = table.groupby(list(by), dropna=False, sort=True, observed=True) if by else [((), table)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        keys = part[list(match)].astype(str).apply(tuple, axis=1)
        values = pd.Series(part[metric].to_numpy(dtype=float), index=keys)
        is_reference = (part[factor] == reference).to_numpy()
        base = values[is_reference]
        for level_value in part.loc[~is_reference, factor].drop_duplicates():
            here = values[(part[factor] == level_value).to_numpy()]
            mean, low, high, n = t_interval((here - base.reindex(here.index)).dropna(), level)
            rows.append({**dict(zip(by, key, strict=True)), "factor": factor, "level": level_value,
                         "reference": reference, "metric": metric, "mean": mean, "n": n, "ci_low": low,
                         "ci_high": high})
    return pd.DataFrame(rows, columns=[*by, "factor", "level", "reference", "metric", "mean", "n", "ci_low",
                                       "ci_high"])
