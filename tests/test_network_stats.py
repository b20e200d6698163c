"""Network statistics on graphs whose answers are known by hand: ring, star, complete, two cliques."""

from __future__ import annotations

import math
import random
import time

import networkx as nx
import numpy as np
import pytest

from analysis import network_stats
from analysis.network_stats import network_statistics, node_statistics
from ecosystem.network import build_network, reading_matrix
from ecosystem.scenario import CompleteNet, RingNet, StarNet


def test_ring_of_six():
    # Each node reads its two neighbours: 12 of 30 ordered pairs; no triangles; distances 1, 1, 2, 2, 3.
    # W (with self-loops) = (I + S + S⁻¹)/3 has eigenvalues (1 + 2cos(2πj/6))/3: 1, 2/3, 2/3, 0, 0, −1/3.
    s = network_statistics(build_network(RingNet(k=2), 6, seed=0))
    assert s["edges"] == 12
    assert s["density"] == pytest.approx(0.4)
    assert s["reciprocity"] == pytest.approx(1.0)
    assert s["clustering"] == pytest.approx(0.0)
    assert s["avg_path_length"] == pytest.approx(9 / 5)
    assert s["reachability"] == pytest.approx(1.0)
    assert s["efficiency"] == pytest.approx((1 + 1 + 1 / 2 + 1 / 2 + 1 / 3) / 5)
    assert s["modularity"] == pytest.approx(0.0)  # a single community
    assert s["slem"] == pytest.approx(2 / 3)
    assert s["spectral_gap"] == pytest.approx(1 / 3)


def test_ring_without_self_loops_is_periodic():
    # W = (S + S⁻¹)/2 on an even ring has eigenvalue cos(π) = −1: averaging oscillates and never mixes.
    s = network_statistics(build_network(RingNet(k=2, self_loops=False), 6, seed=0))
    assert s["slem"] == pytest.approx(1.0)
    assert s["spectral_gap"] == pytest.approx(0.0, abs=1e-12)
    assert s["density"] == pytest.approx(0.4)  # self-loops never count in the graph statistics


def test_star_of_five():
    # Hub 0 reads and is read by 4 leaves: 8 edges; leaves reach each other in 2 steps (12 pairs).
    g = build_network(StarNet(), 5, seed=0)
    s = network_statistics(g)
    assert s["density"] == pytest.approx(8 / 20)
    assert s["clustering"] == pytest.approx(0.0)
    assert s["avg_path_length"] == pytest.approx((8 * 1 + 12 * 2) / 20)
    # W: hub row 1/5 each (itself and 4 leaves), leaf rows 1/2 (itself, hub). Antisymmetric leaf modes give
    # 1/2 (three times); the symmetric block [[1/5, 4/5], [1/2, 1/2]] gives 1 and −3/10.
    assert s["slem"] == pytest.approx(0.5)

    nodes = node_statistics(g)
    assert nodes["in_degree"].tolist() == [4, 1, 1, 1, 1]
    assert nodes["out_degree"].tolist() == [4, 1, 1, 1, 1]
    # Betweenness: the hub relays all 12 leaf pairs, normalised by (n−1)(n−2) = 12.
    assert nodes["betweenness"].tolist() == pytest.approx([1.0, 0, 0, 0, 0])
    # PageRank (damping d = 0.85): hub x = (1−d)/5 + d·4y and leaf y = (1−d)/5 + d·x/4, so
    # x = (0.03 + 0.85·4·0.03) / (1 − 0.85²).
    hub = (0.03 + 0.85 * 4 * 0.03) / (1 - 0.85**2)
    assert nodes["pagerank"].tolist() == pytest.approx([hub] + [(1 - hub) / 4] * 4)
    assert nodes["pagerank"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("self_loops, slem", [(True, 0.0), (False, 1 / 4)])
def test_complete_graph(self_loops, slem):
    # W = 11ᵀ/5 (rank one: consensus in one step) with self-loops; (11ᵀ − I)/4 without (eigenvalue −1/4).
    g = build_network(CompleteNet(self_loops=self_loops), 5, seed=0)
    s = network_statistics(g)
    assert s["density"] == pytest.approx(1.0)
    assert s["clustering"] == pytest.approx(1.0)
    assert s["avg_path_length"] == pytest.approx(1.0)
    assert s["efficiency"] == pytest.approx(1.0)
    assert s["slem"] == pytest.approx(slem, abs=1e-9)
    nodes = node_statistics(g)
    assert (nodes["in_degree"] == 4).all()
    assert nodes["pagerank"].tolist() == pytest.approx([0.2] * 5)
    assert nodes["betweenness"].tolist() == pytest.approx([0.0] * 5)


def test_two_disconnected_cliques():
    g = nx.DiGraph(nx.disjoint_union(nx.complete_graph(3), nx.complete_graph(3)))
    g.add_edges_from((u, u) for u in range(6))  # self-loops, as the ecosystem builds them
    s = network_statistics(g, groups=[0, 0, 0, 1, 1, 1])
    assert s["edges"] == 12
    assert s["density"] == pytest.approx(12 / 30)
    assert s["clustering"] == pytest.approx(1.0)
    # Paths only inside a clique: the reachable pairs are all at distance 1 and make up 12 of 30 pairs.
    assert s["avg_path_length"] == pytest.approx(1.0)
    assert s["reachability"] == pytest.approx(12 / 30)
    assert s["efficiency"] == pytest.approx(12 / 30)
    # Each community holds half of the edges and half of the degree: Q = 2 (1/2 − (1/2)²) = 1/2.
    assert s["modularity"] == pytest.approx(0.5)
    # Two closed classes: eigenvalue 1 twice, no mixing between the cliques.
    assert s["slem"] == pytest.approx(1.0)
    assert s["spectral_gap"] == pytest.approx(0.0, abs=1e-12)


def test_groups_default_to_the_node_attribute():
    g = build_network(CompleteNet(), 6, seed=0, groups=[3, 3])
    assert network_statistics(g)["modularity"] == pytest.approx(network_statistics(g, [0, 0, 0, 1, 1, 1])["modularity"])
    # Complete graph, two halves: each half holds 6 of 30 edges and half the degree: Q = 2 (6/30 − 1/4) = −0.1.
    assert network_statistics(g)["modularity"] == pytest.approx(-0.1)
    assert node_statistics(g)["group"].tolist() == [0, 0, 0, 1, 1, 1]


def test_edgeless_graph_is_nan_where_undefined():
    g = nx.DiGraph()
    g.add_nodes_from(range(4))
    s = network_statistics(g)
    assert s["density"] == 0.0
    assert math.isnan(s["reciprocity"]) and math.isnan(s["avg_path_length"]) and math.isnan(s["modularity"])
    assert s["reachability"] == 0.0
    assert np.isfinite(s["slem"])  # W is all zeros: every eigenvalue is 0


# ── the fast path against networkx's own functions ────────────────────────────────────────────────────


def reference_statistics(g: nx.DiGraph, groups: list[int]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The statistics by networkx's functions on the graph without self-loops (W's spectrum by numpy)."""
    h = g.copy()
    h.remove_edges_from(list(nx.selfloop_edges(h)))
    n = h.number_of_nodes()
    lengths = [d for u, dist in nx.shortest_path_length(h) for v, d in dist.items() if u != v]
    communities = [{u for u in range(n) if groups[u] == c} for c in sorted(set(groups))]
    moduli = np.sort(np.abs(np.linalg.eigvals(reading_matrix(g))))
    graph = {
        "edges": h.number_of_edges(),
        "density": nx.density(h),
        "reciprocity": nx.overall_reciprocity(h),
        "clustering": nx.average_clustering(h.to_undirected()),
        "avg_path_length": float(np.mean(lengths)),
        "reachability": len(lengths) / (n * (n - 1)),
        "efficiency": float(np.sum(1 / np.asarray(lengths, dtype=float))) / (n * (n - 1)),
        "modularity": nx.community.modularity(h, communities, weight=None),
        "slem": moduli[-2],
    }
    pagerank = nx.pagerank(h.reverse(copy=True), weight="weight", tol=1e-12, max_iter=1000)
    betweenness = nx.betweenness_centrality(h)
    nodes = {"pagerank": [pagerank[u] for u in range(n)], "betweenness": [betweenness[u] for u in range(n)],
             "in_degree": [h.in_degree(u) for u in range(n)], "out_degree": [h.out_degree(u) for u in range(n)]}
    return graph, nodes


def small_graphs() -> dict[str, nx.DiGraph]:
    rng = np.random.default_rng(7)
    graphs = {
        "sparse directed": nx.gnp_random_graph(40, 0.06, seed=1, directed=True),  # many unreachable pairs
        "dense directed": nx.gnp_random_graph(30, 0.6, seed=2, directed=True),
        "small world": nx.watts_strogatz_graph(50, 4, 0.2, seed=3).to_directed(),
        "scale free": nx.barabasi_albert_graph(45, 2, seed=4).to_directed(),
        "directed path": nx.path_graph(25, create_using=nx.DiGraph),  # long distances, one direction
        "isolated nodes": nx.disjoint_union(nx.complete_graph(6).to_directed(), nx.empty_graph(4, nx.DiGraph)),
    }
    for name, g in graphs.items():
        g = nx.DiGraph(g)
        g.add_edges_from((u, u) for u in range(0, g.number_of_nodes(), 2))  # self-loops on every other node
        for u, v in g.edges:
            g[u][v]["weight"] = float(rng.uniform(0.5, 2.0)) if name != "small world" else 1.0
        graphs[name] = g
    return graphs


GRAPHS = small_graphs()


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("products", ["sparse", "dense", "chosen"])
def test_statistics_match_networkx(name, products, monkeypatch):
    # Every search level as a sparse product, as a dense matmul, or as the cost rule chooses.
    threshold = {"sparse": math.inf, "dense": 0.0, "chosen": network_stats.DENSE_ABOVE}[products]
    monkeypatch.setattr(network_stats, "DENSE_ABOVE", threshold)
    g = GRAPHS[name]
    n = g.number_of_nodes()
    groups = [u % 3 for u in range(n)]
    graph, nodes = reference_statistics(g, groups)
    s = network_statistics(g, groups)
    for key, value in graph.items():
        assert s[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    frame = node_statistics(g, groups)
    for key, values in nodes.items():
        assert frame[key].tolist() == pytest.approx(values, rel=1e-7, abs=1e-12), key


def test_sampled_sources_match_networkx_k(monkeypatch):
    # Above SAMPLE_ABOVE nodes: betweenness as networkx's k-sample with the same seed, path statistics over
    # the pairs leaving the same sources.
    monkeypatch.setattr(network_stats, "SAMPLE_ABOVE", 20)
    monkeypatch.setattr(network_stats, "SAMPLED_SOURCES", 9)
    g = GRAPHS["sparse directed"]
    h = g.copy()
    h.remove_edges_from(list(nx.selfloop_edges(h)))
    n = h.number_of_nodes()
    expected = nx.betweenness_centrality(h, k=9, seed=network_stats.SAMPLE_SEED)
    assert node_statistics(g)["betweenness"].tolist() == pytest.approx([expected[u] for u in range(n)], rel=1e-9)
    sources = random.Random(network_stats.SAMPLE_SEED).sample(list(h.nodes), 9)
    lengths = [d for s in sources for v, d in nx.single_source_shortest_path_length(h, s).items() if v != s]
    s = network_statistics(g)
    assert s["avg_path_length"] == pytest.approx(np.mean(lengths))
    assert s["reachability"] == pytest.approx(len(lengths) / (9 * (n - 1)))


@pytest.mark.slow
def test_complete_graph_of_2000_in_seconds():
    # The size of issue 9: a dense graph of 2000 developers (4 million edges) in seconds, not minutes.
    g = build_network(CompleteNet(), 2000, seed=0)
    start = time.perf_counter()
    s = network_statistics(g)
    nodes = node_statistics(g)
    assert time.perf_counter() - start < 60  # a generous bound on a shared 2-core machine (about 10 s alone)
    assert s["avg_path_length"] == 1.0 and s["efficiency"] == 1.0 and s["clustering"] == pytest.approx(1.0)
    assert s["slem"] == pytest.approx(0.0, abs=1e-9)
    assert nodes["betweenness"].max() == 0.0
    assert nodes["pagerank"].to_numpy() == pytest.approx(np.full(2000, 1 / 2000))
