"""True boolean expressions over True/False/not/and/or: the ``logic`` world (Briesch et al. 2023).

Tokens: ``PAD`` (= EOS, id 0), ``True``, ``False``, ``not``, ``and``, ``or``, ``(``, ``)``. An item is an
expression followed by PAD up to ``seq_len``; the first PAD ends it (EOS).

**Reading** (:func:`parse`, a recursive-descent parser, never Python ``eval``): Python's precedence,
``not`` > ``and`` > ``or``, both binary operators left-associative::

    or_expr  := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | atom
    atom     := "True" | "False" | "(" or_expr ")"

A parse tree is a leaf token, ``(NOT, child)`` or ``(AND|OR, left, right)``; parentheses add no node.
**Depth** is the height of that tree: a leaf has depth 1, ``not e`` has 1 + depth(e), ``a and b`` has
1 + max(depth(a), depth(b)). ``verify`` is "parses and evaluates to True".

**Writing** (the human distribution). Concept ``c`` is depth ``min_depth + c``. An expression of exact
depth ``d`` comes from the PCFG with one nonterminal per exact depth::

    E_1 → True | False                                  (1/2 each)
    E_e → not E_{e-1}                                   (1/3)
        | "(" E_a and E_b ")"  |  "(" E_a or E_b ")"      (1/3 each, × 1/(2e−3) for each (a, b) with
                                                         max(a, b) = e − 1; there are 2e − 3 such pairs)

so every and/or expression is written in parentheses (the written form of a tree is unique and
:func:`serialize` gives it), conditioned on evaluating to True and on fitting in ``seq_len`` tokens. The
conditioning is exact, not by rejection: a dynamic programme over (value, depth, length) gives the
probability mass ``W[v, e, ℓ]`` of all trees with that value, exact depth and length (an inside algorithm,
Baker 1979; Lari & Young 1990), and sampling walks down the tree choosing each production in proportion
to its mass. Hence ``log_prob`` is exact: log π_c + log p_PCFG(tree) − log Σ_{ℓ≤T} W[True, d, ℓ] for the
canonical written form of a True tree of depth d in range, −inf for anything else (other spellings of the
same expression, extra parentheses, tokens after the first PAD).

Briesch et al. use expressions of depth 1–5 that evaluate to True; this PCFG, its exact-depth concepts and
the parenthesisation are this module's choices.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

from ecosystem.scenario import CommunitySpec, LogicWorldSpec
from ecosystem.worlds.base import Facts
from ecosystem.worlds.tokens import TokenWorld

PAD, TRUE, FALSE, NOT, AND, OR, LPAR, RPAR = range(8)
TOKENS = ("<pad>", "True", "False", "not", "and", "or", "(", ")")
P_OP = 1.0 / 3.0  # each of not / and / or at an inner node
P_LEAF = 0.5  # True or False at a leaf

Tree = int | tuple  # a leaf token, (NOT, Tree) or (AND | OR, Tree, Tree)


class _Malformed(Exception):
    """Raised inside the parser; :func:`parse` turns it into None."""


def _content(tokens: Sequence[int]) -> list[int]:
    """The tokens before the first PAD (EOS)."""
    tokens = list(tokens)
    return tokens[: tokens.index(PAD)] if PAD in tokens else tokens


def _or_expr(seq: list[int], i: int) -> tuple[Tree, int]:
    left, i = _and_expr(seq, i)
    while i < len(seq) and seq[i] == OR:
        right, i = _and_expr(seq, i + 1)
        left = (OR, left, right)
    return left, i


def _and_expr(seq: list[int], i: int) -> tuple[Tree, int]:
    left, i = _not_expr(seq, i)
    while i < len(seq) and seq[i] == AND:
        right, i = _not_expr(seq, i + 1)
        left = (AND, left, right)
    return left, i


def _not_expr(seq: list[int], i: int) -> tuple[Tree, int]:
    if i < len(seq) and seq[i] == NOT:
        child, i = _not_expr(seq, i + 1)
        return (NOT, child), i
    return _atom(seq, i)


def _atom(seq: list[int], i: int) -> tuple[Tree, int]:
    if i < len(seq) and seq[i] in (TRUE, FALSE):
        return seq[i], i + 1
    if i < len(seq) and seq[i] == LPAR:
        inner, i = _or_expr(seq, i + 1)
        if i < len(seq) and seq[i] == RPAR:
            return inner, i + 1
    raise _Malformed


def parse(tokens: Sequence[int]) -> Tree | None:
    """The parse tree of the expression before the first PAD, or None for a syntax error."""
    seq = _content(tokens)
    try:
        tree, end = _or_expr(seq, 0)
    except _Malformed:
        return None
    return tree if end == len(seq) else None


def value(tree: Tree) -> bool:
    """Truth value of a parse tree."""
    if isinstance(tree, int):
        return tree == TRUE
    if tree[0] == NOT:
        return not value(tree[1])
    left, right = value(tree[1]), value(tree[2])
    return (left and right) if tree[0] == AND else (left or right)


def evaluate(tokens: Sequence[int]) -> bool | None:
    """Truth value of the expression before the first PAD, or None for a syntax error."""
    tree = parse(tokens)
    return None if tree is None else value(tree)


def depth(tree: Tree) -> int:
    """Height of a parse tree (a leaf has depth 1)."""
    return 1 if isinstance(tree, int) else 1 + max(depth(child) for child in tree[1:])


def serialize(tree: Tree) -> list[int]:
    """The canonical written form: every and/or expression in parentheses, nothing else."""
    if isinstance(tree, int):
        return [tree]
    if tree[0] == NOT:
        return [NOT, *serialize(tree[1])]
    return [LPAR, *serialize(tree[1]), tree[0], *serialize(tree[2]), RPAR]


def depth_and_log_prob(tree: Tree) -> tuple[int, float]:
    """Depth of a tree and log p_PCFG(tree | that depth): the sum of its productions' log-probabilities."""
    if isinstance(tree, int):
        return 1, math.log(P_LEAF)
    children = [depth_and_log_prob(child) for child in tree[1:]]
    e = 1 + max(d for d, _ in children)
    choice = P_OP if tree[0] == NOT else P_OP / (2 * e - 3)  # 2e − 3 depth pairs for and/or
    return e, math.log(choice) + sum(log_p for _, log_p in children)


def to_text(items: torch.Tensor) -> list[str]:
    """Human-readable expressions of ``items (..., T)`` (row-major), up to the first PAD."""
    rows = items.reshape(-1, items.shape[-1]).tolist()
    return [" ".join(TOKENS[t] if 0 <= t < len(TOKENS) else f"<{t}>" for t in _content(row)) for row in rows]


class LogicWorld(TokenWorld):
    """True boolean expressions of depth ``min_depth..max_depth`` padded to ``seq_len`` (module docstring).

    Concepts are depths: ``n_concepts = max_depth − min_depth + 1``.
    """

    kind = "logic"
    vocab_size = len(TOKENS)
    pad_id = PAD

    def __init__(
        self,
        spec: LogicWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        D, L = spec.max_depth, spec.seq_len  # the schema ensures min_depth ≤ D ≤ L
        self.spec, self.n_concepts, self.item_shape = spec, D - spec.min_depth + 1, (L,)
        self.device = torch.device("cpu")  # tables are built and the fixed data drawn on the CPU
        self._build_tables()
        device = torch.device(device)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self._init_humans(communities, private, original_size, spec.heldout, self.sample, generator, device)
        self.device = device
        for name in ("_root", "_keys", "_segment", "_start", "_end", "_head", "_op", "_child1", "_child2", "_left"):
            setattr(self, name, getattr(self, name).to(device))
        self._analyse = functools.lru_cache(maxsize=1 << 16)(self._analyse_row)

    # ── the conditioned PCFG ──────────────────────────────────────────────────────────────────────────

    def _state(self, v: int, e: int, length: torch.Tensor | int) -> torch.Tensor | int:
        """Index of the state (value v, exact depth e, length) in the flat (2, D+1, L+1) table."""
        D, L = self.spec.max_depth, self.spec.seq_len
        return (v * (D + 1) + e) * (L + 1) + length

    def _build_tables(self) -> None:
        """Inside masses ``W (2, D+1, L+1)`` and every production with positive mass, sorted by state.

        A production of a state records the token written first (leaf, ``not`` or ``(``), its operator
        (``and``/``or``; PAD for none), the states of its children (−1 for none) and the length of its left
        child (where the operator goes).
        """
        D, L = self.spec.max_depth, self.spec.seq_len
        lengths = torch.arange(L + 1)
        W = torch.zeros(2, D + 1, L + 1, dtype=torch.float64)  # [value, exact depth, length]
        rows: list[tuple[torch.Tensor, ...]] = []  # (state, head, op, child1, child2, left length, mass)

        def add(v: int, e: int, length, head: int, op: int, child1, child2, left, mass) -> None:
            length, child1, child2, left, mass = torch.broadcast_tensors(
                *map(torch.as_tensor, (length, child1, child2, left, mass))
            )
            keep = mass > 0
            n = int(keep.sum())
            rows.append(
                (
                    self._state(v, e, length[keep]),
                    torch.full((n,), head),
                    torch.full((n,), op),
                    child1[keep],
                    child2[keep],
                    left[keep],
                    mass[keep],
                )
            )
            W[v, e].index_add_(0, length[keep], mass[keep])

        for v, leaf in ((0, FALSE), (1, TRUE)):
            add(v, 1, 1, leaf, PAD, -1, -1, 0, torch.tensor(P_LEAF, dtype=torch.float64))
        for e in range(2, D + 1):
            inner = lengths[:-1]
            for v in (0, 1):  # not: (v, e, ℓ) ← (¬v, e−1, ℓ−1)
                add(v, e, inner + 1, NOT, PAD, self._state(1 - v, e - 1, inner), -1, inner, P_OP * W[1 - v, e - 1, :-1])
            pairs = [(a, b) for a in range(1, e) for b in range(1, e) if max(a, b) == e - 1]
            left, right = lengths[:, None], lengths[None, :]  # (L+1, 1), (1, L+1)
            total = left + right + 3  # "(" left op right ")"
            for op in (AND, OR):
                for (a, b), v1, v2 in itertools.product(pairs, (0, 1), (0, 1)):
                    v = (v1 & v2) if op == AND else (v1 | v2)
                    mass = P_OP / len(pairs) * W[v1, a, :, None] * W[v2, b, None, :] * (total <= L)
                    children = self._state(v1, a, left), self._state(v2, b, right)
                    add(v, e, total.clamp_max(L), LPAR, op, *children, left, mass)

        state, head, op, child1, child2, left, mass = (torch.cat(col) for col in zip(*rows, strict=True))
        order = torch.argsort(state, stable=True)
        state, head, op, child1, child2, left, mass = (c[order] for c in (state, head, op, child1, child2, left, mass))
        # Inverse-CDF sampling for every state at once: the productions of the j-th state with any occupy
        # keys (j, j + 1], so one searchsorted over all keys finds the production drawn by j + u.
        states, counts = torch.unique_consecutive(state, return_counts=True)
        end = counts.cumsum(0)
        start = end - counts
        segment = torch.repeat_interleave(torch.arange(len(states)), counts)
        prob = mass / W.flatten()[state]
        cum = prob.cumsum(0)
        within = cum - (cum[start] - prob[start])[segment]
        within[end - 1] = 1.0
        self._keys = segment + within  # (P,) float64
        self._segment = torch.full((W.numel(),), -1).index_put_((states,), torch.arange(len(states)))
        self._start, self._end = start, end
        self._head, self._op, self._child1, self._child2, self._left = head, op, child1, child2, left
        self._W = W
        depths = torch.arange(self.spec.min_depth, D + 1)
        true_mass = W[1, depths]  # (C, L+1): True trees of each concept's depth, by length
        self._log_z = true_mass.sum(1).log()  # (C,) log P(True, fits | depth)
        self._root = true_mass / true_mass.sum(1, keepdim=True)  # (C, L+1) p(length | concept)

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fresh human expressions, one per entry of ``concepts (B,)``: ``(B, T)`` int64, PAD-padded.

        Top-down, one level of the trees per iteration: each open node (item, state, position) draws its
        production, writes its tokens, and opens its children at their positions.
        """
        (T,) = self.item_shape
        B = len(concepts)
        out = torch.full((B, T + 1), PAD, device=self.device)  # one spare column absorbs no-op writes
        if B == 0:
            return out[:, :T]
        length = torch.multinomial(self._root[concepts.to(self.device)], 1, generator=generator)[:, 0]
        d = concepts.to(self.device) + self.spec.min_depth
        item, state = torch.arange(B, device=self.device), self._state(1, d, length)
        pos = torch.zeros(B, dtype=torch.int64, device=self.device)
        while len(item):
            u = torch.rand(len(item), generator=generator, device=self.device, dtype=torch.float64)
            seg = self._segment[state]
            p = torch.searchsorted(self._keys, seg + u, right=True)
            p = torch.minimum(torch.maximum(p, self._start[seg]), self._end[seg] - 1)  # guard rounding
            op, left, size = self._op[p], self._left[p], state % (T + 1)
            binary = op != PAD
            out[item, pos] = self._head[p]
            out[item, torch.where(binary, pos + 1 + left, T)] = op  # column T is the spare one
            out[item, torch.where(binary, pos + size - 1, T)] = RPAR
            has1, has2 = self._child1[p] >= 0, self._child2[p] >= 0
            item = torch.cat([item[has1], item[has2]])
            state = torch.cat([self._child1[p][has1], self._child2[p][has2]])
            pos = torch.cat([pos[has1] + 1, (pos + 2 + left)[has2]])
        return out[:, :T]

    # ── reading items ─────────────────────────────────────────────────────────────────────────────────

    def _analyse_row(self, row: tuple[int, ...]) -> tuple[int, float, bool]:
        """(concept, log p(row | concept), verified) of one item; concept −1 for a syntax error."""
        tree = parse(row)
        if tree is None:
            return -1, -math.inf, False
        (d, log_tree), true = depth_and_log_prob(tree), value(tree)
        concept = min(max(d - self.spec.min_depth, 0), self.n_concepts - 1)
        content = _content(row)
        written = (
            true
            and self.spec.min_depth <= d <= self.spec.max_depth
            and all(t == PAD for t in row[len(content) :])
            and serialize(tree) == content
        )
        log_p = log_tree - self._log_z[concept].item() if written else -math.inf
        return concept, log_p, true

    def _analyse_all(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(..., T) -> (...)`` concepts, log p(item | its concept) and verified, on the items' device."""
        rows = [self._analyse(tuple(row)) for row in items.reshape(-1, items.shape[-1]).tolist()]
        concept, log_p, true = zip(*rows, strict=True) if rows else ((), (), ())
        shape, device = items.shape[:-1], items.device
        return (
            torch.tensor(concept, dtype=torch.int64, device=device).view(shape),
            torch.tensor(log_p, dtype=torch.float64, device=device).view(shape),
            torch.tensor(true, dtype=torch.bool, device=device).view(shape),
        )

    def log_prob_concepts(self, items: torch.Tensor) -> torch.Tensor:
        """log p(items | concept c) ``(..., T) -> (..., C)`` float64: finite only at the item's depth."""
        concept, log_p, _ = self._analyse_all(items)
        out = torch.full((*concept.shape, self.n_concepts), -math.inf, dtype=torch.float64, device=items.device)
        return out.scatter_(-1, concept.clamp_min(0)[..., None], log_p[..., None])

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """Exact log-probability under the human mixture ``(..., T) -> (...)`` (see the module docstring)."""
        concept, log_p, _ = self._analyse_all(items)
        return self._concept_weights.log().to(items.device)[concept.clamp_min(0)] + log_p

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        """Depth − min_depth, clamped to the concepts ``(..., T) -> (...)``; −1 for a syntax error."""
        return self._analyse_all(items)[0]

    def verify(self, items: torch.Tensor) -> torch.Tensor:
        """Syntactically valid and True ``(..., T) -> (...)`` bool (whatever the spelling or depth)."""
        return self._analyse_all(items)[2]

    def facts(self, items: torch.Tensor) -> Facts:
        """Concept and verdict from one parse of each item."""
        concept, _, verified = self._analyse_all(items)
        return Facts(concept, verified)

    to_text = staticmethod(to_text)
