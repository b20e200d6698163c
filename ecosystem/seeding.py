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
    prompts: int  # which sequences prompt the models (``publish.prompt``), so prompting keeps the other streams

    @classmethod
    def from_root(cls, seed: int) -> Seeds:
        # spawn(k)[i] does not depend on k: a stream added at the end leaves the others as they were
        children = np.random.SeedSequence(seed).spawn(6)
        return cls(*(int(c.generate_state(1, np.uint32)[0]) for c in children))
