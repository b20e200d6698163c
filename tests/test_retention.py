"""Retention over all developers at once: padded rows and the five policies, on hand-built batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ecosystem.retention import Retention, Rows
from ecosystem.scenario import DataSpec
from ecosystem.scrape import Policies


def batch(sizes: list[int], start: int) -> Rows:
    """Developer k acquires ``sizes[k]`` new items, numbered from ``start`` on (each row its own range)."""
    row = np.repeat(np.arange(len(sizes)), sizes)
    idx = start + np.concatenate([k * 1000 + np.arange(n) for k, n in enumerate(sizes)] + [np.empty(0, int)])
    return Rows.from_flat(len(sizes), row, idx.astype(np.int64), np.ones(len(row)))


def retention(kinds: list[str], **data) -> Retention:
    return Retention(Policies.stack([DataSpec(synthetic=1.0, retention=k, **data) for k in kinds], 10))


def items(rows: Rows, k: int) -> set[int]:
    return set(rows.idx[k, : rows.n[k]].tolist())


def test_rows_append_drop_choose_and_pad():
    rows = Rows.from_flat(3, np.array([2, 0, 2, 0]), np.array([5, 6, 7, 8]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert rows.n.tolist() == [2, 0, 2] and rows.idx[0, :2].tolist() == [6, 8] and rows.idx[2, :2].tolist() == [5, 7]
    rows.append(Rows.from_flat(3, np.array([1, 1, 1, 0]), np.array([9, 10, 11, 12]), np.ones(4)))
    assert rows.n.tolist() == [3, 3, 2] and rows.idx[0, :3].tolist() == [6, 8, 12]
    idx, weight = rows.padded()
    assert idx.shape == (3, 3) and weight[2, 2] == 0 and idx[2, 2] == 0  # padding has zero weight
    rows.drop_front(np.array([1, 2, 5]))
    assert rows.n.tolist() == [2, 1, 0] and rows.idx[0, :2].tolist() == [8, 12] and rows.idx[1, 0] == 11
    assert rows.weight[2].sum() == 0 and rows.weight[0, 2:].sum() == 0  # dropped cells are cleared
    chosen = rows.choose(np.array([1, 5, 3]), np.random.default_rng(0))
    assert chosen.n.tolist() == [1, 1, 0] and items(chosen, 0) <= {8, 12}
    rows.remap(np.arange(20)[::-1])
    assert rows.idx[0, :2].tolist() == [11, 7]


def test_each_policy_on_hand_built_batches():
    kinds = ["replace", "accumulate", "accumulate_subsample", "window", "incremental"]
    ret = retention(kinds, window=2, keep=0.8)
    rng = np.random.default_rng(1)
    seen = []
    for t in range(4):
        train = ret.update(batch([10] * 5, start=100 * t), rng)
        seen.append([items(train, k) for k in range(5)])
    def gen(k: int, t: int) -> set[int]:
        return {k * 1000 + 100 * t + i for i in range(10)}

    last = seen[-1]
    assert last[0] == gen(0, 3)  # replace: the newest batch
    assert last[1] == gen(1, 0) | gen(1, 1) | gen(1, 2) | gen(1, 3)  # accumulate: everything
    assert len(last[2]) == 10 and last[2] <= gen(2, 0) | gen(2, 1) | gen(2, 2) | gen(2, 3)  # subsample
    assert last[3] == gen(3, 2) | gen(3, 3)  # window of 2
    # incremental: 8 kept from the previous set, 2 from the newest batch
    assert len(last[4]) == 10 and len(last[4] & gen(4, 3)) == 2 and len(last[4] & seen[-2][4]) == 8
    assert seen[0][4] == gen(4, 0)  # the first generation keeps its batch


def test_accumulate_subsample_mixes_every_generation():
    ret = retention(["accumulate_subsample"] * 200)
    rng = np.random.default_rng(2)
    for t in range(4):
        train = ret.update(batch([5] * 200, start=10 * t), rng)
    idx = train.idx[:, :5].ravel() % 1000  # generation t's items are 10t .. 10t + 4
    share = np.bincount(idx // 10, minlength=4) / idx.size
    assert np.all(np.abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / idx.size))


def test_window_sizes_per_developer_and_empty_batches():
    ret = retention(["window", "window", "accumulate"], window=3)
    rng = np.random.default_rng(3)
    sizes = []
    for t, acquired in enumerate([[4, 0, 2], [4, 1, 2], [4, 0, 2], [4, 3, 2], [4, 0, 2]]):
        train = ret.update(batch(acquired, start=10 * t), rng)
        sizes.append(train.n.tolist())
    assert sizes == [[4, 0, 2], [8, 1, 4], [12, 1, 6], [12, 4, 8], [12, 3, 10]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), min_size=3, max_size=3), min_size=1, max_size=8),
       st.integers(1, 4), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_retained_sizes_follow_each_policy(sizes, window, keep, seed):
    kinds = ["replace", "accumulate", "accumulate_subsample", "window", "incremental"]
    ret = Retention(Policies.stack([DataSpec(synthetic=1.0, retention=k, window=window, keep=keep)
                                    for k in kinds for _ in range(3)], 10))
    rng = np.random.default_rng(seed)
    history = []
    for t, acquired in enumerate(sizes):
        new = np.tile(acquired, 5)
        history.append(new)
        n = ret.update(batch(new.tolist(), start=100 * t), rng).n
        stacked = np.array(history)
        assert np.array_equal(n[:3], new[:3])
        assert np.array_equal(n[3:6], stacked[:, 3:6].sum(0))
        assert np.array_equal(n[6:9], np.minimum(new[6:9], stacked[:, 6:9].sum(0)))
        assert np.array_equal(n[9:12], stacked[-window:, 9:12].sum(0))
        assert np.array_equal(n[12:], new[12:])  # incremental: the size of the newest batch
