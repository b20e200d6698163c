"""A Gaussian mixture per developer, fitted by EM batched over developers.

Shumailov et al. (Nature 2024, "AI models collapse when trained on recursively generated data", the GMM
experiment of Fig. 2 and Sec. 3): a mixture refitted on its own samples generation after generation merges
and loses clusters, the rare low-weight ones first; keeping human data slows it.

Every developer's mixture is fitted from scratch each generation: a seeded k-means++ start (Arthur &
Vassilvitskii 2007) and at most ``iterations`` EM steps (Dempster, Laird & Rubin 1977), stopped early
when no developer's mean log-likelihood moves by more than ``tolerance``. ``reg`` is added to every
covariance's diagonal (as sklearn's ``reg_covar``) so a component that sits on one point stays proper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.families.gaussian import covariance_factor, sqrtm_psd, w2_squared
from ecosystem.scenario import GmmFamilySpec
from ecosystem.worlds.gaussian import GaussianWorld

EMPTY = 1e-10  # a component with less responsibility than this keeps its previous mean and covariance


@dataclass
class GmmState:
    weights: torch.Tensor  # (N, K) mixing proportions
    means: torch.Tensor  # (N, K, D)
    covs: torch.Tensor  # (N, K, D, D)


class GmmFamily:
    kind = "gmm"
    additive = False
    probe_limited = False
    describe_names = ("effective_components", "variance")

    def __init__(self, spec: GmmFamilySpec, dim: int, n_concepts: int, device: torch.device) -> None:
        self.spec, self.dim, self.n_concepts, self.device = spec, dim, n_concepts, device
        self.truth_names = ("concepts_covered", *(f"covered_{c}" for c in range(n_concepts)))

    def init(self, n: int, generator: torch.Generator) -> GmmState:
        """Equal weights, unit covariances and means drawn from N(0, I)."""
        k, d = self.spec.components, self.dim
        means = torch.randn(n, k, d, generator=generator, dtype=torch.float64, device=self.device)
        eye = torch.eye(d, dtype=torch.float64, device=self.device)
        return GmmState(torch.full((n, k), 1.0 / k, dtype=torch.float64, device=self.device), means,
                        eye.repeat(n, k, 1, 1))

    def fit(self, state: GmmState, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator) -> GmmState:
        items, w = items.to(torch.float64), weights.to(torch.float64)
        start = kmeans_plus_plus(items, w, self.spec.components, generator)
        spread = _pooled_covariance(items, w, self.spec.covariance == "diag") + self.spec.reg * torch.eye(
            self.dim, dtype=torch.float64, device=items.device)
        initial = GmmState(torch.full(start.shape[:2], 1.0 / self.spec.components, dtype=torch.float64,
                                      device=items.device), start, spread[:, None].expand(-1, start.shape[1], -1, -1))
        fitted = em(initial, items, w, self.spec.iterations, self.spec.tolerance, self.spec.reg,
                    diagonal=self.spec.covariance == "diag")
        keep = w.sum(1) <= 0  # no data: the previous model
        return GmmState(torch.where(keep[:, None], state.weights, fitted.weights),
                        torch.where(keep[:, None, None], state.means, fitted.means),
                        torch.where(keep[:, None, None, None], state.covs, fitted.covs))

    def sample(self, state: GmmState, k: int, generator: torch.Generator, *, temperature: float = 1.0,
               top_p: float = 1.0, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """``k`` draws per developer: a component by its weight, then its Gaussian (covariance × ``temperature``,
        which tempers each component, not the mixture's density as a whole)."""
        n = state.weights.shape[0]
        comp = torch.multinomial(state.weights, k, replacement=True, generator=generator)  # (N, k)
        root = covariance_factor(state.covs * temperature)  # (N, K, D, D)
        rows = torch.arange(n, device=comp.device)[:, None]
        z = torch.randn(n, k, self.dim, generator=generator, dtype=torch.float64, device=self.device)
        return state.means[rows, comp] + torch.einsum("nkij,nkj->nki", root[rows, comp], z)

    def log_prob(self, state: GmmState, items: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(_log_joint(state, items.to(torch.float64)), dim=1)  # (N, B)

    def describe(self, state: GmmState) -> dict[str, torch.Tensor]:
        """``effective_components``: exp of the entropy of the mixing weights (k for equal weights, 1 when one
        component holds everything); ``variance``: the mixture's variance per dimension."""
        p = state.weights
        entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(1)
        _, cov = moments(state)
        return {"effective_components": torch.exp(entropy),
                "variance": torch.diagonal(cov, dim1=1, dim2=2).mean(-1)}

    def distance(self, state: GmmState, world: GaussianWorld) -> torch.Tensor:
        """W2² between each developer's moment-matched Gaussian and the human mixture's ``(N,)``."""
        mean, cov = moments(state)
        t_mean, t_cov = world.moments()
        trace = torch.diagonal(cov, dim1=1, dim2=2).sum(-1)
        return w2_squared(mean, sqrtm_psd(cov), trace, t_mean, t_cov, torch.trace(t_cov))

    def truth(self, state: GmmState, world: GaussianWorld) -> dict[str, torch.Tensor]:
        """Per-concept coverage: concept c is covered (1.0, else 0.0) when some component of weight at least
        ``coverage_weight`` has its mean within ``coverage_distance`` of the concept's; ``concepts_covered``
        is the share of concepts covered."""
        gap = torch.linalg.vector_norm(state.means[:, :, None, :] - world.means[None, None], dim=-1)  # (N, K, C)
        heavy = state.weights[:, :, None] >= self.spec.coverage_weight
        covered = ((gap <= self.spec.coverage_distance) & heavy).any(1).double()  # (N, C)
        return {"concepts_covered": covered.mean(1)} | {f"covered_{c}": covered[:, c] for c in range(self.n_concepts)}

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: GmmState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """W2² between the moment-matched Gaussians of developers ``i`` and ``j`` of each pair ``(P,)`` (the
        Gaussian family's divergence; it ignores how the mass is split between components)."""
        mean, cov = moments(state)
        root, trace = sqrtm_psd(cov), torch.diagonal(cov, dim1=1, dim2=2).sum(-1)
        return w2_squared(mean[i], root[i], trace[i], mean[j], cov[j], trace[j])


def moments(state: GmmState) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(N, D)`` and covariance ``(N, D, D)`` of each developer's mixture."""
    mean = torch.einsum("nk,nkd->nd", state.weights, state.means)
    centred = state.means - mean[:, None]
    between = torch.einsum("nk,nki,nkj->nij", state.weights, centred, centred)
    return mean, between + torch.einsum("nk,nkij->nij", state.weights, state.covs)


def kmeans_plus_plus(items: torch.Tensor, weights: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` seeds per developer ``(N, k, D)``: the first item drawn by weight, each next one with probability
    ∝ weight × squared distance to the nearest seed so far (Arthur & Vassilvitskii 2007)."""
    n = items.shape[0]
    rows = torch.arange(n, device=items.device)
    w = weights.clamp_min(0.0) + (weights.sum(1, keepdim=True) <= 0)  # a developer with no data: any item
    seeds = [items[rows, torch.multinomial(w, 1, generator=generator)[:, 0]]]
    nearest = ((items - seeds[0][:, None]) ** 2).sum(-1)  # (N, B)
    for _ in range(1, k):
        p = w * nearest
        p = torch.where(p.sum(1, keepdim=True) > 0, p, w)  # fewer distinct items than k: draw by weight
        seeds.append(items[rows, torch.multinomial(p, 1, generator=generator)[:, 0]])
        nearest = torch.minimum(nearest, ((items - seeds[-1][:, None]) ** 2).sum(-1))
    return torch.stack(seeds, 1)


def em(state: GmmState, items: torch.Tensor, weights: torch.Tensor, iterations: int, tolerance: float,
       reg: float, *, diagonal: bool = False) -> GmmState:
    """EM for every developer's weighted items ``(N, B, D)``, ``(N, B)`` from ``state``: at most
    ``iterations`` E and M steps, stopped when no developer's mean log-likelihood (per unit weight) moved by
    more than ``tolerance``."""
    total = weights.sum(1).clamp_min(1e-300)  # (N,)
    eye = torch.eye(items.shape[-1], dtype=items.dtype, device=items.device)
    previous = None
    for _ in range(iterations):
        joint = _log_joint(state, items)  # (N, K, B)
        loglik = torch.logsumexp(joint, dim=1)  # (N, B)
        mean_ll = (weights * loglik).sum(1) / total
        resp = torch.exp(joint - loglik[:, None]) * weights[:, None]  # (N, K, B)
        mass = resp.sum(-1)  # (N, K)
        empty = mass < EMPTY
        means = torch.bmm(resp, items) / mass.clamp_min(EMPTY)[..., None]  # (N, K, D)
        centred = items[:, None] - means[:, :, None]  # (N, K, B, D)
        covs = (centred * resp[..., None]).transpose(-1, -2) @ centred / mass.clamp_min(EMPTY)[..., None, None]
        if diagonal:
            covs = torch.diag_embed(torch.diagonal(covs, dim1=-2, dim2=-1))
        covs = covs + reg * eye
        state = GmmState(mass / total[:, None], torch.where(empty[..., None], state.means, means),
                         torch.where(empty[..., None, None], state.covs, covs))
        if previous is not None and bool(((mean_ll - previous).abs() <= tolerance).all()):
            break
        previous = mean_ll
    return state


def _log_joint(state: GmmState, items: torch.Tensor) -> torch.Tensor:
    """log π_k + log N(x_b; μ_k, Σ_k) of every developer ``(N, K, B)``."""
    chol, _ = torch.linalg.cholesky_ex(state.covs)  # (N, K, D, D)
    centred = (items[:, None] - state.means[:, :, None]).transpose(-1, -2)  # (N, K, D, B)
    z = torch.linalg.solve_triangular(chol, centred, upper=False)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (N, K)
    d = items.shape[-1]
    log_normal = -0.5 * ((z**2).sum(-2) + logdet[..., None] + d * math.log(2 * math.pi))
    return torch.log(state.weights.clamp_min(1e-300))[..., None] + log_normal


def _pooled_covariance(items: torch.Tensor, weights: torch.Tensor, diagonal: bool) -> torch.Tensor:
    """Each developer's weighted covariance of all its items ``(N, D, D)``: the components' starting spread."""
    total = weights.sum(1).clamp_min(1e-300)
    mean = torch.einsum("nb,nbd->nd", weights, items) / total[:, None]
    centred = items - mean[:, None]
    cov = torch.einsum("nb,nbi,nbj->nij", weights, centred, centred) / total[:, None, None]
    return torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1)) if diagonal else cov
