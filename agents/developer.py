"""Model developers: each decides what its model trains on; the ecosystem scrapes and trains for all at once.

A developer holds its slot in the family's batched state and its data policy (``developers.data``): shares
of its own original real data, shared public data, fresh human data and synthetic data from the models it
reads, a retention policy, and optionally a detector and a verifier to filter what it scrapes. The
ecosystem stacks every developer's policy into rows of arrays and turns them into training sets for all
developers in one pass (:mod:`ecosystem.scrape`, :mod:`ecosystem.retention`); a developer reads its own
row back (:attr:`training_set`).
"""

from __future__ import annotations

import mesa
import numpy as np

from ecosystem.scenario import DataSpec


class ModelDeveloper(mesa.Agent):
    def __init__(self, model: mesa.Model, slot: int, group: int, policy: DataSpec) -> None:
        super().__init__(model)
        self.slot = slot  # index in the family's batched state and in every per-developer array
        self.group = group  # developer community (cohort)
        self.policy = policy

    @property
    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The pool indices and loss weights of the items its model last trained on."""
        train = self.model.retention.train
        n = train.n[self.slot]
        return train.idx[self.slot, :n], train.weight[self.slot, :n]
