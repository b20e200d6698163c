"""The dashboard page (Solara): a run, a sweep, or a scenario stepped live.

Served by :mod:`analysis.dashboard.serve`, which names the source in the environment (:data:`KIND`,
:data:`PATH`) before Solara imports this module. Every number and figure comes from
:mod:`analysis.dashboard.views`; this module only lays them out and wires the controls. Elements the browser
tests look for carry ``viz-…`` classes (the network's SVG: ``data-testid`` attributes).
"""

from __future__ import annotations

import html
import os
import threading
from functools import lru_cache
from pathlib import Path

import solara

from analysis.dashboard.live import LiveSession
from analysis.dashboard.serve import KIND, PATH
from analysis.dashboard.views import (
    RunData,
    SweepData,
    conditions_figure,
    heatmap_figure,
    model_figure,
    network_picture,
    trajectory_figure,
)
from ecosystem.scenario import ScenarioError

PLAY_SECONDS = 0.8  # between generations while playing a finished run
LATEST = 10**9  # a generation past any run's end: the slider shows the latest one


@lru_cache(maxsize=16)
def load_run(path: str) -> RunData:
    return RunData.from_folder(path)


@lru_cache(maxsize=4)
def load_sweep(path: str) -> SweepData:
    return SweepData.from_folder(path)


@solara.component_vue("network.vue", vuetify=False)
def Network(picture: dict, selected: int = -1, event_select=None):
    """The reading network as an SVG: one circle per developer (``data-testid=node``), click to select."""


def Table(header: list[str], rows: list[list[object]], name: str) -> solara.Element:
    """A plain HTML table (escaped)."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return solara.HTML(tag="table", unsafe_innerHTML=f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>",
                       classes=[f"viz-{name}"], style="font-size: 13px; border-collapse: collapse; width: auto")


def Figure(figure, classes: list[str]) -> solara.Element:
    with solara.Div(classes=classes) as main:
        solara.FigureMatplotlib(figure, dependencies=[id(figure)], format="svg")
    return main


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.4g}"


@solara.component
def DeveloperPanel(data: RunData, developer: int, metric: str, generation: int):
    """One developer: its trajectories, whom it reads and who reads it, what it wrote."""
    metrics = list(dict.fromkeys([metric, *[m for m in ("nll", "distinctiveness") if m in data.metrics()]]))
    figure = solara.use_memo(lambda: trajectory_figure(data, developer, metrics, generation),
                             [id(data), developer, tuple(metrics), generation])
    reads = ", ".join(f"{u} ({w:.2g})" for u, w in data.reads(developer)) or "nobody"
    read_by = ", ".join(map(str, data.read_by(developer))) or "nobody"
    with solara.Card(f"developer {developer} · community {int(data.groups[developer])}", classes=["viz-developer"]):
        solara.Text(f"{metric} after generation {generation}: {_fmt(data.values(metric, generation)[developer])}")
        solara.HTML(tag="p", classes=["viz-reading"],
                    unsafe_innerHTML=f"reads (share): {html.escape(reads)}<br>read by: {html.escape(read_by)}")
        Figure(figure, ["viz-trajectory"])
        wrote = data.wrote(developer, generation)
        if wrote:
            solara.HTML(tag="pre", unsafe_innerHTML=html.escape("\n".join(wrote)), classes=["viz-wrote"],
                        style="white-space: pre-wrap; font-size: 12px")


@solara.component
def RunView(data: RunData, generation: solara.Reactive[int], live: bool = False, stepping: bool = False):
    """A run at a chosen generation: the network coloured by a metric, the chosen developer, the divergence
    heat map ordered by community and the ecosystem metrics over time. ``live``: a model stepped by the live
    controls (which play it; the slider is held while ``stepping``)."""
    metrics = data.metrics()
    metric = solara.use_reactive(metrics[0] if metrics else "")
    selected = solara.use_reactive(-1)
    playing = solara.use_reactive(False)
    last = data.generations

    def play(cancel: threading.Event) -> None:
        while playing.value and not cancel.wait(PLAY_SECONDS):
            if generation.value >= last:
                playing.value = False
                return
            generation.value = min(max(generation.value, 1), last) + 1

    solara.use_thread(play, dependencies=[playing.value, id(data)], intrusive_cancel=False)
    if last == 0 or not metrics:
        solara.Info("no generation yet: press step or play")
        return
    g = min(max(generation.value, 1), last)
    chosen = metric.value if metric.value in metrics else metrics[0]
    with solara.Row(style="align-items: center; flex-wrap: wrap"):
        with solara.Div(classes=["viz-metric"], style="min-width: 260px"):
            solara.Select("colour by", values=metrics, value=chosen, on_value=metric.set)
        with solara.Div(classes=["viz-generation"], style="min-width: 320px; flex-grow: 1"):
            solara.SliderInt("generation", value=g, min=1, max=last, on_value=generation.set, disabled=stepping)
        if not live:
            solara.Button("pause" if playing.value else "play", on_click=lambda: playing.set(not playing.value),
                          classes=["viz-play"], disabled=last <= 1)
    RunBody(data, chosen, g, selected)


@solara.component
def RunBody(data: RunData, metric: str, g: int, selected: solara.Reactive[int]):
    picture = solara.use_memo(lambda: network_picture(data, metric, g), [id(data), metric, g])
    heat = solara.use_memo(lambda: heatmap_figure(data, g), [id(data), g])
    over_time = solara.use_memo(lambda: model_figure(data, g), [id(data), g])
    with solara.Columns([1, 1]):
        with solara.Column():
            solara.Text(f"reading network (u → v: v reads u) · colour: {metric} after generation {g} · "
                        "size: influence (PageRank) · click a developer", style="font-size: 13px")
            if picture["edges_total"] > len(picture["edges"]):
                solara.Text(f"{len(picture['edges']):,} of {picture['edges_total']:,} edges drawn (a seeded sample)",
                            style="font-size: 12px; color: #555")
            Network(picture=picture, selected=selected.value, event_select=lambda u: selected.set(int(u)))
            Figure(over_time, ["viz-model"])
        with solara.Column():
            if 0 <= selected.value < data.n:
                DeveloperPanel(data, selected.value, metric, g)
            Figure(heat, ["viz-heatmap"])


@solara.component
def RunPage(path: str):
    generation = solara.use_reactive(LATEST)
    RunView(load_run(path), generation)


@solara.component
def SweepPage(path: str):
    """A sweep: its design points, one run of a chosen point and replication, and the conditions compared."""
    sweep = load_sweep(path)
    points = sweep.points()
    labels = [f"{p}: {c}" for p, c in zip(points["point"], points["condition"], strict=True)]
    choice = solara.use_reactive(labels[0] if labels else "")
    replication = solara.use_reactive(0)
    outcomes = sweep.outcomes()
    outcome = solara.use_reactive(outcomes[0] if outcomes else "")
    generation = solara.use_reactive(LATEST)
    solara.Text(f"{len(points)} design points × replications; axes: {', '.join(sweep.axes) or 'none'}")
    Table(["point", "condition", "runs done"],
          [[p, c, f"{d}/{r}"] for p, c, d, r in points[["point", "condition", "done", "runs"]].itertuples(index=False)],
          "design-points")
    table = sweep.conditions(outcome.value) if outcomes else None
    figure = solara.use_memo(lambda: conditions_figure(table, outcome.value) if outcomes else None, [outcome.value])
    if outcomes:
        with solara.Card("conditions compared (final values; 95% t-intervals over replications)"):
            with solara.Div(classes=["viz-outcome"], style="max-width: 300px"):
                solara.Select("outcome", values=outcomes, value=outcome)
            Figure(figure, ["viz-conditions-figure"])
            Table(["point", "condition", "mean", "95% CI", "n"],
                  [[r.point, r.condition, _fmt(r.mean), f"{_fmt(r.ci_low)} – {_fmt(r.ci_high)}", r.n]
                   for r in table.itertuples()], "conditions")
    if not labels:
        return
    point = int(choice.value.split(":", 1)[0])
    replications = sweep.replications(point)
    with solara.Row():
        with solara.Div(classes=["viz-point"], style="min-width: 420px"):
            solara.Select("design point", values=labels, value=choice)
        with solara.Div(classes=["viz-replication"], style="min-width: 160px"):
            solara.Select("replication", values=replications, value=replication)
    run_id = sweep.run_id(point, replication.value)
    if run_id is None:
        solara.Warning(f"design point {point}, replication {replication.value}: not finished")
        return
    solara.Text(f"run {run_id}", classes=["viz-run-id"])
    RunView(load_run(str(Path(path) / "runs" / run_id)), generation)


@solara.component
def LivePage(path: str):
    """A scenario stepped live: step, play, pause, reset with other parameters."""
    session = solara.use_memo(lambda: LiveSession.open(path), [])
    data = solara.use_reactive(session.snapshot)
    generation = solara.use_reactive(LATEST)
    playing = solara.use_reactive(False)
    error = solara.use_reactive("")
    seed = solara.use_reactive(session.seed)
    steps = solara.use_reactive(session.steps)
    labels = ["base scenario", *[f"{k}: {label}" for k, (label, _) in enumerate(session.points)]]
    point = solara.use_reactive(labels[0])

    once = solara.use_reactive(False)  # one generation asked for by the step button
    busy = playing.value or once.value

    def run(cancel: threading.Event) -> None:
        """Generations run here, off the page's event loop: a transformer's generation can take a minute."""
        while (playing.value or once.value) and not cancel.is_set():
            if session.finished:
                break
            data.value = session.step()
            generation.value = LATEST
            once.value = False
        playing.value = once.value = False

    solara.use_thread(run, dependencies=[playing.value, once.value], intrusive_cancel=False)

    def reset() -> None:
        playing.value = once.value = False
        chosen = None if point.value == labels[0] else int(point.value.split(":", 1)[0])
        try:
            session.reset(seed=int(seed.value), steps=int(steps.value), point=chosen)
        except ScenarioError as err:
            error.value = str(err)
            return
        error.value = ""
        data.value, generation.value = session.snapshot, LATEST

    with solara.Row(style="align-items: center; flex-wrap: wrap"):
        solara.Button("step", on_click=lambda: once.set(True), disabled=busy or session.finished,
                      classes=["viz-step"])
        solara.Button("pause" if playing.value else "play", on_click=lambda: playing.set(not playing.value),
                      disabled=session.finished and not playing.value, classes=["viz-play"])
        solara.Button("reset", on_click=reset, classes=["viz-reset"])
        with solara.Div(style="max-width: 120px"):
            solara.InputInt("seed", value=seed)
        with solara.Div(style="max-width: 120px"):
            solara.InputInt("generations", value=steps)
        if len(labels) > 1:
            with solara.Div(classes=["viz-live-point"], style="min-width: 360px"):
                solara.Select("design point", values=labels, value=point)
        solara.Text(f"generation {data.value.generations} of {session.steps}" + (" · running…" if busy else ""),
                    classes=["viz-live-generation"])
    if error.value:
        solara.Error(error.value)
    RunView(data.value, generation, live=True, stepping=busy)


@solara.component
def Page():
    kind, path = os.environ.get(KIND, ""), os.environ.get(PATH, "")
    title = {"run": "run", "sweep": "sweep", "scenario": "live scenario"}.get(kind, "")
    solara.Title(f"ecosim · {Path(path).name}")
    with solara.Column(style="padding: 12px"):
        solara.HTML(tag="h2", unsafe_innerHTML=html.escape(f"ecosim · {title} · {path}"),
                    classes=["viz-title"])
        if kind == "run":
            RunPage(path)
        elif kind == "sweep":
            SweepPage(path)
        elif kind == "scenario":
            LivePage(path)
        else:
            solara.Error(f"{KIND} must be run, sweep or scenario (start the page with `ecosim viz PATH`)")
