"""Prompted generation (``developers.publish.prompt``): Vu, Reeves & Wenger (2025, arXiv 2505.21677) have
each model write by completing prompts drawn from its own private data.

The first k tokens of every published sequence are a prefix of a sequence of the named source (checked by
hand against the world's data of each developer); no prompt, or ``tokens: 0``, leaves the samples as they
were; one batched draw and one batched decode equal a loop over developers; the diversity metrics read only
what the model wrote; bad settings are one line; and with private prompts the two models of the paper's
token setting keep writing about their own tasks (their direction).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from ecosystem.families.ngram import NgramState
from ecosystem.model import EcosystemModel
from ecosystem.scenario import ScenarioError, validate_scenario
from ecosystem.seeding import Seeds
from tests.conftest import tiny

VU_TOKENS = "scenarios/papers/vu_two_models_tokens.yaml"
OWN = [[0, 1], [2, 3]]  # the concepts of each developer's private task in VU_TOKENS


def tokens_scenario(prompt=None, family=None, **overrides) -> dict:
    """Two developers with private data on different concepts (blocks of 4 tokens) of a topic_markov world."""
    data = tiny(world={"kind": "topic_markov", "vocab": 16, "concepts": 4, "seq_len": 8, "heldout": 20},
                communities=[{"name": "a", "authors": 2, "rate": 5}],
                developers={"count": 2, "groups": [1, 1], "group_concepts": [[0], [2, 3]],
                            "family": family or {"kind": "ngram", "order": 2},
                            "train": {"samples": 12, "steps": 2, "batch": 4},
                            "publish": {"samples": 10, **({} if prompt is None else {"prompt": prompt})},
                            "data": {"original": 0.5, "synthetic": 0.5}},
                network={"kind": "complete"}, steps=2)
    return data | overrides


def published(model: EcosystemModel) -> torch.Tensor:
    """The newest published items ``(N, k, T)`` as the pool holds them."""
    b, n = model.published, len(model.developers)
    return model.pool.take(np.arange(b.start, b.start + n * b.size).reshape(n, b.size)).long()


def run(data: dict, steps: int | None = None, **overrides) -> EcosystemModel:
    model = EcosystemModel(validate_scenario(data, overrides=overrides))
    for _ in range(steps or model.scenario.steps):
        model.step()
    return model


@pytest.mark.parametrize("source", ["private", "public", "heldout"])
@pytest.mark.parametrize("family", [{"kind": "ngram", "order": 2},
                                    {"kind": "transformer", "d_model": 8, "layers": 1, "heads": 2}])
def test_published_samples_start_with_a_prefix_of_the_source(source: str, family: dict) -> None:
    k = 3
    model = run(tokens_scenario({"tokens": k, "source": source}, family), steps=1)
    items = published(model)  # (N, 10, T)
    world = model.world
    # The draw by hand: (N, samples) uniform indices from the prompt stream, once, for generation 1.
    g = torch.Generator().manual_seed(Seeds.from_root(model.scenario.seed).prompts)
    sets = [{"private": world.original(d), "public": world.public(), "heldout": world.heldout()}[source].items
            for d in range(2)]
    idx = torch.randint(len(sets[0]), (2, 10), generator=g)
    for d in range(2):
        assert torch.equal(items[d, :, :k], sets[d][idx[d], :k])
        if source == "private":  # the developer's own task: its group's concept blocks (4 tokens each)
            assert set((items[d, :, :k] // 4).unique().tolist()) <= set(model.scenario.developers.group_concepts[d])
    assert items.shape[-1] == 8  # a whole sequence is published: the prompt and what the model wrote


def test_no_prompt_and_zero_tokens_reproduce_todays_samples() -> None:
    base = run(tokens_scenario())
    for prompt in ({"tokens": 0}, {"tokens": 0, "source": "heldout"}):
        again = run(tokens_scenario(prompt))
        assert torch.equal(published(again), published(base))
        assert torch.equal(again.pool.take(np.arange(again.pool.size)), base.pool.take(np.arange(base.pool.size)))


def test_a_prompt_leaves_the_other_random_streams_alone() -> None:
    """Prompts come from their own stream: the first generation trains on the same data with and without."""
    plain, prompted = (EcosystemModel(validate_scenario(tokens_scenario(p))) for p in (None, {"tokens": 2}))
    plain.step()
    prompted.step()
    assert torch.equal(plain.state.logp, prompted.state.logp)
    assert not torch.equal(published(plain)[..., :2], published(prompted)[..., :2])


def test_batched_prompts_and_decoding_equal_a_loop_over_developers() -> None:
    model = run(tokens_scenario(), steps=1)
    world, family, n, k, tokens = model.world, model.family, 2, 10, 3
    prompts = world.prefixes("private", tokens, k, n, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(len(world.original(0)), (n, k), generator=g)
    for d in range(n):
        assert torch.equal(prompts[d], world.original(d).items[idx[d], :tokens])
    batched = family.sample(model.state, k, torch.Generator().manual_seed(9), temperature=0.8, prompts=prompts)
    g = torch.Generator().manual_seed(9)  # one stream, each developer in turn: the same uniforms
    loop = torch.cat([family.sample(NgramState(model.state.logp[d : d + 1]), k, g, temperature=0.8,
                                    prompts=prompts[d : d + 1]) for d in range(n)])
    assert torch.equal(batched, loop)


def test_diversity_is_measured_on_what_the_model_wrote() -> None:
    model = EcosystemModel(validate_scenario(tokens_scenario({"tokens": 2})))
    m = model.measurement
    # Every sample shares the prompt [0, 1]; the written parts differ in one of two ways.
    samples = torch.tensor([[[0, 1, 2, 3, 2, 3, 2, 3], [0, 1, 4, 5, 4, 5, 4, 5]] * 2])  # (1, 4, 8)
    written = m.written(samples)
    assert torch.equal(written, samples[..., 2:])
    from ecosystem.metrics import SAMPLE_METRICS

    assert SAMPLE_METRICS["unique_fraction"](m, written, None, None).item() == 0.5
    # distinct bigrams of the written part: {23, 32} and {45, 54} over 4 × 5 bigrams
    assert SAMPLE_METRICS["distinct_2"](m, written, None, None).item() == pytest.approx(4 / 20)
    # A pad inside the prompt ends the sequence there: nothing of it was written (logic's pad is EOS).
    m.world.pad_id, m.prompt_tokens = 9, 3
    ended = m.written(torch.tensor([[[1, 9, 9, 4, 5], [1, 2, 3, 4, 5]]]))
    assert ended.tolist() == [[[9, 9], [4, 5]]]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"developers.publish.prompt": {"tokens": 8}}, "developers.publish.prompt.tokens: must be below world.seq_len=8"),
    ({"developers.publish.prompt": {"tokens": 2, "source": "web"}}, "developers.publish.prompt.source"),
    ({"developers.publish.prompt": {"tokens": -1}}, "developers.publish.prompt.tokens"),
    ({"world": {"kind": "gaussian"}, "developers.family": {"kind": "gaussian"},
      "developers.publish.prompt": {"tokens": 2}}, "developers.publish.prompt: the gaussian world"),
    ({"world": {"kind": "corpus", "split": {"public": 0.0}}, "developers.group_concepts": None,
      "developers.publish.prompt": {"tokens": 2, "source": "public"}},
     "developers.publish.prompt.source: 'public' needs public data"),
])
def test_bad_prompt_settings_are_one_line(overrides: dict, field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        validate_scenario(tokens_scenario(), overrides=overrides)
    message = str(err.value)
    assert "\n" not in message and field in message, message


def own_task_share(model: EcosystemModel) -> tuple[np.ndarray, float]:
    """Per developer, the share of the tokens it wrote (after the prompt) in its own task's blocks, and the
    total variation between the two developers' distributions of written tokens over concepts."""
    k = model.scenario.developers.publish.prompt_tokens
    blocks = published(model)[..., k:] // model.world.block  # (2, samples, T − k)
    share = np.array([np.isin(blocks[d].numpy(), OWN[d]).mean() for d in range(2)])
    hist = [np.bincount(blocks[d].flatten().numpy(), minlength=model.world.n_concepts + 1)[:-1] / blocks[d].numel()
            for d in range(2)]
    return share, 0.5 * float(np.abs(hist[0] - hist[1]).sum())


def test_private_prompts_keep_each_model_on_its_own_task() -> None:
    """Vu et al.'s prompted setting at α = β = 0.5, t = 15: what each model writes stays on its own task.
    Unprompted, the two models write the same mixture (measured over seeds 0–2: own-task share 0.36, total
    variation between their topics 0.25); prompted with one token of their private data, 0.98 and 0.97."""
    base = yaml.safe_load(open(VU_TOKENS))
    base.pop("sweep")
    for seed in (0, 1):
        plain, prompted = (run(base, seed=seed, device="cpu", **{"developers.publish.prompt": p})
                           for p in (None, {"tokens": 1, "source": "private"}))
        share_plain, tv_plain = own_task_share(plain)
        share_prompted, tv_prompted = own_task_share(prompted)
        assert share_prompted.min() > 0.9 and share_plain.max() < 0.5, (seed, share_plain, share_prompted)
        assert tv_prompted > tv_plain + 0.5, (seed, tv_plain, tv_prompted)


def test_the_prompts_table_of_vu_paper_measures_the_written_topics(capsys) -> None:
    """``python -m analysis.vu_paper prompts`` reports the own-task share and topic separation computed here
    independently (the same runs: same scenario, seed and α)."""
    from analysis.vu_paper import main, prompts_frame

    base = yaml.safe_load(open(VU_TOKENS))
    frame = prompts_frame(base, reps=1, alphas=(0.5,)).set_index("prompted")
    base.pop("sweep")
    for prompted in (False, True):
        model = run(base, seed=base["seed"], device="cpu", **{"developers.data.alpha": 0.5,
                    "developers.publish.prompt": {"tokens": 1, "source": "private"} if prompted else None})
        share, tv = own_task_share(model)
        assert frame.loc[prompted, "own_share"] == pytest.approx(share.mean())
        assert frame.loc[prompted, "separation"] == pytest.approx(tv)
    assert main(["prompts", VU_TOKENS, "--reps", "1"]) == 2  # at least two seeds
    assert main(["prompts", "no-such.yaml", "--reps", "2"]) == 2
    assert "no-such.yaml" in capsys.readouterr().err
