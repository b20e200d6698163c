"""Human authors: they write fresh human content about the concepts their community cares about."""

from __future__ import annotations

import mesa
import numpy as np


class HumanAuthor(mesa.Agent):
    """An author of a community: each generation it writes ``rate`` items on concepts drawn from its
    community's preferences.

    Authors decide what to write about; the ecosystem draws the concepts of all authors of a community at
    once and the world writes the content itself, for everyone in one batched call.
    """

    def __init__(self, model: mesa.Model, community: int, preferences: np.ndarray, rate: int) -> None:
        super().__init__(model)
        self.community = community
        self.preferences = preferences  # (C,) concept distribution
        self.rate = rate
