"""How alike the developers' models become: measures on the pairwise divergence arrays of a run.

A run writes ``divergence.npy``, an array ``(steps, N, N)`` of pairwise divergences between the N
developers' models after each generation (results contract). Everything here is plain numpy/pandas on that
array and on the tidy per-developer frame ``agents.parquet``; nothing reads files.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _pair_means(d: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``d[:, i, j]`` over the measured pairs (not NaN) where ``mask[i, j]``; NaN at a step where there
    are none (a run that measured a sample of pairs leaves the others NaN)."""
    values = d[:, mask]  # (steps, pairs)
    measured = np.isfinite(values)
    counts = measured.sum(axis=1)
    sums = np.where(measured, values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(d.shape[0], np.nan), where=counts > 0)  # (steps,)


def pairwise_divergence(
    divergence: np.ndarray, groups: Sequence[int] | None = None, steps: Sequence[int] | None = None
) -> pd.DataFrame:
    """Mean pairwise divergence per step, overall and split by developer community.

    Parameters
    ----------
    divergence : ``(steps, N, N)`` pairwise divergences (need not be symmetric: ordered pairs are used).
    groups : community label of each developer; default: one community.
    steps : the generation of each matrix (``metrics.every`` measures some); default 1, 2, ...

    Pairs left NaN (not measured: a sampled run) are left out of the means. Returns a frame with ``step`` and
    ``divergence`` (mean over ordered pairs i ≠ j), ``divergence_within`` (pairs in the same community) and
    ``divergence_between`` (pairs in different communities; NaN with a single community).
    """
    d = np.asarray(divergence, dtype=float)  # (steps, N, N)
    n = d.shape[1]
    labels = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    off = ~np.eye(n, dtype=bool)
    same = labels[:, None] == labels[None, :]
    return pd.DataFrame(
        {
            "step": np.arange(1, d.shape[0] + 1) if steps is None else np.asarray(steps, dtype=int),
            "divergence": _pair_means(d, off),
            "divergence_within": _pair_means(d, off & same),
            "divergence_between": _pair_means(d, ~same),
        }
    )


def distinctiveness(divergence: np.ndarray) -> np.ndarray:
    """``(steps, N)``: each developer's mean divergence to the other developers (how far it stands apart), over
    its measured pairs (NaN for a developer none of whose pairs was measured)."""
    d = np.asarray(divergence, dtype=float)  # (steps, N, N)
    n = d.shape[1]
    measured = np.isfinite(d) & ~np.eye(n, dtype=bool)
    values = np.where(measured, d, 0.0)
    # Both directions count, so an asymmetric divergence gives each developer one number.
    sums, counts = values.sum(axis=2) + values.sum(axis=1), measured.sum(axis=2) + measured.sum(axis=1)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def quality_spread(agents: pd.DataFrame, metric: str = "nll") -> pd.DataFrame:
    """Spread of a per-developer metric across developers at each step.

    Returns ``step``, ``<metric>_std`` (sample standard deviation across developers), ``<metric>_range``
    (max − min) and ``<metric>_iqr`` (interquartile range, robust to one runaway developer).
    """
    by_step = agents.groupby("step")[metric]
    out = pd.DataFrame(
        {
            f"{metric}_std": by_step.std(ddof=1),
            f"{metric}_range": by_step.max() - by_step.min(),
            f"{metric}_iqr": by_step.quantile(0.75) - by_step.quantile(0.25),
        }
    )
    return out.reset_index()


def time_to_consensus(values: Sequence[float], fraction: float = 0.5, steps: Sequence[int] | None = None) -> float:
    """First step at which a divergence series falls to ``fraction`` of its first value or below.

    ``values`` is a per-step series such as the mean pairwise divergence; ``steps`` names its steps
    (default 1, 2, ...). Returns NaN if the series never gets there (or starts at NaN).
    """
    v = np.asarray(values, dtype=float)
    s = np.arange(1, len(v) + 1) if steps is None else np.asarray(steps)
    if not len(v) or np.isnan(v[0]):
        return float("nan")
    hit = np.flatnonzero(v <= fraction * v[0])
    return float(s[hit[0]]) if len(hit) else float("nan")


def effective_models(divergence: np.ndarray, scale: float = 1.0, q: float = 1.0) -> np.ndarray:
    """Effective number of distinct models at each step: similarity-sensitive Hill numbers.

    The developers' models get equal weight p_i = 1/N and similarity Z_ij = exp(−D_ij / scale) (D symmetrised
    as (D + Dᵀ)/2, with a zero diagonal). The diversity of order q of Leinster & Cobbold (2012, "Measuring
    diversity: the importance of species similarity", Ecology 93:477) is

        ᵠD = (Σ_i p_i (Zp)_i^(q−1))^(1/(1−q)),     ¹D = exp(−Σ_i p_i log (Zp)_i),

    which is 1 when all models are identical (Z = 11ᵀ), N when they are mutually far apart (Z = I), and, for
    k tight clusters far apart, the Hill number of the cluster sizes (exactly k for equal sizes). Unlike the
    Vendi score it needs no positive semidefinite kernel, so any divergence works. ``scale`` is the divergence
    at which two models count as e-fold less similar; q = 1 (default) weighs clusters by their size, q = 2
    is the inverse Simpson form N² / Σ Z_ij.

    Returns ``(steps,)`` values between 1 and N; NaN at a step where some pair was not measured (it needs
    every pair).
    """
    d = np.asarray(divergence, dtype=float)  # (steps, N, N)
    n = d.shape[1]
    if not len(d):
        return np.empty(0)
    sym = (d + d.transpose(0, 2, 1)) / 2  # (steps, N, N)
    sym[:, np.eye(n, dtype=bool)] = 0.0  # a model is identical to itself, whatever the diagonal holds
    z = np.exp(-sym / scale)  # (steps, N, N)
    zp = z.mean(axis=2)  # (steps, N): (Zp)_i with p = 1/N
    complete = np.isfinite(sym).all(axis=(1, 2))
    with np.errstate(invalid="ignore"):
        value = np.exp(-np.log(zp).mean(axis=1)) if q == 1.0 else ((zp ** (q - 1)).sum(axis=1) / n) ** (1 / (1 - q))
    return np.where(complete, value, np.nan)


def homogenization_over_time(
    divergence: np.ndarray, groups: Sequence[int] | None = None, scale: float = 1.0,
    steps: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The per-step homogenization table of one run: :func:`pairwise_divergence` plus ``effective_models``."""
    frame = pairwise_divergence(divergence, groups, steps)
    frame["effective_models"] = effective_models(divergence, scale)
    return frame
