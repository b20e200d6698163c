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
from ecosystem.worlds.base import Batch, World


class LinearWorld(World):
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
        n = private if isinstance(private, int) else private.shape[0]
        self.theta = torch.randn(spec.dim, generator=g, dtype=self.dtype)  # (D,)
        # Developer k owns coordinates j with j ≡ k (mod min(K, D)): unit variance there, overlap elsewhere.
        m = min(n, spec.dim)
        owns = torch.arange(spec.dim)[None, :] % m == torch.arange(n)[:, None] % m  # (N, D)
        self.domain_var = torch.where(owns, 1.0, spec.domain_overlap).to(self.dtype)  # (N, D)
        x = torch.randn(n, spec.private_samples, spec.dim, generator=g, dtype=self.dtype)
        x = x * self.domain_var[:, None].sqrt()  # (N, S, D) on each developer's own domain
        self._originals = self._label(x.flatten(0, 1), g).to(device).view(n, spec.private_samples, -1)
        ones = torch.ones(spec.dim, dtype=self.dtype)
        self._public = self._draw(ones, spec.public_samples, g)
        # Every community writes public-domain items; each gets its own held-out set.
        self._heldout = _concat([self._draw(ones, spec.heldout, g, community=k) for k in range(len(communities))])
        self._designs: dict[int, torch.Tensor] = {}
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

    def prompts(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """Features ``(N, k, D)`` of each developer's synthetic data (its design X_tj), from the source that
        ``synthetic_features`` names: developer j's own domain N(0, Σ_j), the shared N(0, I), or the rows of
        its private design X̃_j (cycled to k rows).

        The three designs of the regression literature: ``real`` relabels the real design X₀ = X̃_j every
        generation (Dohmatob et al. 2024; Gerstgrasser et al. 2024); with ``fixed_design`` an ``own`` or
        ``shared`` X_j is drawn once from the world seed and reused, so the moments of Vu et al.'s Theorem 1,
        which condition on the designs, apply exactly; without it a fresh X_j is drawn every generation from
        the run's generator.
        """
        if self.spec.synthetic_features == "real":
            rows = torch.arange(k, device=self.device) % self.spec.private_samples
            return self._originals[:, rows, :-1]  # (N, k, D)
        if not self.spec.fixed_design:
            return self._designs_from(k, generator)
        if k not in self._designs:  # drawn once, from the world seed
            self._designs[k] = self._designs_from(k, torch.Generator().manual_seed(self.seed + 7919)).to(self.device)
        return self._designs[k]

    def _designs_from(self, k: int, g: torch.Generator) -> torch.Tensor:
        n, d = self.domain_var.shape
        z = torch.randn(n, k, d, generator=g, dtype=self.dtype, device=g.device)  # (N, k, D)
        if self.spec.synthetic_features == "shared":
            return z
        return z * self.domain_var[:, None, :].to(z.device).sqrt()

    def original(self, developer: int) -> Batch:
        items = self._originals[developer]
        zeros = torch.zeros(len(items), dtype=torch.int64, device=self.device)
        return Batch(items, zeros, zeros - 1)

    def originals(self) -> Batch:
        items = self._originals.flatten(0, 1)
        zeros = torch.zeros(len(items), dtype=torch.int64, device=self.device)
        return Batch(items, zeros, zeros - 1)

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



def _concat(batches: list[Batch]) -> Batch:
    return Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in ("items", "concepts", "communities")))
