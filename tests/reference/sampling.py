"""Drawing tokens one at a time in plain Python: the sampling protocol the token families document.

A token is the inverse CDF of its next-token distribution at a uniform ``u``: tokens in id order, or, with a
nucleus (``top_p < 1``), most likely first, where the nucleus is the most likely tokens up to and including
the first that brings their mass to ``top_p`` (Holtzman et al., "The curious case of neural text
degeneration", ICLR 2020). The uniforms of ``k`` sequences of ``T`` tokens of ``N`` models are drawn up front
as ``torch.rand((N, k, T), generator=generator)``, one per position, whether a prompt fixes it or not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def uniforms(n: int, k: int, seq_len: int, generator: torch.Generator) -> list[list[list[float]]]:
    """``[model][sequence][position]`` uniforms, as the protocol draws them."""
    return torch.rand((n, k, seq_len), generator=generator, device=generator.device).tolist()


def draw(logits: Sequence[float], u: float, temperature: float = 1.0, top_p: float = 1.0) -> int:
    """The token at ``u`` of ``softmax(logits / temperature)``, cut to the nucleus of mass ``top_p``."""
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    weights = [math.exp(x - top) for x in scaled]
    total = sum(weights)
    probs = [w / total for w in weights]
    if top_p < 1.0:
        order = sorted(range(len(probs)), key=lambda t: -probs[t])  # most likely first
        kept, mass = [], 0.0
        for t in order:
            if mass >= top_p:
                break
            kept.append(t)
            mass += probs[t]
    else:
        kept = [t for t in range(len(probs)) if probs[t] > 0]
    target = u * sum(probs[t] for t in kept)
    cumulative = 0.0
    for t in kept:
        cumulative += probs[t]
        if cumulative > target:
            return t
    return kept[-1]  # u·mass rounded up to the mass
