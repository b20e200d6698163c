"""How human communities mix concepts: the weights every world uses to sample and label human content."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ecosystem.scenario import CommunitySpec
from ecosystem.worlds.base import Batch, World


def concept_weights(communities: list[CommunitySpec], n_concepts: int) -> torch.Tensor:
    """``(K, C)`` float64: each community's distribution over concepts (uniform over its concepts by default)."""
    w = torch.zeros(len(communities), n_concepts, dtype=torch.float64)
    for k, community in enumerate(communities):
        concepts = community.concepts if community.concepts is not None else list(range(n_concepts))
        weights = community.weights or [1.0] * len(concepts)
        for c, x in zip(concepts, weights, strict=True):
            w[k, c] += x
    return w / w.sum(dim=1, keepdim=True)


def community_shares(communities: list[CommunitySpec]) -> torch.Tensor:
    """``(K,)`` float64: each community's share of human content (authors × rate; authors if nobody writes)."""
    volume = torch.tensor([c.authors * c.rate for c in communities], dtype=torch.float64)
    if volume.sum() == 0:
        volume = torch.tensor([float(c.authors) for c in communities], dtype=torch.float64)
    return volume / volume.sum()


def mixture_weights(communities: list[CommunitySpec], n_concepts: int) -> torch.Tensor:
    """``(C,)`` the overall human distribution over concepts: communities mixed by their shares."""
    return community_shares(communities) @ concept_weights(communities, n_concepts)


def private_weights(
    communities: list[CommunitySpec], n_concepts: int, groups: list[int] | None, group_concepts: list[list[int]] | None,
    n_developers: int,
) -> torch.Tensor:
    """``(N, C)`` the concept weights of each developer's private data: its group's concepts (uniform) when
    ``developers.group_concepts`` names them, else the overall human mixture."""
    overall = mixture_weights(communities, n_concepts)
    if group_concepts is None:
        return overall.expand(n_developers, n_concepts).clone()
    rows = []
    for size, concepts in zip(groups or [n_developers], group_concepts, strict=True):
        w = torch.zeros(n_concepts, dtype=torch.float64)
        w[concepts] = 1.0
        rows.append((w / w.sum()).expand(size, n_concepts))
    return torch.cat(rows)


class CommunityMixture(World):
    """The human side of a token world: communities mixing concepts, and the fixed real data sets.

    ``_init_humans`` draws, on the CPU from the world's construction generator and in this order: ``heldout``
    items per community (labelled with the community), a public set of ``original_size`` items from the
    overall human mixture, and each developer's private original set of ``original_size`` items from its
    row of ``private (N, C)``, the concept weights of its private data (an int N: the overall mixture).
    Public and private items have community -1, as in :class:`Batch`. Then it moves them to ``device``.
    """

    n_concepts: int
    n_communities: int
    item_shape: tuple[int, ...]

    def _init_humans(
        self,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        heldout: int,
        sample: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.n_communities = len(communities)
        self._community_weights = concept_weights(communities, self.n_concepts)  # (K, C)
        self._concept_weights = mixture_weights(communities, self.n_concepts)  # (C,)

        def draw(weights: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
            # torch.multinomial refuses n = 0 (e.g. original_size 0).
            concepts = (
                torch.multinomial(weights, n, replacement=True, generator=generator)
                if n > 0
                else torch.zeros(0, dtype=torch.int64)
            )
            return sample(concepts, generator), concepts

        parts = [draw(w, heldout) for w in self._community_weights]
        held_comm = torch.arange(self.n_communities).repeat_interleave(heldout)
        items, concepts = (torch.cat(p) for p in zip(*parts, strict=True))
        self._heldout = Batch(items.to(device), concepts.to(device), held_comm.to(device))
        items, concepts = draw(self._concept_weights, original_size)
        self._public = Batch(items.to(device), concepts.to(device), torch.full_like(concepts, -1).to(device))
        if isinstance(private, int):  # N developers whose private data follows the overall mixture
            private = self._concept_weights.expand(private, self.n_concepts)
        n_developers = private.shape[0]
        concepts = (
            torch.multinomial(private, original_size, replacement=True, generator=generator)
            if original_size > 0
            else torch.zeros(n_developers, 0, dtype=torch.int64)
        )  # (N, S)
        items = sample(concepts.reshape(-1), generator)
        self._originals = items.view(n_developers, original_size, *self.item_shape).to(device)  # (N, S, *item)
        self._original_concepts = concepts.to(device)  # (N, S)
        self._community_weights = self._community_weights.to(device)
        self._concept_weights = self._concept_weights.to(device)

    def community_weights(self, i: int) -> torch.Tensor:
        """Community ``i``'s distribution over concepts ``(C,)``."""
        return self._community_weights[i]

    def concept_weights(self) -> torch.Tensor:
        """The overall human distribution over concepts ``(C,)`` (communities mixed by volume)."""
        return self._concept_weights

    def original(self, developer: int) -> Batch:
        concepts = self._original_concepts[developer]
        return Batch(self._originals[developer], concepts, torch.full_like(concepts, -1))

    def originals(self) -> Batch:
        concepts = self._original_concepts.flatten()
        return Batch(self._originals.flatten(0, 1), concepts, torch.full_like(concepts, -1))

    def public(self) -> Batch:
        return self._public

    def heldout(self) -> Batch:
        return self._heldout

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., C)``: log p(items | concept c) for every concept."""
        raise NotImplementedError

    def reference(self) -> dict[str, float]:
        """The truth's own NLL of the held-out set, each item under the distribution of the community that
        wrote it (a community that writes nothing new still has held-out items: the overall mixture may
        give them no weight at all)."""
        held = self.heldout()
        logw = self._community_weights.to(held.items.device).log()  # (K, C)
        logp = torch.logsumexp(self.log_prob_concepts(held.items) + logw[held.communities], -1)  # (M,)
        return {"reference_nll": float(-logp.double().mean()), "baseline_nll": math.nan}
