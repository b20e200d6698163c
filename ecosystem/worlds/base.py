"""The ground-truth world: what human content looks like, and how to score any item exactly.

Every world is a small class deriving from :class:`World`, which states the whole protocol the ecosystem
uses and gives the answers a world without a notion answers (no verifier, no prompts, nothing to say
about samples). Items are tensors whose first dimension indexes items: continuous worlds use ``(B, D)``
float64 rows, token worlds ``(B, T)`` int64 sequences (stored in the pool in the smallest integer type,
``storage_dtype``). Fixed data (cluster means, regression truth, private data sets, the held-out set) comes
from the world's own generator, made at construction from the world seed; content sampled during a run
uses the run's generator passed in by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Batch:
    """Items with their labels: ``items (B, *item)``, ``concepts (B,)`` and ``communities (B,)``.

    ``communities`` is -1 where an item belongs to no community (private or public data).
    """

    items: torch.Tensor
    concepts: torch.Tensor
    communities: torch.Tensor

    def __len__(self) -> int:
        return self.items.shape[0]


@dataclass(frozen=True)
class Facts:
    """What a world reads off items once, when they enter the pool: ``concepts (B,)`` int64 (−1: none) and
    ``verified (B,)`` bool (True where the world has no verifier)."""

    concepts: torch.Tensor
    verified: torch.Tensor


class World:
    """The protocol of a world, with the defaults of a world that has no verifier and no prompts.

    Subclasses set ``kind``, ``item_shape``, ``dtype``, ``device``, ``n_concepts``, ``n_communities`` and
    implement ``sample``, ``originals``, ``public``, ``heldout``, ``log_prob`` and ``concept_of``.
    """

    kind: str
    item_shape: tuple[int, ...]  # shape of one item: (D,) or (T,)
    dtype: torch.dtype  # the dtype families work in
    device: torch.device
    n_concepts: int
    n_communities: int
    has_verifier: bool = False  # whether `verify` judges items (token worlds)
    sample_metrics: tuple[str, ...] = ()  # the metrics of `ecosystem.metrics` that apply to what models write
    pad_id: int | None = None  # the token that ends a sequence (EOS), for worlds whose items have one

    @property
    def storage_dtype(self) -> torch.dtype:
        """The dtype items are kept in by the pool (token worlds: the smallest integer type that holds them)."""
        return self.dtype

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fresh human items, one per entry of ``concepts (B,)``: ``(B, *item)``."""
        raise NotImplementedError

    def original(self, developer: int) -> Batch:
        """The fixed private real data set of one developer (its "original" data)."""
        raise NotImplementedError

    def originals(self) -> Batch:
        """Every developer's private data set, developer after developer; all have the same size."""
        raise NotImplementedError

    def public(self) -> Batch:
        """The fixed public real data set shared by every developer (may be empty)."""
        raise NotImplementedError

    def heldout(self) -> Batch:
        """The fixed held-out human data used to measure quality, labelled by concept and community."""
        raise NotImplementedError

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """Exact log-probability (density) of ``items (..., *item)`` under the true human distribution."""
        raise NotImplementedError

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        """The concept of each item ``(..., *item) -> (...)`` (the most likely one for continuous worlds)."""
        raise NotImplementedError

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        """Whether each item is correct ``(..., *item) -> (...) bool``; True everywhere without a verifier."""
        return torch.ones(items.shape[: items.dim() - len(self.item_shape)], dtype=torch.bool, device=items.device)

    def facts(self, items: torch.Tensor) -> Facts:
        """Concept and verdict of ``items (B, *item)``, read once when they enter the pool."""
        return Facts(self.concept_of(items), self.verify(items))

    def prompts(self, k: int, generator: torch.Generator) -> torch.Tensor | None:
        """What each developer conditions its ``k`` published items on ``(N, k, ...)``, or None."""
        return None

    def prefixes(self, source: str, tokens: int, k: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Prompts of ``k`` items for each of ``n`` developers: ``(N, k, tokens)``, the first ``tokens``
        positions of sequences drawn uniformly with replacement from ``source`` — ``private``: developer
        d's own private set (``original(d)``), ``public`` or ``heldout``: the shared sets. One draw of
        ``(N, k)`` indices from ``generator`` for all developers (Vu, Reeves & Wenger 2025 prompt each model
        with its own private data)."""
        if source == "private":
            items = self.originals().items.view(n, -1, *self.item_shape)  # (N, S, T)
        else:
            shared = (self.public() if source == "public" else self.heldout()).items  # (S, T)
            items = shared.expand(n, *shared.shape)  # (N, S, T)
        items = items[..., :tokens].to(generator.device)  # (N, S, Tp)
        idx = torch.randint(items.shape[1], (n, k), generator=generator, device=generator.device)  # (N, k)
        return items.gather(1, idx[..., None].expand(n, k, tokens))  # (N, k, Tp)

    def reference(self) -> dict[str, float]:
        """Ground truth for the figures: ``reference_nll``, the true distribution's own NLL of the held-out set
        (nats per item: the floor a model's held-out NLL approaches), and ``baseline_nll``, that of a model
        that has learned nothing (NaN where there is none)."""
        heldout = self.heldout().items
        return {"reference_nll": float(-self.log_prob(heldout).double().mean()), "baseline_nll": math.nan}

    def to_text(self, items: torch.Tensor) -> list[str] | None:
        """Readable text of ``items (..., *item)`` (row-major), or None where items are not text (continuous
        worlds)."""
        return None

    def artifacts(self) -> dict[str, str]:
        """Files the world adds to the run folder (name → text) so that the run describes itself."""
        return {}

    def kl_ngram(self, logp: torch.Tensor) -> torch.Tensor | None:
        """Exact KL(true ‖ n-gram model) per developer where the world can give it, else None."""
        return None
