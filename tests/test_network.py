from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from ecosystem.network import NetworkError, build_network, read_edge_list, read_edges, reading_matrix, write_edge_list
from ecosystem.scenario import validate_scenario


def net(spec: dict, n: int = 8, seed: int = 1, groups=None) -> nx.DiGraph:
    raw = {"developers": {"count": n, "groups": groups}, "network": spec}
    s = validate_scenario(raw)
    return build_network(s.network, n, seed, groups)


def in_neighbours(g, v):
    return sorted(u for u in g.predecessors(v) if u != v)


def test_complete_ring_star_empty():
    assert all(len(in_neighbours(net({"kind": "complete"}), v)) == 7 for v in range(8))
    ring = net({"kind": "ring", "k": 2})
    assert in_neighbours(ring, 0) == [1, 7] and in_neighbours(ring, 3) == [2, 4]
    star = net({"kind": "star"})
    assert in_neighbours(star, 0) == list(range(1, 8)) and in_neighbours(star, 5) == [0]
    empty = net({"kind": "empty"})
    assert all(in_neighbours(empty, v) == [] for v in range(8)) and empty.has_edge(3, 3)


def test_self_loops_switch():
    assert all(net({"kind": "ring", "self_loops": True}).has_edge(v, v) for v in range(8))
    assert not any(net({"kind": "ring", "self_loops": False}).has_edge(v, v) for v in range(8))


@pytest.mark.parametrize("spec", [{"kind": "erdos_renyi", "p": 0.4}, {"kind": "watts_strogatz", "k": 4, "p": 0.3},
                                  {"kind": "barabasi_albert", "m": 2},
                                  {"kind": "erdos_renyi", "p": 0.4, "directed": True}])
def test_random_families_are_seeded(spec):
    a, b, c = net(spec, seed=1), net(spec, seed=1), net(spec, seed=2)
    assert sorted(a.edges) == sorted(b.edges)
    assert sorted(a.edges) != sorted(c.edges)


def test_random_family_shapes():
    ba = net({"kind": "barabasi_albert", "m": 2}, n=30)
    assert ba.number_of_edges() - 30 == 2 * 2 * (30 - 2)  # m edges per new node, both directions, + self loops
    ws = net({"kind": "watts_strogatz", "k": 4, "p": 0.0})
    assert all(len(in_neighbours(ws, v)) == 4 for v in range(8))


def test_stochastic_block_is_dense_inside():
    g = net({"kind": "stochastic_block", "p_in": 1.0, "p_out": 0.0}, n=6, groups=[3, 3])
    assert in_neighbours(g, 0) == [1, 2] and in_neighbours(g, 4) == [3, 5]
    assert [g.nodes[v]["group"] for v in range(6)] == [0, 0, 0, 1, 1, 1]


def test_edge_list_round_trip_and_errors(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("# who reads whom\n0 1\n1 2 3.0\n2 0\n")
    g = net({"kind": "edge_list", "path": str(path), "self_loops": False}, n=3)
    assert sorted(g.edges) == [(0, 1), (1, 2), (2, 0)] and g[1][2]["weight"] == 3.0
    write_edge_list(g, tmp_path / "out.txt")
    assert sorted(read_edge_list(tmp_path / "out.txt", 3).edges(data="weight")) == sorted(g.edges(data="weight"))
    path.write_text("0 x\n")
    with pytest.raises(NetworkError, match="line 1: expected 'u v"):
        read_edge_list(path, 3)


def test_reading_matrix_is_row_stochastic_over_in_edges(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("0 2 1\n1 2 3\n")  # 2 reads 0 (weight 1) and 1 (weight 3); nobody reads 2
    w = reading_matrix(net({"kind": "edge_list", "path": str(path), "self_loops": False}, n=3))
    np.testing.assert_allclose(w, [[0, 0, 0], [0, 0, 0], [0.25, 0.75, 0]])
    ring = reading_matrix(net({"kind": "ring", "k": 2}, n=4))
    np.testing.assert_allclose(ring.sum(1), 1.0)
    np.testing.assert_allclose(ring[0], [1 / 3, 1 / 3, 0, 1 / 3])


def test_edge_list_self_loops_keep_their_weights(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("0 0 3\n1 1 3\n0 1\n1 0\n")
    w = reading_matrix(net({"kind": "edge_list", "path": str(path)}, n=2))
    np.testing.assert_allclose(w, [[0.75, 0.25], [0.25, 0.75]])
    w = reading_matrix(net({"kind": "edge_list", "path": str(path), "self_loops": False}, n=2))
    np.testing.assert_allclose(w, [[0, 1], [1, 0]])


def test_plain_and_commented_edge_lists_read_alike(tmp_path):
    """A plain file (as ``write_edge_list`` writes it) goes through Arrow's reader, a commented one line by
    line; both give the same edges, weights exactly, the last of a repeated edge winning, and errors name
    their line either way."""
    rng = np.random.default_rng(0)
    g = nx.gnp_random_graph(40, 0.3, seed=1, directed=True)
    for u, v in g.edges:
        g[u][v]["weight"] = float(rng.random() + 1e-3)
    plain = tmp_path / "plain.txt"
    write_edge_list(g, plain)
    commented = tmp_path / "commented.txt"
    commented.write_text(plain.read_text().replace("\n", "  # a note\n", 3))
    for path in (plain, commented):
        assert sorted(read_edge_list(path, 40).edges(data="weight")) == sorted(g.edges(data="weight"))
    a, b = read_edges(plain, 40), read_edges(commented, 40)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.sort(x), np.sort(y))
    for text in ("0 1 0.5\n1 2\n0 1 2.0\n", "# head\n0 1 0.5\n1 2 1.0\n0 1 2.0\n"):  # a repeated edge
        (tmp_path / "rep.txt").write_text(text)
        assert dict(((u, v), w) for u, v, w in zip(*read_edges(tmp_path / "rep.txt", 3), strict=True)) == {
            (0, 1): 2.0, (1, 2): 1.0}
    (tmp_path / "bad.txt").write_text("# head\n0 1 1\n1 7 1\n")
    with pytest.raises(NetworkError, match=r"line 3: nodes must be 0\.\.2, got 1 7"):
        read_edges(tmp_path / "bad.txt", 3)
    (tmp_path / "nan.txt").write_text("0 1 1\n1 2 nan\n")
    with pytest.raises(NetworkError, match="line 2: weight must be a finite number > 0, got nan"):
        read_edges(tmp_path / "nan.txt", 3)
