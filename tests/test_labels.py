"""The classification world and the softmax-regression family (issue 12, item 3): the batched Newton fit
against a one-model-at-a-time scipy fit, the error rate and the world's verdicts on hand-built cases, bad
settings as one line, the verifier of Feng et al. (2024) on a model's own labels, and their threshold
p < 1/(1 + ψ/φ) with a generator whose errors do not depend on x (``writes: flipped``)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ecosystem.families.logistic import LogisticFamily, LogisticState, error_rate
from ecosystem.pool import MODEL
from ecosystem.run import simulate
from ecosystem.scenario import LabelsWorldSpec, LogisticFamilySpec, ScenarioError, validate_scenario
from ecosystem.worlds.labels import LabelsWorld
from tests.reference.logistic import fit_softmax

CPU = torch.device("cpu")
F64 = torch.float64


def test_batched_newton_fit_matches_a_plain_per_developer_fit_with_padding_and_weights():
    g = torch.Generator().manual_seed(0)
    n, b, d, k = 3, 60, 2, 3
    x = torch.randn(n, b, d, generator=g, dtype=F64)
    y = torch.randint(0, k, (n, b), generator=g)
    x = x + 1.5 * torch.nn.functional.one_hot(y, k)[..., :d].double()  # informative but not separable
    items = torch.cat([x, y[..., None].double()], -1)
    weights = torch.ones(n, b, dtype=F64)
    weights[1, 40:] = 0  # developer 1 has 40 items (padding)
    weights[2] = torch.rand(b, generator=g, dtype=F64) + 0.5  # loss weights
    fam = LogisticFamily(LogisticFamilySpec(iterations=30, ridge=0.1), d, k, CPU)
    state = fam.fit(fam.init(n, g), items, weights, g)
    for dev in range(n):
        want = fit_softmax(x[dev].numpy(), y[dev].numpy(), weights[dev].numpy(), k, 0.1)
        np.testing.assert_allclose(state.weights[dev].numpy(), want, atol=1e-6)


def test_a_developer_without_data_keeps_its_model_and_log_prob_is_the_softmax():
    fam = LogisticFamily(LogisticFamilySpec(), 1, 2, CPU)
    before = LogisticState(torch.tensor([[[1.0, 0.0], [-1.0, 0.5]]], dtype=F64))
    items = torch.tensor([[[0.3, 1.0], [2.0, 0.0]]], dtype=F64)
    after = fam.fit(before, items, torch.zeros(1, 2, dtype=F64), torch.Generator())
    assert torch.equal(after.weights, before.weights)
    # logits at x = 0.3: (0.3, -0.3 + 0.5) → p(y = 1) = σ(−0.1)
    assert abs(fam.log_prob(before, items)[0, 0].item() - np.log(1 / (1 + np.exp(0.1)))) < 1e-12


def test_error_rate_and_distance_on_a_hand_built_case():
    logits = torch.tensor([[[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]]], dtype=F64)
    assert error_rate(logits, torch.tensor([0, 1, 1, 0])).item() == 0.5

    class World:  # true classifier: class 1 where x > 0; the held-out human labels are all 1
        def classify(self, x):
            return (x[..., 0] > 0).long()

        def heldout(self):
            class Held:
                items = torch.tensor([[-2.0, 1.0], [-1.0, 1.0], [1.0, 1.0], [3.0, 1.0]], dtype=F64)

            return Held()

    fam = LogisticFamily(LogisticFamilySpec(), 1, 2, CPU)
    # Developer 0 says class 1 where x > 0.5 (wrong at no held-out point); developer 1 always says class 0.
    state = LogisticState(torch.tensor([[[0.0, 0.0], [1.0, -0.5]], [[0.0, 1.0], [0.0, 0.0]]], dtype=F64))
    np.testing.assert_array_equal(fam.distance(state, World()).numpy(), [0.0, 0.5])
    np.testing.assert_array_equal(fam.truth(state, World())["label_error"].numpy(), [0.5, 1.0])


def test_world_verdicts_noise_and_conditional_density():
    spec = LabelsWorldSpec(dim=2, classes=3, separation=2.0, label_noise=0.2, heldout=4000)
    from ecosystem.scenario import CommunitySpec

    world = LabelsWorld(spec, [CommunitySpec()], 2, 10, CPU, seed=1)
    held = world.heldout()
    # The nearest class mean is the true classifier; an item is correct when its label is that class.
    x = world.means + 0.01
    items = torch.cat([x, torch.tensor([[0.0], [2.0], [2.0]], dtype=F64)], 1)
    assert world.verify(items).tolist() == [True, False, True]
    # Human labels: the cluster's class, flipped with probability 0.2 (4 SE).
    flipped = (held.items[:, -1].long() != held.concepts).double().mean().item()
    assert abs(flipped - 0.2) < 4 * np.sqrt(0.16 / len(held))
    # log p(y | x) sums to one over the labels.
    xs = held.items[:5, :-1]
    total = sum(world.log_prob(torch.cat([xs, torch.full((5, 1), float(c), dtype=F64)], 1)).exp() for c in range(3))
    np.testing.assert_allclose(total.numpy(), 1.0, atol=1e-12)
    prompts = world.prompts(7, torch.Generator().manual_seed(0))
    assert prompts.shape == (2, 7, 2)


@pytest.mark.parametrize(("change", "message"), [
    ({"world": {"kind": "labels", "classes": 2, "label_noise": 0.5}},
     "world.label_noise: must be below (classes − 1)/classes = 0.5"),
    ({"world": {"kind": "labels", "classes": 1}}, "world.classes: must be ≥ 2, got 1"),
    ({"world": {"kind": "gaussian"}}, "developers.family.kind: 'logistic' cannot model a 'gaussian' world"),
    ({"developers": {"family": {"kind": "logistic", "ridge": 0.0}}}, "developers.family.ridge: must be > 0"),
    ({"developers": {"family": {"kind": "logistic", "writes": "flipped", "flip": 1.0}}},
     "developers.family.flip: must be ≥ 0 and < 1, got 1.0"),
    ({"developers": {"family": {"kind": "logistic", "writes": "flipped"}}},
     "developers.family.flip: give it with writes 'flipped'"),
    ({"developers": {"family": {"kind": "logistic", "flip": 0.2}}},
     "developers.family.flip: give it with writes 'flipped'"),
    ({"developers": {"family": {"kind": "logistic", "writes": "argmax"}}},
     "developers.family.writes: must be 'sampled' or 'flipped', got 'argmax'"),
])
def test_bad_settings_are_one_line(change, message):
    raw = {"world": {"kind": "labels"}, "developers": {"family": {"kind": "logistic"}}} | change
    if "family" not in raw["developers"]:
        raw["developers"]["family"] = {"kind": "logistic"}
    with pytest.raises(ScenarioError) as err:
        validate_scenario(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def paper(phi: float, psi: float, samples: int, steps: int = 6) -> object:
    raw = yaml.safe_load(Path("scenarios/papers/feng_verification.yaml").read_text())
    raw.pop("sweep")
    raw["steps"] = steps
    raw["developers"]["data"]["verifier"] = {"keep_correct": phi, "keep_wrong": psi}
    raw["developers"]["train"]["samples"] = samples
    model, _ = simulate(validate_scenario(raw))
    return model


def test_the_verifier_keeps_correct_labels_with_phi_and_wrong_ones_with_psi():
    """Feng et al.'s curation on a model's own labels: of the synthetic items it wrote with error rate p, a
    developer trains on a set whose error rate is pψ / (pψ + (1 − p)φ), below 1/2 exactly when
    p < 1/(1 + ψ/φ)."""
    phi, psi = 0.5, 0.9
    model = paper(phi, psi, 1000, steps=2)
    pool = model.pool
    written = (pool.column("author_kind") == MODEL) & (pool.column("step") == 1)  # what generation 2 read
    p = 1 - pool.column("verified")[written].mean()
    idx, weight = model.retention.live()[0].padded()  # generation 2's training sets
    used = idx[weight > 0]
    curated = 1 - pool.column("verified")[used].mean()
    want = p * psi / (p * psi + (1 - p) * phi)
    assert abs(curated - want) < 4 * np.sqrt(want * (1 - want) / len(used))


@pytest.mark.parametrize("samples", [30, 1000])  # a weak and a good starting model
@pytest.mark.parametrize(("phi", "psi"), [(1.0, 0.25), (0.25, 1.0)])
def test_curation_improves_a_model_below_the_threshold_and_degrades_one_above(phi, psi, samples):
    """Feng et al. (2024): with the model's error rate p below 1/(1 + ψ/φ) the error against the true
    classifier falls over generations of curated self-training; above it, it rises (each change > 3 SE over
    20 independent developers)."""
    frame = paper(phi, psi, samples).developer_frame()
    first, last = frame[frame.step == 1], frame[frame.step == frame.step.max()]
    p = 1 - first.validity.mean()  # the error rate of the labels each model wrote in generation 1
    threshold = 1 / (1 + psi / phi)
    change = last.distance.to_numpy() - first.distance.to_numpy()
    z = change.mean() / (change.std(ddof=1) / np.sqrt(len(change)))
    if p < threshold:
        assert z < -3
    else:
        assert z > 3
    assert abs(p - threshold) > 0.05  # each case sits clearly on one side


def test_flipped_writes_the_most_likely_label_with_probability_one_minus_p_and_another_class_uniformly():
    n, k, classes, p = 2, 20000, 3, 0.3
    fam = LogisticFamily(LogisticFamilySpec(writes="flipped", flip=p), 1, classes, CPU)
    # Developer 0 always says class 2; developer 1 says class 0 where x < 0 and class 1 where x > 0.
    weights = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 5.0]], [[-1.0, 0.0], [1.0, 0.0], [0.0, -9.0]]], dtype=F64)
    state = LogisticState(weights)
    prompts = torch.randn(n, k, 1, generator=torch.Generator().manual_seed(1), dtype=F64)
    items = fam.sample(state, k, torch.Generator().manual_seed(2), prompts=prompts)
    assert torch.equal(items, fam.sample(state, k, torch.Generator().manual_seed(2), prompts=prompts))  # seeded
    assert torch.equal(items[..., :-1], prompts)
    top = fam.logits(state, prompts).argmax(-1)  # (N, k)
    y = items[..., -1].long()
    se = np.sqrt(p * (1 - p) / k)
    for dev in range(n):
        kept = (y[dev] == top[dev]).double().mean().item()
        assert abs(kept - (1 - p)) < 4 * se
        # The replacement is one of the other classes, each with probability 1/2: offset 1 or 2 from the argmax.
        offset = (y[dev] - top[dev]) % classes
        flipped = offset[offset > 0]
        share = (flipped == 1).double().mean().item()
        assert abs(share - 0.5) < 4 * np.sqrt(0.25 / len(flipped))
    # Independent of x: developer 1's flip rate is the same where x < 0 and where x > 0.
    left = prompts[1, :, 0] < 0
    for side in (left, ~left):
        rate = (y[1][side] != top[1][side]).double().mean().item()
        assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / side.sum().item())


@functools.cache
def flipped_chain(phi: float, psi: float, p: float) -> pd.DataFrame:
    """feng_threshold.yaml at a smaller size: 20 developers, 1,000 items a generation, 3 generations."""
    raw = yaml.safe_load(Path("scenarios/papers/feng_threshold.yaml").read_text())
    raw.pop("sweep")
    raw["steps"] = 3
    raw["world"]["heldout"] = 2000
    raw["developers"]["family"] |= {"flip": p, "iterations": 10}
    raw["developers"]["train"]["samples"] = raw["developers"]["publish"]["samples"] = 1000
    raw["developers"]["data"]["verifier"] = {"keep_correct": phi, "keep_wrong": psi}
    model, _ = simulate(validate_scenario(raw))
    return model.developer_frame()


@pytest.mark.parametrize(("phi", "psi", "p"), [
    (0.5, 1.0, 0.2),  # below 1/3 although φ < ψ: improves, where curating sampled labels would degrade
    (0.5, 1.0, 0.45),  # above 1/3: collapses
    (1.0, 0.25, 0.6),  # below 0.8 although the generator is wrong more often than right: improves
    (1.0, 0.25, 0.9),  # above 0.8: collapses, then the flipped anti-model writes error 1 − p = 0.1 and recovers
])
def test_a_generator_with_error_p_below_the_threshold_trains_a_better_model_and_above_it_a_collapsed_one(
        phi, psi, p):
    """Feng et al. (2024), their threshold: curated labels of a generator with x-independent error rate e train
    a model whose error against the true classifier is below e when e < 1/(1 + ψ/φ) and above 1/2 when e is
    above. Generation 1 learns from clean human data, so generation 2's generator has error e ≈ p; each later
    generation's generator is the previous model (error p where its argmax is right, 1 − p where it is wrong),
    so e is measured: the share of wrong labels it wrote. Each verdict holds by 4 SE over 20 developers.
    Generation 3 is checked too, except below the threshold with φ < ψ: there the previous model's few errors
    depend on x and curation amplifies them (the next test)."""
    frame = flipped_chain(phi, psi, p)
    threshold = 1 / (1 + psi / phi)
    assert frame[frame.step == 1].distance.mean() < 0.05  # generation 1 is nearly the true classifier
    for t in (2, 3):
        e = 1 - frame[frame.step == t - 1].validity.mean()  # the generator's error rate
        if t == 3 and phi < psi and e < threshold:
            continue
        error = frame[frame.step == t].distance
        se = error.std(ddof=1) / np.sqrt(len(error))
        assert abs(e - threshold) > 0.05  # each generation sits clearly on one side
        if e < threshold:
            assert error.mean() + 4 * se < e
        else:
            assert error.mean() - 4 * se > 0.5


def test_below_the_threshold_a_verifier_with_phi_below_psi_still_amplifies_the_model_s_own_errors():
    """The pointwise effect survives in the chain: where a model's most likely label is wrong (a region that
    depends on x), its flipped labels are wrong with probability 1 − p, and a verifier with ψ > φ keeps them
    preferentially, so that region grows each generation; with φ > ψ it does not (20 developers, 4 SE)."""
    def growth(phi: float, psi: float, p: float) -> float:
        frame = flipped_chain(phi, psi, p)
        change = frame[frame.step == 3].distance.to_numpy() - frame[frame.step == 2].distance.to_numpy()
        return change.mean() / (change.std(ddof=1) / np.sqrt(len(change)))

    assert growth(0.5, 1.0, 0.2) > 4
    assert growth(1.0, 0.25, 0.6) < 3
