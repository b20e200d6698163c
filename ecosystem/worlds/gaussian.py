"""A world of concept clusters: isotropic Gaussians in ``dim`` dimensions, mixed by the communities.

With one concept it is the single Gaussian N(μ, σ²I) of the model-collapse closed forms (Shumailov et al.,
Nature 2024; Kazdan et al. 2024).
"""

from __future__ import annotations

import math

import torch

from ecosystem.scenario import CommunitySpec, GaussianWorldSpec
from ecosystem.worlds.communities import CommunityMixture


class GaussianWorld(CommunityMixture):
    kind = "gaussian"
    dtype = torch.float64

    def __init__(
        self,
        spec: GaussianWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")  # the fixed data is drawn on the CPU, then moved
        self.item_shape = (spec.dim,)
        self.n_concepts = spec.concepts
        self.std = spec.spread
        # Cluster means uniform in a box of half-width `separation`; a single concept sits at the origin.
        box = (torch.rand(spec.concepts, spec.dim, generator=g, dtype=self.dtype) * 2 - 1) * spec.separation
        self.means = box if spec.concepts > 1 else torch.zeros(1, spec.dim, dtype=self.dtype)  # (C, D)
        self._init_humans(communities, private, original_size, spec.heldout, self.sample, g, device)
        self.device = torch.device(device)
        self.means = self.means.to(self.device)

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(concepts), self.item_shape[0], generator=generator, dtype=self.dtype,
                            device=self.device)
        return self.means[concepts.to(self.device)] + self.std * noise  # (B, D)

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., C)``: log N(x; μ_c, σ²I) for every concept."""
        d = self.item_shape[0]
        sq = ((items.unsqueeze(-2) - self.means) ** 2).sum(-1)  # (..., C)
        return -0.5 * sq / self.std**2 - d * math.log(self.std) - 0.5 * d * math.log(2 * math.pi)

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.log_prob_concepts(items) + self.concept_weights().log(), dim=-1)

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        return (self.log_prob_concepts(items) + self.concept_weights().log()).argmax(dim=-1)

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(D,)`` and covariance ``(D, D)`` of the human mixture (its moment-matched Gaussian)."""
        pi = self.concept_weights()
        mean = pi @ self.means
        centred = self.means - mean
        between = torch.einsum("c,ci,cj->ij", pi, centred, centred)
        eye = torch.eye(self.item_shape[0], dtype=self.dtype, device=self.device)
        return mean, between + self.std**2 * eye
