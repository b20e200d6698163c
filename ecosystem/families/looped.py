"""One-model-at-a-time references for the batched token families.

The plain way to run N developers: N separate ``nn.Module`` GPTs (nanoGPT's ``model.py`` without biases),
each with its own AdamW, trained one after another; n-gram counts taken item by item. They start from the
same weights as the batched families (sliced from the stacked state), see the same data in the same order
and consume the same random numbers, so the batched code must reproduce their numbers — the tests check
it, and ``benchmarks/train_batched.py`` times the batched step against :class:`LoopedTrainer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecosystem.families.ngram import NgramFamily, NgramState
from ecosystem.families.tokens import force_prompt, sample_next, shift_right
from ecosystem.families.transformer import TransformerFamily, TransformerState, adamw


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d_model, 3 * d_model, bias=False)
        self.c_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, H, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hs)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model, bias=False)
        self.attn = CausalSelfAttention(d_model, heads)
        self.ln_2 = nn.LayerNorm(d_model, bias=False)
        self.c_fc = nn.Linear(d_model, 4 * d_model, bias=False)
        self.c_proj = nn.Linear(4 * d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class TinyGPT(nn.Module):
    """One developer's model, with the weights of developer ``i`` of a batched state."""

    def __init__(self, state: TransformerState, i: int, heads: int) -> None:
        super().__init__()
        p = state.select(i)
        rows, c = p.wte.shape
        seq_len, vocab = p.wpe.shape[0], p.lm_head.shape[1]
        self.wte = nn.Embedding(rows, c)
        self.wpe = nn.Embedding(seq_len, c)
        self.h = nn.ModuleList(Block(c, heads) for _ in range(p.ln_1.shape[0]))
        self.ln_f = nn.LayerNorm(c, bias=False)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.to(p.wte.device)
        with torch.no_grad():  # nn.Linear keeps (out, in): the transposes of the batched (in, out)
            self.wte.weight.copy_(p.wte)
            self.wpe.weight.copy_(p.wpe)
            for layer, block in enumerate(self.h):
                block.ln_1.weight.copy_(p.ln_1[layer])
                block.attn.c_attn.weight.copy_(p.c_attn[layer].T)
                block.attn.c_proj.weight.copy_(p.attn_proj[layer].T)
                block.ln_2.weight.copy_(p.ln_2[layer])
                block.c_fc.weight.copy_(p.c_fc[layer].T)
                block.c_proj.weight.copy_(p.mlp_proj[layer].T)
            self.ln_f.weight.copy_(p.ln_f)
            self.lm_head.weight.copy_(p.lm_head.T)

    def weights(self) -> TransformerState:
        """This model's weights in the batched layout, with a leading developer dimension of 1."""
        h = self.h
        weights = {
            "wte": self.wte.weight,
            "wpe": self.wpe.weight,
            "ln_1": torch.stack([b.ln_1.weight for b in h]),
            "c_attn": torch.stack([b.attn.c_attn.weight.T for b in h]),
            "attn_proj": torch.stack([b.attn.c_proj.weight.T for b in h]),
            "ln_2": torch.stack([b.ln_2.weight for b in h]),
            "c_fc": torch.stack([b.c_fc.weight.T for b in h]),
            "mlp_proj": torch.stack([b.c_proj.weight.T for b in h]),
            "ln_f": self.ln_f.weight,
            "lm_head": self.lm_head.weight.T,
        }
        return TransformerState(**{k: v.detach()[None] for k, v in weights.items()})

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, S, V)`` of the inputs ``idx (B, S)`` (BOS first)."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)  # (B, S, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of ``tokens (B, T)``."""
        logits = self.forward(shift_right(tokens, self.wte.num_embeddings - 1))
        return F.cross_entropy(logits.flatten(0, 1), tokens.flatten())


class LoopedTrainer:
    """N models with N optimizers, stepped one after another: the plain alternative to ``Trainer``.

    Each model has torch's default AdamW, or with ``fused`` the single-kernel AdamW the batched ``Trainer``
    uses (the same numbers; a stronger baseline for the benchmark).
    """

    def __init__(self, family: TransformerFamily, state: TransformerState, fused: bool = False) -> None:
        self.models = [TinyGPT(state, i, family.spec.heads) for i in range(state.n)]
        lr = family.train.lr
        self.optimizers = [
            adamw(list(m.parameters()), lr) if fused else torch.optim.AdamW(m.parameters(), lr=lr) for m in self.models
        ]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """One step of every model on its own batch ``tokens (N, B, T)``; the losses before it ``(N,)``."""
        losses = []
        for model, optimizer, x in zip(self.models, self.optimizers, tokens, strict=True):
            loss = model.loss(x)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
        return torch.stack(losses)

    def state(self) -> TransformerState:
        return TransformerState.stack([m.weights() for m in self.models])


class LoopedTransformerFamily(TransformerFamily):
    """The transformer family computed one model at a time (same initial weights, data order and random
    numbers as :class:`TransformerFamily`, whose bookkeeping it inherits)."""

    def trainer(self, state: TransformerState) -> LoopedTrainer:
        return LoopedTrainer(self, state)

    @torch.no_grad()
    def _decode(
        self,
        state: TransformerState,
        u: torch.Tensor,
        temperature: float,
        top_p: float,
        prompts: torch.Tensor | None,
    ) -> torch.Tensor:
        """nanoGPT's ``generate``: the whole prefix through the model at every step, no cache."""
        outputs = []
        for i in range(state.n):
            model = TinyGPT(state, i, self.spec.heads)
            idx = torch.full((u.shape[1], 1), self.vocab_size, dtype=torch.long, device=u.device)  # BOS
            for t in range(u.shape[2]):
                logits = model(idx)[:, -1]  # (k, V)
                prompt = None if prompts is None else prompts[i]
                token = force_prompt(sample_next(logits, u[i, :, t], temperature, top_p), prompt, t)
                idx = torch.cat([idx, token[:, None]], dim=1)
            outputs.append(idx[:, 1:])
        return torch.stack(outputs)

    @torch.no_grad()
    def log_prob(self, state: TransformerState, items: torch.Tensor) -> torch.Tensor:
        out = []
        for i, x in enumerate(items):
            logits = TinyGPT(state, i, self.spec.heads)(shift_right(x, self.vocab_size))  # (B, T, V)
            out.append(-F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(-1))
        return torch.stack(out)


class LoopedNgramFamily(NgramFamily):
    """The n-gram family counted item by item and sampled one developer and sequence at a time."""

    def _counts(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n, b, t_len = items.shape
        counts = torch.zeros((n, self.n_contexts, self.vocab_size), device=items.device)
        contexts = self.contexts(items)
        for i in range(n):
            for j in range(b):
                for t in range(t_len):
                    counts[i, contexts[i, j, t], items[i, j, t]] += weights[i, j]
        return counts

    def _decode(
        self,
        state: NgramState,
        u: torch.Tensor,
        temperature: float,
        top_p: float,
        prompts: torch.Tensor | None,
    ) -> torch.Tensor:
        n, k, t_len = u.shape
        out = torch.empty((n, k, t_len), dtype=torch.long, device=u.device)
        for i in range(n):
            for j in range(k):
                history: list[int] = []
                for t in range(t_len):
                    context = self.contexts(torch.tensor([*history, 0], device=u.device))[-1]
                    logits = state.logp[i].view(self.n_contexts, self.vocab_size)[context]  # (V,)
                    prompt = None if prompts is None else prompts[i, j]
                    token = force_prompt(sample_next(logits, u[i, j, t], temperature, top_p), prompt, t)
                    history.append(int(token))
                out[i, j] = torch.tensor(history)
        return out
