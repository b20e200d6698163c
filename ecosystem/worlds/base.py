"""The ground-truth world: what human content looks like, and how to score any item exactly.

Every world is a small class with the attributes and methods of :class:`World`. Items are tensors whose
first dimension indexes items: continuous worlds use ``(B, D)`` float64 rows, token worlds ``(B, T)``
int64 sequences. Fixed data (cluster means, regression truth, private data sets, the held-out set) comes
from the world's own generator, made at construction from the world seed; content sampled during a run
uses the run's generator passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class Batch:
    """Items with their labels: ``items (B, *item)``, ``concepts (B,)`` and ``communities (B,)``.

    ``communities`` is -1 where an item belongs to no community (private or public data).
    """

    items: torch.Tensor
    concepts: torch.Tensor
    communities: torch.Tensor

    def __len__(self) -> int:
        return self.items.shape[0]


class World(Protocol):
    kind: str
    item_shape: tuple[int, ...]  # shape of one item: (D,) or (T,)
    dtype: torch.dtype
    device: torch.device
    n_concepts: int
    n_communities: int

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fresh human items, one per entry of ``concepts (B,)``: ``(B, *item)``."""

    def original(self, developer: int) -> Batch:
        """The fixed private real data set of one developer (its "original" data)."""

    def public(self) -> Batch:
        """The fixed public real data set shared by every developer (may be empty)."""

    def heldout(self) -> Batch:
        """The fixed held-out human data used to measure quality, labelled by concept and community."""

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """Exact log-probability (density) of ``items (..., *item)`` under the true human distribution."""

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        """The concept of each item ``(..., *item) -> (...)`` (the most likely one for continuous worlds)."""

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        """Whether each item is correct ``(..., *item) -> (...) bool`` (valid sequence, true expression)."""
