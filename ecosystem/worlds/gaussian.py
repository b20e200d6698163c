"""A world of concept clusters: isotropic Gaussians in ``dim`` dimensions, mixed by the communities.

With one concept it is the single Gaussian N(μ, σ²I) of the model-collapse closed forms (Shumailov et al.,
Nature 2024; Kazdan et al. 2024): science.md items 1 and 2.
"""

from __future__ import annotations

import math

import torch

from ecosystem.scenario import CommunitySpec, GaussianWorldSpec
from ecosystem.worlds.base import Batch
from ecosystem.worlds.communities import concept_weights, mixture_weights


class GaussianWorld:
    kind = "gaussian"
    dtype = torch.float64

    def __init__(
        self,
        spec: GaussianWorldSpec,
        communities: list[CommunitySpec],
        n_developers: int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.device = device
        self.item_shape = (spec.dim,)
        self.n_concepts, self.n_communities = spec.concepts, len(communities)
        self.std = spec.spread
        # Cluster means uniform in a box of half-width `separation`; a single concept sits at the origin.
        box = (torch.rand(spec.concepts, spec.dim, generator=g, dtype=self.dtype) * 2 - 1) * spec.separation
        self.means = box if spec.concepts > 1 else torch.zeros(1, spec.dim, dtype=self.dtype)  # (C, D)
        self.community_concepts = concept_weights(communities, spec.concepts)  # (K, C)
        self.pi = mixture_weights(communities, spec.concepts)  # (C,)
        self._original = [self._draw(self.pi, original_size, g) for _ in range(n_developers)]
        self._public = self._draw(self.pi, original_size, g)
        self._heldout = _concat(
            [self._draw(self.community_concepts[k], spec.heldout, g, community=k) for k in range(len(communities))]
        )
        self.means, self.pi = self.means.to(device), self.pi.to(device)

    def _draw(self, weights: torch.Tensor, n: int, g: torch.Generator, community: int = -1) -> Batch:
        concepts = torch.multinomial(weights, n, replacement=True, generator=g)
        items = self.means[concepts] + self.std * torch.randn(n, self.item_shape[0], generator=g, dtype=self.dtype)
        return Batch(items.to(self.device), concepts.to(self.device), torch.full((n,), community, device=self.device))

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(concepts), self.item_shape[0], generator=generator, dtype=self.dtype,
                            device=self.device)
        return self.means[concepts] + self.std * noise  # (B, D)

    def original(self, developer: int) -> Batch:
        return self._original[developer]

    def public(self) -> Batch:
        return self._public

    def heldout(self) -> Batch:
        return self._heldout

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., C)``: log N(x; μ_c, σ²I) for every concept."""
        d = self.item_shape[0]
        sq = ((items.unsqueeze(-2) - self.means) ** 2).sum(-1)  # (..., C)
        return -0.5 * sq / self.std**2 - d * math.log(self.std) - 0.5 * d * math.log(2 * math.pi)

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.log_prob_concepts(items) + self.pi.log(), dim=-1)

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        return (self.log_prob_concepts(items) + self.pi.log()).argmax(dim=-1)

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the gaussian world has no notion of a correct item")

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(D,)`` and covariance ``(D, D)`` of the human mixture (its moment-matched Gaussian)."""
        mean = self.pi @ self.means
        centred = self.means - mean
        between = torch.einsum("c,ci,cj->ij", self.pi, centred, centred)
        return mean, between + self.std**2 * torch.eye(self.item_shape[0], dtype=self.dtype, device=self.device)


def _concat(batches: list[Batch]) -> Batch:
    return Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in ("items", "concepts", "communities")))
