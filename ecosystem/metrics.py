"""What is measured each generation, batched over developers.

Quality is the NLL of held-out human data under each developer's model, overall, per community and per
concept; distance to the truth is world-specific (W2² to the human distribution's moment-matched Gaussian,
squared parameter error for regression, exact KL for an n-gram on ``topic_markov``); diversity is the
model's own spread (variance) or, for token worlds, the entropy, distinct-2, Levenshtein diversity
(Briesch et al. 2023), unique fraction and concept coverage of what it wrote; homogenization is the mean
pairwise divergence between developers' models (``Family.divergence``).
"""

from __future__ import annotations

import math

import torch

from ecosystem import diversity
from ecosystem.families.base import Family
from ecosystem.worlds.base import Batch, World

TOKEN_METRICS = ("perplexity", "validity", "entropy", "distinct_2", "levenshtein", "unique_fraction", "coverage")
LEVENSHTEIN_SAMPLES = 32  # samples per developer compared pairwise (496 pairs)
TOKEN_PROBES = 64  # held-out sequences on which language models' next-token distributions are compared


def names(world: World, family: Family, communities: list[str]) -> list[str]:
    """Per-developer metric names, in column order."""
    quality = ["nll", *(f"nll_{c}" for c in communities), *(f"nll_concept_{c}" for c in range(world.n_concepts))]
    if world.dtype == torch.int64:
        return [*quality, "distance", *TOKEN_METRICS]
    return [*quality, "distance", "variance"]


def measure(
    world: World, family: Family, state: object, samples: torch.Tensor, heldout: Batch, communities: list[str]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-developer metrics ``{name: (N,)}`` and the pairwise divergence ``(N, N)`` of this generation."""
    n = samples.shape[0]
    logp = family.log_prob(state, heldout.items.expand(n, *heldout.items.shape))  # (N, H)
    out = {"nll": -logp.mean(1)}
    for label, column, count in (("", heldout.communities, len(communities)),
                                 ("concept_", heldout.concepts, world.n_concepts)):
        for k in range(count):
            mask = column == k
            name = f"nll_{label}{communities[k] if not label else k}"
            out[name] = -logp[:, mask].mean(1) if mask.any() else torch.full((n,), math.nan)
    if world.dtype == torch.int64:
        out |= _tokens(world, family, state, samples, out["nll"])
    else:
        out |= _closed_form(world, family, state)
    return out, family.divergence(state, probe(heldout.items, world))


def probe(items: torch.Tensor, world: World) -> torch.Tensor:
    """The fixed probe set for homogenization: every held-out item for vector worlds; for token worlds at most
    ``TOKEN_PROBES`` sequences, evenly spaced so that every community is represented (the JSD costs N²·P·T·V)."""
    if world.dtype != torch.int64 or len(items) <= TOKEN_PROBES:
        return items
    # Integer arithmetic: a float32 linspace truncates (row 340 for 341 of 1024), and differently by device.
    return items[torch.arange(TOKEN_PROBES, device=items.device) * (len(items) - 1) // (TOKEN_PROBES - 1)]


def _closed_form(world: World, family: Family, state: object) -> dict[str, torch.Tensor]:
    match family.kind:
        case "gaussian":
            from ecosystem.families.gaussian import sqrtm_psd, w2_squared

            mean, cov = world.moments()
            trace = torch.diagonal(state.cov, dim1=1, dim2=2).sum(-1)
            distance = w2_squared(state.mean, sqrtm_psd(state.cov), trace, mean, cov, torch.trace(cov))
            return {"distance": distance, "variance": trace / state.cov.shape[-1]}
        case "linear":
            return {"distance": ((state.theta - world.theta) ** 2).sum(1), "variance": state.noise_var}
    raise ValueError(f"no closed-form metrics for family {family.kind!r}")  # pragma: no cover


def _tokens(world: World, family: Family, state: object, samples: torch.Tensor,
            nll: torch.Tensor) -> dict[str, torch.Tensor]:
    n, _, seq_len = samples.shape
    pad = getattr(world, "pad_id", None)
    kl = getattr(world, "kl_ngram", None)
    distance = kl(state.logp) if family.kind == "ngram" and kl is not None else torch.full((n,), math.nan)
    return {
        "distance": distance,
        "perplexity": torch.exp(nll / seq_len),  # per token, over the T positions of a sequence
        "validity": world.verify(samples).double().mean(1),
        "entropy": diversity.token_entropy(samples, pad),
        "distinct_2": diversity.distinct_n(samples, 2, pad),
        "levenshtein": diversity.levenshtein_diversity(samples[:, :LEVENSHTEIN_SAMPLES], pad),
        "unique_fraction": diversity.unique_fraction(samples, pad),
        "coverage": diversity.concept_coverage(world.concept_of(samples), world.n_concepts),
    }
