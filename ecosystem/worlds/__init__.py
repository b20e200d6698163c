"""Ground-truth worlds (see :mod:`ecosystem.worlds.base`)."""

from __future__ import annotations

import torch

from ecosystem.scenario import Scenario, world_concepts
from ecosystem.worlds.base import Batch, World
from ecosystem.worlds.communities import private_weights


def build_world(scenario: Scenario, device: torch.device, seed: int) -> World:
    spec, devs = scenario.world, scenario.developers
    private = private_weights(scenario.communities, world_concepts(spec), devs.groups, devs.group_concepts,
                              devs.count)
    args = (spec, scenario.communities, private, devs.train.samples, device)
    seed = spec.seed if spec.seed is not None else seed
    match spec.kind:
        case "gaussian":
            from ecosystem.worlds.gaussian import GaussianWorld

            return GaussianWorld(*args, seed)
        case "linear":
            from ecosystem.worlds.linear import LinearWorld

            return LinearWorld(*args, seed)
        case "labels":
            from ecosystem.worlds.labels import LabelsWorld

            return LabelsWorld(*args, seed)
        case "topic_markov":
            from ecosystem.worlds.topic_markov import TopicMarkovWorld

            return TopicMarkovWorld(*args, seed)
        case "logic":
            from ecosystem.worlds.logic import LogicWorld

            return LogicWorld(*args, seed)
        case "corpus":
            from ecosystem.worlds.corpus import CorpusWorld

            return CorpusWorld(*args, seed)
    raise ValueError(f"world.kind: unknown kind {spec.kind!r}")  # pragma: no cover


__all__ = ["Batch", "World", "build_world"]
