"""What is measured each generation, batched over developers.

Quality is the NLL of held-out human data under each developer's model (overall and per community);
distance to the truth is world-specific (W2² to the human distribution's moment-matched Gaussian, squared
parameter error for regression); diversity is the model's own spread; homogenization is the mean pairwise
divergence between developers' models (``Family.divergence``).
"""

from __future__ import annotations

import torch

from ecosystem.families.base import Family
from ecosystem.worlds.base import Batch, World


def measure(
    world: World, family: Family, state: object, samples: torch.Tensor, heldout: Batch, communities: list[str]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-developer metrics ``{name: (N,)}`` and the pairwise divergence ``(N, N)`` of this generation."""
    n = samples.shape[0]
    logp = family.log_prob(state, heldout.items.expand(n, *heldout.items.shape))  # (N, H)
    out = {"nll": -logp.mean(1)}
    for k, name in enumerate(communities):
        mask = heldout.communities == k
        out[f"nll_{name}"] = -logp[:, mask].mean(1) if mask.any() else torch.full((n,), float("nan"))
    out |= _closed_form(world, family, state)
    return out, family.divergence(state, heldout.items)


def _closed_form(world: World, family: Family, state: object) -> dict[str, torch.Tensor]:
    match family.kind:
        case "gaussian":
            from ecosystem.families.gaussian import sqrtm_psd, w2_squared

            mean, cov = world.moments()
            trace = torch.diagonal(state.cov, dim1=1, dim2=2).sum(-1)
            root = sqrtm_psd(state.cov)
            distance = w2_squared(state.mean, root, trace, mean, cov, torch.trace(cov))
            return {"distance": distance, "variance": trace / state.cov.shape[-1]}
        case "linear":
            return {"distance": ((state.theta - world.theta) ** 2).sum(1), "variance": state.noise_var}
    return {}
