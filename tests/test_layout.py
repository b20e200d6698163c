"""Network and divergence pictures stay drawable at any size: a sample of a dense graph's edges, a circle by
community for large graphs, community blocks for sampled divergences (no cliff at thousands of developers)."""

from __future__ import annotations

import itertools

import matplotlib
import networkx as nx
import numpy as np
import pytest

matplotlib.use("Agg")

from analysis import figures, layout


def test_every_edge_of_a_small_graph_is_drawn_and_loops_are_not():
    graph = nx.DiGraph([(0, 1), (1, 2), (2, 0), (1, 1)])
    edges, total = layout.drawn_edges(graph)
    assert total == 3 and {tuple(e) for e in edges} == {(0, 1), (1, 2), (2, 0)}


def test_a_dense_graph_draws_a_seeded_sample_of_its_edges():
    graph = nx.complete_graph(120, create_using=nx.DiGraph)
    edges, total = layout.drawn_edges(graph, limit=500, seed=3)
    assert total == 120 * 119 and len(edges) == 500
    assert len({tuple(e) for e in edges}) == 500 and all(graph.has_edge(u, v) for u, v in edges)
    again, _ = layout.drawn_edges(graph, limit=500, seed=3)
    other, _ = layout.drawn_edges(graph, limit=500, seed=4)
    np.testing.assert_array_equal(edges, again)
    assert {tuple(e) for e in other} != {tuple(e) for e in edges}


def test_large_graphs_sit_on_a_circle_with_each_community_on_its_own_arc():
    n = layout.SPRING_UP_TO + 1
    groups = np.arange(n) % 3  # communities interleaved in developer order
    xy = layout.positions(nx.empty_graph(n, create_using=nx.DiGraph), groups)
    assert xy.shape == (n, 2)
    np.testing.assert_allclose(np.hypot(*(xy - 0.5).T), 0.5)
    angle = np.mod(np.arctan2(xy[:, 1] - 0.5, xy[:, 0] - 0.5), 2 * np.pi)
    for g in range(3):  # an arc: the community's angles are contiguous in the circle's order
        ranks = np.argsort(np.argsort(angle))[groups == g]
        assert ranks.max() - ranks.min() == len(ranks) - 1


def test_small_graphs_get_the_same_spring_layout_every_time():
    graph = nx.DiGraph([(0, 1), (1, 2), (3, 4)])
    a, b = layout.positions(graph, seed=1), layout.positions(graph, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0)
    # linked developers sit closer than unlinked ones
    assert np.hypot(*(a[0] - a[1])) < np.hypot(*(a[0] - a[4]))


def test_a_sampled_divergence_matrix_is_drawn_as_community_means():
    rng = np.random.default_rng(0)
    n, groups = 60, np.repeat([0, 1, 2], 20)
    d = np.full((n, n), np.nan)
    np.fill_diagonal(d, 0.0)
    pairs = [p for p in itertools.combinations(range(n), 2) if rng.random() < 0.2]
    for i, j in pairs:
        d[i, j] = d[j, i] = groups[i] + groups[j] + rng.random()
    ax = figures.similarity_matrix(d, groups, title="t")
    shown = ax.images[0].get_array()
    for a, b in itertools.product(range(3), repeat=2):
        values = [d[i, j] for i, j in pairs if {groups[i], groups[j]} == {a, b}]
        assert shown[a, b] == pytest.approx(np.mean(values))
        assert f"({len(values):,} pairs)" in "".join(t.get_text() for t in ax.texts)
    assert ax.get_title() == "t (sampled pairs)"


def test_the_network_figure_of_a_dense_graph_says_it_is_a_sample():
    n = layout.SPRING_UP_TO + 50
    graph = nx.complete_graph(n, create_using=nx.DiGraph)
    ax = figures.network(graph, {u: float(u) for u in range(n)}, "nll", groups=np.arange(n) % 2)
    caption = [t.get_text() for t in ax.texts]
    assert caption == [f"{layout.EDGES_DRAWN:,} of {n * (n - 1):,} edges drawn (a seeded sample)"]
    assert len(ax.collections[0].get_segments()) == layout.EDGES_DRAWN


def test_the_summary_figure_draws_every_developer_as_one_collection():
    import pandas as pd

    from analysis.summary import summary_figure

    n, steps = 500, 4
    rng = np.random.default_rng(1)
    agents = pd.DataFrame({"step": np.tile(np.arange(1, steps + 1), n), "developer": np.repeat(np.arange(n), steps),
                           "group": np.repeat(np.arange(n) % 2, steps), "nll": rng.random(n * steps) + 3})
    model = agents.groupby("step", as_index=False)["nll"].mean()
    fig = summary_figure(model, agents, "big")
    lines = fig.axes[0].collections[0]
    assert len(lines.get_segments()) == n and all(len(seg) == steps for seg in lines.get_segments())
    colours = {tuple(c) for c in lines.get_colors()}
    assert len(colours) == 2  # one per community
    first = lines.get_segments()[7]
    np.testing.assert_allclose(first[:, 1], agents.loc[agents.developer == 7, "nll"])
