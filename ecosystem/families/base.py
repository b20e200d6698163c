"""A family of tiny generative models, batched over developers.

Every tensor of a family's state has a leading developer dimension ``N``; one call of ``fit`` or
``sample`` serves all developers. Training sets differ in size between developers, so ``fit`` takes
them padded to a common length with per-item weights (0 for padding; for sample-based policies every
real item has weight 1, for loss-weighted policies such as Vu et al. 2025 the weight is the item's share
in the loss).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ecosystem.worlds.base import World


class Family(Protocol):
    kind: str
    describe_names: tuple[str, ...]  # the per-developer metrics `describe` returns
    probe_limited: bool  # `divergence` compares on `metrics.probes` held-out items (else on all of them)
    additive: bool  # `fit` depends on the data only through `statistics` (then the next three methods exist)

    def init(self, n: int, generator: torch.Generator) -> Any:
        """The initial state of ``n`` developers' models (random weights or an uninformed prior)."""

    def fit(self, state: Any, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator) -> Any:
        """Train every developer's model on its own data: ``items (N, B, *item)``, ``weights (N, B)``.

        Returns the new state; ``state`` is the previous generation (fine-tuning starts from it). A developer
        whose weights are all zero keeps its previous model.
        """

    def statistics(self, items: torch.Tensor, weights: torch.Tensor) -> Any:
        """Additive families: the statistics of each developer's items ``(N, B, *item)`` that `fit` needs."""

    def combine(self, a: Any, b: Any) -> Any:
        """Additive families: the statistics of the union of two sets of items."""

    def fit_statistics(self, state: Any, stats: Any) -> Any:
        """Additive families: `fit` from statistics (a developer with no data keeps its model)."""

    def sample(
        self,
        state: Any,
        k: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``k`` items from each developer's model: ``(N, k, *item)``.

        ``prompts (N, k, ...)`` conditions the output where the family is conditional (the features x of
        the linear family) or fixes the first tokens (token families).
        """

    def log_prob(self, state: Any, items: torch.Tensor) -> torch.Tensor:
        """Log-probability of ``items (N, B, *item)`` under each developer's own model: ``(N, B)``."""

    def describe(self, state: Any) -> dict[str, torch.Tensor]:
        """Per-developer metrics of the models themselves ``{name: (N,)}`` (e.g. the variance)."""

    def distance(self, state: Any, world: World) -> torch.Tensor:
        """Each developer's distance to the truth ``(N,)`` (NaN where the family has none)."""

    # What a family says about the truth beyond one `distance` (empty for most).
    truth_names: tuple[str, ...]  # the per-developer metrics `truth` returns

    def truth(self, state: Any, world: World) -> dict[str, torch.Tensor]:
        """Per-developer metrics relative to the truth beyond `distance` ``{name: (N,)}`` (e.g. the error of
        the fitted mean); measured with the ``distance`` group."""

    def divergence(self, state: Any, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Divergence between the models of developers ``i[p]`` and ``j[p]`` for each pair ``(P,)``, symmetric.

        ``probe (H, *item)`` is a fixed set of human items where a family needs one (next-token
        distributions of language models, predictions of regressions); Gaussians compare parameters.
        """

    def heldout_measures(
        self,
        state: Any,
        heldout: torch.Tensor,
        n: int,
        quality: bool,
        probe: torch.Tensor | None,
        i: torch.Tensor,
        j: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What measurement reads off the held-out items ``heldout (H, *item)``, asked at once so that a
        family can read them once: the log-probability of every item under each of the ``n`` developers'
        models ``(N, H)`` when ``quality``, and the ``divergence`` of each pair ``(i[p], j[p])`` on the items
        ``heldout[probe]`` ``(P,)`` when ``probe`` (row indices) is given; None for what is not asked.
        Families whose two measures share nothing answer with :func:`separately`.
        """


def separately(
    family: Family,
    state: Any,
    heldout: torch.Tensor,
    n: int,
    quality: bool,
    probe: torch.Tensor | None,
    i: torch.Tensor,
    j: torch.Tensor,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``Family.heldout_measures`` as ``log_prob`` and ``divergence``, one after the other."""
    logp = family.log_prob(state, heldout.expand(n, *heldout.shape)) if quality else None
    return logp, (family.divergence(state, heldout[probe], i, j) if probe is not None else None)
