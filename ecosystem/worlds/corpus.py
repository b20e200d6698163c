"""Real text: the ``corpus`` world, human communities writing from text the user names.

Each corpus (a folder of ``.txt`` files, a file of one document per line, a JSONL file with a text field,
or text that ships with Python itself) is a concept. Its documents are taken in a seeded order (up to
``max_bytes`` of text) and split *by document* into four parts that share no document: held-out (quality
is measured on it), public, fresh (the stream human authors write from, generation after generation) and
private. The private part is cut into one contiguous shard per developer, so developers' original data
share no text either. Items are windows of ``seq_len`` tokens at uniformly random offsets in a part's
token stream, where each document is followed by a separator token (documents are concatenated as in
GPT-2's training, Radford et al. 2019).

Tokens are UTF-8 bytes (vocabulary 256 plus the separator) or, on request, a byte-level BPE vocabulary
(Sennrich, Haddow & Birch, ACL 2016) trained with the ``tokenizers`` library on the scenario's
non-held-out text, in the seeded document order (its training is deterministic), and written to the run
folder as ``tokenizer.json``.

Real text has no exact likelihood, no validity and no exact KL: ``reference_nll`` is NaN, ``log_prob``
refuses, the concept of what a model writes is unknown (−1), and the metrics that need them (``distance``,
``validity``, ``coverage``) are absent. Quality is held-out NLL and perplexity, per community and per
corpus. ``reference()`` also gives ``unigram_nll``: the held-out NLL of a unigram model of the
non-held-out text (add-one smoothing), the first baseline a trained model must beat.

The default corpora read Python's own installation at run time (nothing is downloaded or copied into the
repository): ``prose`` is the language reference's topics (``pydoc_data.topics``) and the standard
library's docstrings, one document per topic or module; ``code`` is the standard library's source, one
document per file.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecosystem.scenario import CommunitySpec, CorpusSourceSpec, CorpusWorldSpec, ScenarioError
from ecosystem.worlds.base import Batch, Facts
from ecosystem.worlds.communities import concept_weights, mixture_weights
from ecosystem.worlds.tokens import TokenWorld

PARTS = ("heldout", "public", "fresh", "private")  # filled in this order; private takes the rest
SEPARATOR = "<|doc|>"  # the token after every document
SHOWN_SEPARATOR = " ␞ "  # how decoded text shows a document boundary


# ── reading documents ─────────────────────────────────────────────────────────────────────────────────


class CorpusError(ValueError):
    """A corpus that cannot be read; the message starts with the field it concerns (``files: …``)."""


def _text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise CorpusError(f"files: {path} is not text (it holds NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"files: {path} is not UTF-8 text") from None


def _file_documents(path: Path, fmt: str, field: str) -> list[str]:
    """The documents of one file (``fmt`` resolved: txt, lines or jsonl)."""
    text = _text(path)
    if fmt == "txt":
        docs = [text]
    elif fmt == "lines":
        docs = text.splitlines()
    else:
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise CorpusError(f"files: line {n} of {path} is not JSON") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise CorpusError(f"text_field: line {n} of {path} has no text field {field!r}")
            docs.append(record[field])
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise CorpusError(f"files: {path} holds no text")
    return docs


@functools.lru_cache(maxsize=16)
def read_files(files: tuple[str, ...], fmt: str, field: str) -> tuple[str, ...]:
    """Every document of the user's files, in file order (a folder: its ``*.txt`` files, sorted)."""
    docs: list[str] = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not found:
                raise CorpusError(f"files: {path} holds no .txt file")
            for p in found:
                docs += _file_documents(p, "txt" if fmt == "auto" else fmt, field)
        else:
            auto = "jsonl" if path.suffix == ".jsonl" else "lines"
            docs += _file_documents(path, auto if fmt == "auto" else fmt, field)
    return tuple(docs)


def _stdlib_files() -> list[Path]:
    """The standard library's ``.py`` files, sorted, without tests and installed packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
        files += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
    return files


def _docstrings(path: Path) -> str:
    """The docstrings of a module (its own, its classes' and functions'), blank-line separated."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return "\n\n".join(d for node in ast.walk(tree) if isinstance(node, kinds) and (d := ast.get_docstring(node)))


def _source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


def python_sources(kind: str) -> list[Callable[[], str]]:
    """The documents of a Python corpus as thunks (read only when taken): ``prose`` is the language
    reference's topics and each module's docstrings, ``code`` each module's source."""
    if kind == "code":
        return [functools.partial(_source, p) for p in _stdlib_files()]
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    return [functools.partial(str, topics[k]) for k in sorted(topics)] + [
        functools.partial(_docstrings, p) for p in _stdlib_files()]


def _pieces(doc: str, limit: int) -> list[str]:
    """``doc`` cut at line ends into pieces of at most about ``limit`` characters (one piece if it is short)."""
    if len(doc) <= limit:
        return [doc]
    out, start = [], 0
    while start < len(doc):
        end = start + limit
        if end < len(doc):
            cut = doc.rfind("\n", start + 1, end)
            end = cut + 1 if cut > start else end
        out.append(doc[start:end])
        start = end
    return out


def documents(spec: CorpusSourceSpec, rng: np.random.Generator) -> list[str]:
    """A corpus's documents in a seeded order, until ``max_bytes`` of UTF-8 text are taken. A document longer
    than a twentieth of ``max_bytes`` is cut at line ends into documents of that size, so that no single file
    fills a part of the split."""
    if spec.python is not None:
        thunks = python_sources(spec.python)
    else:
        thunks = [functools.partial(str, d) for d in read_files(tuple(spec.files), spec.format, spec.text_field)]
    taken, size = [], 0
    for i in rng.permutation(len(thunks)):
        if size >= spec.max_bytes:
            break
        for doc in _pieces(thunks[i](), max(spec.max_bytes // 20, 1)):
            if doc.strip():
                taken.append(doc)
                size += len(doc.encode("utf-8"))
    return taken


def split(docs: list[str], shares: dict[str, float]) -> dict[str, list[str]]:
    """Documents (already in seeded order) into disjoint parts: each part of :data:`PARTS` but the last takes
    documents until it holds its share of the text (at least one document when its share is positive); the
    private part takes the rest."""
    sizes = [len(d.encode("utf-8")) for d in docs]
    total, i, out = sum(sizes), 0, {}
    for part in PARTS[:-1]:
        start, held = i, 0
        while shares[part] > 0 and i < len(docs) and (i == start or held < shares[part] * total):
            held += sizes[i]
            i += 1
        out[part] = docs[start:i]
    out["private"] = docs[i:]
    return out


# ── tokenizers ────────────────────────────────────────────────────────────────────────────────────────


class ByteTokenizer:
    """UTF-8 bytes as tokens 0–255, and the document separator as 256."""

    kind = "bytes"
    vocab_size = 257
    separator = 256

    def encode(self, docs: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(d.encode("utf-8"), dtype=np.uint8).astype(np.int64) for d in docs]

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def to_str(self) -> str | None:
        return None


class BpeTokenizer:
    """A byte-level BPE vocabulary of at most ``vocab`` tokens (Sennrich et al. 2016) trained by the
    ``tokenizers`` library on ``docs``; the separator is the special token 0."""

    kind = "bpe"

    def __init__(self, docs: list[str], vocab: int) -> None:
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:  # pragma: no cover - a dependency, absent only in a broken install
            raise ScenarioError("world.tokenizer.kind: 'bpe' needs the tokenizers package "
                                "(pip install tokenizers)") from None
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[SEPARATOR], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(docs, trainer=trainer)
        self._tok, self.vocab_size, self.separator = tok, tok.get_vocab_size(), tok.token_to_id(SEPARATOR)

    def encode(self, docs: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self._tok.encode_batch(docs)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode([i for i in ids if 0 <= i < self.vocab_size])

    def to_str(self) -> str | None:
        return self._tok.to_str()


# ── the text, split and tokenized ─────────────────────────────────────────────────────────────────────


@dataclass
class Text:
    """The corpora's documents split into parts, their tokenizer, and one flat token stream in which
    ``span[c][part]`` = (start, length) is corpus ``c``'s part (each document followed by the separator)."""

    parts: list[dict[str, list[str]]]
    tokenizer: ByteTokenizer | BpeTokenizer
    span: list[dict[str, tuple[int, int]]]
    stream: np.ndarray  # (L,) int64

    def check_sizes(self, spec: CorpusWorldSpec, n_developers: int, original_size: int) -> None:
        """Every part that is drawn from holds at least one window (the private part: one per developer)."""
        T = spec.seq_len
        for c, spans in enumerate(self.span):
            for part in PARTS:
                need = T * (n_developers if part == "private" else 1)
                if part == "public" and (spec.split.public == 0 or original_size == 0):
                    continue
                if spans[part][1] < need:
                    who = f" ({T} tokens for each of {n_developers} developers)" if part == "private" else ""
                    raise ScenarioError(
                        f"world.corpora[{c}]: too small for seq_len={T}: its {part} part holds "
                        f"{spans[part][1]} tokens ({len(self.parts[c][part])} documents), needs {need}{who}; "
                        "give more text (or more documents), a smaller seq_len or fewer developers")


def read_text(spec: CorpusWorldSpec, rng: np.random.Generator) -> Text:
    """Read, split and tokenize the corpora of ``spec`` (documents in ``rng``'s order; BPE trained on the
    non-held-out parts); a corpus that cannot be read is a one-line :class:`ScenarioError` naming it."""
    parts = []
    for c, corpus in enumerate(spec.corpora):
        try:
            docs = documents(corpus, rng)
        except CorpusError as err:
            raise ScenarioError(f"world.corpora[{c}].{err}") from None
        parts.append(split(docs, spec.split.model_dump()))
    training = [d for by_part in parts for p in PARTS[1:] for d in by_part[p]]
    tokenizer = ByteTokenizer() if spec.tokenizer.kind == "bytes" else BpeTokenizer(training, spec.tokenizer.vocab)
    pieces, span, at = [], [], 0
    for by_part in parts:
        spans = {}
        for part in PARTS:
            ids = [x for doc in tokenizer.encode(by_part[part]) for x in (doc, [tokenizer.separator])]
            stream = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
            pieces.append(stream)
            spans[part] = (at, len(stream))
            at += len(stream)
        span.append(spans)
    return Text(parts, tokenizer, span, np.concatenate(pieces))


def check_text(spec: CorpusWorldSpec, n_developers: int, original_size: int, seed: int) -> None:
    """What ``ecosim validate`` checks before anything runs: the text the run would read (same seed, same
    split, same tokens) holds a window of ``seq_len`` tokens in every part it draws from."""
    read_text(spec, np.random.default_rng(seed)).check_sizes(spec, n_developers, original_size)



# ── the world ─────────────────────────────────────────────────────────────────────────────────────────


class CorpusWorld(TokenWorld):
    """Windows of real text from corpora split by document (see the module docstring). Concepts are the
    corpora; there is no verifier and no exact likelihood."""

    kind = "corpus"
    has_verifier = False
    sample_metrics = ("perplexity", "entropy", "distinct_2", "levenshtein", "unique_fraction")

    def __init__(
        self,
        spec: CorpusWorldSpec,
        communities: list[CommunitySpec],
        private: torch.Tensor | int,
        original_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        T = spec.seq_len
        self.spec, self.item_shape, self.n_concepts = spec, (T,), len(spec.corpora)
        self.n_communities = len(communities)
        rng = np.random.default_rng(seed)
        text = read_text(spec, rng)
        n_developers = private.shape[0] if isinstance(private, torch.Tensor) else private
        text.check_sizes(spec, n_developers, original_size)
        self.parts, self.tokenizer, self.span = text.parts, text.tokenizer, text.span
        self._stream = torch.from_numpy(text.stream)
        self.vocab_size = self.tokenizer.vocab_size

        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self._community_weights = concept_weights(communities, self.n_concepts)  # (K, C)
        self._concept_weights = mixture_weights(communities, self.n_concepts)  # (C,)
        self.device = torch.device("cpu")
        held = [self._draw(w, spec.heldout, "heldout", generator) for w in self._community_weights]
        items, concepts = (torch.cat(x) for x in zip(*held, strict=True))
        community = torch.arange(self.n_communities).repeat_interleave(spec.heldout)
        self._heldout = Batch(items, concepts, community)
        items, concepts = self._draw(self._concept_weights, original_size if spec.split.public > 0 else 0, "public",
                                     generator)
        self._public = Batch(items, concepts, torch.full_like(concepts, -1))
        if isinstance(private, int):
            private = self._concept_weights.expand(private, self.n_concepts)
        concepts = (torch.multinomial(private, original_size, replacement=True, generator=generator)
                    if original_size > 0 else torch.zeros(n_developers, 0, dtype=torch.int64))  # (N, S)
        starts, lengths = self._spans(concepts, "private")
        shard = lengths // n_developers
        developer = torch.arange(n_developers)[:, None]
        self._originals = self._windows(starts + developer * shard, shard, generator)  # (N, S, T)
        self._original_concepts = concepts

        self.device = device = torch.device(device)
        self._stream = self._stream.to(device)
        for name in ("_community_weights", "_concept_weights"):
            setattr(self, name, getattr(self, name).to(device))
        self._heldout = Batch(*(x.to(device) for x in (self._heldout.items, self._heldout.concepts,
                                                       self._heldout.communities)))
        self._public = Batch(*(x.to(device) for x in (self._public.items, self._public.concepts,
                                                      self._public.communities)))
        self._originals, self._original_concepts = self._originals.to(device), concepts.to(device)
        self._unigram_nll = self._unigram()

    def _spans(self, concepts: torch.Tensor, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and length of ``part`` of each concept's corpus, shaped like ``concepts``."""
        table = torch.tensor([spans[part] for spans in self.span], device=concepts.device)  # (C, 2)
        return table[concepts, 0], table[concepts, 1]

    def _windows(self, starts: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One window of ``seq_len`` tokens at a uniform offset inside each span: ``(...) -> (..., T)`` int64."""
        (T,) = self.item_shape
        u = torch.rand(starts.shape, generator=generator, device=generator.device, dtype=torch.float64)
        offset = starts + (u.to(starts.device) * (lengths - T + 1)).long().clamp_max(lengths - T)
        return self._stream[offset[..., None] + torch.arange(T, device=starts.device)]

    def _draw(self, weights: torch.Tensor, n: int, part: str,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        concepts = (torch.multinomial(weights, n, replacement=True, generator=generator) if n > 0
                    else torch.zeros(0, dtype=torch.int64))
        return self._windows(*self._spans(concepts, part), generator), concepts

    def _unigram(self) -> float:
        """Held-out NLL (nats per window) of the add-one unigram model of the non-held-out text."""
        counts = torch.ones(self.vocab_size, dtype=torch.float64, device=self.device)
        for spans in self.span:
            for part in PARTS[1:]:
                start, length = spans[part]
                counts += torch.bincount(self._stream[start : start + length], minlength=self.vocab_size)
        logp = (counts / counts.sum()).log()
        return float(-logp[self._heldout.items].sum(-1).mean())

    def sample(self, concepts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fresh human text: a window of the fresh part of each concept's corpus ``(B,) -> (B, T)``."""
        return self._windows(*self._spans(concepts.to(self.device), "fresh"), generator)

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("real text has no exact likelihood")

    def concept_of(self, items: torch.Tensor) -> torch.Tensor:
        """Unknown (−1): nothing says which corpus a model's text comes from."""
        return torch.full(items.shape[:-1], -1, dtype=torch.int64, device=items.device)

    def facts(self, items: torch.Tensor) -> Facts:
        return Facts(self.concept_of(items), self.verify(items))

    def reference(self) -> dict[str, float]:
        """No truth to compare with (``reference_nll`` NaN); the uniform model's ``T log V`` as the baseline,
        and the unigram model's held-out NLL (``unigram_nll``)."""
        return {"reference_nll": math.nan, "baseline_nll": self.item_shape[0] * math.log(self.vocab_size),
                "unigram_nll": self._unigram_nll}

    def to_text(self, items: torch.Tensor) -> list[str]:
        """Decoded text of ``items (..., T)`` (row-major); a document boundary shows as ``␞``."""
        out = []
        for row in items.reshape(-1, items.shape[-1]).tolist():
            pieces, current = [], []
            for token in [*row, self.tokenizer.separator]:
                if token == self.tokenizer.separator:
                    pieces.append(self.tokenizer.decode(current))
                    current = []
                else:
                    current.append(token)
            out.append(SHOWN_SEPARATOR.join(pieces))
        return out

    def artifacts(self) -> dict[str, str]:
        """Files that make a run self-describing: ``corpus.json`` (documents and tokens in each part of each
        corpus) and, for BPE, ``tokenizer.json``."""
        described = {"tokenizer": self.tokenizer.kind, "vocab_size": self.vocab_size, "corpora": [
            {"name": corpus.name, "source": corpus.files or f"python:{corpus.python}",
             "parts": {p: {"documents": len(self.parts[c][p]), "tokens": self.span[c][p][1]} for p in PARTS}}
            for c, corpus in enumerate(self.spec.corpora)]}
        out = {"corpus.json": json.dumps(described, indent=2)}
        if (text := self.tokenizer.to_str()) is not None:
            out["tokenizer.json"] = text
        return out

