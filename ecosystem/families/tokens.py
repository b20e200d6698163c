"""Next-token helpers both token families (``ngram``, ``transformer``) share.

The BOS convention (the token before position 0 is the id ``V``), drawing a token from a next-token
distribution with temperature and nucleus (top-p) truncation by inverse CDF, the uniforms of sampling drawn
up front, prompts forced into the output, the pairwise Jensen–Shannon divergence used to compare developers'
models, and the size of the temporaries a family makes at once.
"""

from __future__ import annotations

import math

import torch


def chunk_elements(device: torch.device) -> int:
    """Elements of the largest temporary a family makes at once: 16 MiB of float32 on CPU, below glibc's
    32 MiB mmap threshold so that chunks reuse memory instead of mapping it afresh; 1 GiB on a GPU."""
    return 1 << 22 if device.type == "cpu" else 1 << 28


def cache_elements(device: torch.device) -> int:
    """Elements of a temporary that should stay in the cores' caches while a few passes go over it: 1 MiB
    of float32 on CPU (the pairwise JSD of 256 transformers took 0.34 s in such pieces and 0.55 s in
    16 MiB ones, which every pass streams from memory); on a GPU, :func:`chunk_elements`."""
    return 1 << 18 if device.type == "cpu" else chunk_elements(device)


def spans(n: int, block: int) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` covering ``range(n)`` in pieces of ``block``."""
    return [(i, min(i + block, n)) for i in range(0, n, block)]


def shift_right(tokens: torch.Tensor, bos: int, by: int = 1) -> torch.Tensor:
    """The token ``by`` positions before each position, BOS where there is none: ``(..., T) -> (..., T)``."""
    pad = torch.full((*tokens.shape[:-1], by), bos, dtype=tokens.dtype, device=tokens.device)
    return torch.cat([pad, tokens], dim=-1)[..., : tokens.shape[-1]]


def uniforms(n: int, k: int, seq_len: int, generator: torch.Generator) -> torch.Tensor:
    """The random numbers of sampling ``(N, k, T)``, one per token, drawn up front so that a one-model-at-a-
    time decoder given the same generator consumes exactly the same numbers."""
    return torch.rand((n, k, seq_len), generator=generator, device=generator.device)


def sample_next(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Draw one token per row of ``logits (..., V)`` with the uniforms ``u (...)``: ``(...)`` int64.

    The distribution is ``softmax(logits / temperature)``; with ``top_p < 1`` it is cut to the nucleus, the
    smallest set of most likely tokens whose mass reaches ``top_p``, and renormalized (Holtzman et al.,
    "The curious case of neural text degeneration", ICLR 2020). The token is the inverse CDF at ``u``.
    """
    probs = torch.softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)  # (..., V)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
        probs = probs.masked_fill(before >= top_p, 0.0)
    cdf = probs.cumsum(-1)  # (..., V)
    total = cdf[..., -1:].contiguous()
    # u·total can round up to the total, when the search runs past the end: then the token is the first whose
    # cdf reaches the total (the last that adds to it). Neither search stops on a token of zero probability
    # (its cdf equals the one before).
    token = torch.searchsorted(cdf, u.unsqueeze(-1) * total, right=True)
    token = torch.minimum(token, torch.searchsorted(cdf, total))  # (..., 1)
    if order is not None:
        token = order.gather(-1, token)
    return token.squeeze(-1)


def force_prompt(token: torch.Tensor, prompts: torch.Tensor | None, t: int) -> torch.Tensor:
    """The token at position ``t``: the prompt's while the prompt ``(..., Tp)`` lasts, else ``token``."""
    if prompts is not None and t < prompts.shape[-1]:
        return prompts[..., t]
    return token


def pair_jsd(probs: torch.Tensor, weights: torch.Tensor, i: torch.Tensor, j: torch.Tensor, chunk: int,
             plogp: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted sum over positions of the Jensen–Shannon divergence between developers ``i`` and ``j`` of
    each pair: ``(P,)``.

    ``probs (N, M, V)`` holds each developer's next-token distribution at ``M`` positions, ``weights (M,)``
    the weight of each position; pairs go about ``chunk`` elements at a time. Each value is at most
    ``log 2`` times the total weight. JSD(p, q) = H((p + q) / 2) − (H(p) + H(q)) / 2 (Lin, "Divergence
    measures based on the Shannon entropy", IEEE Trans. Inf. Theory 1991), in nats; with s = p + q it is
    log 2 + (Σ p log p + Σ q log q − Σ s log s) / 2. The cost is P·M·V logarithms: choose the pairs and
    the probe with that in mind (``metrics`` in the scenario). ``plogp (N, M)``, each distribution's Σ p log p,
    may be given where the log-probabilities are at hand.
    """
    _, m, v = probs.shape
    if plogp is None:
        plogp = torch.special.xlogy(probs, probs).sum(-1)  # (N, M)
    out = torch.empty(len(i), dtype=probs.dtype, device=probs.device)
    step = max(1, chunk // (m * v))
    for p0 in range(0, len(i), step):
        a, b = i[p0 : p0 + step], j[p0 : p0 + step]
        s = probs.index_select(0, a) + probs.index_select(0, b)  # (c, M, V)
        # s log s with 0 log 0 = 0: clamping zeros to a tiny value changes nothing else in float32
        slogs = torch.linalg.vecdot(s, s.clamp_min(1e-30).log_())  # (c, M)
        out[p0 : p0 + step] = (math.log(2) + (plogp[a] + plogp[b] - slogs) / 2) @ weights
    return out.clamp_(min=0.0)
