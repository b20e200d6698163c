"""A GPT as one ``nn.Module`` per model, trained with its own optimizer: the plain way to run N developers.

Karpathy's nanoGPT ``model.py`` without biases (Radford et al., "Language models are unsupervised multitask
learners", 2019): token and position embeddings, pre-LayerNorm blocks of causal self-attention and a 4x GELU
MLP, a final LayerNorm and an untied head over the ``V`` tokens; the embedding has one more row, BOS (id
``V``), which is read before the first token and never predicted. Attention is written out (nanoGPT's
path without flash attention) unless ``flash``. Each model has its own AdamW (Loshchilov & Hutter, ICLR
2019) with β = (0.9, 0.999), ε = 1e-8 and weight decay 0.01 on every weight.

Weights come in and go out as one model's tensors in the batched layout (matrices ``(in, out)``, the
layers stacked): ``wte (V+1, C)``, ``wpe (T, C)``, ``ln_1 (L, C)``, ``c_attn (L, C, 3C)``, ``attn_proj
(L, C, C)``, ``ln_2 (L, C)``, ``c_fc (L, C, 4C)``, ``mlp_proj (L, 4C, C)``, ``ln_f (C,)``, ``lm_head (C, V)``.
Training batches follow the protocol of :func:`draw_order`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tests.reference.sampling import draw, uniforms


@dataclass(frozen=True)
class GPTConfig:
    vocab: int  # V predicted tokens (the embedding has V + 1 rows)
    seq_len: int  # T
    d_model: int  # C
    layers: int  # L
    heads: int
    flash: bool = False  # torch's fused attention instead of the written-out one


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads, self.flash = config.heads, config.flash
        self.c_attn = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.c_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        mask = torch.tril(torch.ones(config.seq_len, config.seq_len, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, *mask.shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        hs = c // self.heads
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, hs).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
            att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
            y = F.softmax(att, dim=-1) @ v  # (B, nh, T, hs)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab + 1, config.d_model)
        self.wpe = nn.Embedding(config.seq_len, config.d_model)
        self.h = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.d_model, bias=False)
        self.lm_head = nn.Linear(config.d_model, config.vocab, bias=False)

    @classmethod
    def from_weights(cls, config: GPTConfig, weights: dict[str, torch.Tensor]) -> GPT:
        """A model holding copies of ``weights`` (one model's, in the batched layout of the module docstring)."""
        model = cls(config).to(weights["wte"].device)
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(_batched_view(weights, name))
        return model

    def weights(self) -> dict[str, torch.Tensor]:
        """This model's weights in the batched layout (detached copies)."""
        params = dict(self.named_parameters())
        out = {"wte": params["wte.weight"], "wpe": params["wpe.weight"], "ln_f": params["ln_f.weight"],
               "lm_head": params["lm_head.weight"].T}  # fmt: skip
        for batched, (module, transpose) in LAYERS.items():
            out[batched] = torch.stack([params[f"h.{i}.{module}.weight"] for i in range(self.config.layers)])
            if transpose:
                out[batched] = out[batched].transpose(1, 2)
        return {k: v.detach().clone() for k, v in out.items()}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, S, V)`` of the inputs ``idx (B, S)`` (BOS first)."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)  # (B, S, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """BOS followed by all tokens but the last: ``(B, T) -> (B, T)``."""
        bos = torch.full_like(tokens[:, :1], self.config.vocab)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of ``tokens (B, T)``."""
        logits = self(self.inputs(tokens))
        return F.cross_entropy(logits.reshape(-1, self.config.vocab), tokens.reshape(-1))

    @torch.no_grad()
    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """Σ_t log p(x_t | x_<t) of each sequence of ``tokens (B, T)``: ``(B,)``."""
        logp = F.log_softmax(self(self.inputs(tokens)), dim=-1)  # (B, T, V)
        return logp.gather(-1, tokens[..., None]).squeeze(-1).sum(-1)

    @torch.no_grad()
    def generate(
        self, u: list[list[float]], temperature: float = 1.0, top_p: float = 1.0, prompts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """nanoGPT's ``generate``: the whole prefix through the model for every token, one token per sequence
        drawn by :func:`tests.reference.sampling.draw` with the uniforms ``u[sequence][position]``;
        ``prompts (k, Tp)`` fixes the first tokens. Returns ``(k, T)``."""
        k, t_len = len(u), len(u[0])
        idx = torch.full((k, 1), self.config.vocab, dtype=torch.long, device=self.wte.weight.device)  # BOS
        for t in range(t_len):
            logits = self(idx)[:, -1].tolist()  # (k, V)
            if prompts is not None and t < prompts.shape[1]:
                nxt = prompts[:, t].tolist()
            else:
                nxt = [draw(logits[j], u[j][t], temperature, top_p) for j in range(k)]
            idx = torch.cat([idx, torch.tensor(nxt, device=idx.device)[:, None]], dim=1)
        return idx[:, 1:]


# batched layer name → (module inside block i, whether nn.Linear keeps it transposed)
LAYERS = {"ln_1": ("ln_1", False), "c_attn": ("attn.c_attn", True), "attn_proj": ("attn.c_proj", True),
          "ln_2": ("ln_2", False), "c_fc": ("mlp.c_fc", True), "mlp_proj": ("mlp.c_proj", True)}  # fmt: skip


def _batched_view(weights: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """The tensor of ``weights`` that the module's parameter ``name`` holds, in the module's layout."""
    top = {"wte.weight": "wte", "wpe.weight": "wpe", "ln_f.weight": "ln_f"}
    if name in top:
        return weights[top[name]]
    if name == "lm_head.weight":
        return weights["lm_head"].T
    _, layer, rest = name.split(".", 2)
    for batched, (module, transpose) in LAYERS.items():
        if rest == f"{module}.weight":
            w = weights[batched][int(layer)]
            return w.T if transpose else w
    raise KeyError(name)


def adamw(model: nn.Module, lr: float, fused: bool = False) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, fused=fused)


class Loop:
    """N models with N optimizers, stepped one after another (``fused``: torch's single-kernel AdamW)."""

    def __init__(self, config: GPTConfig, weights: list[dict[str, torch.Tensor]], lr: float, fused: bool = False):
        self.models = [GPT.from_weights(config, w) for w in weights]
        self.optimizers = [adamw(m, lr, fused) for m in self.models]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """One step of every model on its own batch ``tokens (N, B, T)``; the losses before it ``(N,)``."""
        losses = []
        for model, optimizer, x in zip(self.models, self.optimizers, tokens, strict=True):
            loss = model.loss(x)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)  # as nanoGPT: no gradient is kept between steps
            losses.append(loss.detach())
        return torch.stack(losses)


def draw_order(weights: torch.Tensor, steps: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """The training protocol's batches: item indices ``(N, steps, batch)`` drawn ∝ ``weights (N, B)`` with
    replacement, for all models in one ``torch.multinomial`` call (uniform for a model without data)."""
    has_data = (weights > 0).any(1, keepdim=True)
    usable = torch.where(has_data, weights, torch.ones_like(weights)).float()
    return torch.multinomial(usable, steps * batch, replacement=True, generator=generator).view(-1, steps, batch)


def train(
    config: GPTConfig,
    start: list[dict[str, torch.Tensor]],
    items: torch.Tensor,
    weights: torch.Tensor,
    steps: int,
    batch: int,
    lr: float,
    generator: torch.Generator,
) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """Train each model from ``start[i]`` on its items ``items[i] (B, T)`` drawn by :func:`draw_order`;
    returns the weights after training and the losses ``(N, steps)``."""
    order = draw_order(weights, steps, batch, generator)
    loop = Loop(config, start, lr)
    losses = [loop.step(torch.stack([items[i, order[i, s]] for i in range(len(start))])) for s in range(steps)]
    return [m.weights() for m in loop.models], torch.stack(losses, dim=1)


def sample(
    config: GPTConfig,
    weights: list[dict[str, torch.Tensor]],
    k: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_p: float = 1.0,
    prompts: torch.Tensor | None = None,
) -> torch.Tensor:
    """``k`` sequences of each model ``(N, k, T)``, with the uniforms of the sampling protocol."""
    u = uniforms(len(weights), k, config.seq_len, generator)
    return torch.stack([
        GPT.from_weights(config, w).generate(u[i], temperature, top_p, None if prompts is None else prompts[i])
        for i, w in enumerate(weights)
    ])
