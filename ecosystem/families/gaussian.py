"""One Gaussian per developer, fitted in closed form and batched over developers.

MLE divides the weighted scatter by Σw; ``unbiased`` by Σw − Σw²/Σw (n − 1 for unit weights). Recursive
MLE fitting shrinks the variance by (M−1)/M per generation (Shumailov et al., Nature 2024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.scenario import GaussianFamilySpec
from ecosystem.worlds.gaussian import GaussianWorld

PAIR_ELEMENTS = 1 << 20  # matrix entries per chunk of pairs


@dataclass
class GaussianState:
    mean: torch.Tensor  # (N, D)
    cov: torch.Tensor  # (N, D, D)


@dataclass
class GaussianStatistics:
    total: torch.Tensor  # (N,) Σw
    squares: torch.Tensor  # (N,) Σw²
    mean: torch.Tensor  # (N, D) Σw x / Σw
    scatter: torch.Tensor  # (N, D, D) Σw (x − mean)(x − mean)ᵀ


class GaussianFamily:
    kind = "gaussian"
    additive = True  # the fit needs only additive statistics: a growing set is fitted from running ones

    def __init__(self, spec: GaussianFamilySpec, dim: int, device: torch.device) -> None:
        self.spec, self.dim, self.device = spec, dim, device

    def init(self, n: int, generator: torch.Generator) -> GaussianState:
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        return GaussianState(torch.zeros(n, self.dim, dtype=torch.float64, device=self.device), eye.repeat(n, 1, 1))

    def fit(
        self, state: GaussianState, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator
    ) -> GaussianState:
        return self.fit_statistics(state, self.statistics(items, weights))

    def statistics(self, items: torch.Tensor, weights: torch.Tensor) -> GaussianStatistics:
        """Weighted count, sum of squared weights, mean and centred scatter of each developer's items."""
        w = weights.to(items.dtype)  # (N, B)
        total = w.sum(1)  # (N,)
        mean = torch.bmm(w[:, None, :], items)[:, 0] / total.clamp_min(1e-300)[:, None]  # (N, D)
        centred = items - mean[:, None, :]  # (N, B, D)
        scatter = torch.bmm((centred * w[..., None]).transpose(1, 2), centred)  # (N, D, D)
        return GaussianStatistics(total, (w**2).sum(1), mean, scatter)

    def combine(self, a: GaussianStatistics, b: GaussianStatistics) -> GaussianStatistics:
        """The statistics of the union of two sets (Chan, Golub & LeVeque 1979: the pairwise update of the
        mean and the centred scatter, exact and without the cancellation of raw moments)."""
        total = a.total + b.total
        share = (b.total / total.clamp_min(1e-300))[:, None]  # (N, 1)
        delta = b.mean - a.mean  # (N, D)
        cross = (a.total * share[:, 0])[:, None, None] * delta[:, :, None] * delta[:, None, :]
        return GaussianStatistics(total, a.squares + b.squares, a.mean + share * delta, a.scatter + b.scatter + cross)

    def fit_statistics(self, state: GaussianState, stats: GaussianStatistics) -> GaussianState:
        """MLE (or unbiased) mean and covariance from the statistics; no data keeps the previous model."""
        total = stats.total
        dof = total - stats.squares / total.clamp_min(1e-300) if self.spec.estimator == "unbiased" else total
        cov = stats.scatter / dof.clamp_min(1e-300)[:, None, None]
        keep = total <= 0
        return GaussianState(
            torch.where(keep[:, None], state.mean, stats.mean), torch.where(keep[:, None, None], state.cov, cov)
        )

    def sample(
        self,
        state: GaussianState,
        k: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # p(x)^(1/T) of a Gaussian is a Gaussian with T times the covariance.
        root = covariance_factor(state.cov * temperature)  # (N, D, D)
        # Standard normals drawn in single precision (3× faster on a CPU; 24-bit draws are far below Monte Carlo
        # error), the affine map in double.
        z = torch.randn(state.mean.shape[0], k, self.dim, generator=generator, dtype=torch.float32,
                        device=self.device).to(torch.float64)
        return state.mean[:, None, :] + torch.einsum("nij,nkj->nki", root, z)  # (N, k, D)

    def log_prob(self, state: GaussianState, items: torch.Tensor) -> torch.Tensor:
        chol, _ = torch.linalg.cholesky_ex(_jitter(state.cov))  # (N, D, D)
        centred = (items - state.mean[:, None, :]).transpose(1, 2)  # (N, D, B)
        z = torch.linalg.solve_triangular(chol, centred, upper=False)  # (N, D, B)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)  # (N,)
        return -0.5 * ((z**2).sum(1) + logdet[:, None] + self.dim * math.log(2 * math.pi))  # (N, B)

    describe_names = ("variance",)
    probe_limited = False

    def describe(self, state: GaussianState) -> dict[str, torch.Tensor]:
        """The model's own spread: its variance per dimension ``(N,)``."""
        return {"variance": torch.diagonal(state.cov, dim1=1, dim2=2).mean(-1)}

    def distance(self, state: GaussianState, world: GaussianWorld) -> torch.Tensor:
        """W2² from each developer's Gaussian to the human mixture's moment-matched Gaussian ``(N,)``."""
        return w2_to_truth(state.mean, state.cov, world)

    truth_names = ("mean_error", "logdet_ratio")

    def truth(self, state: GaussianState, world: GaussianWorld) -> dict[str, torch.Tensor]:
        """Against the human mixture's moment-matched Gaussian N(μ, Σ): the squared error of the fitted mean
        ‖μ̂ − μ‖² and the log-determinant ratio log det Σ̂ − log det Σ ``(N,)`` (−∞ for a collapsed model),
        the quantities Kazdan et al. (2024, "Collapse or Thrive?") track for d > 1."""
        return moment_truth(state.mean, state.cov, world)

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: GaussianState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Squared 2-Wasserstein distance between developers ``i`` and ``j`` of each pair ``(P,)``: in closed
        form for D ≤ 2, one batched symmetric eigendecomposition per pair above."""
        root = sqrtm_psd(state.cov)  # (N, D, D)
        trace = torch.diagonal(state.cov, dim1=1, dim2=2).sum(-1)  # (N,)
        out = torch.empty(len(i), dtype=torch.float64, device=self.device)
        step = max(1, PAIR_ELEMENTS // self.dim**2)
        for p0 in range(0, len(i), step):  # bounded temporaries for millions of pairs
            a, b = i[p0 : p0 + step], j[p0 : p0 + step]
            out[p0 : p0 + step] = w2_squared(state.mean[a], root[a], trace[a], state.mean[b], state.cov[b], trace[b])
        return out


def w2_to_truth(mean: torch.Tensor, cov: torch.Tensor, world: GaussianWorld) -> torch.Tensor:
    """W2² from Gaussians ``(N, D)``, ``(N, D, D)`` to the human mixture's moment-matched Gaussian ``(N,)``."""
    t_mean, t_cov = world.moments()
    trace = torch.diagonal(cov, dim1=1, dim2=2).sum(-1)
    return w2_squared(mean, sqrtm_psd(cov), trace, t_mean, t_cov, torch.trace(t_cov))


def moment_truth(mean: torch.Tensor, cov: torch.Tensor, world: GaussianWorld) -> dict[str, torch.Tensor]:
    """``mean_error`` ‖μ̂ − μ‖² and ``logdet_ratio`` log det Σ̂ − log det Σ of models with moments ``(N, D)``,
    ``(N, D, D)`` against the human mixture's moment-matched Gaussian N(μ, Σ) ``{name: (N,)}``."""
    t_mean, t_cov = world.moments()
    error = ((mean - t_mean) ** 2).sum(-1)
    return {"mean_error": error, "logdet_ratio": torch.linalg.slogdet(cov)[1] - torch.linalg.slogdet(t_cov)[1]}


def w2_squared(mean_a, root_a, trace_a, mean_b, cov_b, trace_b) -> torch.Tensor:
    """W2²(N(a), N(b)) = |μa−μb|² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½ (broadcast over leading dims)."""
    bures = trace_a + trace_b - 2 * _trace_sqrt(root_a @ cov_b @ root_a)
    return ((mean_a - mean_b) ** 2).sum(-1) + bures.clamp_min(0.0)


def _trace_sqrt(m: torch.Tensor) -> torch.Tensor:
    """tr(M^½) of PSD matrices: the sum of the square roots of the eigenvalues (closed form for D ≤ 2:
    for 2×2, tr √M = √(tr M + 2√det M))."""
    d = m.shape[-1]
    if d == 1:
        return m[..., 0, 0].clamp_min(0.0).sqrt()
    if d == 2:
        det = (m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]).clamp_min(0.0)
        return (m[..., 0, 0] + m[..., 1, 1] + 2 * det.sqrt()).clamp_min(0.0).sqrt()
    return torch.linalg.eigvalsh(m).clamp_min(0.0).sqrt().sum(-1)


def covariance_factor(cov: torch.Tensor) -> torch.Tensor:
    """A factor L with L Lᵀ = Σ for sampling: Cholesky where Σ is positive definite, the symmetric square
    root where it is singular (a collapsed model)."""
    if cov.shape[-1] == 1:
        return cov.clamp_min(0.0).sqrt()
    factor, info = torch.linalg.cholesky_ex(cov)
    singular = info != 0
    if singular.any():
        factor[singular] = sqrtm_psd(cov[singular])
    return factor


def sqrtm_psd(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of PSD matrices (eigh, negative round-off clipped)."""
    vals, vecs = torch.linalg.eigh(cov)
    return (vecs * vals.clamp_min(0.0).sqrt().unsqueeze(-2)) @ vecs.transpose(-1, -2)


def _jitter(cov: torch.Tensor) -> torch.Tensor:
    # A collapsed model has a singular covariance; a relative jitter keeps its log-density finite.
    d = cov.shape[-1]
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)
    return cov + 1e-12 * scale[..., None, None] * torch.eye(d, dtype=cov.dtype, device=cov.device)
