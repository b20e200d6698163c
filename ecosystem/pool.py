"""The shared content pool: items on the run's device, provenance in columns beside them.

Items live in one preallocated tensor that doubles when full, in the world's storage dtype (token ids in
the smallest integer type that holds the vocabulary); provenance columns are numpy arrays on the CPU,
because the scrape reads them. Developers hold indices, never copies. Items that no developer can read
again (under ``replace``, ``window`` or ``incremental`` retention, most of the pool after a few
generations) are released by :meth:`ContentPool.compact`, so memory stays flat over a long run; the
pool's totals (``written``) still count every item ever written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

HUMAN, MODEL = 0, 1
COLUMNS = {
    "author_kind": np.int8,  # HUMAN or MODEL
    "author": np.int32,  # author agent index (human), developer index (model); -1 for a world's data set
    "step": np.int32,  # generation the item was written (0 = data sets that exist before the run)
    "concept": np.int32,  # -1: none (e.g. a sequence that is not an expression)
    "community": np.int16,  # human community, -1 for model output and private/public sets
    "depth": np.float32,  # lineage depth: 0 human; 1 + mean depth of the producing model's training data
    "detector_score": np.float32,  # uniform score: a detector with rates (tpr, fpr) flags a model item when
    # score < tpr and a human one when score < fpr — one shared detector, thresholds per developer
    "verified": np.bool_,  # the world's verifier's verdict (True where the world has none)
}


@dataclass
class Written:
    """Totals over every item ever written (released ones included)."""

    items: int = 0
    model_items: int = 0
    depth: float = 0.0  # sum of lineage depths

    @property
    def synthetic_share(self) -> float:
        return self.model_items / self.items if self.items else float("nan")

    @property
    def mean_depth(self) -> float:
        return self.depth / self.items if self.items else float("nan")


class ContentPool:
    def __init__(self, item_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                 storage: torch.dtype | None = None, capacity: int = 1024) -> None:
        self.dtype = dtype  # what `take` returns
        self.items = torch.empty((capacity, *item_shape), dtype=storage or dtype, device=device)
        self.columns = {name: np.empty(capacity, dtype=dt) for name, dt in COLUMNS.items()}
        self.size = 0
        self.written = Written()

    def __len__(self) -> int:
        return self.size

    def add(self, items: torch.Tensor, **columns: np.ndarray | float | int | bool) -> int:
        """Append ``items (B, *item)`` with a value (or a ``(B,)`` array) for every provenance column.

        Returns the index of the first new item; the new items are contiguous.
        """
        n = items.shape[0]
        missing = set(COLUMNS) - set(columns)
        if missing:
            raise ValueError(f"provenance columns missing: {sorted(missing)}")
        self._reserve(self.size + n)
        start = self.size
        self.items[start : start + n] = items
        for name, value in columns.items():
            self.columns[name][start : start + n] = np.asarray(value.cpu() if torch.is_tensor(value) else value)
        self.size += n
        kind, depth = self.columns["author_kind"][start : self.size], self.columns["depth"][start : self.size]
        self.written.items += n
        self.written.model_items += int((kind == MODEL).sum())
        self.written.depth += float(depth.sum(dtype=np.float64))
        return start

    def take(self, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The items at ``idx`` (any shape) in the working dtype: ``(*idx.shape, *item)``."""
        idx = torch.as_tensor(idx, device=self.items.device)
        return self.items[idx].to(self.dtype)

    def _reserve(self, needed: int) -> None:
        capacity = self.items.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        grown = torch.empty((capacity, *self.items.shape[1:]), dtype=self.items.dtype, device=self.items.device)
        grown[: self.size] = self.items[: self.size]
        self.items = grown
        for name, col in self.columns.items():
            self.columns[name] = np.resize(col, capacity)

    def compact(self, live: np.ndarray) -> np.ndarray:
        """Release the items where ``live (size,)`` is False, keeping the others in order; returns the new
        index of every old one (−1 for released items). The storage shrinks to twice the live items."""
        keep = np.flatnonzero(live)
        new_index = np.full(self.size, -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        capacity = max(1024, 2 * len(keep))
        items = torch.empty((capacity, *self.items.shape[1:]), dtype=self.items.dtype, device=self.items.device)
        items[: len(keep)] = self.items[torch.as_tensor(keep, device=self.items.device)]
        self.items = items
        for name, col in self.columns.items():
            fresh = np.empty(capacity, dtype=col.dtype)
            fresh[: len(keep)] = col[keep]
            self.columns[name] = fresh
        self.size = len(keep)
        return new_index

    def column(self, name: str) -> np.ndarray:
        return self.columns[name][: self.size]

    def where(self, **equals: int) -> np.ndarray:
        """Indices of the items whose columns equal the given values, e.g. ``where(author_kind=HUMAN, step=3)``."""
        mask = np.ones(self.size, dtype=bool)
        for name, value in equals.items():
            mask &= self.column(name) == value
        return np.flatnonzero(mask)

    def frame(self) -> pd.DataFrame:
        """Provenance of every item held, one row each (for analysis and tests)."""
        return pd.DataFrame({name: self.column(name) for name in COLUMNS})
