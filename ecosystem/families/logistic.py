"""Softmax (multinomial logistic) regression p(y | x) = softmax(W [x; 1])_y, one per developer, fitted by
Newton's method batched over developers.

Developer n minimises the weighted cross-entropy with an L2 penalty, Σ_i w_i (−log p(y_i | x_i)) +
(ridge/2)‖W‖², over ``W (C, D+1)`` (a bias column; all C rows free, the penalty makes the optimum unique).
Each generation starts from zero and takes ``iterations`` full Newton steps, one batched linear solve of the
(C(D+1))² Hessian per step (Böhning 1992, "Multinomial logistic regression algorithm", for the gradient and
Hessian). A model writes by labelling fresh features (Feng et al. 2024, arXiv 2406.07515): with a draw from its
softmax at the publishing temperature (``writes: sampled``, errors where the model is unsure), or with its most
likely label flipped to another class with probability ``flip`` independently of x (``writes: flipped``, the
paper's generator of error rate p, for which its verification threshold p < 1/(1 + ψ/φ) holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.scenario import LogisticFamilySpec
from ecosystem.worlds.labels import LabelsWorld


@dataclass
class LogisticState:
    weights: torch.Tensor  # (N, C, D+1), the last column the bias


def _design(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)  # (..., D+1)


class LogisticFamily:
    kind = "logistic"
    additive = False
    probe_limited = False
    describe_names = ("confidence",)
    truth_names = ("label_error",)

    def __init__(self, spec: LogisticFamilySpec, dim: int, classes: int, device: torch.device) -> None:
        self.spec, self.dim, self.classes, self.device = spec, dim, classes, device  # dim = features D

    def init(self, n: int, generator: torch.Generator) -> LogisticState:
        """Zero weights: every class equally likely everywhere."""
        return LogisticState(torch.zeros(n, self.classes, self.dim + 1, dtype=torch.float64, device=self.device))

    def fit(self, state: LogisticState, items: torch.Tensor, weights: torch.Tensor,
            generator: torch.Generator) -> LogisticState:
        x, y = _design(items[..., :-1].double()), _onehot(items[..., -1], self.classes)  # (N, B, P), (N, B, C)
        w = weights.double()  # (N, B)
        n, _, p = x.shape
        c = self.classes
        eye = torch.eye(c * p, dtype=torch.float64, device=x.device)
        theta = torch.zeros(n, c, p, dtype=torch.float64, device=x.device)
        outer = (x[..., :, None] * x[..., None, :]).flatten(2)  # (N, B, P·P)
        for _ in range(self.spec.iterations):
            prob = torch.softmax(torch.einsum("nbp,ncp->nbc", x, theta), -1)  # (N, B, C)
            grad = torch.einsum("nb,nbc,nbp->ncp", w, prob - y, x) + self.spec.ridge * theta  # (N, C, P)
            # Hessian blocks Σ_i w_i (diag(π_i) − π_i π_iᵀ)_{cd} x_i x_iᵀ, as (N, C·P, C·P).
            cov = torch.diag_embed(prob) - prob[..., :, None] * prob[..., None, :]  # (N, B, C, C)
            hess = torch.bmm((w[..., None, None] * cov).flatten(2).transpose(1, 2), outer)  # (N, C·C, P·P)
            hess = hess.view(n, c, c, p, p).permute(0, 1, 3, 2, 4).reshape(n, c * p, c * p)
            step = torch.linalg.solve(hess + self.spec.ridge * eye, grad.reshape(n, c * p, 1))
            theta = theta - step.view(n, c, p)
        keep = w.sum(1) <= 0  # no data: the previous model
        return LogisticState(torch.where(keep[:, None, None], state.weights, theta))

    def logits(self, state: LogisticState, x: torch.Tensor) -> torch.Tensor:
        """Class scores of features ``x (N, B, D)``: ``(N, B, C)``."""
        return torch.einsum("nbp,ncp->nbc", _design(x.double()), state.weights)

    def sample(self, state: LogisticState, k: int, generator: torch.Generator, *, temperature: float = 1.0,
               top_p: float = 1.0, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """Each developer labels its ``k`` prompt features ``(N, k, D)``: items ``(N, k, D+1)``. ``sampled``:
        a draw from its softmax at ``temperature``. ``flipped``: its most likely label, replaced with
        probability ``flip`` by one of the other C − 1 classes chosen uniformly, independently of x (the
        generator with error rate p of Feng et al. 2024, §3)."""
        if prompts is None:
            raise ValueError("the logistic family needs prompts: the features x of the items to label")
        logits = self.logits(state, prompts)  # (N, k, C)
        if self.spec.writes == "flipped":
            top = logits.argmax(-1)  # (N, k)
            flip = torch.rand(top.shape, generator=generator, dtype=torch.float64, device=top.device)
            other = torch.randint(1, self.classes, top.shape, generator=generator, device=top.device)
            y = torch.where(flip < self.spec.flip, (top + other) % self.classes, top)  # (N, k)
        else:
            prob = torch.softmax(logits / temperature, -1)  # (N, k, C)
            y = torch.multinomial(prob.flatten(0, 1), 1, generator=generator).view(prob.shape[:2])
        return torch.cat([prompts, y[..., None].to(prompts.dtype)], dim=-1)

    def log_prob(self, state: LogisticState, items: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.logits(state, items[..., :-1]), -1)  # (N, B, C)
        y = items[..., -1].round().long().clamp(0, self.classes - 1)
        return torch.gather(logp, -1, y[..., None].expand(*logp.shape[:2], 1))[..., 0]  # (N, B)

    def describe(self, state: LogisticState) -> dict[str, torch.Tensor]:
        """``confidence``: the norm of the weights that separate the classes (their spread around the mean
        row, without the biases): 0 for a model that guesses, growing as its softmax sharpens."""
        w = state.weights[..., :-1]
        return {"confidence": (w - w.mean(1, keepdim=True)).flatten(1).norm(dim=1)}

    def distance(self, state: LogisticState, world: LabelsWorld) -> torch.Tensor:
        """Error rate ``(N,)`` of each model's most likely label against the true classifier's, on the
        held-out features."""
        return error_rate(self.logits(state, _heldout_x(world, state)), world.classify(world.heldout().items[:, :-1]))

    def truth(self, state: LogisticState, world: LabelsWorld) -> dict[str, torch.Tensor]:
        """``label_error``: error rate of the most likely label against the held-out human labels (noise
        included)."""
        held = world.heldout().items
        return {"label_error": error_rate(self.logits(state, _heldout_x(world, state)), held[:, -1].round().long())}

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: LogisticState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Symmetric KL between two developers' label distributions, averaged over the probe features ``(P,)``."""
        logp = torch.log_softmax(torch.einsum("hp,ncp->nhc", _design(probe[:, :-1].double()), state.weights), -1)
        out = torch.empty(len(i), dtype=torch.float64, device=logp.device)
        step = max(1, (1 << 20) // (logp.shape[1] * logp.shape[2]))
        for p0 in range(0, len(i), step):
            a, b = logp[i[p0 : p0 + step]], logp[j[p0 : p0 + step]]  # (P', H, C)
            out[p0 : p0 + step] = 0.5 * ((a.exp() - b.exp()) * (a - b)).sum(-1).mean(-1)
        return out


def error_rate(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of items whose most likely class ``logits (N, B, C)`` is not ``labels (B,)``: ``(N,)``."""
    return (logits.argmax(-1) != labels).double().mean(-1)


def _onehot(y: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y.round().long().clamp(0, classes - 1), classes).double()


def _heldout_x(world: LabelsWorld, state: LogisticState) -> torch.Tensor:
    x = world.heldout().items[:, :-1]
    return x.expand(state.weights.shape[0], *x.shape)
