"""An n-gram language model counted in plain Python, one model at a time.

``p(next | context) = (c(context, next) + α) / (c(context) + V α)``: additive (Lidstone) smoothing of weighted
counts (Chen & Goodman, "An empirical study of smoothing techniques for language modeling", 1999). The
context is the ``order − 1`` tokens before a position, oldest first, with BOS (the id ``V``) before the start.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from tests.reference.sampling import draw


class CountedNgram:
    def __init__(self, order: int, vocab: int, smoothing: float) -> None:
        self.order, self.vocab, self.smoothing = order, vocab, smoothing
        self.counts: dict[tuple[int, ...], Counter[int]] = defaultdict(Counter)

    def context(self, history: Sequence[int]) -> tuple[int, ...]:
        """The ``order − 1`` tokens before the next one, oldest first, BOS-padded."""
        width = self.order - 1
        padded = [self.vocab] * width + list(history)
        return tuple(padded[len(padded) - width :]) if width else ()

    def fit(self, sequences: Sequence[Sequence[int]], weights: Sequence[float]) -> CountedNgram:
        """Count every position of every sequence with its sequence's weight."""
        for seq, w in zip(sequences, weights, strict=True):
            for t, token in enumerate(seq):
                self.counts[self.context(seq[:t])][token] += w
        return self

    def prob(self, context: tuple[int, ...], token: int) -> float:
        seen = self.counts.get(context, Counter())
        return (seen[token] + self.smoothing) / (sum(seen.values()) + self.vocab * self.smoothing)

    def log_prob(self, seq: Sequence[int]) -> float:
        return sum(math.log(self.prob(self.context(seq[:t]), token)) for t, token in enumerate(seq))

    def sample(
        self,
        u: Sequence[float],
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompt: Sequence[int] = (),
    ) -> list[int]:
        """One sequence of ``len(u)`` tokens: the prompt's first, then drawn with the uniforms ``u``."""
        out: list[int] = []
        for t, ut in enumerate(u):
            if t < len(prompt):
                out.append(int(prompt[t]))
                continue
            context = self.context(out)
            logits = [math.log(self.prob(context, token)) for token in range(self.vocab)]
            out.append(draw(logits, ut, temperature, top_p))
        return out
