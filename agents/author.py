"""Human authors: they write fresh human content about the concepts their community cares about."""

from __future__ import annotations

import mesa
import numpy as np


class HumanAuthor(mesa.Agent):
    """An author of a community; each generation it writes ``rate`` items on concepts drawn from its preferences.

    The author decides what to write about (concepts); the world writes the content itself, for all authors
    in one batched call.
    """

    def __init__(self, model: mesa.Model, community: int, preferences: np.ndarray, rate: int) -> None:
        super().__init__(model)
        self.community = community
        self.preferences = preferences  # (C,) concept distribution
        self.rate = rate
        self.concepts = np.empty(0, dtype=np.int64)  # what it chose to write this generation

    def write(self) -> None:
        self.concepts = self.model.rng.choice(len(self.preferences), size=self.rate, p=self.preferences)
