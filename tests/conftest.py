from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# One torch thread in the test process: tiny tensors gain nothing from two, and a busy machine (CI, a
# parallel test run) then costs a test its share of one core instead of thrashing both.
torch.set_num_threads(1)


def tiny(**overrides) -> dict:
    """A small Gaussian scenario as a raw dict (a few developers, a few steps)."""
    base = {
        "name": "tiny", "seed": 3, "steps": 3, "device": "cpu",
        "world": {"kind": "gaussian", "dim": 2, "concepts": 3, "heldout": 50},
        "communities": [{"name": "a", "authors": 4, "concepts": [0, 1], "rate": 5},
                        {"name": "b", "authors": 2, "concepts": [2], "rate": 5}],
        "developers": {"count": 4, "train": {"samples": 20}, "publish": {"samples": 20}},
        "network": {"kind": "ring", "k": 2},
    }
    for key, value in overrides.items():
        base[key] = value
    return base


@pytest.fixture
def tiny_scenario():
    return tiny


def divergence_matrix(family, state, probe, n: int):
    """A family's divergence of every pair of the ``n`` developers as a symmetric ``(N, N)`` matrix."""
    import torch

    i, j = torch.triu_indices(n, n, 1)
    values = family.divergence(state, probe, i, j)
    out = torch.zeros(n, n, dtype=values.dtype)
    out[i, j] = out[j, i] = values
    return out
