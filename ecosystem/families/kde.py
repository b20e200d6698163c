"""A Gaussian kernel density estimate per developer, batched over developers.

Kazdan et al. (2024, "Collapse or Thrive? Perils and Promises of Synthetic Data in a Self-Generating
World") refit kernel density estimates generation after generation on what the previous ones sampled:
replacing the data degrades the held-out likelihood, accumulating it keeps it near the start, and
accumulating then subsampling lies between them.

A developer's model is its weighted training set {x_b, w_b} and one bandwidth matrix H (Parzen 1962;
Rosenblatt 1956, with a full-matrix kernel as in Wand & Jones 1995, "Kernel Smoothing", ch. 4):

    p(x) = Σ_b ŵ_b N(x; x_b, H),    ŵ_b = w_b / Σ_c w_c.

Bandwidth, in d dimensions (the normal-reference rules, in scipy.stats.gaussian_kde's conventions):

    fixed      H = h² I                                          (h = ``width``)
    scott      H = f² Σ̂,  f = n_eff^(−1/(d+4))                    (Scott 1992, "Multivariate Density
                                                                  Estimation", eq. 6.42)
    silverman  H = f² Σ̂,  f = (n_eff (d + 2) / 4)^(−1/(d+4))     (Silverman 1986, "Density Estimation for
                                                                  Statistics and Data Analysis", eq. 4.14)

with n_eff = (Σw)² / Σw² (n for unit weights) and Σ̂ = Σ_b ŵ_b (x_b − x̄)(x_b − x̄)ᵀ / (1 − Σ_b ŵ_b²) the
unbiased weighted covariance (divided by n − 1 for unit weights); ``reg`` is added to H's diagonal.

The fit needs only the weighted items, and the union of two sets is their concatenation: the family is
additive, so an accumulating developer's set grows by each batch without being gathered again. Kernels
are evaluated for all developers at once, in blocks of at most ``KDE_BLOCK`` developer × point × kernel
entries; the scenario's memory estimate counts both the stored sets and these blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.families.gaussian import moment_truth, w2_to_truth
from ecosystem.scenario import KDE_BLOCK, KdeFamilySpec
from ecosystem.worlds.gaussian import GaussianWorld

F64 = torch.float64
DIVERGENCE_SEED = 20240917  # the shared draws of `divergence`: their own stream, never the simulation's


@dataclass
class KdeState:
    points: torch.Tensor  # (N, B, D) kernel centres: the training items
    log_weights: torch.Tensor  # (N, B) log ŵ_b, −inf for padding
    chol: torch.Tensor  # (N, D, D) lower Cholesky factor L of the bandwidth matrix, L Lᵀ = H


@dataclass
class KdeData:
    """The additive statistics of a KDE: the weighted items themselves (padding has weight 0)."""

    items: torch.Tensor  # (N, B, D)
    weights: torch.Tensor  # (N, B)


class KdeFamily:
    kind = "kde"
    additive = True  # the statistics are the items: a growing set is extended by each batch
    probe_limited = False
    describe_names = ("variance", "bandwidth")
    truth_names = ("mean_error", "logdet_ratio")

    def __init__(self, spec: KdeFamilySpec, dim: int, device: torch.device) -> None:
        self.spec, self.dim, self.device = spec, dim, device
        g = torch.Generator().manual_seed(DIVERGENCE_SEED)
        s = spec.divergence_samples
        self._uniform = torch.rand(s, generator=g, dtype=F64).to(device)  # (S,) which kernel, by inverse CDF
        self._noise = torch.randn(s, dim, generator=g, dtype=F64).to(device)  # (S, D) the kernel's noise

    def init(self, n: int, generator: torch.Generator) -> KdeState:
        """One kernel at the origin with H = I: the standard normal, as the Gaussian family starts."""
        eye = torch.eye(self.dim, dtype=F64, device=self.device)
        return KdeState(torch.zeros(n, 1, self.dim, dtype=F64, device=self.device),
                        torch.zeros(n, 1, dtype=F64, device=self.device), eye.repeat(n, 1, 1))

    def fit(self, state: KdeState, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator) -> KdeState:
        return self.fit_statistics(state, self.statistics(items, weights))

    def statistics(self, items: torch.Tensor, weights: torch.Tensor) -> KdeData:
        return KdeData(*_compact(items.to(F64), weights.to(F64)))

    def combine(self, a: KdeData, b: KdeData) -> KdeData:
        return KdeData(*_compact(torch.cat([a.items, b.items], 1), torch.cat([a.weights, b.weights], 1)))

    def fit_statistics(self, state: KdeState, data: KdeData) -> KdeState:
        """Each developer's items become its kernels, with the bandwidth of the rule; no data keeps the model."""
        items, w = data.items, data.weights
        total = w.sum(1)  # (N,)
        share = w / total.clamp_min(1e-300)[:, None]  # (N, B) ŵ
        chol, _ = torch.linalg.cholesky_ex(self.bandwidth_matrix(items, share))  # (N, D, D)
        keep = total <= 0
        b = max(items.shape[1], state.points.shape[1])
        return KdeState(
            torch.where(keep[:, None, None], _pad(state.points, b, 0.0), _pad(items, b, 0.0)),
            torch.where(keep[:, None], _pad(state.log_weights, b, -math.inf), _pad(share.log(), b, -math.inf)),
            torch.where(keep[:, None, None], state.chol, chol))

    def bandwidth_matrix(self, items: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """H ``(N, D, D)`` of each developer's items ``(N, B, D)`` with normalised weights ``(N, B)`` (module
        docstring: fixed, Scott's or Silverman's rule, plus ``reg`` on the diagonal)."""
        d, spec = self.dim, self.spec
        eye = torch.eye(d, dtype=F64, device=items.device)
        if spec.bandwidth == "fixed":
            return (spec.width**2 + spec.reg) * eye.expand(items.shape[0], d, d)
        n_eff = 1.0 / (share**2).sum(1)  # (N,)
        mean = torch.bmm(share[:, None, :], items)  # (N, 1, D)
        centred = items - mean  # (N, B, D)
        scatter = torch.bmm((centred * share[..., None]).transpose(1, 2), centred)  # (N, D, D)
        cov = scatter / (1.0 - 1.0 / n_eff).clamp_min(1e-300)[:, None, None]
        factor = n_eff if spec.bandwidth == "scott" else n_eff * (d + 2) / 4
        return factor.pow(-2.0 / (d + 4))[:, None, None] * cov + spec.reg * eye

    def sample(self, state: KdeState, k: int, generator: torch.Generator, *, temperature: float = 1.0,
               top_p: float = 1.0, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """``k`` draws per developer ``(N, k, D)``: a training point by its weight, plus N(0, H) noise (H ×
        ``temperature``, which tempers each kernel, not the density as a whole)."""
        n = state.points.shape[0]
        pick = torch.multinomial(state.log_weights.exp(), k, replacement=True, generator=generator)  # (N, k)
        z = torch.randn(n, k, self.dim, generator=generator, dtype=F64, device=self.device)  # (N, k, D)
        rows = torch.arange(n, device=pick.device)[:, None]
        return state.points[rows, pick] + math.sqrt(temperature) * torch.einsum("nij,nkj->nki", state.chol, z)

    def log_prob(self, state: KdeState, items: torch.Tensor) -> torch.Tensor:
        """log p(x) of ``items (N, Q, D)`` under each developer's KDE ``(N, Q)`` (a logsumexp over kernels)."""
        return log_density(state, items.to(F64))

    def describe(self, state: KdeState) -> dict[str, torch.Tensor]:
        """``variance``: the KDE's variance per dimension (the items' spread plus the kernel's);
        ``bandwidth``: the kernel's geometric-mean standard deviation det(H)^(1/2D) (h for ``fixed``)."""
        _, cov = moments(state)
        log_root_det = torch.log(torch.diagonal(state.chol, dim1=1, dim2=2)).sum(-1)  # log det H^½
        return {"variance": torch.diagonal(cov, dim1=1, dim2=2).mean(-1),
                "bandwidth": torch.exp(log_root_det / self.dim)}

    def distance(self, state: KdeState, world: GaussianWorld) -> torch.Tensor:
        """W2² between each developer's moment-matched Gaussian and the human mixture's ``(N,)``."""
        return w2_to_truth(*moments(state), world)

    def truth(self, state: KdeState, world: GaussianWorld) -> dict[str, torch.Tensor]:
        """‖μ̂ − μ‖² and log det Σ̂ − log det Σ of each KDE's moments against the human mixture's (Kazdan et
        al. 2024's quantities, as the Gaussian family reports them)."""
        return moment_truth(*moments(state), world)

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: KdeState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Symmetric KL (Jeffreys) divergence KL(p_i‖p_j) + KL(p_j‖p_i) of each pair ``(P,)``, by Monte Carlo.

        Each developer's S = ``divergence_samples`` draws are made from the same S uniform picks (inverse CDF
        of its kernel weights) and the same S normal noises, seeded once for the run apart from the
        simulation (common random numbers: pairs and generations are compared on the same randomness, and
        measuring never changes the run). KL(p‖q) ≈ (1/S) Σ_s [log p(x_s) − log q(x_s)], x_s ~ p: unbiased,
        with a standard error that shrinks as 1/√S (an estimate can fall slightly below 0 for close models).
        """
        draws = self.shared_draws(state)  # (N, S, D)
        own = log_density(state, draws)  # (N, S)
        out = torch.empty(len(i), dtype=F64, device=self.device)
        step = max(1, KDE_BLOCK // (state.points.shape[1] * draws.shape[1]))
        for p0 in range(0, len(i), step):  # bounded temporaries for many pairs
            a, b = i[p0 : p0 + step], j[p0 : p0 + step]
            into_b = log_density(_select(state, b), draws[a])  # log p_b at p_a's draws (P, S)
            into_a = log_density(_select(state, a), draws[b])
            out[p0 : p0 + step] = (own[a] - into_b).mean(1) + (own[b] - into_a).mean(1)
        return out

    def shared_draws(self, state: KdeState) -> torch.Tensor:
        """The divergence's draws from every developer's KDE ``(N, S, D)`` (see :meth:`divergence`)."""
        cdf = torch.cumsum(state.log_weights.exp(), 1)  # (N, B)
        target = self._uniform[None, :] * cdf[:, -1:]  # (N, S)
        pick = torch.searchsorted(cdf, target, right=True).clamp_max(cdf.shape[1] - 1)  # (N, S)
        rows = torch.arange(cdf.shape[0], device=pick.device)[:, None]
        return state.points[rows, pick] + torch.einsum("nij,sj->nsi", state.chol, self._noise)


def log_density(state: KdeState, x: torch.Tensor) -> torch.Tensor:
    """log Σ_b ŵ_b N(x_q; x_b, H) of points ``x (N, Q, D)`` for every developer ``(N, Q)``.

    Whitened by L⁻¹ (centred on each developer's mean point first, for accuracy), the squared Mahalanobis
    distance is |z_q|² + |z_b|² − 2 z_q·z_b; the |z_q|² term leaves the logsumexp over kernels, so a block
    of points costs one fused matmul ``log ŵ_b − ½|z_b|² + z_q·z_b`` and one logsumexp."""
    points, chol = state.points, state.chol
    n, b, d = points.shape
    centre = points.mean(1, keepdim=True)  # (N, 1, D)
    zb = torch.linalg.solve_triangular(chol, (points - centre).transpose(1, 2), upper=False)  # (N, D, B)
    bias = (state.log_weights - 0.5 * (zb**2).sum(1))[:, None, :]  # (N, 1, B)
    log_norm = torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1) + 0.5 * d * math.log(2 * math.pi)  # (N,)
    out = torch.empty(n, x.shape[1], dtype=F64, device=points.device)
    step = max(1, KDE_BLOCK // max(1, n * b))
    for q0 in range(0, x.shape[1], step):
        zq = torch.linalg.solve_triangular(chol, (x[:, q0 : q0 + step] - centre).transpose(1, 2),
                                           upper=False).transpose(1, 2)  # (N, q, D)
        logits = torch.baddbmm(bias, zq, zb)  # (N, q, B)
        out[:, q0 : q0 + step] = torch.logsumexp(logits, dim=-1) - 0.5 * (zq**2).sum(-1)
    return out - log_norm[:, None]


def moments(state: KdeState) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(N, D)`` and covariance ``(N, D, D)`` of each developer's KDE: Σ ŵ_b x_b and the items' scatter
    Σ ŵ_b (x_b − x̄)(x_b − x̄)ᵀ plus H."""
    share = state.log_weights.exp()  # (N, B)
    mean = torch.bmm(share[:, None, :], state.points)[:, 0]  # (N, D)
    centred = state.points - mean[:, None]
    scatter = torch.bmm((centred * share[..., None]).transpose(1, 2), centred)
    return mean, scatter + state.chol @ state.chol.transpose(1, 2)


def _select(state: KdeState, rows: torch.Tensor) -> KdeState:
    return KdeState(state.points[rows], state.log_weights[rows], state.chol[rows])


def _compact(items: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each developer's weighted items first, in their order, and the padding cut to the longest set."""
    valid = weights > 0  # (N, B)
    if bool(valid.all()):
        return items, weights
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    width = int(valid.sum(1).max()) if valid.numel() else 0
    order = order[:, :width]
    return items.gather(1, order[..., None].expand(-1, -1, items.shape[-1])), weights.gather(1, order)


def _pad(x: torch.Tensor, b: int, value: float) -> torch.Tensor:
    """``x (N, B, ...)`` padded along dimension 1 to ``b`` with ``value``."""
    if x.shape[1] == b:
        return x
    fill = torch.full((x.shape[0], b - x.shape[1], *x.shape[2:]), value, dtype=x.dtype, device=x.device)
    return torch.cat([x, fill], 1)
