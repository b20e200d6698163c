"""Labelled points: a classification world, the setting of Feng et al. (2024), "Beyond Model Collapse: Scaling
Up with Synthesized Data Requires Verification" (arXiv 2406.07515).

Items are rows ``[x, y]``: the features x ∈ R^d of a Gaussian mixture, one isotropic cluster N(μ_c, σ²I) per
class c (the world's concepts, mixed by the communities), and a class label y stored as a float. The known
true classifier is the nearest class mean, argmax_c (μ_cᵀx − ‖μ_c‖²/2), a softmax-linear rule (the Bayes
classifier when the classes are equally likely). Human authors label an item with its cluster's class and
flip it to another class, uniformly, with probability ``label_noise``. Models write their own labels on fresh
x (``prompts``). An item is correct (``verify``) when its label is the true classifier's label of its x: the
verdict a Feng et al. verifier (keep correct items w.p. φ, wrong ones w.p. ψ) acts on. ``log_prob`` is the
conditional probability of y given x under the human distribution (the models are conditional).
"""

from __future__ import annotations

import math

import torch

from ecosystem.scenario import CommunitySpec, LabelsWorldSpec
from ecosystem.worlds.base import World
from ecosystem.worlds.communities import CommunityMixture


class LabelsWorld(CommunityMixture):
    kind = "labels"
    dtype = torch.float64
    has_verifier = True
    sample_metrics = ("validity",)  # share of a model's labels that agree with the true classifier

    def __init__(
        self,
        spec: LabelsWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.spec, self.device = spec, torch.device("cpu")  # the fixed data is drawn on the CPU, then moved
        self.item_shape = (spec.dim + 1,)
        self.n_concepts = spec.classes
        self.n_developers = private if isinstance(private, int) else private.shape[0]
        # Class means at distance `separation` from the origin in random directions.
        means = torch.randn(spec.classes, spec.dim, generator=g, dtype=self.dtype)
        self.means = spec.separation * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (C, D)
        self._init_humans(communities, private, original_size, spec.heldout, self.sample, g, device)
        self.device = torch.device(device)
        self.means = self.means.to(self.device)

    def _features(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(*concepts.shape, self.spec.dim, generator=generator, dtype=self.dtype,
                            device=self.device)
        return self.means[concepts.to(self.device)] + self.spec.spread * noise  # (..., D)

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self._features(concepts, generator)
        k = self.spec.classes
        flip = torch.rand(len(concepts), generator=generator, dtype=self.dtype, device=self.device)
        flip = flip < self.spec.label_noise
        other = torch.randint(1, max(k, 2), (len(concepts),), generator=generator, device=self.device)
        y = torch.where(flip, (concepts.to(self.device) + other) % k, concepts.to(self.device))  # another class
        return torch.cat([x, y[:, None].to(self.dtype)], dim=1)  # (B, D+1)

    def prompts(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """Fresh features ``(N, k, D)`` from the human mixture, for each developer to label."""
        concepts = torch.multinomial(self.concept_weights().to(self.device), self.n_developers * k,
                                     replacement=True, generator=generator)
        return self._features(concepts, generator).view(self.n_developers, k, self.spec.dim)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The true classifier's label of features ``(..., D) -> (...)`` int64 (the nearest class mean)."""
        return (x @ self.means.T - 0.5 * (self.means**2).sum(1)).argmax(-1)

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., C)``: log N(x; μ_c, σ²I) of the features for every class."""
        x, d, s = items[..., :-1], self.spec.dim, self.spec.spread
        sq = ((x.unsqueeze(-2) - self.means) ** 2).sum(-1)  # (..., C)
        return -0.5 * sq / s**2 - d * math.log(s) - 0.5 * d * math.log(2 * math.pi)

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """log p(y | x) under the human distribution: Σ_c p(c | x) P(y | c), with P(y | c) = 1 − η for y = c
        and η / (C − 1) otherwise."""
        k, eta = self.spec.classes, self.spec.label_noise
        posterior = torch.softmax(self.log_prob_concepts(items) + self.concept_weights().log(), -1)  # (..., C)
        y = items[..., -1].round().long().clamp(0, k - 1)
        same = torch.gather(posterior, -1, y[..., None])[..., 0]
        return torch.log((1 - eta) * same + eta / max(k - 1, 1) * (1 - same))

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        return self.classify(items[..., :-1])

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        return items[..., -1].round().long() == self.classify(items[..., :-1])

    def reference(self) -> dict[str, float]:
        """The human labels' own conditional NLL of the held-out set, and that of a uniform guess, log C."""
        return World.reference(self) | {"baseline_nll": math.log(self.spec.classes)}
