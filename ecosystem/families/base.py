"""A family of tiny generative models, batched over developers.

Every tensor of a family's state has a leading developer dimension ``N``; one call of ``fit`` or
``sample`` serves all developers. Training sets differ in size between developers, so ``fit`` takes
them padded to a common length with per-item weights (0 for padding; for sample-based policies every
real item has weight 1, for loss-weighted policies such as Vu et al. 2025 the weight is the item's share
in the loss).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Family(Protocol):
    kind: str

    def init(self, n: int, generator: torch.Generator) -> Any:
        """The initial state of ``n`` developers' models (random weights or an uninformed prior)."""

    def fit(self, state: Any, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator) -> Any:
        """Train every developer's model on its own data: ``items (N, B, *item)``, ``weights (N, B)``.

        Returns the new state; ``state`` is the previous generation (fine-tuning starts from it).
        """

    def sample(
        self,
        state: Any,
        k: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``k`` items from each developer's model: ``(N, k, *item)``.

        ``prompts (N, k, ...)`` conditions the output where the family is conditional (the features x of
        the linear family).
        """

    def log_prob(self, state: Any, items: torch.Tensor) -> torch.Tensor:
        """Log-probability of ``items (N, B, *item)`` under each developer's own model: ``(N, B)``."""

    def divergence(self, state: Any, probe: torch.Tensor) -> torch.Tensor:
        """Pairwise divergence between developers' models ``(N, N)``, zero on the diagonal.

        ``probe (P, *item)`` is a fixed set of human items where a family needs one (next-token
        distributions of language models); closed-form families compare parameters directly.
        """
