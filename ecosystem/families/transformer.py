"""Tiny causal transformer language models, batched over developers.

Every developer owns a GPT (Radford et al., "Language models are unsupervised multitask learners", 2019),
laid out as in Karpathy's nanoGPT ``model.py``: token and position embeddings, ``layers`` pre-LayerNorm
blocks of causal self-attention (``heads`` heads) and a 4x GELU MLP, a final LayerNorm and an untied linear
head over the ``V`` tokens (the extra embedding row ``V`` is BOS, read but never predicted). No biases.

All developers' weights are stacked along a leading developer dimension ``N`` and applied with batched
matmuls (``torch.bmm``), so one kernel call serves a whole block of developers. Training runs one AdamW
(Loshchilov & Hutter, ICLR 2019) over the stacked weights; the developers' parameters are disjoint and AdamW
is elementwise, so this is exactly N separate optimizers (the tests hold it to the numbers of N separate
``nn.Module``s with their own optimizers, written independently in ``tests/reference/gpt.py``).

Memory is what makes batching slow on CPU: a tensor above glibc's
mmap threshold is mapped and unmapped on every step, and a freed heap is trimmed, so each step pays page
faults. Hence developers go through in blocks whose widest activation stays within a 16 MiB chunk, the
allocator is asked to keep freed memory (``keep_freed_memory``), and the LM head and its cross-entropy are
fused (``_HeadLoss``) so the V-wide logits of a whole block never exist at once. On the 2-core CPU, for
N = 64 tiny models, page faults had taken a third of a step and the unfused head a further tenth; blocks of
64–256 beat blocks of 16 by ~20% (``python benchmarks/train_batched.py --blocks 16,32,64,128``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

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
from ecosystem.scenario import TrainSpec, TransformerFamilySpec
from ecosystem.worlds.base import World


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse rather than give it back to the kernel (mallopt(3)).

    A training step allocates and frees megabytes of activations per block of developers; by default glibc
    unmaps large blocks and trims the heap, so every step pays page faults to get the memory back (a third
    of the step at N = 64 on the 2-core CPU, measured with benchmarks/train_batched.py). Blocks up to 32 MiB
    come from the heap, which keeps up to 1 GiB of free memory. Process-wide; a no-op without glibc.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 1 << 30)


@dataclass
class TransformerState:
    """The stacked weights of N developers' models; matrices are ``(in, out)``, used as ``x @ W``."""

    wte: torch.Tensor  # (N, V+1, C) token embeddings, row V = BOS
    wpe: torch.Tensor  # (N, T, C) position embeddings
    ln_1: torch.Tensor  # (N, L, C) LayerNorm gains before attention
    c_attn: torch.Tensor  # (N, L, C, 3C) query, key, value projections
    attn_proj: torch.Tensor  # (N, L, C, C)
    ln_2: torch.Tensor  # (N, L, C) LayerNorm gains before the MLP
    c_fc: torch.Tensor  # (N, L, C, 4C)
    mlp_proj: torch.Tensor  # (N, L, 4C, C)
    ln_f: torch.Tensor  # (N, C)
    lm_head: torch.Tensor  # (N, C, V)

    @property
    def n(self) -> int:
        return self.wte.shape[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def layers(self) -> list[tuple[torch.Tensor, ...]]:
        """Each block's weights (``LAYER_FIELDS``, each ``(N, ...)``). ``unbind``, not indexing: its backward
        is one stack, where each index's backward would fill a zero tensor of the whole stacked weight."""
        return list(zip(*(getattr(self, name).unbind(1) for name in LAYER_FIELDS), strict=True))

    def select(self, index: slice | int | torch.Tensor) -> TransformerState:
        """The developers ``index`` (a slice or an index tensor keeps the leading dimension, an int drops it)."""
        return TransformerState(**{k: v[index] for k, v in self.tensors().items()})

    @staticmethod
    def stack(parts: list[TransformerState]) -> TransformerState:
        """Concatenate blocks of developers (detached)."""
        names = parts[0].tensors()
        return TransformerState(**{k: torch.cat([getattr(p, k).detach() for p in parts]) for k in names})

    def where(self, keep: torch.Tensor, other: TransformerState) -> TransformerState:
        """Developer-wise choice: this state's weights where ``keep (N,)`` is true, ``other``'s elsewhere."""
        return TransformerState(
            **{
                k: torch.where(keep.view(-1, *[1] * (v.dim() - 1)), v, getattr(other, k))
                for k, v in self.tensors().items()
            }
        )


LAYER_FIELDS = ("ln_1", "c_attn", "attn_proj", "ln_2", "c_fc", "mlp_proj")  # stacked (N, L, ...)


def parameter_count(spec: TransformerFamilySpec, vocab_size: int, seq_len: int) -> int:
    """Weights of one developer's model."""
    c, v = spec.d_model, vocab_size
    return (v + 1) * c + seq_len * c + spec.layers * (12 * c * c + 2 * c) + c + c * v


def adamw(params: list[torch.Tensor], lr: float) -> torch.optim.AdamW:
    """AdamW with torch's defaults (β = (0.9, 0.999), weight decay 0.01 on every weight), fused into one
    kernel where the device supports it."""
    return torch.optim.AdamW(params, lr=lr, fused=True)


# ── the batched model: functions of the stacked weights ───────────────────────────────────────────────


def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Each developer's ``x @ W``: ``x (n, B, S, Cin)``, ``w (n, Cin, Cout)`` → ``(n, B, S, Cout)``."""
    n, b, s, _ = x.shape
    return torch.bmm(x.reshape(n, b * s, -1), w).view(n, b, s, -1)


def _residual(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Each developer's ``x + y @ W`` in one kernel: ``x (n, B, S, Cout)``, ``y (n, B, S, Cin)``. Under
    autocast the sum is taken apart, so that the residual stream stays float32 (baddbmm would round it)."""
    if torch.is_autocast_enabled(x.device.type):
        return x + _linear(y, w)
    n, b, s, _ = y.shape
    return torch.baddbmm(x.reshape(n, b * s, -1), y.reshape(n, b * s, -1), w).view(n, b, s, -1)


def _normed_linear(x: torch.Tensor, gain: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Each developer's ``LayerNorm(x; gain) @ W``, the gain ``(n, Cin)`` folded into ``W (n, Cin, Cout)``:
    (x̂ ⊙ g) W = x̂ (diag(g) W), which scales the small weight matrix instead of the activations (and spares
    the backward pass an activation-sized product and reduction)."""
    return _linear(F.layer_norm(x, x.shape[-1:]), gain[:, :, None] * w)


ATTENTION_BATCH = 1 << 15  # sequences per attention call: some CUDA kernels put the batch in a grid dimension < 65536


def _attention(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """Causal self-attention of ``qkv (n, B, S, 3C)`` (queries, keys, values of each position): ``(n, B, S, C)``,
    by SDPA on 4-D ``(n·B, heads, S, head size)`` (faster than with the extra developer dimension), in pieces
    of at most ``ATTENTION_BATCH`` sequences, which older torch releases need on CUDA."""
    n, b, s, c3 = qkv.shape
    c = c3 // 3
    q, k, v = (z.view(n * b, s, heads, c // heads).transpose(1, 2) for z in qkv.split(c, dim=-1))
    if q.shape[0] <= ATTENTION_BATCH:
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        parts = zip(q.split(ATTENTION_BATCH), k.split(ATTENTION_BATCH), v.split(ATTENTION_BATCH), strict=True)
        y = torch.cat([F.scaled_dot_product_attention(*part, is_causal=True) for part in parts])
    return y.transpose(1, 2).reshape(n, b, s, c)  # (n·B, H, S, hs) -> (n, B, S, C)


def _evaluation_attention(
    x: torch.Tensor, gain: torch.Tensor, c_attn: torch.Tensor, attn_proj: torch.Tensor, heads: int
) -> torch.Tensor:
    """``x`` plus its causal self-attention block (LayerNorm with ``gain``, ``c_attn``, attention,
    ``attn_proj``) for evaluation on the CPU: ``x (n, B, S, C)`` → ``(n, B, S, C)``.

    Head by head, with batched matmuls only: each head's queries, keys and values come out of their own
    columns of ``c_attn`` already laid out as ``(n·B, S, hs)``, and each head's output goes through its own
    rows of ``attn_proj`` into the residual stream, so no head is copied out or back. For a few dozen
    positions and 16-wide heads SDPA's flash kernel is slower than writing the scores out (held-out NLL of
    256 developers 10% faster), and splitting the heads in place a further 3% (the block alone 6%).
    """
    n, b, s, c = x.shape
    hs = c // heads
    normed = F.layer_norm(x, x.shape[-1:]).view(n, b * s, c)
    w = gain[:, :, None] * c_attn  # (n, C, 3C)
    mask = torch.full((s, s), -math.inf, device=x.device).triu_(1)
    out = x.reshape(n, b * s, c)
    for h in range(0, c, hs):
        q, k, v = (torch.bmm(normed, w[:, :, o + h : o + h + hs]).view(n * b, s, hs) for o in (0, c, 2 * c))
        scores = torch.baddbmm(mask, q, k.transpose(1, 2), alpha=hs**-0.5)  # (n·B, S, S)
        y = torch.bmm(torch.softmax(scores, dim=-1), v).view(n, b * s, hs)
        if torch.is_autocast_enabled(x.device.type):  # the residual stream stays float32 (see _residual)
            out = out + torch.bmm(y, attn_proj[:, h : h + hs])
        else:
            out = torch.baddbmm(out, y, attn_proj[:, h : h + hs])
    return out.view(n, b, s, c)


def _decoding_attention(qkv: torch.Tensor, cache: torch.Tensor, t: int, heads: int) -> torch.Tensor:
    """One decoding step's attention: ``qkv (n, B, 1, 3C)`` at position ``t``, ``cache (2, T, C, n·B)`` this
    layer's keys and values so far, with the sequences innermost; stores this step's and returns ``(n, B, 1, C)``.

    A decoding query meets at most T keys, so the work is a product per (sequence, head) of a 1 × hs row with
    an hs × t matrix: memory-bound. With the sequences as the innermost, contiguous dimension every operation
    is one vectorized pass over the cache (SDPA walks each sequence's tiny matrices one by one, and slicing
    a ``(…, T, hs)`` cache to ``t`` makes it copy them): on the 2-core CPU, decoding 128 sequences for each of
    256 developers took half the time of SDPA on a ``(sequences, heads, T, hs)`` cache.
    """
    n, b, _, c3 = qkv.shape
    c, m, hs = c3 // 3, n * b, c3 // 3 // heads
    columns = qkv.reshape(m, c3).T  # (3C, n·B): a view
    cache[:, t] = columns[c:].view(2, c, m)  # this step's keys and values
    q = columns[:c].contiguous() * hs**-0.5  # (C, n·B)
    keys, values = cache[0, : t + 1], cache[1, : t + 1]  # each (t+1, C, n·B), contiguous
    w = torch.softmax((keys * q).view(t + 1, heads, hs, m).sum(2), dim=0)  # (t+1, H, n·B)
    y = (values.view(t + 1, heads, hs, m) * w[:, :, None]).sum(0)  # (H, hs, n·B)
    return y.view(c, m).T.reshape(n, b, 1, c)


def _block(
    x: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    heads: int,
    cache: torch.Tensor | None,
    layer: int,
    t0: int,
) -> torch.Tensor:
    """One pre-LN transformer block with ``weights`` (one layer's ``LAYER_FIELDS``, each ``(n, ...)``) on
    ``x (n, B, S, C)`` at positions ``t0 .. t0+S-1``.

    Without a cache the block sees the whole sequence under a causal mask (SDPA where gradients are needed
    or on a GPU, :func:`_evaluation_attention` otherwise); with ``cache (L, 2, T, C, n·B)`` it decodes one
    position (S = 1): it stores this step's keys and values at ``layer`` and attends to every position so
    far (:func:`_decoding_attention`).
    """
    ln_1, c_attn, attn_proj, ln_2, c_fc, mlp_proj = weights
    if cache is not None:
        x = _residual(x, _decoding_attention(_normed_linear(x, ln_1, c_attn), cache[layer], t0, heads), attn_proj)
    elif torch.is_grad_enabled() or x.is_cuda:
        x = _residual(x, _attention(_normed_linear(x, ln_1, c_attn), heads), attn_proj)
    else:
        x = _evaluation_attention(x, ln_1, c_attn, attn_proj, heads)
    h = F.gelu(_normed_linear(x, ln_2, c_fc))  # (n, B, S, 4C)
    return _residual(x, h, mlp_proj)


def hidden(
    p: TransformerState, inputs: torch.Tensor, heads: int, cache: torch.Tensor | None = None, t0: int = 0
) -> torch.Tensor:
    """Final hidden states ``(n, B, S, C)`` (after the last LayerNorm) of ``inputs (n, B, S)`` (BOS first)
    at positions ``t0 ..``."""
    n, _, s = inputs.shape
    rows, c = p.wte.shape[1:]
    offset = torch.arange(n, device=inputs.device).view(n, 1, 1) * rows  # each developer's own table
    table, index = p.wte.reshape(n * rows, c), inputs + offset
    if inputs.is_cuda:  # the embedding's sort-based backward is deterministic; index_add's atomics are not
        x = F.embedding(index, table)
    else:  # on CPU index_select's backward (one index_add) is faster than the embedding's sorting kernel
        x = table.index_select(0, index.flatten()).view(*inputs.shape, c)
    x = x + p.wpe[:, None, t0 : t0 + s]  # (n, B, S, C)
    for layer, weights in enumerate(p.layers()):
        x = _block(x, weights, heads, cache, layer, t0)
    # The last gain multiplies the activations: folded into the head it would scale a (C, V) matrix.
    return F.layer_norm(x, x.shape[-1:]) * p.ln_f[:, None, None, :]


def forward(
    p: TransformerState, inputs: torch.Tensor, heads: int, cache: torch.Tensor | None = None, t0: int = 0
) -> torch.Tensor:
    """Next-token logits ``(n, B, S, V)`` of ``inputs (n, B, S)`` (BOS first) at positions ``t0 ..``."""
    return _linear(hidden(p, inputs, heads, cache, t0), p.lm_head)


def token_losses(p: TransformerState, tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """−log p(x_t | x_<t) of every token of ``tokens (n, B, T)``: ``(n, B, T)``."""
    logits = forward(p, shift_right(tokens, p.wte.shape[1] - 1), heads).float()  # (n, B, T, V)
    return F.cross_entropy(logits.flatten(0, 2), tokens.flatten(), reduction="none").view(tokens.shape)


_TINY = 1e-30  # probabilities below this lose digits in float32 (its normal range ends at 1.2e-38)


class _HeadLoss(torch.autograd.Function):
    """Each developer's mean next-token cross-entropy through the LM head, its gradient made in the same pass.

    ``h (n, M, C)`` final hidden states, ``w (n, C, V)`` head weights, ``target (n, M)`` → ``(n,)``. The
    gradient of a mean cross-entropy with respect to the logits is (softmax − onehot) / M (Bishop, "Pattern
    recognition and machine learning", 2006, §4.3.4), so ``chunk`` developers at a time the V-wide logits
    are made, turned into that gradient by one softmax and multiplied back into the gradients of ``h`` and ``w``
    while they are still in cache, instead of being written out for the whole block and read twice more by
    a separate softmax and its backward pass.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, h: torch.Tensor, w: torch.Tensor, target: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        grad_h, grad_w = torch.empty_like(h), torch.empty_like(w)
        target = target[:, :, None]  # (n, M, 1)
        p_t = h.new_empty(target.shape)  # each token's probability
        minus_one = h.new_full((min(chunk, h.shape[0]), *target.shape[1:]), -1.0)
        for i0, i1 in spans(h.shape[0], chunk):
            t = target[i0:i1]  # (k, M, 1)
            p = torch.softmax(torch.bmm(h[i0:i1], w[i0:i1]), dim=-1)  # (k, M, V): max, exp, sum, divide at once
            torch.gather(p, -1, t, out=p_t[i0:i1])
            p.scatter_add_(-1, t, minus_one[: i1 - i0])  # softmax − onehot
            torch.bmm(p, w[i0:i1].transpose(1, 2), out=grad_h[i0:i1])  # (k, M, C)
            torch.bmm(h[i0:i1].transpose(1, 2) / h.shape[1], p, out=grad_w[i0:i1])  # (k, C, V), the mean's 1/M
        token_loss = -p_t.log()  # (n, M, 1)
        for i in (p_t < _TINY).any(2).any(1).nonzero().flatten().tolist():  # underflow, rare: recompute exactly
            z = h[i] @ w[i]  # (M, V)
            token_loss[i] = torch.logsumexp(z, -1, keepdim=True) - z.gather(-1, target[i])
        loss = token_loss.mean((1, 2))
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        grad_h, grad_w = ctx.saved_tensors
        # In place (autograd's version check refuses a second backward through the scaled tensors). The head's
        # gradient already holds the mean's 1/M; an upstream gradient of ones (loss.sum().backward()) leaves
        # it as it is, sparing a pass over a (n, C, V) tensor.
        grad_h.mul_(grad[:, None, None] / grad_h.shape[1])
        if not bool((grad == 1).all()):
            grad_w.mul_(grad[:, None, None])
        return grad_h, grad_w, None, None


def _autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Mixed precision for a bfloat16 family (weights and optimizer stay float32); float32 runs as is."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


class Trainer:
    """Training of all developers at once: one AdamW over their stacked weights, split into blocks.

    ``step(tokens (N, B, T))`` takes one optimizer step of every developer on its own batch and returns
    each developer's mean token loss before the step ``(N,)``; ``state()`` gives the weights.
    """

    def __init__(self, family: TransformerFamily, state: TransformerState) -> None:
        self.heads, self.dtype = family.spec.heads, family.compute_dtype
        self.head_chunk = family.head_chunk
        self.spans = spans(state.n, family.block)
        self.blocks = [
            TransformerState(
                **{k: v.detach().clone().requires_grad_() for k, v in state.select(slice(*s)).tensors().items()}
            )
            for s in self.spans
        ]
        self.optimizer = adamw([w for blk in self.blocks for w in blk.tensors().values()], family.train.lr)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        losses = []
        for (n0, n1), params in zip(self.spans, self.blocks, strict=True):
            x = tokens[n0:n1]  # (nb, B, T)
            with _autocast(x.device, self.dtype):
                h = hidden(params, shift_right(x, params.wte.shape[1] - 1), self.heads)  # (nb, B, T, C)
            loss = _HeadLoss.apply(h.flatten(1, 2).float(), params.lm_head, x.flatten(1), self.head_chunk)  # (nb,)
            # Each developer's weights get the gradient of its own mean loss only.
            loss.sum().backward()
            losses.append(loss.detach())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return torch.cat(losses)

    def state(self) -> TransformerState:
        return TransformerState.stack(self.blocks)


def draw_batches(weights: torch.Tensor, steps: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of each developer's training items, ``(N, steps, batch)``, drawn ∝ ``weights (N, B)`` with
    replacement, all up front (a developer with no data draws uniformly and is discarded later)."""
    n = weights.shape[0]
    usable = torch.where((weights > 0).any(1, keepdim=True), weights, torch.ones_like(weights)).float()
    return torch.multinomial(usable, steps * batch, replacement=True, generator=generator).view(n, steps, batch)


class TransformerFamily:
    """Tiny causal LMs of every developer, trained and sampled together."""

    kind = "transformer"
    additive = False  # no fit from running statistics (see Family.additive)

    def __init__(
        self,
        spec: TransformerFamilySpec,
        vocab_size: int,
        seq_len: int,
        train: TrainSpec,
        device: torch.device,
    ) -> None:
        self.spec, self.train, self.device = spec, train, torch.device(device)
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.compute_dtype = getattr(torch, spec.dtype)
        self.chunk = chunk_elements(self.device)
        tokens = train.batch * seq_len  # per developer and training step
        # Developers per training block. On CPU the widest activation, the MLP's (nb, B, T, 4C), stays within
        # a chunk (below glibc's mmap threshold; blocks of 64-256 were fastest). On a GPU the chunk is a
        # memory budget for everything autograd keeps for the backward pass: about 5.7, 23 and 58 times
        # that activation for 1, 4 and 8 layers (counted with saved-tensor hooks), hence 7L + 2.
        kept = 1 if self.device.type == "cpu" else 7 * spec.layers + 2
        self.block = max(1, self.chunk // (tokens * 4 * spec.d_model * kept))
        self.eval_block = max(1, self.chunk // (tokens * 4 * spec.d_model))  # no backward pass: nothing kept
        # Developers whose logits the fused head loss makes at once: on CPU about 3 MiB, near the cores' L2
        # caches (2 MiB together); 2, 3, 4 and 6 MiB were within 5% of each other at N = 64 and 256.
        head_elements = 3 << 18 if self.device.type == "cpu" else self.chunk
        self.head_chunk = max(1, head_elements // (tokens * vocab_size))
        if self.device.type == "cpu":
            keep_freed_memory()

    def init(self, n: int, generator: torch.Generator) -> TransformerState:
        """GPT-2 initialisation as in nanoGPT: N(0, 0.02) weights, residual projections scaled by
        1/√(2L), unit LayerNorm gains."""
        c, layers, v = self.spec.d_model, self.spec.layers, self.vocab_size

        def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
            return torch.randn((n, *shape), generator=generator, device=self.device) * std

        def ones(*shape: int) -> torch.Tensor:
            return torch.ones((n, *shape), device=self.device)

        residual = 0.02 / math.sqrt(2 * layers)
        return TransformerState(
            wte=normal(v + 1, c),
            wpe=normal(self.seq_len, c),
            ln_1=ones(layers, c),
            c_attn=normal(layers, c, 3 * c),
            attn_proj=normal(layers, c, c, std=residual),
            ln_2=ones(layers, c),
            c_fc=normal(layers, c, 4 * c),
            mlp_proj=normal(layers, 4 * c, c, std=residual),
            ln_f=ones(c),
            lm_head=normal(c, v),
        )

    def trainer(self, state: TransformerState) -> Trainer:
        return Trainer(self, state)

    def fit(
        self,
        state: TransformerState,
        items: torch.Tensor,
        weights: torch.Tensor,
        generator: torch.Generator,
    ) -> TransformerState:
        return self.train_losses(state, items, weights, generator)[0]

    def train_losses(
        self,
        state: TransformerState,
        items: torch.Tensor,
        weights: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[TransformerState, torch.Tensor]:
        """``fit``, also returning each developer's loss at every step ``(N, steps)``.

        ``train.steps`` steps of ``train.batch`` sequences of ``items (N, B, T)`` drawn ∝ ``weights (N, B)``,
        from the previous weights or, with ``train.from_scratch``, from fresh ones; a developer without data
        keeps its previous model.
        """
        n, _, t = items.shape
        start = self.init(n, generator) if self.train.from_scratch else state
        order = draw_batches(weights, self.train.steps, self.train.batch, generator)  # (N, steps, batch)
        trainer = self.trainer(start)
        losses = []
        for s in range(self.train.steps):
            tokens = items.gather(1, order[:, s, :, None].expand(-1, -1, t))  # (N, batch, T)
            losses.append(trainer.step(tokens))
        active = (weights > 0).any(1)  # (N,)
        return trainer.state().where(active, state), torch.stack(losses, dim=1)

    def sample(
        self,
        state: TransformerState,
        k: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``k`` sequences per developer ``(N, k, T)``; ``prompts (N, k, Tp)`` fixes their first tokens."""
        u = uniforms(state.n, k, self.seq_len, generator)
        return self._decode(state, u, temperature, top_p, prompts)

    @torch.no_grad()
    def _decode(
        self,
        state: TransformerState,
        u: torch.Tensor,
        temperature: float,
        top_p: float,
        prompts: torch.Tensor | None,
    ) -> torch.Tensor:
        """Autoregressive decoding with a key/value cache, a chunk of developers at a time."""
        n, k, t_len = u.shape
        c, heads, layers = self.spec.d_model, self.spec.heads, self.spec.layers
        out = torch.empty((n, k, t_len), dtype=torch.long, device=u.device)
        per_developer = k * max(2 * layers * t_len * c, self.vocab_size, 4 * c)  # the cache or one step's logits
        for n0, n1 in spans(n, max(1, self.chunk // per_developer)):
            p = state.select(slice(n0, n1))
            cache = torch.empty((layers, 2, t_len, c, (n1 - n0) * k), device=u.device)
            token = torch.full((n1 - n0, k), self.vocab_size, dtype=torch.long, device=u.device)  # BOS
            for t in range(t_len):
                with _autocast(u.device, self.compute_dtype):
                    logits = forward(p, token[:, :, None], heads, cache, t)[:, :, 0].float()  # (nb, k, V)
                prompt = None if prompts is None else prompts[n0:n1]
                token = force_prompt(sample_next(logits, u[n0:n1, :, t], temperature, top_p), prompt, t)
                out[n0:n1, :, t] = token
        return out

    def _item_chunk(self, n: int) -> int:
        """Sequences per developer per chunk so that the largest activation stays within ``self.chunk``."""
        width = max(self.vocab_size, 4 * self.spec.d_model)
        return max(1, self.chunk // (n * self.seq_len * width))

    @torch.no_grad()
    def log_prob(self, state: TransformerState, items: torch.Tensor) -> torch.Tensor:
        """Σ_t log p(x_t | x_<t) of ``items (N, B, T)`` under each developer's model: ``(N, B)``."""
        out = torch.empty(items.shape[:2], device=items.device)
        for n0, n1 in spans(state.n, self.eval_block):
            p = state.select(slice(n0, n1))
            for b0, b1 in spans(items.shape[1], self._item_chunk(n1 - n0)):
                with _autocast(items.device, self.compute_dtype):
                    losses = token_losses(p, items[n0:n1, b0:b1], self.spec.heads)  # (nb, b, T)
                out[n0:n1, b0:b1] = -losses.sum(-1)
        return out

    describe_names = ()
    probe_limited = True  # compared on `metrics.probes` held-out sequences (the cost is pairs × positions × V)

    truth_names = ()  # nothing beyond `distance` to say about the truth

    def truth(self, state, world: World) -> dict[str, torch.Tensor]:
        return {}

    def describe(self, state: TransformerState) -> dict[str, torch.Tensor]:
        return {}

    def distance(self, state: TransformerState, world: World) -> torch.Tensor:
        """No closed-form distance to the truth for a neural model: NaN (held-out NLL measures quality)."""
        return torch.full((state.n,), math.nan, device=state.wte.device)

    def divergence(
        self, state: TransformerState, probe: torch.Tensor, i: torch.Tensor, j: torch.Tensor
    ) -> torch.Tensor:
        """Mean over the positions of ``probe (P, T)`` of the JSD of next-token distributions, per pair ``(P,)``
        (:meth:`heldout_measures` without the log-probabilities)."""
        every = torch.arange(len(probe), device=probe.device)
        return self.heldout_measures(state, probe, state.n, False, every, i, j)[1]

    @torch.no_grad()
    def heldout_measures(
        self,
        state: TransformerState,
        heldout: torch.Tensor,
        n: int,
        quality: bool,
        probe: torch.Tensor | None,
        i: torch.Tensor,
        j: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """One pass of every developer's model over the held-out sequences ``heldout (H, T)`` for what is asked
        (see ``Family.heldout_measures``): the log-probability of each sequence ``(N, H)`` when ``quality``, and
        the mean over the positions of the sequences ``heldout[probe]`` of the JSD of the next-token
        distributions of ``i[p]`` and ``j[p]`` ``(P,)``, both from the same logits.

        The held-out sequences go in pieces holding a bounded number of probe sequences, whose distributions
        under every developer in some pair stay within a chunk, so memory is bounded for any N; each piece's
        pairs are compared (:func:`pair_jsd`) once all developers have read it. Without ``quality`` only the
        probe sequences are read, and only by the developers in some pair.
        """
        dev, v = heldout.device, self.vocab_size
        t_len = heldout.shape[1]
        if not quality and probe is None:
            return None, None
        rows = torch.arange(len(heldout), device=dev)  # the held-out rows read
        involved = torch.empty(0, dtype=torch.long, device=dev)
        if probe is not None:
            involved, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
            a, b = inverse[: len(i)], inverse[len(i) :]
            if not quality:  # only the probe, and with sampled pairs only their developers
                rows = probe
                if len(involved) < n:
                    state, n, involved = state.select(involved), len(involved), torch.arange(len(involved), device=dev)
        member = torch.full((n,), -1, dtype=torch.long, device=dev)  # each developer's row among the involved
        member[involved] = torch.arange(len(involved), device=dev)
        in_probe = torch.zeros(len(heldout), dtype=torch.long, device=dev)
        if probe is not None:
            in_probe[probe] = 1
        logp = torch.empty((n, len(heldout)), device=dev) if quality else None
        out = torch.zeros(len(i), device=dev) if probe is not None else None
        per_piece = max(1, self.chunk // (max(1, len(involved)) * t_len * v))  # probe sequences per piece
        is_probe = in_probe[rows]
        before = is_probe.cumsum(0) - is_probe  # probe sequences before each row
        for part in rows.split(torch.unique_consecutive(before // per_piece, return_counts=True)[1].tolist()):
            place = in_probe[part].cumsum(0) - 1  # a probe row's place among the piece's probe sequences
            k = int(in_probe[part].sum())
            probs = torch.empty((len(involved), k, t_len, v), device=dev)
            plogp = torch.empty((len(involved), k, t_len), device=dev)  # Σ p log p, from the log-probabilities
            for n0, n1 in spans(n, self.eval_block):
                reads = member[n0:n1] >= 0  # the block's developers in some pair
                if not quality and not bool(reads.any()):
                    continue
                p = state.select(slice(n0, n1))
                for b0, b1 in spans(len(part), self._item_chunk(n1 - n0)):
                    sub = part[b0:b1]
                    x = heldout[sub].expand(n1 - n0, -1, -1)  # (nb, b, T)
                    with _autocast(dev, self.compute_dtype):
                        logits = forward(p, shift_right(x, v), self.spec.heads)
                    logq = torch.log_softmax(logits.float(), dim=-1)  # (nb, b, T, V)
                    if logp is not None:
                        logp[n0:n1, sub] = logq.gather(-1, x[..., None]).sum((-2, -1))
                    keep = in_probe[sub] == 1
                    if k and bool(keep.any()):
                        chosen, into = logq[:, keep], member[n0:n1]  # (nb, k', T, V): the probe rows only
                        if not bool(reads.all()):
                            chosen, into = chosen[reads], into[reads]
                        where, chosen_p = (into[:, None], place[b0:b1][keep]), chosen.exp()
                        probs[where], plogp[where] = chosen_p, torch.linalg.vecdot(chosen_p, chosen)
            if k:
                weights = torch.full((k * t_len,), 1.0 / (len(probe) * t_len), device=dev)
                out += pair_jsd(probs.flatten(1, 2), weights, a, b, cache_elements(self.device), plogp.flatten(1))
        return logp, out
