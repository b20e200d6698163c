"""Families of tiny generative models, batched over developers (see :mod:`ecosystem.families.base`)."""

from __future__ import annotations

import torch

from ecosystem.families.base import Family
from ecosystem.scenario import Scenario
from ecosystem.worlds.base import World


def build_family(scenario: Scenario, world: World, device: torch.device) -> Family:
    spec, train = scenario.developers.family, scenario.developers.train
    match spec.kind:
        case "gaussian":
            from ecosystem.families.gaussian import GaussianFamily

            return GaussianFamily(spec, world.item_shape[0], device)
        case "gmm":
            from ecosystem.families.gmm import GmmFamily

            return GmmFamily(spec, world.item_shape[0], world.n_concepts, device)
        case "kde":
            from ecosystem.families.kde import KdeFamily

            return KdeFamily(spec, world.item_shape[0], device)
        case "linear":
            from ecosystem.families.linear import LinearFamily

            return LinearFamily(spec, world.item_shape[0] - 1, device)
        case "logistic":
            from ecosystem.families.logistic import LogisticFamily

            return LogisticFamily(spec, world.item_shape[0] - 1, world.n_concepts, device)
        case "ngram":
            from ecosystem.families.ngram import NgramFamily

            return NgramFamily(spec, world.vocab_size, world.item_shape[0], train, device)
        case "transformer":
            from ecosystem.families.transformer import TransformerFamily

            return TransformerFamily(spec, world.vocab_size, world.item_shape[0], train, device)
    raise ValueError(f"developers.family.kind: unknown kind {spec.kind!r}")  # pragma: no cover


__all__ = ["Family", "build_family"]
