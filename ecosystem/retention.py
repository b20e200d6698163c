"""What developers keep of the data they gathered: the retention policies of the model-collapse literature.

Each generation every developer acquires a batch of (pool index, weight) pairs. Its training set is then
``replace``: the newest batch only (Shumailov et al. 2024); ``accumulate``: every batch so far
(Gerstgrasser et al. 2024; Kazdan et al. 2024); ``accumulate_subsample``: a uniform subsample, the size of
the newest batch, of every batch so far (Kazdan et al. 2024; "balanced" in Briesch et al. 2023);
``window``: the last ``window`` batches; ``incremental``: a random ``keep`` share of the previous training
set plus a ``1 − keep`` share of the newest batch, the size of the newest batch (Briesch et al. 2023, with
λ = 1 − keep new data per generation).

All developers are updated at once (:class:`Retention`): their sets are rows of one padded index matrix
(:class:`Rows`), and every policy is a few array operations over the rows that follow it.
"""

from __future__ import annotations

import numpy as np

from ecosystem.draws import distinct
from ecosystem.scrape import RETENTIONS, Policies

REPLACE, ACCUMULATE, SUBSAMPLE, WINDOW, INCREMENTAL = range(len(RETENTIONS))


class Rows:
    """One list of (pool index, weight) per developer, left-packed in ``(N, capacity)`` arrays.

    Row ``k`` holds ``n[k]`` entries; past them the index is 0 and the weight 0 (padding that a family
    ignores). ``append`` writes into spare capacity (doubling it when full), so accumulating costs the new
    entries only.
    """

    def __init__(self, idx: np.ndarray, weight: np.ndarray, n: np.ndarray) -> None:
        self.idx, self.weight, self.n = idx, weight, n

    @classmethod
    def empty(cls, rows: int, capacity: int = 0) -> Rows:
        return cls(np.zeros((rows, capacity), dtype=np.int64), np.zeros((rows, capacity)),
                   np.zeros(rows, dtype=np.int64))

    @classmethod
    def from_flat(cls, rows: int, row: np.ndarray, idx: np.ndarray, weight: np.ndarray) -> Rows:
        """Rows from flat ``(row, idx, weight)`` entries (in any order; each row keeps their relative order)."""
        order = np.argsort(row, kind="stable")
        row, idx, weight = row[order], idx[order], weight[order]
        n = np.bincount(row, minlength=rows).astype(np.int64)
        col = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
        out = cls.empty(rows, int(n.max(initial=0)))
        out.idx[row, col], out.weight[row, col], out.n = idx, weight, n
        return out

    @property
    def width(self) -> int:
        """Entries in the longest row."""
        return int(self.n.max(initial=0))

    def valid(self) -> np.ndarray:
        """``(N, capacity)`` bool: which cells hold entries."""
        return np.arange(self.idx.shape[1]) < self.n[:, None]

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row, idx, weight)`` of every entry, row by row."""
        row, col = np.nonzero(self.valid())
        return row, self.idx[row, col], self.weight[row, col]

    def only(self, keep: np.ndarray) -> Rows:
        """These rows where ``keep (N,)``, empty elsewhere (a copy)."""
        out = Rows(self.idx.copy(), self.weight.copy(), np.where(keep, self.n, 0))
        out._clear_padding()
        return out

    def append(self, other: Rows) -> None:
        """Add ``other``'s entries after each row's own, in place."""
        need = int((self.n + other.n).max(initial=0))
        if need > self.idx.shape[1]:
            capacity = max(need, 2 * self.idx.shape[1])
            grow = capacity - self.idx.shape[1]
            self.idx = np.pad(self.idx, ((0, 0), (0, grow)))
            self.weight = np.pad(self.weight, ((0, 0), (0, grow)))
        row, col = np.nonzero(other.valid())
        self.idx[row, self.n[row] + col] = other.idx[row, col]
        self.weight[row, self.n[row] + col] = other.weight[row, col]
        self.n = self.n + other.n

    def drop_front(self, count: np.ndarray) -> None:
        """Remove the first ``count[k]`` entries of each row, in place."""
        count = np.minimum(count, self.n)
        if not count.any():
            return
        cols = np.minimum(np.arange(self.idx.shape[1]) + count[:, None], self.idx.shape[1] - 1)
        self.idx = np.take_along_axis(self.idx, cols, 1)
        self.weight = np.take_along_axis(self.weight, cols, 1)
        self.n = self.n - count
        self._clear_padding()

    def choose(self, count: np.ndarray, rng: np.random.Generator) -> Rows:
        """``min(count[k], n[k])`` entries of each row, drawn uniformly without replacement."""
        row, col = distinct(self.n, count, rng)
        return Rows.from_flat(len(self.n), row, self.idx[row, col], self.weight[row, col])

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(idx, weight)``, each ``(N, B)`` with B the longest row (at least 1): zero weight is padding."""
        b = max(self.width, 1)
        if self.idx.shape[1] < b:
            return np.pad(self.idx, ((0, 0), (0, b))), np.pad(self.weight, ((0, 0), (0, b)))
        return self.idx[:, :b], self.weight[:, :b]

    def remap(self, new_index: np.ndarray) -> None:
        """Renumber the entries after the pool was compacted (``new_index[old]``), in place."""
        valid = self.valid()
        self.idx[valid] = new_index[self.idx[valid]]

    def _clear_padding(self) -> None:
        pad = ~self.valid()
        self.idx[pad], self.weight[pad] = 0, 0.0


class Retention:
    """Every developer's retained data, updated with each generation's acquired batch (module docstring)."""

    def __init__(self, policies: Policies) -> None:
        self.kind, self.window, self.keep = policies.retention, policies.window, policies.keep
        n = policies.n
        self.train = Rows.empty(n)  # the training sets
        self.store = Rows.empty(n)  # accumulate, accumulate_subsample: every batch; window: the last ones
        self.sizes: list[np.ndarray] = []  # window: the size of each stored batch, oldest first

    def update(self, batch: Rows, rng: np.random.Generator) -> Rows:
        """The training sets after acquiring ``batch``."""
        kind = self.kind
        stored = (kind == ACCUMULATE) | (kind == SUBSAMPLE) | (kind == WINDOW)
        if stored.any():
            self.store.append(_rows_of(batch, stored))
        if (kind == WINDOW).any():
            self.sizes.append(np.where(kind == WINDOW, batch.n, 0))
            t = len(self.sizes)
            over = (kind == WINDOW) & (t > self.window)
            if over.any():  # the batch that leaves each row's window
                oldest = np.stack(self.sizes)[np.clip(t - 1 - self.window, 0, t - 1), np.arange(len(kind))]
                self.store.drop_front(np.where(over, oldest, 0))
            del self.sizes[: max(0, t - int(self.window.max()))]
        parts = []
        if (kind == REPLACE).any():
            parts.append(_rows_of(batch, kind == REPLACE))
        if ((kind == ACCUMULATE) | (kind == WINDOW)).any():
            parts.append(_rows_of(self.store, (kind == ACCUMULATE) | (kind == WINDOW)))
        if (kind == SUBSAMPLE).any():
            parts.append(_rows_of(self.store, kind == SUBSAMPLE).choose(batch.n, rng))
        if (kind == INCREMENTAL).any():
            parts.append(self._incremental(batch, rng))
        self.train = parts[0] if len(parts) == 1 else _merge(parts, len(kind))
        return self.train

    def _incremental(self, batch: Rows, rng: np.random.Generator) -> Rows:
        """A random ``keep`` share of the previous set (at most all of it) and the rest, up to the size of the
        newest batch, from the newest batch; the first generation has no previous set and keeps the batch."""
        rows = self.kind == INCREMENTAL
        previous = _rows_of(self.train, rows)
        size = np.where(rows, batch.n, 0)
        n_old = np.where(previous.n > 0, np.minimum(np.rint(self.keep * size).astype(np.int64), previous.n), 0)
        out = previous.choose(n_old, rng)
        out.append(_rows_of(batch, rows).choose(size - n_old, rng))
        return out

    def live(self) -> list[Rows]:
        """The rows whose pool items must stay in the pool."""
        return [self.train, self.store]


def _rows_of(rows: Rows, keep: np.ndarray) -> Rows:
    """``rows`` restricted to ``keep``: the same object when every developer follows one policy (no copy)."""
    return rows if keep.all() else rows.only(keep)


def _merge(parts: list[Rows], rows: int) -> Rows:
    """Rows that are non-empty in different parts, put together."""
    out = Rows.empty(rows, max(p.width for p in parts))
    for part in parts:
        out.append(part)
    return out
