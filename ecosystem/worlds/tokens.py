"""What every token world (``topic_markov``, ``logic``) answers alike: the protocol parts of a world whose
items are sequences of ``seq_len`` token ids below ``vocab_size``."""

from __future__ import annotations

import math

import torch

from ecosystem.worlds.communities import CommunityMixture

TOKEN_SAMPLE_METRICS = ("perplexity", "validity", "entropy", "distinct_2", "levenshtein", "unique_fraction",
                        "coverage")  # fmt: skip


def smallest_int_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer dtype that holds the ids ``0 .. vocab_size - 1``."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if vocab_size - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


class TokenWorld(CommunityMixture):
    """A community mixture of token sequences, judged by a verifier (validity)."""

    dtype = torch.int64
    has_verifier = True
    sample_metrics = TOKEN_SAMPLE_METRICS
    vocab_size: int

    @property
    def storage_dtype(self) -> torch.dtype:
        return smallest_int_dtype(self.vocab_size)

    def reference(self) -> dict[str, float]:
        """The truth's own held-out NLL, and that of the uniform model over the vocabulary (T log V): a model
        that has learned nothing sits at the baseline, a perfect one at the reference."""
        return super().reference() | {"baseline_nll": self.item_shape[0] * math.log(self.vocab_size)}

    def to_text(self, items: torch.Tensor) -> list[str]:
        """Token ids of ``items (..., T)`` (row-major), space-separated."""
        return [" ".join(map(str, row)) for row in items.reshape(-1, items.shape[-1]).tolist()]
