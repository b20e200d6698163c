"""Live mode: a scenario's model built and stepped while the page watches.

The parameters a scenario exposes are its seed, its number of generations and, when it has a ``sweep:``
section, its design points (each one the scenario with the point's values set, as ``ecosim sweep`` would run
it). Changing them takes effect on reset. The page reads only snapshots (:class:`RunData`), taken under a
lock after each generation, so a step running in a background thread never races a render.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis.dashboard.views import RunData, short
from ecosystem.design import design_points
from ecosystem.model import EcosystemModel
from ecosystem.scenario import Scenario, load_scenario, validate_scenario


@dataclass
class LiveSession:
    """One scenario stepped generation by generation. ``point`` indexes :attr:`points` (None: the base)."""

    path: Path
    seed: int
    steps: int
    point: int | None = None
    model: EcosystemModel = field(init=False)
    snapshot: RunData = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._base = yaml.safe_load(self.path.read_text()) or {}
        base = load_scenario(self.path)
        self.points: list[tuple[str, dict[str, Any]]] = []
        if base.sweep is not None:
            for params, _ in design_points(base.sweep, base.seed):
                label = " · ".join(f"{k.rsplit('.', 1)[-1]}={short(v)}" for k, v in params.items())
                self.points.append((label, params))
        self._lock = threading.Lock()
        self.reset()

    @classmethod
    def open(cls, path: str | Path) -> LiveSession:
        scenario = load_scenario(path)
        return cls(Path(path), scenario.seed, scenario.steps)

    def scenario(self) -> Scenario:
        """The scenario with the chosen seed, length and design point (raises ``ScenarioError`` if invalid)."""
        overrides = {"seed": self.seed, "steps": self.steps, "sweep": None}
        if self.point is not None:
            overrides |= self.points[self.point][1]
        return validate_scenario(self._base, base_dir=self.path.parent, overrides=overrides)

    def reset(self, **changes: Any) -> None:
        """Rebuild the model at generation 0 with the given parameter changes (``seed``, ``steps``, ``point``)."""
        with self._lock:
            before = {name: getattr(self, name) for name in changes}
            self.__dict__.update(changes)
            try:
                model = EcosystemModel(self.scenario())
            except Exception:
                self.__dict__.update(before)  # an invalid change leaves the session as it was
                raise
            self.model, self.snapshot = model, RunData.from_model(model)

    @property
    def finished(self) -> bool:
        return self.model.generation >= self.steps

    def step(self) -> RunData:
        """Run one generation (unless all are done) and return the new snapshot."""
        with self._lock:
            if not self.finished:
                self.model.step()
                self.snapshot = RunData.from_model(self.model)
            return self.snapshot
