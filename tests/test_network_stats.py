"""Network statistics on graphs whose answers are known by hand: ring, star, complete, two cliques."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from analysis.network_stats import network_statistics, node_statistics
from ecosystem.network import build_network
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
