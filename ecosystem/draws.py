"""Exact counts and draws without replacement for many groups at once (every developer, every pair of a
developer and a model it reads), as a handful of numpy operations whatever the number of groups.
"""

from __future__ import annotations

import numpy as np


def largest_remainder(n: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split ``n[g]`` items by the row ``shares[g]`` exactly, for every row at once: ``(G,), (G, K) -> (G, K)``.

    Hamilton's largest-remainder method: each entry gets the floor of its exact quota n·s/Σs, and the items
    left over go one each to the entries with the largest remainders, ties broken at random. Shares need
    not sum to 1; an entry with share 0 gets nothing, and a row whose shares are all 0 gets nothing.
    """
    shares = np.asarray(shares, dtype=np.float64)
    n = np.asarray(n, dtype=np.int64)
    total = shares.sum(1, keepdims=True)  # (G, 1)
    exact = np.divide(n[:, None] * shares, total, out=np.zeros_like(shares), where=total > 0)
    counts = np.floor(exact + 1e-9).astype(np.int64)
    short = np.where(total[:, 0] > 0, np.maximum(n - counts.sum(1), 0), 0)  # (G,) items still to place, < K
    if short.max(initial=0) > 0:
        # Random tie-breaking well below any real difference of remainders; zero shares never round up.
        remainder = np.where(shares > 0, exact - counts + rng.random(shares.shape) * 1e-6, -1.0)
        ranked = -np.sort(-remainder, axis=1)  # (G, K) descending
        threshold = ranked[np.arange(len(n)), np.clip(short - 1, 0, shares.shape[1] - 1)]
        counts += (remainder >= threshold[:, None]) & (short[:, None] > 0)
    return counts


def distinct(lengths: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``min(counts[g], lengths[g])`` distinct offsets drawn uniformly from ``0 .. lengths[g] − 1`` for every
    group ``g``: returns flat ``(group, offset)`` arrays, grouped but in no particular order within a group.

    Every group draws with replacement and redraws its duplicates until none is left; where more than half
    of a group is wanted it draws the offsets to leave out instead. Both are invariant under relabelling the
    offsets, so each group's set is a uniformly random subset of its size (the law of sampling without
    replacement). Cost: about Σ counts · log, whatever the lengths.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.minimum(np.asarray(counts, dtype=np.int64), lengths)
    flip = 2 * counts > lengths  # cheaper to choose what to leave out
    m = np.where(flip, lengths - counts, counts)
    group = np.repeat(np.arange(len(lengths)), m)
    span = lengths[group]
    offset = _without_duplicates(group, span, rng)
    if not flip.any():
        return group, offset
    flipped = flip[group]
    kept_group, kept_offset = group[~flipped], offset[~flipped]
    # The flipped groups: every offset except the ones drawn.
    fg = np.flatnonzero(flip)
    all_group = np.repeat(fg, lengths[fg])
    starts = np.cumsum(lengths[fg]) - lengths[fg]
    all_offset = np.arange(len(all_group)) - np.repeat(starts, lengths[fg])
    width = int(lengths.max()) + 1
    left_out = group[flipped] * width + offset[flipped]
    keep = ~np.isin(all_group * width + all_offset, left_out)
    return np.concatenate([kept_group, all_group[keep]]), np.concatenate([kept_offset, all_offset[keep]])


def _without_duplicates(group: np.ndarray, span: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Offsets below ``span`` for each entry, distinct within each group (redrawing duplicates)."""
    offset = (rng.random(len(group)) * span).astype(np.int64)
    width = int(span.max(initial=0)) + 1
    active = np.arange(len(group))  # entries of the groups that may still hold duplicates
    while len(active):
        key = group[active] * width + offset[active]
        order = np.argsort(key, kind="stable")
        repeated = np.zeros(len(active), dtype=bool)
        repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
        if not repeated.any():
            break
        redo = active[repeated]
        offset[redo] = (rng.random(len(redo)) * span[redo]).astype(np.int64)
        active = active[np.isin(group[active], group[redo])]  # only groups that had a duplicate
    return offset
