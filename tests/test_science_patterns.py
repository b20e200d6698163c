"""Shumailov et al. 2024, Briesch et al. 2023, Vu et al. 2025 and the minority question: direction and
order of published patterns, through the paper scenarios.

Each test runs a scenario file from ``scenarios/papers/`` with the sizes scaled down (and a bigram family,
whose fit is exact and fast, in place of the scenario's tiny transformer where noted), so that it fits in
the suite's time budget. Differences are compared with the Monte Carlo spread across independent
developers: a difference must exceed Z standard errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecosystem.model import EcosystemModel
from ecosystem.run import frames
from ecosystem.scenario import load_scenario

pytestmark = pytest.mark.slow  # Monte Carlo reproductions of the literature: minutes in all

PAPERS = Path(__file__).resolve().parents[1] / "scenarios" / "papers"
BIGRAM = {"kind": "ngram", "order": 2, "smoothing": 0.01}
Z = 3.0


def run(name: str, overrides: dict, each_step=None) -> tuple[EcosystemModel, pd.DataFrame, list]:
    model = EcosystemModel(load_scenario(PAPERS / f"{name}.yaml", overrides={"device": "cpu", **overrides}))
    seen = []
    for _ in range(model.scenario.steps):
        model.step()
        if each_step is not None:
            seen.append(each_step(model))
    return model, frames(model)[1], seen


def change(agents: pd.DataFrame, column: str) -> pd.Series:
    """Per developer: value at the last step minus value at the first."""
    first, last = agents.step.min(), agents.step.max()
    a = agents[agents.step == first].set_index("developer")[column]
    b = agents[agents.step == last].set_index("developer")[column]
    return b - a


def differs(x: pd.Series, y: pd.Series) -> bool:
    """mean(x) > mean(y) by more than Z standard errors of the difference."""
    se = np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    return x.mean() - y.mean() > Z * se


def test_item5_self_consuming_loop_and_keeping_original_data():
    # Shumailov et al. 2024: held-out perplexity rises when each generation trains on the last one's samples;
    # keeping 10% original data makes the rise much smaller; rare transitions are lost first.
    sizes = {"developers.family": BIGRAM, "developers.count": 16, "developers.groups": [8, 8], "steps": 6,
             "developers.train.samples": 300, "developers.publish.samples": 300}
    model, agents, tables = run("shumailov_lm_loop", sizes, lambda m: m.state.logp.clone())
    rise = change(agents, "nll")
    group = agents.groupby("developer").group.first()
    synthetic_only, kept_original = rise[group == 0], rise[group == 1]
    assert differs(synthetic_only, pd.Series(np.zeros(len(synthetic_only))))
    assert differs(synthetic_only, kept_original)
    # Tails first: the true transitions of lowest Zipf rank lose more of their probability than the commonest.
    world = model.world
    rare, common = world._next_tokens[:, -1], world._next_tokens[:, 0]  # (V,) successor of last and first rank
    prev = torch.arange(world.block * world.n_concepts)
    start, end = tables[0][:8], tables[-1][:8]  # the synthetic-only cohort, (8, V+1, V)
    drop_rare = (start[:, prev, rare[prev]] - end[:, prev, rare[prev]]).mean()
    drop_common = (start[:, prev, common[prev]] - end[:, prev, common[prev]]).mean()
    assert drop_rare > 0 and drop_rare > drop_common  # log-probabilities: rare ones fall further


def test_item8_models_reading_each_other_transfer_and_homogenize():
    # Vu et al. 2025: two developers with private tasks A (concepts 0-1) and B (2-3), shared public data (4-5).
    results = {}
    for alpha in (0.0, 0.5, 1.0):
        def divergences(model):
            held = model.world.heldout()
            shared = held.items[held.communities == 0]
            private = held.items[held.communities != 0]
            pair = torch.tensor([0]), torch.tensor([1])
            return (float(model.family.divergence(model.state, shared, *pair)[0]),
                    float(model.family.divergence(model.state, private, *pair)[0]))

        overrides = {"developers.data.alpha": alpha, "steps": 8, "developers.train.samples": 400,
                     "developers.publish.samples": 400}
        _, agents, div = run("vu_two_models_tokens", overrides, divergences)
        own = pd.concat([agents[agents.developer == 0].set_index("step")["nll_task_a"],
                         agents[agents.developer == 1].set_index("step")["nll_task_b"]], axis=1).mean(axis=1)
        other = pd.concat([agents[agents.developer == 0].set_index("step")["nll_task_b"],
                           agents[agents.developer == 1].set_index("step")["nll_task_a"]], axis=1).mean(axis=1)
        results[alpha] = {"own": own, "other": other, "div": np.array(div)}
    none, half, full = results[0.0], results[0.5], results[1.0]
    # α = 0: nothing transfers — the other's task stays at its initial (untrained) NLL.
    assert abs(none["other"].iloc[-1] - none["other"].iloc[0]) < 0.05
    # α = 0.5: each model becomes good at the other's task and keeps its own.
    assert half["other"].iloc[-1] < 0.5 * half["other"].iloc[0]
    assert half["own"].iloc[-1] - half["own"].iloc[0] < full["own"].iloc[-1] - full["own"].iloc[0]
    # α = 1: its own task degrades.
    assert full["own"].iloc[-1] > full["own"].iloc[0] + 1.0
    # Homogenization (divergence columns: shared probes, private probes). On private data the models converge
    # only when they read each other (α > 0).
    assert none["div"][-1, 1] > 0.8 * none["div"][0, 1]
    for r in (half, full):
        assert r["div"][-1, 1] < 0.1 * r["div"][0, 1]
    # On shared data they are alike wherever they train on it (α < 1), and grow more alike when they read each
    # other. At α = 1 the public weight (1−α)(1−β) is 0: no model ever trains on the shared concepts and the
    # token models drift apart there (unlike Vu et al.'s linear models, whose common θ is shared everywhere).
    for r in (none, half):
        assert r["div"][-1, 0] < 0.1 * r["div"][0, 1]
    assert half["div"][-1, 0] < 0.5 * half["div"][0, 0]


def test_item9_minority_degrades_first_and_faster():
    # Shumailov et al. 2024 and the minority-languages commentary: quality on the minority community's
    # content degrades before and faster than on the majority's.
    overrides = {"developers.family": BIGRAM, "steps": 6, "developers.train.samples": 400,
                 "developers.publish.samples": 400, "developers.count": 12, "network": {"kind": "empty"}}
    _, agents, _ = run("minority_first", overrides)
    first = agents[agents.step == 1].set_index("developer")
    relative = {c: change(agents, f"nll_{c}") / first[f"nll_{c}"] for c in ("majority", "minority")}
    assert differs(relative["minority"], relative["majority"])
    # "Before": already after two generations the minority has lost more.
    second = agents[agents.step == 2].set_index("developer")
    early = {c: (second[f"nll_{c}"] - first[f"nll_{c}"]) / first[f"nll_{c}"] for c in ("majority", "minority")}
    assert differs(early["minority"], early["majority"])


def test_item6_logic_data_cycles_order():
    # Briesch, Sobania & Rothlauf 2023: after many generations quality is lost in the order fully synthetic >
    # incremental (λ = 0.1) > balanced > expanding with 10% fresh data, diversity in the order fully <
    # incremental < balanced < expanding, while correctness does not fall. A trigram with little smoothing
    # stands in for the scenario's transformer; small M = 30 makes resampling collapse visible. Incremental
    # and balanced part late: incremental drifts steadily (10% of its set resampled each generation), balanced
    # only by a bounded amount (generation g enters its pool with weight 1/g), so their gap grows with the
    # generations, hence 40. Balanced vs expanding is the smallest gap (~0.03 in Levenshtein diversity, sd
    # 0.02-0.03 across developers), hence 40 developers per cohort (at 6 neither pair parts by Z). Seeds 6-9
    # give z >= 3.7 for every pair. Expressions up to 24 tokens keep the Levenshtein cost low.
    overrides = {"developers.family": {"kind": "ngram", "order": 3, "smoothing": 0.001}, "steps": 40,
                 "developers.train.samples": 30, "developers.publish.samples": 30, "developers.count": 160,
                 "developers.groups": [40, 40, 40, 40], "world.seq_len": 24}
    _, agents, _ = run("briesch_logic_cycles", overrides)
    group = agents.groupby("developer").group.first()
    loss = change(agents, "nll")
    fully, incremental, balanced, expanding = (loss[group == g] for g in range(4))
    assert differs(fully, incremental) and differs(incremental, balanced) and differs(balanced, expanding)
    last = agents[agents.step > agents.step.max() - 5].groupby("developer").levenshtein.mean()  # last five
    fully, incremental, balanced, expanding = (last[group == g] for g in range(4))
    assert differs(expanding, fully)
    assert differs(incremental, fully) and differs(balanced, incremental) and differs(expanding, balanced)
    # Correctness (valid true expressions) does not fall in the fully synthetic cycle while its diversity
    # collapses: no drop beyond Z standard errors across developers (a trigram does not make it rise).
    validity = change(agents, "validity")[group == 0]
    assert not differs(pd.Series(np.zeros(len(validity))), validity)
