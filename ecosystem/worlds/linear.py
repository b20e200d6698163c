"""Linear-Gaussian regression data, the setting of Vu, Reeves & Wenger (2025), arXiv 2505.21677.

Items are rows ``[x, y]`` with y = xᵀθ + w, w ~ N(0, σ²). Each developer k has a private feature domain
(unit variance on its own coordinates, ``domain_overlap`` elsewhere) and a private data set (X̃_k, ỹ_k);
everyone shares a public set (X*, y*) with x ~ N(0, I). Human authors write public-domain items.
``log_prob`` is the conditional density of y given x (the models are conditional).
"""

from __future__ import annotations

import math

import torch

from ecosystem.scenario import CommunitySpec, LinearWorldSpec
from ecosystem.worlds.base import Batch


class LinearWorld:
    kind = "linear"
    dtype = torch.float64
    n_concepts = 1

    def __init__(
        self,
        spec: LinearWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        self.spec, self.device, self.seed = spec, device, seed
        self.item_shape = (spec.dim + 1,)
        self.n_communities = len(communities)
        g = torch.Generator().manual_seed(seed)
        # Developers' domains are feature subspaces, not concepts.
        n_developers = private if isinstance(private, int) else private.shape[0]
        self.theta = torch.randn(spec.dim, generator=g, dtype=self.dtype)  # (D,)
        # Developer k owns coordinates j with j ≡ k (mod min(K, D)).
        owners = torch.arange(spec.dim) % min(n_developers, spec.dim)
        self.domain_var = torch.full((n_developers, spec.dim), spec.domain_overlap, dtype=self.dtype)
        for k in range(n_developers):
            self.domain_var[k, owners == k % min(n_developers, spec.dim)] = 1.0
        ones = torch.ones(spec.dim, dtype=self.dtype)
        self._original = [self._draw(self.domain_var[k], spec.private_samples, g) for k in range(n_developers)]
        self._public = self._draw(ones, spec.public_samples, g)
        # Every community writes public-domain items; each gets its own held-out set.
        self._heldout = _concat([self._draw(ones, spec.heldout, g, community=k) for k in range(len(communities))])
        self._designs: dict[tuple[int, int], torch.Tensor] = {}
        self.theta = self.theta.to(device)

    def _features(self, var: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.spec.dim, generator=g, dtype=self.dtype, device=g.device) * var.to(g.device).sqrt()

    def _label(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape[0], generator=g, dtype=self.dtype, device=g.device)
        return torch.cat([x, (x @ self.theta.to(x.device) + self.spec.noise * noise)[:, None]], dim=1)

    def _draw(self, var: torch.Tensor, n: int, g: torch.Generator, community: int = -1) -> Batch:
        items = self._label(self._features(var, n, g), g).to(self.device)
        zeros = torch.zeros(n, dtype=torch.int64, device=self.device)
        return Batch(items, zeros, torch.full((n,), community, device=self.device))

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ones = torch.ones(self.spec.dim, dtype=self.dtype)
        return self._label(self._features(ones, len(concepts), generator), generator)  # (B, D+1)

    def prompts(self, developer: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Features ``(n, D)`` of developer ``developer``'s synthetic data (its design X_tj).

        With ``fixed_design`` the same X_j is reused every generation (drawn once from the world seed), so
        the moments of Vu et al.'s Theorem 1, which condition on the designs, apply exactly.
        """
        if not self.spec.fixed_design:
            return self._features(self.domain_var[developer], n, generator)
        key = (developer, n)
        if key not in self._designs:
            g = torch.Generator().manual_seed(self.seed + 7919 * (developer + 1))
            self._designs[key] = self._features(self.domain_var[developer], n, g).to(self.device)
        return self._designs[key]

    def original(self, developer: int) -> Batch:
        return self._original[developer]

    def public(self) -> Batch:
        return self._public

    def heldout(self) -> Batch:
        return self._heldout

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        x, y = items[..., :-1], items[..., -1]
        resid = y - x @ self.theta
        return -0.5 * (resid / self.spec.noise) ** 2 - math.log(self.spec.noise) - 0.5 * math.log(2 * math.pi)

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        return torch.zeros(items.shape[:-1], dtype=torch.int64, device=items.device)

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the linear world has no notion of a correct item")


def _concat(batches: list[Batch]) -> Batch:
    return Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in ("items", "concepts", "communities")))
