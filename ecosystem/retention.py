"""What a developer keeps of the data it gathered: the retention policies of the model-collapse literature.

Each generation a developer acquires a batch of (indices, weights). The training set is then
``replace``: the newest batch only (Shumailov et al. 2024); ``accumulate``: every batch so far
(Gerstgrasser et al. 2024; Kazdan et al. 2024); ``accumulate_subsample``: a uniform subsample, the size of
the newest batch, of every batch so far (Kazdan et al. 2024; "balanced" in Briesch et al. 2023);
``window``: the last ``window`` batches; ``incremental``: a random ``keep`` share of the previous training
set plus a ``1 − keep`` share of the newest batch, the size of the newest batch (Briesch et al. 2023, with
λ = 1 − keep new data per generation).
"""

from __future__ import annotations

import numpy as np

Acquired = tuple[np.ndarray, np.ndarray]  # (pool indices, weights)


def retain(
    history: list[Acquired], policy: str, rng: np.random.Generator, *, window: int = 1, keep: float = 0.9,
    previous: Acquired | None = None,
) -> Acquired:
    """The training set under ``policy`` given the batches acquired so far (oldest first) and, for
    ``incremental``, the previous training set."""
    if not history:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if policy == "incremental" and previous is not None and len(previous[0]):
        size = len(history[-1][0])
        n_old = min(round(keep * size), len(previous[0]))
        old = rng.choice(len(previous[0]), size=n_old, replace=False)
        new = rng.choice(size, size=min(size - n_old, size), replace=False)
        return (np.concatenate([previous[0][old], history[-1][0][new]]),
                np.concatenate([previous[1][old], history[-1][1][new]]))
    match policy:
        case "replace" | "incremental":  # incremental: the first generation has no previous set
            kept = history[-1:]
        case "window":
            kept = history[-window:]
        case "accumulate" | "accumulate_subsample":
            kept = history
        case _:
            raise ValueError(f"developers.data.retention: unknown policy {policy!r}")
    idx = np.concatenate([b[0] for b in kept])
    weights = np.concatenate([b[1] for b in kept])
    if policy == "accumulate_subsample":
        take = rng.choice(len(idx), size=min(len(history[-1][0]), len(idx)), replace=False)
        idx, weights = idx[take], weights[take]
    return idx, weights
