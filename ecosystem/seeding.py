"""One root seed → independent streams for every random thing in a run (numpy ``SeedSequence``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Seeds:
    mesa: int  # the Model's numpy Generator (rng=): agents' decisions
    torch: int  # the torch.Generator on the run's device: content and model training
    world: int  # the world's fixed data, unless the scenario pins world.seed
    network: int  # random graph families

    @classmethod
    def from_root(cls, seed: int) -> Seeds:
        children = np.random.SeedSequence(seed).spawn(4)
        return cls(*(int(c.generate_state(1, np.uint32)[0]) for c in children))


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when it is available, else the CPU; asking for ``cuda`` without it is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' was asked for but CUDA is not available; use 'cpu' or 'auto'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
