"""Properties that hold for every input hypothesis finds: exact counts for many rows at once, padded rows and
retention against plain Python lists, dotted-path overrides, scenario serialise/parse round trips, and the
batched Levenshtein distance against the textbook dynamic programme."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecosystem.design import expand, run_id
from ecosystem.diversity import levenshtein
from ecosystem.draws import largest_remainder
from ecosystem.retention import Retention, Rows
from ecosystem.scenario import DataSpec, ScenarioError, load_scenario, set_path, to_yaml, validate_scenario
from ecosystem.scrape import RETENTIONS, Policies
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parents[1]
SEEDS = st.integers(0, 2**32 - 1)

# ── exact counts ──────────────────────────────────────────────────────────────────────────────────────


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.lists(st.sampled_from([0.0, 0.5, 1.0, 1 / 3, 2.0, 7.25]),
                                                         min_size=4, max_size=4)), min_size=1, max_size=20),
       SEEDS, st.integers(-3, 3))  # fmt: skip
def test_largest_remainder_for_many_rows_sums_bounds_and_ignores_scale(rows, seed, power):
    n = np.array([r[0] for r in rows])
    shares = np.array([r[1] for r in rows])
    counts = largest_remainder(n, shares, np.random.default_rng(seed))
    total = shares.sum(1)
    assert counts.shape == shares.shape and counts.dtype.kind == "i"
    assert np.array_equal(counts.sum(1), np.where(total > 0, n, 0))
    assert (counts[shares == 0] == 0).all()
    quota = np.divide(n[:, None] * shares, total[:, None], out=np.zeros_like(shares), where=total[:, None] > 0)
    assert (counts >= np.floor(quota - 1e-9)).all() and (counts <= np.ceil(quota + 1e-9)).all()
    # Only the proportions matter: shares scaled by a power of two (exactly) give the same counts.
    scaled = largest_remainder(n, shares * 2.0**power, np.random.default_rng(seed))
    assert np.array_equal(scaled, counts)


# ── padded rows and retention against plain lists ────────────────────────────────────────────────────

N_ROWS = 3


def rows_of(lists: list[list[tuple[int, float]]]) -> Rows:
    row = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    flat = [entry for x in lists for entry in x]
    return Rows.from_flat(len(lists), row, np.array([i for i, _ in flat], dtype=np.int64),
                          np.array([w for _, w in flat], dtype=np.float64))  # fmt: skip


def lists_of(rows: Rows) -> list[list[tuple[int, float]]]:
    """The entries of each row, checking that the padding is clean."""
    idx, weight = rows.padded()
    out = []
    for k in range(len(rows.n)):
        n = int(rows.n[k])
        assert (idx[k, n:] == 0).all() and (weight[k, n:] == 0).all()
        out.append(list(zip(idx[k, :n].tolist(), weight[k, :n].tolist(), strict=True)))
    return out


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.integers(0, 5), min_size=N_ROWS, max_size=N_ROWS)),
        st.tuples(st.just("drop_front"), st.lists(st.integers(0, 6), min_size=N_ROWS, max_size=N_ROWS)),
        st.tuples(st.just("only"), st.lists(st.booleans(), min_size=N_ROWS, max_size=N_ROWS)),
        st.tuples(st.just("choose"), st.lists(st.integers(0, 8), min_size=N_ROWS, max_size=N_ROWS)),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(OPERATIONS, SEEDS)
def test_rows_behave_like_lists(operations, seed):
    rng = np.random.default_rng(seed)
    rows, model = Rows.empty(N_ROWS), [[] for _ in range(N_ROWS)]
    fresh = iter(range(10**6))  # every entry a distinct index, its weight derived from it
    for op, arg in operations:
        if op == "append":
            new = [[(i, i / 7) for i in (next(fresh) for _ in range(m))] for m in arg]
            rows.append(rows_of(new))
            model = [a + b for a, b in zip(model, new, strict=True)]
        elif op == "drop_front":
            rows.drop_front(np.array(arg))
            model = [x[c:] for x, c in zip(model, arg, strict=True)]
        elif op == "only":
            rows = rows.only(np.array(arg))
            model = [x if keep else [] for x, keep in zip(model, arg, strict=True)]
        else:
            rows = rows.choose(np.array(arg), rng)
            chosen = lists_of(rows)
            for got, before, count in zip(chosen, model, arg, strict=True):
                assert len(got) == min(count, len(before)) and not Counter(got) - Counter(before)
            model = chosen
        assert lists_of(rows) == model, op
        assert rows.width == max(len(x) for x in model)
        row, idx, weight = rows.flat()
        assert list(zip(row.tolist(), idx.tolist(), weight.tolist(), strict=True)) == [
            (k, i, w) for k, x in enumerate(model) for i, w in x]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(RETENTIONS), min_size=1, max_size=6),
       st.lists(st.lists(st.integers(0, 9), min_size=6, max_size=6), min_size=1, max_size=6),
       st.integers(1, 3), st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]), SEEDS)  # fmt: skip
def test_retention_keeps_what_each_policy_says(kinds, sizes, window, keep, seed):
    """Any mix of policies over developers: each training set holds exactly the items its policy keeps."""
    n = len(kinds)
    retention = Retention(Policies.stack([DataSpec(synthetic=1.0, retention=k, window=window, keep=keep)
                                          for k in kinds], 10))  # fmt: skip
    rng = np.random.default_rng(seed)
    batches: list[list[set[int]]] = []  # generation → developer → its items
    previous = [set() for _ in range(n)]
    for t, acquired in enumerate(sizes):
        new = [{1000 * t + 100 * k + i for i in range(acquired[k])} for k in range(n)]
        batches.append(new)
        train = retention.update(rows_of([[(i, 1.0) for i in sorted(s)] for s in new]), rng)
        got = [Counter(i for i, _ in x) for x in lists_of(train)]
        for k, kind in enumerate(kinds):
            items = set(got[k])
            assert all(c == 1 for c in got[k].values()), "an item twice in one training set"
            everything = set().union(*(b[k] for b in batches))
            if kind == "replace":
                assert items == new[k]
            elif kind == "accumulate":
                assert items == everything
            elif kind == "window":
                assert items == set().union(*(b[k] for b in batches[-window:]))
            elif kind == "accumulate_subsample":
                assert items <= everything and len(items) == min(len(new[k]), len(everything))
            else:  # incremental: round(keep · size) of the previous set, the rest from the newest batch
                size = len(new[k])
                old = min(round(keep * size), len(previous[k])) if previous[k] else 0
                assert len(items) == size and len(items & previous[k]) == old and len(items & new[k]) == size - old
            previous[k] = items


# ── dotted-path overrides ─────────────────────────────────────────────────────────────────────────────

KEYS = st.sampled_from(["a", "b", "c"])
LEAVES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(), max_size=2))
NESTED = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)


def flatten(data: dict, prefix: str = "") -> dict[str, object]:
    """Dotted path → leaf (an empty section is a leaf)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, NESTED, max_size=3), st.lists(KEYS, min_size=1, max_size=4), LEAVES)
def test_a_dotted_override_sets_its_path_and_nothing_else(data, keys, value):
    dotted = ".".join(keys)
    before = copy.deepcopy(data)
    # The path can be set unless a section on the way holds a value other than a section or null.
    node, blocked = data, False
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, dict):
            blocked = True
            break
    if blocked:
        with pytest.raises(ScenarioError, match=f"is not a section, cannot set {dotted}"):
            set_path(data, {dotted: value})
        assert data == before
        return
    out = set_path(data, {dotted: value})
    assert data == before  # the input is not changed
    node = out
    for key in keys:
        node = node[key]
    assert node == value
    # Every other leaf is where it was, except those under the path and the nulls it turned into sections.
    untouched = {k: v for k, v in flatten(before).items()
                 if not (k == dotted or k.startswith(dotted + ".") or dotted.startswith(k + "."))}  # fmt: skip
    assert {k: v for k, v in flatten(out).items() if k in untouched} == untouched
    assert set(flatten(out)) - set(untouched) == {dotted}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(3, 12), min_size=1, max_size=3, unique=True),
       st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=2, unique=True),
       st.integers(1, 3))  # fmt: skip
def test_a_design_sets_every_dotted_path_of_every_run(tmp_path, counts, synthetic, replications):
    sweep = {"grid": {"developers.count": counts},
             "zip": {"developers.data.synthetic": synthetic, "developers.data.human_fresh": [1 - s for s in synthetic]},
             "replications": replications}  # fmt: skip
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump({**tiny(network={"kind": "complete"}), "sweep": sweep}))
    runs = expand(path)
    assert len(runs) == len(counts) * len(synthetic) * replications
    for run in runs:
        assert run.scenario.developers.count == run.params["developers.count"]
        assert run.scenario.developers.data.synthetic == run.params["developers.data.synthetic"]
        assert run.scenario.developers.data.human_fresh == run.params["developers.data.human_fresh"]
        assert run.scenario.world.dim == 2 and run.scenario.sweep is None  # the rest is the base scenario
    assert len({run.id for run in runs}) == len(runs)


# ── serialise and parse ───────────────────────────────────────────────────────────────────────────────

def real(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def world_and_family(draw) -> tuple[dict, dict, int]:
    """A world, a family that can model it, and the world's number of concepts."""
    kind = draw(st.sampled_from(["gaussian", "linear", "topic_markov", "logic"]))
    world = {"kind": kind, "heldout": draw(st.integers(1, 100)), "seed": draw(st.none() | SEEDS)}
    if kind == "gaussian":
        world |= {"dim": draw(st.integers(1, 4)), "concepts": draw(st.integers(1, 5)),
                  "separation": draw(real(0, 10)), "spread": draw(real(0.1, 5))}  # fmt: skip
        if draw(st.booleans()):
            rule = draw(st.sampled_from(["scott", "silverman", "fixed"]))
            width = {"width": draw(real(0.01, 3))} if rule == "fixed" else {}
            return world, {"kind": "kde", "bandwidth": rule, **width}, world["concepts"]
        return world, {"kind": "gaussian", "estimator": draw(st.sampled_from(["mle", "unbiased"]))}, world["concepts"]
    if kind == "linear":
        world |= {"dim": draw(st.integers(1, 5)), "noise": draw(real(0.01, 3)),
                  "public_samples": draw(st.integers(0, 30)), "domain_overlap": draw(real(0, 1)),
                  "synthetic_features": draw(st.sampled_from(["own", "shared", "real"]))}  # fmt: skip
        world["fixed_design"] = world["synthetic_features"] == "real" or draw(st.booleans())  # real is fixed
        return world, {"kind": "linear", "noise": draw(st.none() | real(0.01, 3)), "ridge": draw(real(0, 2))}, 1
    if kind == "topic_markov":
        vocab = draw(st.integers(4, 40))
        concepts = draw(st.integers(1, min(vocab, 5)))
        world |= {"vocab": vocab, "concepts": concepts, "seq_len": draw(st.integers(2, 20)),
                  "branching": draw(st.integers(1, vocab // concepts)), "zipf": draw(real(0, 3))}  # fmt: skip
    else:
        low = draw(st.integers(1, 3))
        world |= {"min_depth": low, "max_depth": draw(st.integers(low, 5)), "seq_len": draw(st.integers(8, 40))}
        concepts = world["max_depth"] - low + 1
    if draw(st.booleans()):
        return world, {"kind": "ngram", "order": draw(st.integers(1, 3)), "smoothing": draw(real(1e-4, 2))}, concepts
    heads = draw(st.integers(1, 4))
    family = {"kind": "transformer", "heads": heads, "d_model": heads * draw(st.integers(-(-4 // heads), 8)),
              "layers": draw(st.integers(1, 3)), "dtype": draw(st.sampled_from(["float32", "bfloat16"]))}
    return world, family, concepts


def data_policy(draw, closed_form: bool, verifying: bool) -> dict:
    weights = draw(st.lists(st.integers(0, 4), min_size=4, max_size=4).filter(any))
    data = {name: w / sum(weights) for name, w in zip(["original", "public", "human_fresh", "synthetic"], weights,
                                                      strict=True)}  # fmt: skip
    data |= {"retention": draw(st.sampled_from(RETENTIONS)), "window": draw(st.integers(1, 5)),
             "keep": draw(real(0, 1)), "refill": draw(st.booleans()),
             "detector": draw(st.none() | st.fixed_dictionaries({"tpr": real(0, 1), "fpr": real(0, 1)}))}  # fmt: skip
    if closed_form:
        data["mix"] = draw(st.sampled_from(["sample", "weight"]))
    elif verifying and draw(st.booleans()):
        data["verifier"] = {"keep_correct": draw(real(0, 1)), "keep_wrong": draw(real(0, 1))}
    return data


def network(draw, count: int) -> dict:
    choices = [{"kind": "complete"}, {"kind": "empty"}, {"kind": "star"},
               {"kind": "erdos_renyi", "p": draw(real(0, 1)), "directed": draw(st.booleans())}]  # fmt: skip
    if count > 2:
        k = 2 * draw(st.integers(1, (count - 1) // 2))
        choices += [{"kind": "ring", "k": k}, {"kind": "watts_strogatz", "k": k, "p": draw(real(0, 1))}]
    if count > 1:
        choices.append({"kind": "barabasi_albert", "m": draw(st.integers(1, count - 1))})
    return {**draw(st.sampled_from(choices)), "self_loops": draw(st.booleans())}


@st.composite
def scenarios(draw) -> dict:
    """A valid scenario as a raw dict, over every world, family, network and data policy."""
    world, family, concepts = world_and_family(draw)
    count = draw(st.integers(1, 12))
    names = draw(st.lists(st.sampled_from(["majority", "minority", "x_1"]), min_size=1, unique=True))
    communities = [{"name": name, "authors": draw(st.integers(1, 20)), "rate": draw(st.integers(0, 20)),
                    "concepts": draw(st.none() | st.lists(st.integers(0, concepts - 1), min_size=1, max_size=3))}
                   for name in names]  # fmt: skip
    developers = {
        "count": count, "family": family, "data": data_policy(draw, family["kind"] in ("gaussian", "linear"),
                                                  world["kind"] in ("topic_markov", "logic")),
        "train": {"samples": draw(st.integers(1, 500)), "lr": draw(real(1e-5, 1)),
                  "from_scratch": draw(st.booleans())},
        "publish": {"samples": draw(st.integers(0, 500)), "temperature": draw(real(0.05, 3)),
                    "top_p": draw(real(0.05, 1))},
    }  # fmt: skip
    return {
        "name": draw(st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)),
        "description": draw(st.text(max_size=40)),
        "seed": draw(SEEDS), "steps": draw(st.integers(1, 50)),
        "device": draw(st.sampled_from(["auto", "cpu", "cuda"])),
        "world": world, "communities": communities, "network": network(draw, count), "developers": developers,
        "metrics": {"every": draw(st.integers(1, 5)),
                    "pairwise": draw(st.sampled_from(["auto", "all", "sample", "none"]))},
    }  # fmt: skip


def assert_round_trip(scenario) -> None:
    text = to_yaml(scenario)
    again = validate_scenario(yaml.safe_load(text))
    assert again == scenario
    assert to_yaml(again) == text and run_id(again) == run_id(scenario)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_a_resolved_scenario_reads_back_as_itself(data):
    assert_round_trip(validate_scenario(data))


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_reads_back_as_itself(path):
    if "base" in yaml.safe_load(path.read_text()):  # a sweep file: its runs are scenarios
        for run in expand(path):
            assert_round_trip(run.scenario)
    else:
        assert_round_trip(load_scenario(path))


# ── Levenshtein ───────────────────────────────────────────────────────────────────────────────────────


def edit_distance(a: list[int], b: list[int]) -> int:
    """Wagner & Fischer's table, filled row by row."""
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


TOKENS = st.lists(st.integers(0, 3), max_size=9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TOKENS, TOKENS), min_size=1, max_size=12), st.integers(0, 3))
def test_levenshtein_matches_the_textbook_table(pairs, slack):
    width = max(len(x) for pair in pairs for x in pair) + slack  # padded past the longest

    def padded(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.tensor([s + [7] * (width - len(s)) for s in seqs], dtype=torch.long).view(len(seqs), width)
        return tokens, torch.tensor([len(s) for s in seqs])

    (a, la), (b, lb) = padded([p[0] for p in pairs]), padded([p[1] for p in pairs])
    got = levenshtein(a, b, la, lb).tolist()
    assert got == [edit_distance(x, y) for x, y in pairs]
    assert levenshtein(b, a, lb, la).tolist() == got  # symmetric
