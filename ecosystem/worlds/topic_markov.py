"""Token sequences from concept-specific sparse Markov chains: the ``topic_markov`` world.

The vocabulary is split into disjoint blocks of ``m = vocab // concepts`` tokens, block ``c`` for concept
``c``; the ``vocab % concepts`` leftover ids are never written by humans (a sequence using one is invalid)
but stay in ``vocab_size`` so that models can emit them. Concept ``c`` is a Markov chain on its block: a
start distribution over its ``m`` tokens and, for each token, exactly ``branching`` allowed next tokens.
Both use Zipf weights ∝ 1/rank^zipf (Zipf 1949) over a random order of the candidates, so rare
transitions are the tails that recursive training loses first (Shumailov et al., Nature 2024).

Because the blocks are disjoint, the block of a sequence is its concept, the human mixture is itself a
first-order Markov chain, and its entropy is exact: H = H(π) + Σ_c π_c H(chain_c) (the chain rule of
entropy, Cover & Thomas 2006, ch. 2). Sequences have the fixed length ``seq_len`` and are never padded
(``pad_id`` is None).
"""

from __future__ import annotations

import torch

from ecosystem.scenario import CommunitySpec, TopicMarkovWorldSpec
from ecosystem.worlds.tokens import TokenWorld


def _zipf(n: int, exponent: float) -> torch.Tensor:
    """Probabilities ∝ 1/rank^exponent for ranks 1..n ``(n,)`` float64."""
    w = torch.arange(1, n + 1, dtype=torch.float64) ** -exponent
    return w / w.sum()


def _expect(weights: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Σ weights · logq over the trailing dims, with 0 · log 0 = 0: ``logq (N, *w) -> (N,)``."""
    terms = torch.where(weights > 0, weights * logq, 0.0)
    return terms.flatten(1).sum(1)


class TopicMarkovWorld(TokenWorld):
    """Concept-specific sparse Markov chains over disjoint token blocks (see the module docstring)."""

    kind = "topic_markov"

    def __init__(
        self,
        spec: TopicMarkovWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        C, V, T, b = spec.concepts, spec.vocab, spec.seq_len, spec.branching
        m = V // C  # the schema ensures 1 ≤ branching ≤ m
        self.spec, self.n_concepts, self.vocab_size, self.block = spec, C, V, m
        self.item_shape = (T,)
        self.device = torch.device("cpu")  # tables are built and the fixed data drawn on the CPU
        generator = torch.Generator(device="cpu").manual_seed(seed)

        # Candidates in random order: rank r of a concept's start (or of a token's successors) has
        # probability zipf[r]; token ids are block offset + a random permutation of the block.
        offset = (torch.arange(C) * m)[:, None]  # (C, 1)
        self._start_tokens = offset + torch.rand(C, m, generator=generator).argsort(1)  # (C, m) by rank
        tokens = torch.arange(C * m)
        successors = (tokens // m * m)[:, None] + torch.rand(C * m, m, generator=generator).argsort(1)[:, :b]
        # Rows of the never-written leftover ids are unused by sampling; they point to themselves.
        self._next_tokens = torch.cat([successors, torch.arange(C * m, V)[:, None].expand(-1, b)])  # (V, b)
        self._start_cdf, self._next_cdf = _zipf(m, spec.zipf).cumsum(0), _zipf(b, spec.zipf).cumsum(0)

        start = torch.zeros(C, V, dtype=torch.float64)
        start.scatter_(1, self._start_tokens, _zipf(m, spec.zipf).expand(C, m))
        trans = torch.zeros(V, V, dtype=torch.float64)
        trans[: C * m].scatter_(1, successors, _zipf(b, spec.zipf).expand(C * m, b))
        self._start, self._trans = start, trans  # (C, V), (V, V): p(x_0 | c), p(x_t | x_{t-1})

        device = torch.device(device)
        self._init_humans(communities, private, original_size, spec.heldout, self.sample, generator, device)
        # Exact marginals p(x_t) of the human mixture by matrix powers: m_t = m_{t-1} P.
        marginals = [self._concept_weights.cpu() @ start]
        for _ in range(T - 1):
            marginals.append(marginals[-1] @ trans)
        self._marginals = torch.stack(marginals)  # (T, V)

        self.device = device
        for name in ("_start_tokens", "_next_tokens", "_start_cdf", "_next_cdf", "_start", "_trans", "_marginals"):
            setattr(self, name, getattr(self, name).to(self.device))

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fresh human sequences, one per entry of ``concepts (B,)``: ``(B, T)`` int64.

        Every step's rank has the same Zipf law whatever the current token, so all randomness is drawn at
        once; the walk only looks up which token holds each rank.
        """
        (T,) = self.item_shape
        u = torch.rand(T, len(concepts), generator=generator, device=self.device, dtype=torch.float64)
        start_rank = torch.searchsorted(self._start_cdf, u[0], right=True).clamp_max(self.block - 1)
        ranks = torch.searchsorted(self._next_cdf, u[1:], right=True).clamp_max(self.spec.branching - 1)
        tokens = [self._start_tokens[concepts.to(self.device), start_rank]]  # [(B,)]
        for t in range(T - 1):
            tokens.append(self._next_tokens[tokens[-1], ranks[t]])
        return torch.stack(tokens, 1)  # (B, T)

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """log p(items | concept c) for every concept ``(..., T) -> (..., C)`` float64 (−inf: impossible)."""
        inside = (items >= 0) & (items < self.vocab_size)
        x = items.clamp(0, self.vocab_size - 1)
        steps = self._trans[x[..., :-1], x[..., 1:]].log().sum(-1)  # (...)
        steps = steps.masked_fill(~inside.all(-1), -torch.inf)
        return self._start[:, x[..., 0]].log().movedim(0, -1) + steps[..., None]  # (..., C)

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """Exact log-probability under the human mixture ``(..., T) -> (...)``: log Σ_c π_c p(x | c)."""
        return torch.logsumexp(self._concept_weights.log() + self.log_prob_concepts(items), -1)

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        """The block of the first token ``(..., T) -> (...)``; -1 for the leftover ids outside every block."""
        first = items[..., 0]
        concept = first.div(self.block, rounding_mode="floor")
        return concept.masked_fill((first < 0) | (concept >= self.n_concepts), -1)

    def to_text(self, items: torch.Tensor) -> list[str]:
        """``items (..., T)`` (row-major) as block letter and rank in the block, e.g. ``B3 B0 B7`` (a leftover
        id outside every block shows as ``?id``)."""
        def name(t: int) -> str:
            c = t // self.block
            return f"{chr(65 + c % 26)}{c // 26 or ''}{t % self.block}" if 0 <= c < self.n_concepts else f"?{t}"

        return [" ".join(map(name, row)) for row in items.reshape(-1, items.shape[-1]).tolist()]

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        """Valid: the first token can start a concept's chain and every transition is allowed ``(...)``."""
        return self.log_prob_concepts(items).amax(-1) > -torch.inf

    def entropy(self) -> float:
        """Exact entropy of the human sequence distribution, nats per sequence.

        Chain rule for a Markov chain (Cover & Thomas 2006, ch. 2 and 4): H = H(x_0) + Σ_{t≥1} Σ_u
        p(x_{t-1}=u) H(P[u, :]), which equals H(π) + Σ_c π_c H(chain_c) because the blocks are disjoint.
        """
        row_entropy = -torch.special.xlogy(self._trans, self._trans).sum(1)  # (V,)
        first = -torch.special.xlogy(self._marginals[0], self._marginals[0]).sum()
        return float(first + (self._marginals[:-1] @ row_entropy).sum())

    def kl_ngram(self, logp: torch.Tensor) -> torch.Tensor:
        """Exact KL(p_true || q) in nats per sequence for each developer's n-gram model ``q``: ``(N,)``.

        ``logp`` holds conditional log-probabilities with BOS id = ``vocab_size``: order 1 ``(N, V)``;
        order 2 ``(N, V+1, V)`` indexed [prev, next]; order 3 ``(N, V+1, V+1, V)`` indexed
        [prev2, prev1, next] (BOS pads the context at the start). KL = −H(p) − E_p[log q(x)], and the cross
        term is exact from the chain's marginals: E_p Σ_t log q(x_t | context) sums log q against the
        joint law of each (context, next) window, e.g. p(x_{t-1}=u, x_t=v) = m_{t-1}(u) P(u, v).
        """
        V, P, m = self.vocab_size, self._trans, self._marginals  # (V, V), (T, V)
        logp = logp.to(self.device, torch.float64)
        order = logp.dim() - 1
        if tuple(logp.shape[1:]) not in ((V,), (V + 1, V), (V + 1, V + 1, V)):
            raise ValueError(
                f"kl_ngram: logp must be (N, V), (N, V+1, V) or (N, V+1, V+1, V) with V={V}, got {tuple(logp.shape)}"
            )
        if order == 1:
            cross = _expect(m.sum(0), logp)
        elif order == 2:
            pairs = m[:-1].sum(0)[:, None] * P  # (V, V): Σ_{t≥1} p(x_{t-1}, x_t)
            cross = _expect(m[0], logp[:, V]) + _expect(pairs, logp[:, :V])
        else:
            first_pair = m[0][:, None] * P  # (V, V): p(x_0, x_1)
            triples = m[:-2].sum(0)[:, None, None] * P[:, :, None] * P[None]  # (V, V, V): Σ_{t≥2} p(window)
            cross = (
                _expect(m[0], logp[:, V, V]) + _expect(first_pair, logp[:, V, :V]) + _expect(triples, logp[:, :V, :V])
            )
        return -self.entropy() - cross
