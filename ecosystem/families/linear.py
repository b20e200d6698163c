"""Conditional Gaussian regression y | x ~ N(xᵀθ, σ²), one per developer, fitted by weighted least squares.

Developer k minimises Σ_i w_i (y_i − x_iᵀθ)², the loss of Vu, Reeves & Wenger (2025, eq. 1) when the data
policy gives private, public and synthetic items their loss weights: θ̂ = G⁺ Xᵀ W y with G = Xᵀ W X.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.scenario import LinearFamilySpec
from ecosystem.worlds.linear import LinearWorld


@dataclass
class LinearState:
    theta: torch.Tensor  # (N, D)
    noise_var: torch.Tensor  # (N,) fitted residual variance


class LinearFamily:
    kind = "linear"
    additive = False  # no fit from running statistics (see Family.additive)

    def __init__(self, spec: LinearFamilySpec, dim: int, device: torch.device) -> None:
        self.spec, self.dim, self.device = spec, dim, device  # dim = number of features D

    def init(self, n: int, generator: torch.Generator) -> LinearState:
        return LinearState(torch.zeros(n, self.dim, dtype=torch.float64, device=self.device),
                           torch.ones(n, dtype=torch.float64, device=self.device))

    def fit(self, state: LinearState, items: torch.Tensor, weights: torch.Tensor,
            generator: torch.Generator) -> LinearState:
        x, y = items[..., :-1], items[..., -1]  # (N, B, D), (N, B)
        w = weights.to(items.dtype)
        gram = torch.einsum("nb,nbi,nbj->nij", w, x, x)  # G (N, D, D)
        gram = gram + self.spec.ridge * torch.eye(self.dim, dtype=gram.dtype, device=gram.device)
        moment = torch.einsum("nb,nbi,nb->ni", w, x, y)  # XᵀWy (N, D)
        theta = (torch.linalg.pinv(gram, hermitian=True) @ moment[..., None])[..., 0]
        resid = y - torch.einsum("nbd,nd->nb", x, theta)
        total = w.sum(1)
        noise_var = (w * resid**2).sum(1) / total.clamp_min(1e-300)
        keep = total <= 0
        return LinearState(torch.where(keep[:, None], state.theta, theta),
                           torch.where(keep, state.noise_var, noise_var))

    def _std(self, state: LinearState) -> torch.Tensor:
        if self.spec.noise is not None:
            return torch.full_like(state.noise_var, self.spec.noise)
        return state.noise_var.clamp_min(1e-300).sqrt()  # (N,)

    def sample(self, state: LinearState, k: int, generator: torch.Generator, *, temperature: float = 1.0,
               top_p: float = 1.0, prompts: torch.Tensor | None = None) -> torch.Tensor:
        if prompts is None:
            raise ValueError("the linear family needs prompts: the features x of the items to write")
        noise = torch.randn(prompts.shape[:2], generator=generator, dtype=torch.float64, device=self.device)
        std = self._std(state) * math.sqrt(temperature)
        y = torch.einsum("nkd,nd->nk", prompts, state.theta) + std[:, None] * noise  # (N, k)
        return torch.cat([prompts, y[..., None]], dim=-1)  # (N, k, D+1)

    def log_prob(self, state: LinearState, items: torch.Tensor) -> torch.Tensor:
        x, y = items[..., :-1], items[..., -1]
        std = self._std(state)[:, None]
        resid = (y - torch.einsum("nbd,nd->nb", x, state.theta)) / std
        return -0.5 * resid**2 - std.log() - 0.5 * math.log(2 * math.pi)  # (N, B)

    describe_names = ("variance",)
    probe_limited = False

    truth_names = ("test_mse",)

    def truth(self, state: LinearState, world: LinearWorld) -> dict[str, torch.Tensor]:
        """``test_mse``: the test error on the finite held-out set, (1/H) Σ_h (y_h − x_hᵀθ̂)² ``(N,)``, against
        the held-out human labels (noise included, so its floor is the held-out noise's mean square, ≈ σ²);
        the test loss of Dohmatob et al. 2024 and Gerstgrasser et al. 2024."""
        held = world.heldout().items
        resid = held[:, -1:] - held[:, :-1] @ state.theta.T  # (H, N)
        return {"test_mse": (resid**2).mean(0)}

    def describe(self, state: LinearState) -> dict[str, torch.Tensor]:
        """The fitted noise variance ``(N,)``."""
        return {"variance": state.noise_var}

    def distance(self, state: LinearState, world: LinearWorld) -> torch.Tensor:
        """Squared parameter error ‖θ̂ − θ‖² ``(N,)``."""
        return ((state.theta - world.theta) ** 2).sum(1)

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: LinearState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Mean squared difference of two developers' predictions xᵀθ on the probe features ``(P,)``."""
        pred = probe[:, :-1] @ state.theta.T  # (H, N)
        out = torch.empty(len(i), dtype=torch.float64, device=self.device)
        step = max(1, (1 << 20) // probe.shape[0])
        for p0 in range(0, len(i), step):
            a, b = i[p0 : p0 + step], j[p0 : p0 + step]
            out[p0 : p0 + step] = ((pred[:, a] - pred[:, b]) ** 2).mean(0)
        return out
