"""The shared content pool: items on the run's device, provenance in columns beside them.

Items live in one preallocated tensor that doubles when full; provenance columns are small numpy arrays
on the CPU, because agents read them to decide what to scrape. Developers hold indices, never copies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

HUMAN, MODEL = 0, 1
COLUMNS = {
    "author_kind": np.int8,  # HUMAN or MODEL
    "author": np.int32,  # author agent index (human), developer index (model); -1 for a world's data set
    "step": np.int32,  # generation the item was written (0 = data sets that exist before the run)
    "concept": np.int32,
    "community": np.int16,  # human community, -1 for model output and private/public sets
    "depth": np.float32,  # lineage depth: 0 human; 1 + mean depth of the producing model's training data
    "detector_score": np.float32,  # uniform score: a detector with rates (tpr, fpr) flags a model item when
    # score < tpr and a human one when score < fpr — one shared detector, thresholds per developer
    "verified": np.bool_,  # the world's verifier's verdict (True where the world has none)
}


class ContentPool:
    def __init__(self, item_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                 capacity: int = 1024) -> None:
        self.items = torch.empty((capacity, *item_shape), dtype=dtype, device=device)
        self.columns = {name: np.empty(capacity, dtype=dt) for name, dt in COLUMNS.items()}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, items: torch.Tensor, **columns: np.ndarray | float | int | bool) -> np.ndarray:
        """Append ``items (B, *item)`` with a value (or a ``(B,)`` array) for every provenance column.

        Returns the new items' indices.
        """
        n = items.shape[0]
        missing = set(COLUMNS) - set(columns)
        if missing:
            raise ValueError(f"provenance columns missing: {sorted(missing)}")
        self._reserve(self.size + n)
        idx = np.arange(self.size, self.size + n)
        self.items[self.size : self.size + n] = items
        for name, value in columns.items():
            self.columns[name][idx] = np.asarray(value.cpu() if torch.is_tensor(value) else value)
        self.size += n
        return idx

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

    def column(self, name: str) -> np.ndarray:
        return self.columns[name][: self.size]

    def where(self, **equals: int) -> np.ndarray:
        """Indices of the items whose columns equal the given values, e.g. ``where(author_kind=HUMAN, step=3)``."""
        mask = np.ones(self.size, dtype=bool)
        for name, value in equals.items():
            mask &= self.column(name) == value
        return np.flatnonzero(mask)

    def frame(self) -> pd.DataFrame:
        """Provenance of every item, one row each (for analysis and tests)."""
        return pd.DataFrame({name: self.column(name) for name in COLUMNS})
