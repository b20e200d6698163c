"""What a developer keeps of the data it gathered: the retention policies of the model-collapse literature.

Each generation a developer acquires a batch of (indices, weights). The training set is then
``replace``: the newest batch only (Shumailov et al. 2024); ``accumulate``: every batch so far
(Gerstgrasser et al. 2024; Kazdan et al. 2024); ``accumulate_subsample``: a uniform subsample, the size of
the newest batch, of every batch so far (Kazdan et al. 2024); ``window``: the last ``window`` batches.
"""

from __future__ import annotations

import numpy as np

Acquired = tuple[np.ndarray, np.ndarray]  # (pool indices, weights)


def retain(history: list[Acquired], policy: str, window: int, rng: np.random.Generator) -> Acquired:
    """The training set under ``policy`` given the batches acquired so far (oldest first)."""
    if not history:
        return np.empty(0, dtype=np.int64), np.empty(0)
    match policy:
        case "replace":
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
