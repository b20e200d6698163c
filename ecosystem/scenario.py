"""The scenario file: a typed schema (pydantic) with defaults, validators and one-line errors.

Every field has a default, so ``Scenario()`` is a valid (small) scenario; unknown fields are errors.
``load_scenario(path)`` reads YAML and raises :class:`ScenarioError` whose message names the field path
and what is allowed, e.g. ``developers.data.synthetic: must be between 0 and 1, got 1.4``.
"""

from __future__ import annotations

import copy
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class ScenarioError(ValueError):
    """A scenario (or sweep design) that cannot run; the message is one line naming the field."""


class Strict(BaseModel):
    """Unknown fields are errors; no coercion (``seed: true``, ``'7'`` or ``7.0`` is not an integer); every
    float is finite (``.inf`` and ``.nan`` are refused wherever a float is read)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)


Share = Annotated[float, Field(ge=0.0, le=1.0)]
Seed = Annotated[int, Field(ge=0, lt=2**63)]
Count = Annotated[int, Field(ge=1)]
NAME_LENGTH = 64
_SLUG = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_LENGTH - 1}}}")


def check_name(value: str) -> str:
    """A name that becomes a folder name (``runs/<name>``, ``sweeps/<name>``): a safe slug."""
    if not _SLUG.fullmatch(value):
        raise ValueError(f"must be 1 to {NAME_LENGTH} letters, digits, '_', '-' or '.', starting with a letter "
                         f"or digit (it names the output folder), got {value[:80]!r}")
    return value


Name = Annotated[str, AfterValidator(check_name)]


def output_folder(parent: str | Path, name: str) -> Path:
    """``parent/name`` resolved, for a folder named after a scenario or sweep; never outside ``parent``."""
    parent = Path(parent).resolve()
    try:
        folder = (parent / check_name(name)).resolve()
    except ValueError as err:
        raise ScenarioError(f"name: {err}") from None
    if folder.parent != parent:  # e.g. parent/name is a link that leads elsewhere
        raise ScenarioError(f"name: {parent / name} leads outside {parent} (to {folder})")
    return folder


# ── worlds ────────────────────────────────────────────────────────────────────────────────────────────


class GaussianWorldSpec(Strict):
    """Concepts are isotropic Gaussian clusters in ``dim`` dimensions; communities weight the concepts."""

    kind: Literal["gaussian"] = "gaussian"
    dim: Count = 2
    concepts: Count = 4
    separation: Annotated[float, Field(ge=0.0)] = 4.0  # scale of the cluster means
    spread: Annotated[float, Field(gt=0.0)] = 1.0  # standard deviation within a cluster
    heldout: Count = 1000  # held-out human items per community
    seed: Seed | None = None  # world seed; default: derived from the scenario seed


class LinearWorldSpec(Strict):
    """y = xᵀθ + noise, with a private feature domain per developer and a shared public set (Vu et al.).

    The design of a model's synthetic data (the features x it labels with xᵀθ̂ + noise each generation) is
    one of three, set by ``synthetic_features`` and ``fixed_design``:

    - the developer's real design X̃_j reused every generation (``synthetic_features: real``): the setting of
      Dohmatob et al. 2024 ("Model collapse demystified: the case of regression") and Gerstgrasser et al.
      2024 ("Is model collapse inevitable?"), where every generation relabels the design X₀ of the real data;
    - a fresh design each generation (``fixed_design: false``, features from ``own`` or ``shared``);
    - a fixed design of the developer's own, drawn once and reused (``fixed_design: true``, the default),
      as Vu et al.'s Theorem 1 conditions on it.
    """

    kind: Literal["linear"] = "linear"
    dim: Count = 4
    noise: Annotated[float, Field(gt=0.0)] = 1.0  # σ, the noise standard deviation
    private_samples: Count = 20  # per developer
    public_samples: Annotated[int, Field(ge=0)] = 20
    domain_overlap: Share = 0.2  # variance of a developer's features outside its own coordinates
    fixed_design: bool = True  # reuse each model's synthetic design X_j (publish.samples rows) every generation
    # Where the features x of model j's synthetic items come from: `own` — its own domain, x ~ N(0, Σ_j);
    # `shared` — one distribution spanning ℝ^d for everyone, x ~ N(0, I) (Vu et al.'s Theorem 2 setting);
    # `real` — its private design X̃_j reused, rows cycled to publish.samples (exactly X̃_j when
    # publish.samples = private_samples); a real design is fixed, so it needs fixed_design: true.
    synthetic_features: Literal["own", "shared", "real"] = "own"
    heldout: Count = 1000
    seed: Seed | None = None

    @model_validator(mode="after")
    def _design(self) -> LinearWorldSpec:
        if self.synthetic_features == "real" and not self.fixed_design:
            raise ValueError("fixed_design: the real design X̃_j is the same every generation, so "
                             "synthetic_features: real needs fixed_design: true (for a fresh design each "
                             "generation use synthetic_features: own or shared)")
        return self


class LabelsWorldSpec(Strict):
    """Labelled points (x, y): one Gaussian cluster of features per class, the nearest class mean as the true
    classifier, human labels flipped to another class with probability ``label_noise`` (Feng et al. 2024)."""

    kind: Literal["labels"] = "labels"
    dim: Count = 2
    classes: Annotated[int, Field(ge=2)] = 2
    separation: Annotated[float, Field(gt=0.0)] = 1.0  # distance of each class mean from the origin
    spread: Annotated[float, Field(gt=0.0)] = 1.0  # standard deviation within a class
    label_noise: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # η, the share of human labels flipped
    heldout: Count = 1000  # held-out human items per community
    seed: Seed | None = None

    @property
    def concepts(self) -> int:
        """The classes are the world's concepts."""
        return self.classes

    @model_validator(mode="after")
    def _noise(self) -> LabelsWorldSpec:
        most = (self.classes - 1) / self.classes
        if self.label_noise >= most:
            raise ValueError(f"label_noise: must be below (classes − 1)/classes = {most:g}, where the human labels "
                             f"still favour the true class, got {self.label_noise:g}")
        return self


class TopicMarkovWorldSpec(Strict):
    """Token sequences from concept-specific sparse Markov chains (exact likelihood, tails, errors)."""

    kind: Literal["topic_markov"] = "topic_markov"
    vocab: Annotated[int, Field(ge=4)] = 48
    concepts: Count = 8
    seq_len: Annotated[int, Field(ge=2)] = 24
    branching: Count = 4  # allowed next tokens per token within a concept
    zipf: Annotated[float, Field(ge=0.0)] = 1.2  # exponent of the transition weights (tails)
    heldout: Count = 256
    seed: Seed | None = None

    @model_validator(mode="after")
    def _blocks(self) -> TopicMarkovWorldSpec:
        if self.concepts > self.vocab:
            raise ValueError(f"concepts: must be at most vocab={self.vocab}, got {self.concepts}")
        if self.branching > self.vocab // self.concepts:
            raise ValueError(f"branching: must be at most vocab // concepts = {self.vocab // self.concepts}, "
                             f"got {self.branching}")
        return self


class LogicWorldSpec(Strict):
    """True boolean expressions over True/False/not/and/or (Briesch et al. 2023)."""

    kind: Literal["logic"] = "logic"
    min_depth: Count = 1
    max_depth: Count = 5
    seq_len: Annotated[int, Field(ge=8)] = 48  # tokens, padded
    heldout: Count = 256
    seed: Seed | None = None

    @model_validator(mode="after")
    def _depths(self) -> LogicWorldSpec:
        if self.min_depth > self.max_depth:
            raise ValueError(f"min_depth: must be at most max_depth={self.max_depth}, got {self.min_depth}")
        if self.seq_len < self.max_depth:
            raise ValueError(f"seq_len: a depth-{self.max_depth} expression needs at least {self.max_depth} "
                             f"tokens, got {self.seq_len}")
        return self


class CorpusSourceSpec(Strict):
    """One corpus (a concept of the ``corpus`` world): the user's files, or text that ships with Python.

    ``files`` are files or folders, relative to the scenario file. ``format`` says what a document is:
    ``txt`` a whole file (a folder: each ``*.txt`` file in it), ``lines`` each non-empty line, ``jsonl``
    the ``text_field`` of each JSON line; ``auto`` reads folders as ``txt``, ``*.jsonl`` as ``jsonl`` and
    any other file as ``lines``. ``python: prose`` is the language reference (``pydoc_data.topics``) and
    the standard library's docstrings; ``python: code`` is the standard library's source code.
    """

    name: str = "text"
    files: Annotated[list[str], Field(min_length=1)] | None = None
    python: Literal["prose", "code"] | None = None
    format: Literal["auto", "txt", "lines", "jsonl"] = "auto"
    text_field: str = "text"  # the field holding a document's text in a JSONL file
    max_bytes: Annotated[int, Field(ge=1024)] = 1_000_000  # text read, documents taken in a seeded order

    @field_validator("files")
    @classmethod
    def _exist(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        base = Path((info.context or {}).get("base_dir", "."))
        paths = []
        for name in value:
            path = (base / name).resolve()
            if not path.exists():
                raise ValueError(f"file or folder not found: {path}")
            paths.append(str(path))
        return paths

    @model_validator(mode="after")
    def _one_source(self) -> CorpusSourceSpec:
        if (self.files is None) == (self.python is None):
            raise ValueError("files: give either files (your own text) or python: prose | code, not both")
        if self.files is not None:  # read now, so that a bad file is a one-line error before anything runs
            from ecosystem.worlds.corpus import CorpusError, read_files

            try:
                read_files(tuple(self.files), self.format, self.text_field)
            except CorpusError as err:
                raise ValueError(str(err)) from None
        return self


class SplitSpec(Strict):
    """Shares of each corpus's documents (by text volume) in each part; the private part has the rest."""

    public: Share = 0.1  # shared public data
    fresh: Share = 0.4  # the stream human authors write from, generation after generation
    heldout: Share = 0.1  # quality is measured on it

    @model_validator(mode="after")
    def _room(self) -> SplitSpec:
        if self.public + self.fresh + self.heldout >= 1.0:
            raise ValueError("heldout: public + fresh + heldout must leave a share for private data (below 1), "
                             f"got {self.public + self.fresh + self.heldout:g}")
        if self.fresh == 0 or self.heldout == 0:
            raise ValueError("fresh: fresh and heldout must be above 0")
        return self


class TokenizerSpec(Strict):
    """``bytes``: UTF-8 bytes, vocabulary 256 plus the document separator. ``bpe``: a byte-level BPE
    vocabulary of ``vocab`` tokens trained on the scenario's non-held-out text (``tokenizers``)."""

    kind: Literal["bytes", "bpe"] = "bytes"
    vocab: Annotated[int, Field(ge=260, le=4096)] = 512  # bpe only


class CorpusWorldSpec(Strict):
    """Real text: windows of ``seq_len`` tokens from corpora split by document into private, public, fresh
    and held-out parts. Concepts are the corpora. No exact likelihood, validity or KL (see the README)."""

    kind: Literal["corpus"] = "corpus"
    corpora: Annotated[list[CorpusSourceSpec], Field(min_length=1)] = Field(
        default_factory=lambda: [CorpusSourceSpec(name="prose", python="prose"),
                                 CorpusSourceSpec(name="code", python="code")])
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    seq_len: Annotated[int, Field(ge=2, le=1024)] = 64
    split: SplitSpec = Field(default_factory=SplitSpec)
    heldout: Count = 256  # held-out windows per community
    seed: Seed | None = None  # pins the split (and BPE) independently of `seed`

    @model_validator(mode="after")
    def _names(self) -> CorpusWorldSpec:
        names = [c.name for c in self.corpora]
        if len(set(names)) != len(names):
            raise ValueError(f"corpora: names must be unique, got {names}")
        return self

    @property
    def vocab_size(self) -> int:
        """Token ids models predict: 256 bytes and the separator, or the BPE vocabulary."""
        return 257 if self.tokenizer.kind == "bytes" else self.tokenizer.vocab


WorldSpec = Annotated[
    Union[GaussianWorldSpec, LinearWorldSpec, TopicMarkovWorldSpec, LogicWorldSpec, CorpusWorldSpec,  # noqa: UP007
          LabelsWorldSpec],
    Field(discriminator="kind"),
]
TOKEN_WORLDS = ("topic_markov", "logic", "corpus")
VERIFYING_WORLDS = ("topic_markov", "logic", "labels")


# ── families ──────────────────────────────────────────────────────────────────────────────────────────


class GaussianFamilySpec(Strict):
    """One Gaussian per developer (mean and full covariance)."""

    kind: Literal["gaussian"] = "gaussian"
    estimator: Literal["mle", "unbiased"] = "mle"


class GmmFamilySpec(Strict):
    """A mixture of ``components`` Gaussians per developer, fitted by EM from a seeded k-means++ start
    (Shumailov et al., Nature 2024, Fig. 2's GMM experiment)."""

    kind: Literal["gmm"] = "gmm"
    components: Count = 4
    covariance: Literal["full", "diag"] = "full"
    iterations: Count = 100  # EM iterations at most
    tolerance: Annotated[float, Field(ge=0.0)] = 1e-6  # stop when no developer's mean log-likelihood moves more
    reg: Annotated[float, Field(gt=0.0)] = 1e-6  # added to every covariance's diagonal (sklearn's reg_covar)
    coverage_distance: Annotated[float, Field(gt=0.0)] = 1.0  # a concept is covered by a component this close
    coverage_weight: Share = 0.01  # ... whose weight is at least this


KDE_BLOCK = 1 << 22  # kernel evaluations (developers × points × kernels) a KDE holds at once


class KdeFamilySpec(Strict):
    """A Gaussian kernel density estimate per developer: its training set and a bandwidth matrix H
    (Kazdan et al. 2024, "Collapse or Thrive?", the KDE experiments). ``bandwidth``: ``fixed`` (H = width² I),
    or Scott's or Silverman's rule (H = f² Σ̂, Σ̂ the training set's covariance; see ecosystem.families.kde)."""

    kind: Literal["kde"] = "kde"
    bandwidth: Literal["scott", "silverman", "fixed"] = "scott"
    width: Annotated[float, Field(gt=0.0)] | None = None  # the kernel's standard deviation, with `fixed` only
    reg: Annotated[float, Field(gt=0.0)] = 1e-9  # added to H's diagonal (a degenerate set stays proper)
    divergence_samples: Count = 64  # shared seeded draws per developer for the pairwise symmetric KL

    @model_validator(mode="after")
    def _width(self) -> KdeFamilySpec:
        if (self.bandwidth == "fixed") != (self.width is not None):
            raise ValueError("width: give it with bandwidth 'fixed' (the kernel's standard deviation) and only "
                             f"then, got bandwidth {self.bandwidth!r} and width {self.width!r}")
        return self


class LinearFamilySpec(Strict):
    """Conditional Gaussian regression y | x ~ N(xᵀθ, σ²), fitted by weighted least squares."""

    kind: Literal["linear"] = "linear"
    noise: Annotated[float, Field(gt=0.0)] | None = None  # σ used to sample; default: the fitted residual
    ridge: Annotated[float, Field(ge=0.0)] = 0.0


class LogisticFamilySpec(Strict):
    """Softmax regression p(y | x) per developer, fitted by ``iterations`` batched Newton steps on the
    weighted cross-entropy plus (ridge/2)‖W‖² (Feng et al. 2024's linear classifiers).

    ``writes``: how a model labels fresh features. ``sampled``: a draw from its softmax at the publishing
    temperature (its errors depend on x: it errs where it is unsure). ``flipped``: its most likely label,
    replaced with probability ``flip`` by another class chosen uniformly, independently of x: the generator
    of Feng et al. (2024, arXiv 2406.07515), whose error rate is ``flip`` wherever the model's argmax is the
    true classifier (the publishing temperature does not change an argmax)."""

    kind: Literal["logistic"] = "logistic"
    iterations: Count = 25
    ridge: Annotated[float, Field(gt=0.0)] = 1e-3  # keeps the optimum finite on separable data
    writes: Literal["sampled", "flipped"] = "sampled"
    flip: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None  # with `flipped` only

    @model_validator(mode="after")
    def _flip(self) -> LogisticFamilySpec:
        if (self.writes == "flipped") != (self.flip is not None):
            raise ValueError("flip: give it with writes 'flipped' (the probability of replacing the most likely "
                             f"label) and only then, got writes {self.writes!r} and flip {self.flip!r}")
        return self


class NgramFamilySpec(Strict):
    kind: Literal["ngram"] = "ngram"
    order: Annotated[int, Field(ge=1, le=3)] = 2
    smoothing: Annotated[float, Field(gt=0.0)] = 0.01


class TransformerFamilySpec(Strict):
    kind: Literal["transformer"] = "transformer"
    d_model: Annotated[int, Field(ge=4, le=512)] = 32
    layers: Annotated[int, Field(ge=1, le=8)] = 1
    heads: Count = 2
    dtype: Literal["float32", "bfloat16"] = "float32"

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerFamilySpec:
        if self.d_model % self.heads:
            raise ValueError(f"heads: must divide d_model={self.d_model}, got {self.heads}")
        return self


FamilySpec = Annotated[
    Union[GaussianFamilySpec, GmmFamilySpec, KdeFamilySpec, LinearFamilySpec, NgramFamilySpec,  # noqa: UP007
          TransformerFamilySpec, LogisticFamilySpec],
    Field(discriminator="kind"),
]
FAMILY_WORLDS = {
    "gaussian": ("gaussian",),
    "gmm": ("gaussian",),
    "kde": ("gaussian",),
    "linear": ("linear",),
    "ngram": TOKEN_WORLDS,
    "transformer": TOKEN_WORLDS,
    "logistic": ("labels",),
}


# ── developers ────────────────────────────────────────────────────────────────────────────────────────


# Training a transformer gets on real text (the ``corpus`` world) unless the scenario says otherwise:
# TrainSpec's defaults, sized for the small synthetic worlds, leave it about 1.5% below a unigram model of
# Python's prose (50 steps of 8 windows); 300 steps of 32 windows put it ~13% below, as far as a bigram
# (measured with one developer, seq_len 32, d_model 32; tests/test_corpus.py holds it below the unigram).
TEXT_TRAIN = {"steps": 300, "batch": 32}


class TrainSpec(Strict):
    samples: Count = 100  # new items gathered per generation (the training set under `replace`)
    steps: Count = 50  # optimiser steps per generation (neural families)
    batch: Count = 8  # sequences per optimiser step (neural families)
    lr: Annotated[float, Field(gt=0.0)] = 3.0e-3
    from_scratch: bool = False  # re-initialise each generation instead of fine-tuning


class PromptSpec(Strict):
    """Prompted generation (Vu, Reeves & Wenger 2025, arXiv 2505.21677: each model writes by completing
    prompts drawn from its own private data): every published sequence starts with the first ``tokens``
    tokens of a sequence drawn uniformly, with replacement, from ``source`` — ``private`` the developer's own
    private (original) data set, ``public`` the shared public set, ``heldout`` the held-out human set — and
    the model writes the rest. Token worlds only; ``tokens: 0`` is no prompt."""

    tokens: Annotated[int, Field(ge=0)] = 0
    source: Literal["private", "public", "heldout"] = "private"


class PublishSpec(Strict):
    samples: Annotated[int, Field(ge=0)] = 100  # items each model writes to the pool per generation
    temperature: Annotated[float, Field(gt=0.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    prompt: PromptSpec | None = None  # none: models write whole sequences

    @property
    def prompt_tokens(self) -> int:
        """Tokens of each published sequence the model did not write (0 without a prompt)."""
        return 0 if self.prompt is None else self.prompt.tokens


class DetectorSpec(Strict):
    """An imperfect AI-content detector; flagged items are dropped from scraped data."""

    tpr: Share = 0.8  # P(flag | synthetic)
    fpr: Share = 0.05  # P(flag | human)


class VerifierSpec(Strict):
    """Curation by a verifier (Feng et al. 2024): keep correct synthetic items w.p. φ, wrong ones w.p. ψ."""

    keep_correct: Share = 1.0  # φ
    keep_wrong: Share = 0.0  # ψ


SHARES = ("original", "public", "human_fresh", "synthetic")


class DataSpec(Strict):
    """Where a developer's training data comes from each generation.

    Shares of ``original`` (its own private real data), ``public`` (shared real data), ``human_fresh``
    (new human content scraped from the pool) and ``synthetic`` (what the models it reads published last
    generation) sum to 1. Vu et al.'s ``alpha``/``beta`` are an equivalent statement: synthetic = α,
    original = (1−α)β, public = (1−α)(1−β).

    Generation 1 is Vu et al.'s t = 0 in both mixes: nothing is published yet, so the synthetic share goes
    to ``original`` and ``public`` in their ratio β : 1 − β (to ``beta`` itself when α = 1; to ``original``
    when only shares were given and both are zero); ``human_fresh`` keeps its share. α applies from
    generation 2 on.
    """

    original: Share = 0.0
    public: Share = 0.0
    human_fresh: Share = 0.5
    synthetic: Share = 0.5
    alpha: Share | None = None
    beta: Share | None = None
    mix: Literal["sample", "weight"] = "sample"  # draw items in proportion, or weight whole sets in the loss
    retention: Literal["replace", "accumulate", "accumulate_subsample", "window", "incremental"] = "replace"
    window: Count = 3  # generations kept by retention `window`
    keep: Share = 0.9  # share of the previous training set kept by retention `incremental`
    detector: DetectorSpec | None = None
    verifier: VerifierSpec | None = None
    # Filtered items are replaced by scraping further among the items that pass (bounded by what the
    # sources hold), so filters change what is trained on, not how much.
    refill: bool = False

    @model_validator(mode="after")
    def _shares(self) -> DataSpec:
        given = self.model_fields_set
        if self.alpha is not None or self.beta is not None:
            alpha = 0.0 if self.alpha is None else self.alpha
            beta = 1.0 if self.beta is None else self.beta
            implied = {"synthetic": alpha, "original": (1 - alpha) * beta, "public": (1 - alpha) * (1 - beta),
                       "human_fresh": 0.0}
            # A resolved scenario states both; they must agree.
            if any(not math.isclose(getattr(self, k), implied[k], abs_tol=1e-9) for k in given & set(SHARES)):
                raise ValueError("give either alpha/beta or the shares, not both")
            for name, value in implied.items():
                setattr(self, name, value)
        elif given & set(SHARES) and not given >= set(SHARES):
            # Unnamed shares are zero once any is named, so `{synthetic: 1}` means "only synthetic".
            for name in set(SHARES) - given:
                setattr(self, name, 0.0)
        total = sum(getattr(self, s) for s in SHARES)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            # repr, not %g: a sum off by 1e-8 must not read as "= 1"
            parts = " + ".join(f"{s} {getattr(self, s)!r}" for s in SHARES)
            raise ValueError(f"shares must sum to 1 (within 1e-9), got {parts} = {total!r}")
        return self

    def shares(self) -> dict[str, float]:
        return {s: getattr(self, s) for s in SHARES}


def _default_kind(kind: str) -> Any:
    """A before-validator: a section written without ``kind`` gets the default kind."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value:
            return {"kind": kind, **value}
        return value

    return fill


class DevelopersSpec(Strict):
    count: Count = 8
    family: FamilySpec = Field(default_factory=GaussianFamilySpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    publish: PublishSpec = Field(default_factory=PublishSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    # Developer communities (sizes, in order) for stochastic_block networks and community statistics.
    groups: list[Count] | None = None
    # One data policy per group, replacing `data` for that group's developers (heterogeneous developers).
    group_data: list[DataSpec] | None = None
    # The concepts of each group's private (original) data; default: the overall human mixture.
    group_concepts: list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]] | None = None

    _family_kind = field_validator("family", mode="before")(_default_kind("gaussian"))

    @model_validator(mode="after")
    def _groups(self) -> DevelopersSpec:
        if self.groups is not None and sum(self.groups) != self.count:
            raise ValueError(f"groups: sizes must sum to count={self.count}, got {sum(self.groups)}")
        n_groups = len(self.groups or [self.count])
        for name in ("group_data", "group_concepts"):
            given = getattr(self, name)
            if given is not None and len(given) != n_groups:
                raise ValueError(f"{name}: need one entry per group ({n_groups}), got {len(given)}")
        return self

    def policies(self) -> list[DataSpec]:
        """The data policy of each group (one group when ``groups`` is not given)."""
        return self.group_data or [self.data] * len(self.groups or [self.count])


# ── human authors ─────────────────────────────────────────────────────────────────────────────────────


class CommunitySpec(Strict):
    name: str = "everyone"
    authors: Count = 10
    concepts: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = None  # default: all
    weights: list[Annotated[float, Field(gt=0.0)]] | None = None  # concept weights; default: uniform
    rate: Annotated[int, Field(ge=0)] = 10  # items per author per generation

    @model_validator(mode="after")
    def _weights(self) -> CommunitySpec:
        if self.weights is not None and (self.concepts is None or len(self.weights) != len(self.concepts)):
            raise ValueError("weights: need one weight per entry of concepts")
        return self


# ── networks ──────────────────────────────────────────────────────────────────────────────────────────


class _Net(Strict):
    self_loops: bool = True  # a developer also reads its own outputs


class CompleteNet(_Net):
    kind: Literal["complete"] = "complete"


class EmptyNet(_Net):
    """No edges between developers: each reads only itself (with self_loops) — independent chains."""

    kind: Literal["empty"] = "empty"


class RingNet(_Net):
    kind: Literal["ring"] = "ring"
    k: Annotated[int, Field(ge=2)] = 2  # each developer reads k nearest neighbours (k even)


class StarNet(_Net):
    kind: Literal["star"] = "star"


class ErdosRenyiNet(_Net):
    kind: Literal["erdos_renyi"] = "erdos_renyi"
    p: Share = 0.3
    directed: bool = False


class WattsStrogatzNet(_Net):
    kind: Literal["watts_strogatz"] = "watts_strogatz"
    k: Annotated[int, Field(ge=2)] = 4
    p: Share = 0.1


class BarabasiAlbertNet(_Net):
    kind: Literal["barabasi_albert"] = "barabasi_albert"
    m: Count = 2


class StochasticBlockNet(_Net):
    """Communities of developers (``developers.groups``) dense inside, sparse between."""

    kind: Literal["stochastic_block"] = "stochastic_block"
    p_in: Share = 0.8
    p_out: Share = 0.05


class EdgeListNet(_Net):
    """Edges ``u v [weight]`` one per line (u → v: v reads u); path relative to the scenario file."""

    kind: Literal["edge_list"] = "edge_list"
    path: str

    @field_validator("path")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        base = Path((info.context or {}).get("base_dir", "."))
        path = (base / value).resolve()
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return str(path)


NetworkSpec = Annotated[
    Union[  # noqa: UP007
        CompleteNet,
        EmptyNet,
        RingNet,
        StarNet,
        ErdosRenyiNet,
        WattsStrogatzNet,
        BarabasiAlbertNet,
        StochasticBlockNet,
        EdgeListNet,
    ],
    Field(discriminator="kind"),
]


# ── measurement ───────────────────────────────────────────────────────────────────────────────────────

METRIC_GROUPS = ("quality", "distance", "model", "samples")
MAX_STORED_DIVERGENCES = 1 << 26  # pair values kept over a run (4 bytes each)


class MetricsSpec(Strict):
    """What is measured, and how often: at N = 2048 measuring everything can cost more than training.

    ``measure`` names the per-developer groups: ``quality`` (held-out NLL overall, per community and per
    concept), ``distance`` (to the truth), ``model`` (the family's own statistics, e.g. its variance) and
    ``samples`` (validity and diversity of what the models wrote). ``pairwise`` compares developers' models:
    ``all`` pairs, a seeded ``sample`` of ``pairs`` pairs fixed for the run, ``none``, or ``auto`` (all
    pairs while there are at most ``pairs`` of them, else a sample).
    """

    every: Count = 1  # measure generation 1, every `every`-th generation, and the last
    measure: list[Literal["quality", "distance", "model", "samples"]] = Field(
        default_factory=lambda: list(METRIC_GROUPS))
    pairwise: Literal["auto", "all", "sample", "none"] = "auto"
    pairs: Count = 1024  # all pairs up to 45 developers (990 pairs), else a seeded sample
    probes: Count = 64  # held-out sequences on which token models' next-token distributions are compared
    levenshtein_samples: Annotated[int, Field(ge=2)] = 32  # samples per developer compared by edit distance
    levenshtein_pairs: Count = 1 << 15  # sample pairs compared per generation, over all developers

    def measured(self, step: int, steps: int) -> bool:
        """Whether generation ``step`` (1-based) of ``steps`` is measured."""
        return step == 1 or step == steps or step % self.every == 0

    def measured_count(self, steps: int) -> int:
        """How many of ``steps`` generations are measured (without visiting each)."""
        return steps // self.every + (self.every > 1) + (steps % self.every != 0 and steps > 1)

    def pair_count(self, n: int) -> int:
        """How many pairs of the ``n`` developers are compared each measured generation."""
        every = n * (n - 1) // 2
        return {"all": every, "none": 0, "sample": min(self.pairs, every), "auto": min(self.pairs, every)}[
            self.pairwise]


class StopSpec(Strict):
    """End a run before ``steps`` once a measured generation meets a condition, as the discrete-distribution
    collapse experiments stop when the entropy reaches ε: the per-developer metric ``metric`` (a column of
    ``agents.parquet``, e.g. ``entropy`` or ``variance``) is ``below`` or ``above`` a threshold for every
    developer (``all``) or on average over them. Only measured generations are tested."""

    metric: str
    below: float | None = None
    above: float | None = None
    all: bool = True  # every developer (else their mean)

    @model_validator(mode="after")
    def _one_threshold(self) -> StopSpec:
        if (self.below is None) == (self.above is None):
            raise ValueError("give exactly one of below or above")
        return self

    def holds(self, values: np.ndarray) -> bool:
        """Whether the condition holds for one generation's per-developer ``values (N,)`` (NaN never does)."""
        values = np.asarray(values, dtype=np.float64)
        if not self.all:
            values = values.mean(keepdims=True)
        met = values < self.below if self.below is not None else values > self.above
        return bool(met.all())


class SamplesSpec(Strict):
    """What the models wrote, kept for reading (``samples.parquet``, ``ecosim samples``): the first ``keep``
    items each developer publishes each generation, decoded by token worlds (0: keep none)."""

    keep: Annotated[int, Field(ge=0, le=64)] = 4


# ── sweeps ────────────────────────────────────────────────────────────────────────────────────────────


class RandomDesignSpec(Strict):
    """``samples`` points drawn uniformly (``random``) or by Latin hypercube (``lhs``) in ``ranges``."""

    samples: Count = 8
    method: Literal["random", "lhs"] = "lhs"
    ranges: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(default_factory=dict)
    integer: list[str] = Field(default_factory=list)  # paths whose sampled values are rounded to int


MAX_RUNS = 10_000  # runs a sweep design may expand to unless its `max_runs` says more


class SweepSpec(Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # every combination of the values
    zip: dict[str, list[Any]] = Field(default_factory=dict)  # parallel lists of equal length
    random: RandomDesignSpec | None = None
    replications: Count = 1
    max_runs: Count = MAX_RUNS  # a larger design is refused before it is expanded

    def size(self) -> tuple[int, int]:
        """(design points, runs), counted without expanding the design."""
        points = math.prod(len(v) for v in self.grid.values())
        points *= max((len(v) for v in self.zip.values()), default=1)
        points *= self.random.samples if self.random is not None else 1
        return points, points * self.replications

    @model_validator(mode="after")
    def _size(self) -> SweepSpec:
        points, runs = self.size()
        if runs > self.max_runs:
            raise ValueError(f"max_runs: the design has {runs:,} runs ({points:,} design points × "
                             f"{self.replications:,} replications), above max_runs = {self.max_runs:,}; "
                             f"set max_runs: {runs} to run it")
        return self


# ── the scenario ──────────────────────────────────────────────────────────────────────────────────────


class Scenario(Strict):
    name: Name = "scenario"
    description: str = ""
    seed: Seed = 0
    steps: Count = 10  # generations
    device: Literal["auto", "cpu", "cuda"] = "auto"
    world: WorldSpec = Field(default_factory=GaussianWorldSpec)
    communities: list[CommunitySpec] = Field(default_factory=lambda: [CommunitySpec()], min_length=1)
    developers: DevelopersSpec = Field(default_factory=DevelopersSpec)
    network: NetworkSpec = Field(default_factory=CompleteNet)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    samples: SamplesSpec = Field(default_factory=SamplesSpec)
    sweep: SweepSpec | None = None
    stop: StopSpec | None = None  # end early when a condition holds (default: run every step)

    _world_kind = field_validator("world", mode="before")(_default_kind("gaussian"))
    _network_kind = field_validator("network", mode="before")(_default_kind("complete"))

    @model_validator(mode="after")
    def _text_training(self) -> Scenario:
        """A transformer on real text gets :data:`TEXT_TRAIN` for what ``developers.train`` leaves unset."""
        devs = self.developers
        if self.world.kind == "corpus" and devs.family.kind == "transformer":
            unset = {k: v for k, v in TEXT_TRAIN.items() if k not in devs.train.model_fields_set}
            devs.train = devs.train.model_copy(update=unset)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        world, devs = self.world, self.developers
        allowed = FAMILY_WORLDS[devs.family.kind]
        if world.kind not in allowed:
            raise ValueError(
                f"developers.family.kind: '{devs.family.kind}' cannot model a '{world.kind}' world; "
                f"it models {', '.join(allowed)}"
            )
        n_concepts = world_concepts(world)
        named = [(f"communities[{i}].concepts", c.concepts or []) for i, c in enumerate(self.communities)]
        named += [(f"developers.group_concepts[{i}]", c) for i, c in enumerate(devs.group_concepts or [])]
        for where, concepts in named:
            for c in concepts:
                if c >= n_concepts:
                    raise ValueError(
                        f"{where}: must be between 0 and {n_concepts - 1} "
                        f"(the world has {n_concepts} concepts), got {c}"
                    )
        names = [c.name for c in self.communities]
        if len(set(names)) != len(names):
            raise ValueError(f"communities: names must be unique, got {names}")
        for i, name in enumerate(names):  # names become metric columns nll_<name>
            if name == "spread" or name.startswith("concept_") or not name.replace("_", "").isalnum():
                raise ValueError(f"communities[{i}].name: must be letters, digits and _, not 'spread' or "
                                 f"'concept_…' (names become columns nll_<name>), got {name!r}")
        if isinstance(self.network, StochasticBlockNet) and devs.groups is None:
            raise ValueError("developers.groups: required by network.kind 'stochastic_block' (block sizes)")
        if any(p.verifier is not None for p in devs.policies()) and world.kind not in VERIFYING_WORLDS:
            raise ValueError(
                f"developers.data.verifier: the {world.kind} world has no verifier; it needs "
                f"{' or '.join(VERIFYING_WORLDS)}"
            )
        _check_network_size(self.network, devs.count)
        _check_prompt(world, devs.publish.prompt)
        if any(p.mix == "weight" for p in devs.policies()) and devs.family.kind not in ("gaussian", "linear"):
            raise ValueError("developers.data.mix: 'weight' needs a closed-form family (gaussian, linear)")
        kept = self.metrics.pair_count(devs.count) * self.metrics.measured_count(self.steps)
        if kept > MAX_STORED_DIVERGENCES:
            raise ValueError(
                f"metrics.pairwise: '{self.metrics.pairwise}' keeps {kept:,} pairwise divergences over the run "
                f"(at most {MAX_STORED_DIVERGENCES:,}); use 'sample' with fewer pairs, or measure less often "
                "(metrics.every)")
        _check_memory(self)
        return self


def world_concepts(world: Any) -> int:
    """How many concepts a world has (logic: one per expression depth)."""
    if isinstance(world, LogicWorldSpec):
        return world.max_depth - world.min_depth + 1
    if isinstance(world, CorpusWorldSpec):
        return len(world.corpora)
    return getattr(world, "concepts", 1)


def _check_prompt(world: Any, prompt: PromptSpec | None) -> None:
    """A prompt needs a token world, room left for the model to write, and the source it names."""
    if prompt is None or prompt.tokens == 0:
        return
    if world.kind not in TOKEN_WORLDS:
        raise ValueError(f"developers.publish.prompt: the {world.kind} world's items are not token sequences; "
                         f"prompts need {', '.join(TOKEN_WORLDS)}")
    if prompt.tokens >= world.seq_len:
        raise ValueError(f"developers.publish.prompt.tokens: must be below world.seq_len={world.seq_len} (the "
                         f"model writes the rest), got {prompt.tokens}")
    if prompt.source == "public" and isinstance(world, CorpusWorldSpec) and world.split.public == 0:
        raise ValueError("developers.publish.prompt.source: 'public' needs public data, and world.split.public "
                         "is 0; use private or heldout")


def _check_network_size(net: Any, n: int) -> None:
    if isinstance(net, RingNet) and (net.k % 2 or net.k >= n):
        raise ValueError(f"network.k: must be even and below developers.count={n}, got {net.k}")
    if isinstance(net, WattsStrogatzNet) and (net.k % 2 or net.k >= n):
        raise ValueError(f"network.k: must be even and below developers.count={n}, got {net.k}")
    if isinstance(net, BarabasiAlbertNet) and net.m >= n:
        raise ValueError(f"network.m: must be below developers.count={n}, got {net.m}")


# ── resources ─────────────────────────────────────────────────────────────────────────────────────────

MEMORY_ENV = "ECOSIM_MEMORY_LIMIT"  # e.g. 200G: the memory a run may need (default: this machine's memory)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_ACCUMULATING = ("accumulate", "accumulate_subsample")


def memory_limit() -> int:
    """Bytes a run may need: ``$ECOSIM_MEMORY_LIMIT`` (``64G``, ``512M``, bytes) or this machine's memory."""
    text = os.environ.get(MEMORY_ENV, "").strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # no sysconf: no machine bound
            return 1 << 62
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)", text)
    if match is None:
        raise ValueError(f"{MEMORY_ENV}: must be a size such as 64G, 512M or a number of bytes, "
                         f"got {os.environ[MEMORY_ENV]!r}")
    return int(float(match[1]) * _UNITS[match[2]])


def memory_estimate(s: Scenario) -> dict[str, tuple[str, float]]:
    """Bytes a run of ``s`` holds at its peak, by part: ``{part: (field that drives it, bytes)}``.

    An upper estimate from the sizes in the scenario alone (nothing is built): the reading network (networkx
    edges and the dense N × N reading matrix), the pool over every generation it keeps (all of them under an
    accumulating retention; its storage doubles as it grows), the training sets and the items taken to fit
    them, the models with their optimiser state, the world's tables and held-out set, what the models write
    each generation, and the metrics kept over the run.
    """
    world, devs, metrics = s.world, s.developers, s.metrics
    n, steps = devs.count, s.steps
    if isinstance(world, GaussianWorldSpec | LinearWorldSpec | LabelsWorldSpec):  # float64 vectors (x, or x and y)
        vocab, width = 0, world.dim + isinstance(world, LinearWorldSpec | LabelsWorldSpec)
        stored = work = 8 * width
    else:  # token sequences, kept in the smallest integer type, worked on as int64
        vocab = {"topic_markov": getattr(world, "vocab", 0), "logic": 8}.get(world.kind) or world.vocab_size
        width = world.seq_len
        stored = width * (1 if vocab <= 1 << 8 else 2 if vocab <= 1 << 15 else 4)
        work = 8 * width
    policies = devs.policies()
    retentions = {p.retention for p in policies}
    window = max(p.window for p in policies) if "window" in retentions else 1
    generations = steps if retentions & set(_ACCUMULATING) else min(steps, window + 1)
    per_set = devs.train.samples * (steps if retentions & set(_ACCUMULATING) else window)

    human = sum(c.authors * c.rate for c in s.communities)
    model = n * devs.publish.samples
    fixed = (n + 1) * devs.train.samples  # private sets and the public set
    pool_items = fixed + (human + model) * generations
    driver = max((fixed, "developers.train.samples"), (human * generations, "communities"),
                 (model * generations, "developers.publish.samples"))[1]
    if generations > 2 and pool_items > 2 * (fixed + human + model):
        driver = "steps"

    net = s.network
    edges = {
        "complete": n * n, "empty": n, "star": 3 * n, "ring": n * (getattr(net, "k", 2) + 1),
        "watts_strogatz": n * (getattr(net, "k", 2) + 1), "barabasi_albert": n * (2 * getattr(net, "m", 1) + 1),
        "erdos_renyi": n + getattr(net, "p", 1.0) * n * n,
        "stochastic_block": n + getattr(net, "p_in", 1.0) * n * n, "edge_list": n * n,
    }[net.kind]
    heldout = world.heldout * len(s.communities)
    d = devs.family
    if isinstance(d, TransformerFamilySpec):
        m = d.d_model
        params = (2 * vocab + 1) * m + width * m + d.layers * 12 * m * m
        models = 16.0 * n * params  # fp32 weights, gradients and AdamW's two moments
        # One block of developers at a time; at least one developer's activations and attention scores.
        activations = 4.0 * devs.train.batch * d.layers * (20 * width * m + 2 * d.heads * width * width)
        pairwise = 4.0 * n * metrics.probes * width * vocab
    elif isinstance(d, KdeFamilySpec):
        # A model is its training set (items and weights); kernels are evaluated in blocks of KDE_BLOCK
        # (a few temporaries each); the divergence draws its shared samples for every developer.
        models = 8.0 * n * per_set * (width + 1) + 4 * 8.0 * max(KDE_BLOCK, n * per_set)
        pairwise = 8.0 * n * d.divergence_samples * (width + 2)
    elif isinstance(d, NgramFamilySpec):
        models = 3 * 4.0 * n * (vocab + 1) ** d.order  # log-probabilities, counts and their normalisation
        pairwise = 4.0 * n * metrics.probes * width * vocab
    else:
        models = 4 * 8.0 * n * (width + 1) ** 2  # mean and covariance (or θ and its normal equations)
        pairwise = 0.0
    if not isinstance(d, TransformerFamilySpec):
        activations = 0.0
    if metrics.pairwise == "none":
        pairwise = 0.0
    tables = 2 * 8.0 * (vocab * vocab + world_concepts(world) * vocab + width * vocab) if vocab else 0.0
    columns = 20 + len(s.communities) + world_concepts(world)
    measured = metrics.measured_count(steps)
    return {
        "the reading network": ("developers.count", 300.0 * edges + 32.0 * n * n),
        "the content pool": (driver, 2.0 * pool_items * (stored + 24)),
        "the training sets": ("developers.train.samples", n * per_set * (2 * 16.0 + work)),
        "the models": ("developers.train.samples" if isinstance(d, KdeFamilySpec) else "developers.family", models),
        "the transformer's activations": ("world.seq_len", activations),
        "the world's tables": ("world.vocab", tables),
        "the held-out set": ("world.heldout", heldout * (stored + work + 8.0 * n)),
        "the published samples": ("developers.publish.samples", 2.0 * model * work),
        "the metrics": ("steps", 3 * 8.0 * n * measured * columns
                        + 4.0 * metrics.pair_count(n) * measured),
        "the pairwise comparisons": ("metrics.probes", pairwise),
    }


def _check_memory(s: Scenario) -> None:
    parts = memory_estimate(s)
    total, limit = sum(b for _, b in parts.values()), memory_limit()
    if total > limit:
        part, (field, size) = max(parts.items(), key=lambda item: item[1][1])
        raise ValueError(f"{field}: a run needs about {_size(total)} of memory, most of it for {part} "
                         f"({_size(size)}), above the limit of {_size(limit)}; make it smaller, or raise the "
                         f"limit with the environment variable {MEMORY_ENV} (e.g. {MEMORY_ENV}=256G)")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PB"


def scenario_warnings(s: Scenario) -> list[str]:
    """Valid but probably unintended settings, one line each (``ecosim validate`` and ``run`` print them)."""
    warnings = []
    world, devs = s.world, s.developers
    kept = max(p.window if p.retention == "window" else 1 for p in devs.policies())  # sets that do not grow
    growing = any(p.retention in _ACCUMULATING for p in devs.policies())
    dim = getattr(world, "dim", 0)
    if devs.family.kind == "gaussian" and not growing and kept * devs.train.samples <= dim:
        warnings.append(
            f"developers.train.samples: {devs.train.samples} items per generation give a singular covariance "
            f"in world.dim = {dim} dimensions (a fit needs more items than dimensions); its NLL is set by "
            "the numerical jitter, not the data")
    return warnings


# ── loading and errors ────────────────────────────────────────────────────────────────────────────────


MAX_DEPTH = 32  # nesting levels of a scenario file (the schema needs 6)
MAX_VALUES = 1_000_000  # values in a scenario file once its aliases are expanded


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (instead of keeping the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # merged keys may be overridden; a non-scalar key is refused by PyYAML itself
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_utf8(path: Path, where: str, hint: str, error: type[Exception] = ScenarioError) -> str:
    """The UTF-8 text of the file at ``path``, or ``error`` with one line starting ``where`` that says why not
    (the offending byte and its offset; ``hint`` says what the file should be)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{where}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                    f"{hint}") from None
    except OSError as err:
        raise error(f"{where}: cannot read: {err.strerror}") from None


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The YAML document at ``path``, or :class:`ScenarioError` with one line saying why not.

    The file must be UTF-8 text; a key may appear once per mapping; the document may nest at most
    ``MAX_DEPTH`` levels and hold at most ``MAX_VALUES`` values once its aliases are expanded (an "alias
    bomb" of a few lines can otherwise stand for billions), and may not contain itself.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such {what}")
    text = read_utf8(path, str(path), "save it as UTF-8")
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    _check_shape(data, path)
    return data


def _check_shape(data: Any, path: Path) -> None:
    """Refuse documents deeper than MAX_DEPTH, larger than MAX_VALUES once expanded, or containing
    themselves; each distinct collection is visited once, so this takes time in the file's size."""
    sizes: dict[int, tuple[int, int]] = {}  # id of a collection → (values under it expanded, levels)
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list) or (not done and id(node) in sizes):
            continue
        key = id(node)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if not done:
            if key in on_path:
                raise ScenarioError(f"{path}: an alias (*name) refers to the collection that contains it")
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        on_path.discard(key)
        below = [sizes.get(id(c), (1, 0)) for c in children]
        sizes[key] = size, depth = 1 + sum(b[0] for b in below), 1 + max((b[1] for b in below), default=0)
        if size > MAX_VALUES:
            raise ScenarioError(f"{path}: holds more than {MAX_VALUES:,} values once its aliases (*name) are "
                                "expanded")
        if depth > MAX_DEPTH:
            raise ScenarioError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)")


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a YAML scenario; ``overrides`` maps dotted paths to values (sweeps)."""
    path = Path(path)
    data = read_yaml(path, "scenario file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping of fields, got {type(data).__name__}")
    return validate_scenario(data, base_dir=path.parent, overrides=overrides)


def validate_scenario(
    data: dict[str, Any], base_dir: str | Path = ".", overrides: dict[str, Any] | None = None
) -> Scenario:
    data = set_path(data, overrides or {})
    try:
        return Scenario.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as err:
        raise ScenarioError(format_error(err)) from None


def set_path(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted path (``developers.data.synthetic``) set to its value."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for i, key in enumerate(parents):
            child = node.get(key) if isinstance(node, dict) else None
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ScenarioError(f"{'.'.join(parents[: i + 1])}: is not a section, cannot set {dotted}")
            node = child
        node[leaf] = value
    return data


def to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)


def format_error(err: ValidationError) -> str:
    """The first validation error as ``field.path: what is allowed, got VALUE``."""
    e = err.errors(include_url=False)[0]
    parts, field = _walk(e["loc"])
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    kind, msg, value = e["type"], e["msg"], e.get("input")
    got = f", got {value!r}" if not isinstance(value, dict | list) else ""
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(field)) if isinstance(field, list) else ""
        text = f"unknown field; allowed: {allowed}"
        got = ""
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = e.get("ctx", {}).get("expected_tags", "")
        path = f"{path}.kind".lstrip(".")
        text = f"unknown kind; allowed: {tags.replace(chr(39), '')}"
        got = f", got {e.get('ctx', {}).get('tag')!r}" if kind == "union_tag_invalid" else ""
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        text = _bounds(field) or msg
    elif kind == "missing":
        text, got = "required field is missing", ""
    elif kind.startswith("value_error"):
        # Checks spanning several fields say "field: what is wrong", relative to where they sit.
        text = msg.removeprefix("Value error, ")
        head, sep, rest = text.partition(": ")
        if sep and " " not in head:
            path, text = (f"{path}.{head}" if path else head), rest
        got = ""
    else:
        text = msg.replace("Input should be", "must be")
    return f"{path or 'scenario'}: {text}{got}"


def _bounds(field: Any) -> str:
    lo = hi = None
    lo_op = hi_op = ""
    metadata = list(getattr(field, "metadata", []))
    for member in typing.get_args(getattr(field, "annotation", None)):  # bounds inside `X | None`
        if typing.get_origin(member) is Annotated:
            for extra in typing.get_args(member)[1:]:
                metadata += getattr(extra, "metadata", [extra])
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lo, lo_op = m.ge, "≥"
        elif isinstance(m, annotated_types.Gt):
            lo, lo_op = m.gt, ">"
        elif isinstance(m, annotated_types.Le):
            hi, hi_op = m.le, "≤"
        elif isinstance(m, annotated_types.Lt):
            hi, hi_op = m.lt, "<"
    def num(x: float) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"

    if lo is not None and hi is not None and lo_op == "≥" and hi_op == "≤":
        return f"must be between {num(lo)} and {num(hi)}"
    if lo is not None and hi is not None:
        return f"must be {lo_op} {num(lo)} and {hi_op} {num(hi)}"
    if lo is not None:
        return f"must be {lo_op} {num(lo)}"
    if hi is not None:
        return f"must be {hi_op} {num(hi)}"
    return ""


def _walk(loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """Follow an error location through the schema: the printable path and what sits at its end.

    Drops the tags pydantic inserts for discriminated unions and the internal steps of constrained
    types. Returns the FieldInfo of the last field (for bounds), or the list of allowed field names of the
    model where an unknown field was found.
    """
    parts: list[Any] = []
    model: Any = Scenario
    annotation: Any = None
    field: Any = None
    for step in loc:
        if isinstance(step, int):
            parts.append(step)
            annotation = _inner(annotation, list)
            model = annotation if _is_model(annotation) else model
            continue
        if model is not None and _is_model(model) and step in model.model_fields:
            parts.append(step)
            field = model.model_fields[step]
            annotation = field.annotation
            model = _single_model(annotation)
            continue
        union = _union_members(annotation)
        tagged = [m for m in union if _is_model(m) and _kind(m) == step]
        if tagged:
            model = tagged[0]
            continue
        # An unknown field: report it, with the fields of the model it was found in.
        parts.append(step)
        if model is not None and _is_model(model):
            field = [name for name in model.model_fields]
        model = None
    return parts, field


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _kind(model: Any) -> str | None:
    f = model.model_fields.get("kind")
    return f.default if f is not None else None


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list[Any]:
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(tp)]
    return [tp]


def _single_model(tp: Any) -> Any:
    members = [m for m in _union_members(tp) if m is not type(None)]
    if len(members) == 1 and _is_model(members[0]):
        return members[0]
    return None


def _inner(tp: Any, container: type) -> Any:
    for member in _union_members(tp):
        if typing.get_origin(member) is container:
            return _strip(typing.get_args(member)[0])
    return None
