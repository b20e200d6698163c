"""Which factors and which runs of a sweep an analysis looks at (``ecosim analyze --by … --where …``).

The factors are the design's axes (:func:`design_axes`): its swept paths, less those that only restate
another. ``--by`` keeps some of them as axes and pools the runs over the others (their runs count as more
replications of each analysed condition). ``--where`` keeps the runs for which an expression over the runs
frame (:func:`analysis.sweep_frame.runs_frame`: parameters by dotted path, ``replication``, ``status``…)
is true, evaluated by :meth:`pandas.DataFrame.query`, which knows column names and operators only: no
Python names, calls into modules or attribute access reach it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.sweep_frame import runs_frame, swept_factors


class SelectionError(ValueError):
    """A ``--by`` or ``--where`` that does not fit the sweep; the message is one line naming the option."""


@dataclass
class Selection:
    """The factors analysed (in order: the first is the reference axis of paired contrasts), the design's
    other axes (pooled), the runs kept and the expression that kept them."""

    axes: list[str]
    pooled: list[str]
    run_ids: list[str]
    where: str | None = None
    total: int = 0  # runs in the design


def is_network(axis: str) -> bool:
    return axis == "network" or axis.startswith("network.")


def design_axes(factors: pd.DataFrame) -> list[str]:
    """The design's axes: its swept paths (:func:`analysis.sweep_frame.swept_factors`), minus those that only
    restate another axis (``developers.data.human_fresh`` set together with ``developers.data.synthetic``),
    the network's first."""
    axes: list[str] = []
    combinations = 1
    for column in factors.columns:
        with_column = len(factors[[*axes, column]].astype(object).drop_duplicates())
        if with_column > combinations:
            axes.append(column)
            combinations = with_column
    return sorted(axes, key=lambda a: not is_network(a))


def select(folder: str | Path, by: Sequence[str] | None = None, where: str | None = None) -> Selection:
    """The selection of ``--by`` (factor names as the design lists them, or their last part where that is
    unambiguous: ``human_fresh``) and ``--where``; raises :class:`SelectionError` on a name or an expression
    that does not fit."""
    factors = swept_factors(folder)
    axes = design_axes(factors)
    chosen = axes if not by else [_factor(name, axes) for name in by]
    if len(set(chosen)) < len(chosen):
        raise SelectionError(f"--by: a factor is named twice in {', '.join(by or [])}")
    frame = runs_frame(folder).set_index("run_id", drop=False)
    kept = frame.index.tolist()
    if where is not None and where.strip():
        frame = frame.join(factors[[c for c in factors.columns if c not in frame.columns]])
        kept = _query(frame, where).index.tolist()
        if not kept:
            raise SelectionError(f"--where: {where!r} keeps none of the {len(frame)} runs")
    return Selection(chosen, [a for a in axes if a not in chosen], kept, where, len(frame))


def _factor(name: str, axes: list[str]) -> str:
    if name in axes:
        return name
    short = [a for a in axes if a.rsplit(".", 1)[-1] == name]
    if len(short) == 1:
        return short[0]
    allowed = ", ".join(axes) if axes else "none (no path varies in this sweep)"
    raise SelectionError(f"--by: {name!r} is not a factor of this sweep; its factors are: {allowed}")


def _query(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``frame.query(where)`` with dotted column names usable as written (``network.kind == 'ring'``)."""
    expression = where
    for column in sorted((c for c in frame.columns if "." in c), key=len, reverse=True):
        # quote a dotted name wherever it stands alone (not inside a longer name, nor already quoted)
        expression = re.sub(rf"(?<![\w.`'\"]){re.escape(column)}(?![\w`'\"])", f"`{column}`", expression)
    try:
        kept = frame.query(expression, local_dict={}, global_dict={})
    except Exception as err:  # any parse or evaluation error is the user's expression: said in one line
        message = " ".join(str(err).split()) or type(err).__name__
        names = ", ".join(c for c in frame.columns if c not in ("params", "error", "traceback"))
        raise SelectionError(f"--where: cannot evaluate {where!r} ({message}); columns: {names}") from None
    return kept
