"""N-gram language models fitted by smoothed counts, batched over developers.

An order-``k`` model predicts token ``x_t`` from the ``k - 1`` tokens before it, padded with BOS at the
start; its conditional table is ``p(next | context) = (c(context, next) + α) / (c(context) + V α)``, additive
(Lidstone) smoothing as in Chen & Goodman, "An empirical study of smoothing techniques for language
modeling" (1999), with ``α = spec.smoothing`` and weighted counts ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ecosystem.families.base import separately
from ecosystem.families.tokens import (
    cache_elements,
    chunk_elements,
    force_prompt,
    pair_jsd,
    sample_next,
    shift_right,
    spans,
    uniforms,
)
from ecosystem.scenario import NgramFamilySpec, TrainSpec
from ecosystem.worlds.base import World


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
    additive = True  # a table is its counts: a growing set is fitted from running counts

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
        return self.fit_statistics(state, self.statistics(items, weights))

    def statistics(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The weighted counts ``c(context, next)`` ``(N, C, V)``: all a table's fit needs, and additive."""
        return self._counts(items, weights.to(torch.float32))

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def fit_statistics(self, state: NgramState, counts: torch.Tensor) -> NgramState:
        """``p(next | context) = (c + α) / (c(context) + V α)``; a developer without data keeps its table."""
        smoothed = counts + self.spec.smoothing  # (N, C, V); the counts themselves stay as they are
        totals = smoothed.sum(-1, keepdim=True)  # (N, C, 1)
        # In place from here: an order-3 table of 256 developers is 118 MB, and each copy costs page faults.
        logp = smoothed.log_().sub_(totals.log_()).view(self._table_shape(counts.shape[0]))
        idle = counts.flatten(1).sum(1) <= 0  # (N,)
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

    describe_names = ()
    probe_limited = True  # compared on `metrics.probes` held-out sequences (the cost is pairs × positions × V)

    truth_names = ()  # nothing beyond `distance` to say about the truth

    def truth(self, state, world: World) -> dict[str, torch.Tensor]:
        return {}

    def describe(self, state: NgramState) -> dict[str, torch.Tensor]:
        return {}

    def distance(self, state: NgramState, world: World) -> torch.Tensor:
        """Exact KL(true ‖ model) per developer where the world can give it (``topic_markov``), else NaN."""
        kl = world.kl_ngram(state.logp)
        return kl if kl is not None else torch.full((state.logp.shape[0],), math.nan, device=state.logp.device)

    heldout_measures = separately  # log-probabilities and divergences share nothing

    def divergence(self, state: NgramState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Mean over the positions of ``probe (P, T)`` of the JSD of next-token distributions, per pair ``(P,)``.

        A table's prediction depends on the context only, so each distinct context is compared once,
        weighted by how often it occurs in the probe.
        """
        n = state.logp.shape[0]
        ctx, count = self.contexts(probe).flatten().unique(return_counts=True)  # (U,), (U,)
        probs = state.logp.view(n, self.n_contexts, self.vocab_size)[:, ctx].exp()  # (N, U, V)
        return pair_jsd(probs, count.to(probs.dtype) / count.sum(), i, j, cache_elements(self.device))

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
        out = torch.empty((n, k, t_len), dtype=torch.long, device=u.device)
        # Developers a few at a time, so that a step's (developers, k, V) logits stay in the caches: whole
        # populations of 2048 bigram developers decoded in 3.5 s, twice as long per developer as 1024 did;
        # in cache-sized pieces 1.8 s.
        for n0, n1 in spans(n, max(1, cache_elements(self.device) // (k * v))):
            ctx = torch.full((n1 - n0, k), bos_context, dtype=torch.long, device=u.device)  # (nb, k)
            prompt = None if prompts is None else prompts[n0:n1]
            for t in range(t_len):
                logits = table[n0:n1].gather(1, ctx[:, :, None].expand(-1, k, v))  # (nb, k, V)
                token = force_prompt(sample_next(logits, u[n0:n1, :, t], temperature, top_p), prompt, t)
                out[n0:n1, :, t] = token
                ctx = (ctx * (v + 1) + token) % self.n_contexts  # drop the oldest token, append the new one
        return out
