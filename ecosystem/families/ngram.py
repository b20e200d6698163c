"""N-gram language models fitted by smoothed counts, batched over developers.

Also the next-token helpers both token families share: the BOS convention (the token before position 0 is
the id ``V``), drawing a token from a next-token distribution with temperature and nucleus (top-p)
truncation by inverse CDF, and the pairwise Jensen–Shannon divergence used to measure homogenization.

An order-``k`` model predicts token ``x_t`` from the ``k - 1`` tokens before it, padded with BOS at the
start; its conditional table is ``p(next | context) = (c(context, next) + α) / (c(context) + V α)``, additive
(Lidstone) smoothing as in Chen & Goodman, "An empirical study of smoothing techniques for language
modeling" (1999), with ``α = spec.smoothing`` and weighted counts ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.scenario import NgramFamilySpec, TrainSpec


def chunk_elements(device: torch.device) -> int:
    """Elements of the largest temporary a family makes at once: 16 MiB of float32 on CPU, below glibc's
    32 MiB mmap threshold so that chunks reuse memory instead of mapping it afresh (shared/design.md,
    performance notes); 1 GiB on a GPU."""
    return 1 << 22 if device.type == "cpu" else 1 << 28


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
    probs = torch.softmax(logits / temperature, dim=-1)  # (..., V)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
        probs = probs.masked_fill(before >= top_p, 0.0)
    cdf = probs.cumsum(-1)  # (..., V)
    token = torch.searchsorted(cdf, (u * cdf[..., -1]).unsqueeze(-1), right=True)  # (..., 1)
    # u·total can round up to the total; never step past the last token with positive probability.
    last = (probs > 0).cumsum(-1).argmax(-1, keepdim=True)  # (..., 1)
    token = torch.minimum(token, last)
    if order is not None:
        token = order.gather(-1, token)
    return token.squeeze(-1)


def force_prompt(token: torch.Tensor, prompts: torch.Tensor | None, t: int) -> torch.Tensor:
    """The token at position ``t``: the prompt's while the prompt ``(..., Tp)`` lasts, else ``token``."""
    if prompts is not None and t < prompts.shape[-1]:
        return prompts[..., t]
    return token


def pairwise_jsd(probs: torch.Tensor, weights: torch.Tensor, chunk: int) -> torch.Tensor:
    """Weighted sum over positions of the Jensen–Shannon divergence between every pair of developers.

    ``probs (N, M, V)`` holds each developer's next-token distribution at ``M`` positions, ``weights (M,)``
    the weight of each position; pairs go ``chunk`` elements at a time. Returns ``(N, N)``, symmetric, zero
    on the diagonal, each entry at most ``log 2`` times the total weight. JSD(p, q) = H((p + q) / 2) −
    (H(p) + H(q)) / 2 (Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory
    1991), in nats; with s = p + q it is log 2 + (Σ p log p + Σ q log q − Σ s log s) / 2. The cost is
    N²·M·V/2 logarithms: choose the probe with that in mind (N = 256, M = 1536, V = 48 takes seconds).
    """
    n, m, v = probs.shape
    plogp = torch.special.xlogy(probs, probs).sum(-1)  # (N, M)
    out = torch.zeros((n, n), dtype=probs.dtype, device=probs.device)
    block = max(1, math.isqrt(chunk // (m * v)))
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        for j0 in range(i0, n, block):
            j1 = min(j0 + block, n)
            s = probs[i0:i1, None] + probs[None, j0:j1]  # (bi, bj, M, V)
            # s log s with 0 log 0 = 0: clamping zeros to a tiny value changes nothing else in float32
            slogs = torch.linalg.vecdot(s, s.clamp_min(1e-30).log_())  # (bi, bj, M)
            js = math.log(2) + (plogp[i0:i1, None] + plogp[None, j0:j1] - slogs) / 2  # (bi, bj, M)
            pair = js @ weights  # (bi, bj)
            out[i0:i1, j0:j1] = pair
            out[j0:j1, i0:i1] = pair.T
    return out.clamp_(min=0.0).fill_diagonal_(0.0)


@dataclass
class NgramState:
    """Conditional log-probability tables of N developers, BOS = V in the context dimensions.

    ``logp`` is ``(N, V)`` for order 1, ``(N, V+1, V)`` ``[prev, next]`` for order 2 and
    ``(N, V+1, V+1, V)`` ``[prev2, prev1, next]`` for order 3.
    """

    logp: torch.Tensor


class NgramFamily:
    """Unigram, bigram or trigram models, one per developer, fitted and sampled as tensor ops."""

    kind = "ngram"

    def __init__(
        self, spec: NgramFamilySpec, vocab_size: int, seq_len: int, train: TrainSpec, device: torch.device
    ) -> None:
        self.spec, self.train, self.device = spec, train, torch.device(device)
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.n_contexts = (vocab_size + 1) ** (spec.order - 1)  # flat context ids; BOS = V in each slot
        self.chunk = chunk_elements(self.device)

    def _table_shape(self, n: int) -> tuple[int, ...]:
        v = self.vocab_size
        return (n, *[v + 1] * (self.spec.order - 1), v)

    def contexts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Flat context id of every position ``(..., T) -> (..., T)``: ``Σ_j prev_j (V+1)^(j-1)``."""
        ctx = torch.zeros_like(tokens)
        for j in range(1, self.spec.order):
            ctx += shift_right(tokens, self.vocab_size, j) * (self.vocab_size + 1) ** (j - 1)
        return ctx

    def init(self, n: int, generator: torch.Generator) -> NgramState:
        """Uniform tables: the smoothed counts of no data."""
        return NgramState(torch.full(self._table_shape(n), -math.log(self.vocab_size), device=self.device))

    def fit(
        self, state: NgramState, items: torch.Tensor, weights: torch.Tensor, generator: torch.Generator
    ) -> NgramState:
        """Smoothed weighted counts of ``items (N, B, T)`` with ``weights (N, B)``; from this data only."""
        # In place: an order-3 table of 256 developers is 118 MB, and each fresh copy costs page faults.
        counts = self._counts(items, weights.to(torch.float32)).add_(self.spec.smoothing)  # (N, C, V)
        totals = counts.sum(-1, keepdim=True)  # (N, C, 1)
        logp = counts.log_().sub_(totals.log_()).view(self._table_shape(items.shape[0]))
        idle = ~(weights > 0).any(1)  # (N,)
        logp[idle] = state.logp[idle]
        return NgramState(logp)

    def _counts(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted counts ``c(context, next)`` of every developer: ``(N, C, V)``, one scatter-add per chunk
        of items (chunks keep the index temporaries small enough for the allocator to reuse)."""
        n, b, t = items.shape
        cells = self.n_contexts * self.vocab_size
        offset = torch.arange(n, device=items.device).view(n, 1, 1) * cells  # each developer's own block
        counts = torch.zeros(n * cells, dtype=torch.float32, device=items.device)
        chunk = max(1, self.chunk // (2 * n * t))  # items per chunk: int64 indices as large as the chunk
        for b0 in range(0, b, chunk):
            x = items[:, b0 : b0 + chunk]  # (N, b, T)
            cell = self.contexts(x) * self.vocab_size + x + offset  # (N, b, T) in the developer's block
            w = weights[:, b0 : b0 + chunk, None].expand_as(x).flatten()
            if counts.is_cuda:  # index_add_ adds with atomics in no fixed order on CUDA; index_put_ sorts
                counts.index_put_((cell.flatten(),), w, accumulate=True)
            else:
                counts.index_add_(0, cell.flatten(), w)
        return counts.view(n, self.n_contexts, self.vocab_size)

    def log_prob(self, state: NgramState, items: torch.Tensor) -> torch.Tensor:
        """Σ_t log p(x_t | context_t) of ``items (N, B, T)`` under each developer's table: ``(N, B)``."""
        n, b, t = items.shape
        cell = self.contexts(items) * self.vocab_size + items  # (N, B, T)
        return state.logp.view(n, -1).gather(1, cell.view(n, -1)).view(n, b, t).sum(-1)

    def next_token_probs(self, state: NgramState, probe: torch.Tensor) -> torch.Tensor:
        """Each developer's next-token distribution at each position of ``probe (P, T)``: ``(N, P, T, V)``."""
        n = state.logp.shape[0]
        return state.logp.view(n, self.n_contexts, self.vocab_size)[:, self.contexts(probe)].exp()

    def divergence(self, state: NgramState, probe: torch.Tensor) -> torch.Tensor:
        """Mean over the positions of ``probe (P, T)`` of the pairwise JSD of next-token distributions.

        A table's prediction depends on the context only, so each distinct context is compared once,
        weighted by how often it occurs in the probe.
        """
        n = state.logp.shape[0]
        ctx, count = self.contexts(probe).flatten().unique(return_counts=True)  # (U,), (U,)
        probs = state.logp.view(n, self.n_contexts, self.vocab_size)[:, ctx].exp()  # (N, U, V)
        return pairwise_jsd(probs, count.to(probs.dtype) / count.sum(), self.chunk)

    def sample(
        self,
        state: NgramState,
        k: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``k`` sequences per developer ``(N, k, T)``; ``prompts (N, k, Tp)`` fixes their first tokens."""
        u = uniforms(state.logp.shape[0], k, self.seq_len, generator)
        return self._decode(state, u, temperature, top_p, prompts)

    def _decode(
        self,
        state: NgramState,
        u: torch.Tensor,
        temperature: float,
        top_p: float,
        prompts: torch.Tensor | None,
    ) -> torch.Tensor:
        n, k, t_len = u.shape
        v = self.vocab_size
        table = state.logp.view(n, self.n_contexts, v)
        bos_context = sum(v * (v + 1) ** j for j in range(self.spec.order - 1))
        ctx = torch.full((n, k), bos_context, dtype=torch.long, device=u.device)  # (N, k)
        out = torch.empty((n, k, t_len), dtype=torch.long, device=u.device)
        for t in range(t_len):
            logits = table.gather(1, ctx[:, :, None].expand(n, k, v))  # (N, k, V)
            token = force_prompt(sample_next(logits, u[:, :, t], temperature, top_p), prompts, t)
            out[:, :, t] = token
            ctx = (ctx * (v + 1) + token) % self.n_contexts  # drop the oldest token, append the new one
        return out
