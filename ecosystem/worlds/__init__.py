"""Ground-truth worlds (see :mod:`ecosystem.worlds.base`)."""

from __future__ import annotations

import torch

from ecosystem.scenario import Scenario, world_concepts
from ecosystem.seeding import Seeds
from ecosystem.worlds.base import Batch, World
from ecosystem.worlds.communities import private_weights


def world_seed(scenario: Scenario) -> int:
    """The seed of the world's fixed data: ``world.seed`` if the scenario pins it, else the run's stream."""
    spec_seed = getattr(scenario.world, "seed", None)
    return spec_seed if spec_seed is not None else Seeds.from_root(scenario.seed).world


def check_world(scenario: Scenario) -> None:
    """What only reading the world's data can check, without building the world: a corpus's text against
    ``seq_len`` (the text the run would read, split and tokenized alike). Raises :class:`ScenarioError`."""
    if scenario.world.kind == "corpus":
        from ecosystem.worlds.corpus import check_text

        devs = scenario.developers
        check_text(scenario.world, devs.count, devs.train.samples, world_seed(scenario))


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


__all__ = ["Batch", "World", "build_world", "check_world", "world_seed"]
