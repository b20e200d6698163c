"""One root seed → independent streams for every random thing in a run (numpy ``SeedSequence``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Seeds:
    mesa: int  # the Model's numpy Generator (rng=): agents' decisions
    torch: int  # the torch.Generator on the run's device: content and model training
    world: int  # the world's fixed data, unless the scenario pins world.seed
    network: int  # random graph families
    measure: int  # measurement's own streams (sampled pairs), so measuring never changes the simulation

    @classmethod
    def from_root(cls, seed: int) -> Seeds:
        children = np.random.SeedSequence(seed).spawn(5)
        return cls(*(int(c.generate_state(1, np.uint32)[0]) for c in children))
