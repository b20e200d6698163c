"""How human communities mix concepts: the weights every world uses to sample and label human content."""

from __future__ import annotations

import torch

from ecosystem.scenario import CommunitySpec


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
