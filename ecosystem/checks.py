"""Checks of a run's science that a user should hear about in words: have the models learned anything?

A token model that has not learned its world writes near-random sequences; recursive training then looks
like "collapse" and the noise looks like "diversity", and neither means anything. The first generation
says whether training did its job: its held-out NLL should have closed a good part of the gap from a
model that knows nothing (uniform over the vocabulary, ``baseline_nll``) to the truth itself
(``reference_nll``), and, where the world verifies items, some of what the models write should be valid.
Real text has no truth to close a gap to; there the first baseline is the unigram model of the training
text (``unigram_nll``, the ``corpus`` world), and a model that is not clearly below it has learned no more
than which tokens are frequent.
"""

from __future__ import annotations

import math

import pandas as pd

LEARNED = 0.25  # share of the baseline → truth gap that generation-1 models must close
# Share of the unigram model's NLL that generation-1 models must be below it on real text: a bigram byte
# model of Python's prose is ~12% below it, a transformer after 300 steps ~13%; a 5% margin is about four
# standard errors of a held-out mean of 128 windows (per-window NLL sd ~15 nats around ~107).
UNIGRAM_MARGIN = 0.05
VALID = 0.05  # share of valid samples below which generation-1 models "write nothing correct"
ADVICE = "raise developers.train.steps (or train.lr, or the model's size)"


def learning_warning(model: pd.DataFrame) -> str | None:
    """A warning when the first measured generation's models have not learned, else None.

    ``model`` is a run's ``model.parquet`` table (columns ``nll``, ``reference_nll``, ``baseline_nll``, for
    real text ``unigram_nll``, and for verifying worlds ``validity``); worlds without a baseline (closed-form
    families) are never warned.
    """
    rows = model.dropna(subset=["nll"]) if "nll" in model.columns else model.iloc[:0]
    if rows.empty:
        return None
    first = rows.iloc[0]
    nll, ref, base = (float(first.get(c, math.nan)) for c in ("nll", "reference_nll", "baseline_nll"))
    unigram = float(first.get("unigram_nll", math.nan))
    step = int(first["step"])
    if math.isfinite(nll) and math.isfinite(unigram) and nll > (1 - UNIGRAM_MARGIN) * unigram:
        return (f"the models have not learned: at generation {step} their held-out NLL ({nll:.4g} nats) is not "
                f"{UNIGRAM_MARGIN:.0%} below that of a unigram model of the training text ({unigram:.4g}); "
                f"{ADVICE}")
    if all(map(math.isfinite, (nll, ref, base))) and base > ref:
        learned = (base - nll) / (base - ref)
        if learned < LEARNED:
            return (f"the models have not learned: at generation {step} their held-out NLL ({nll:.3g} nats) has "
                    f"closed {learned:.0%} of the gap from a uniform model ({base:.3g}) to the truth ({ref:.3g}); "
                    f"{ADVICE}")
    validity = float(first.get("validity", math.nan))
    if math.isfinite(validity) and validity < VALID:
        return (f"the models have not learned: at generation {step} only {validity:.1%} of what they write is "
                f"valid; {ADVICE}")
    return None
