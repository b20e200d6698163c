"""Who reads whom: seeded networkx builders and the row-stochastic reading matrix.

An edge ``u → v`` means "v reads u's outputs". Symmetric families (ring, small world, scale free, ...)
become directed graphs with both directions. Nodes are developer indices ``0..n-1``; a node attribute
``group`` holds the developer community where the scenario names one (``developers.groups``).
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from ecosystem.scenario import (
    BarabasiAlbertNet,
    CompleteNet,
    EdgeListNet,
    EmptyNet,
    ErdosRenyiNet,
    NetworkSpec,
    RingNet,
    StarNet,
    StochasticBlockNet,
    WattsStrogatzNet,
)


class NetworkError(ValueError):
    """A network that cannot be built for this scenario (message names the field)."""


def build_network(spec: NetworkSpec, n: int, seed: int, groups: list[int] | None = None) -> nx.DiGraph:
    """The reading graph of ``n`` developers for a scenario's ``network`` section.

    Parameters
    ----------
    spec : the network section (its ``kind`` selects the builder).
    n : number of developers.
    seed : seed of the random graph families (derived from the run's seed).
    groups : sizes of the developer communities, in node order (stochastic_block needs them).
    """
    g = _build(spec, n, seed, groups)
    g = g if g.is_directed() else g.to_directed()
    if spec.self_loops:  # add the missing ones; an edge list's own self-loops keep their weights
        g.add_edges_from((u, u) for u in range(n) if not g.has_edge(u, u))
    else:
        g.remove_edges_from([(u, u) for u in list(g.nodes) if g.has_edge(u, u)])
    for _, _, data in g.edges(data=True):
        data.setdefault("weight", 1.0)
    labels = np.repeat(np.arange(len(groups)), groups) if groups else np.zeros(n, dtype=int)
    nx.set_node_attributes(g, {u: int(labels[u]) for u in range(n)}, "group")
    return g


def _build(spec: NetworkSpec, n: int, seed: int, groups: list[int] | None) -> nx.Graph:
    match spec:
        case CompleteNet():
            return nx.complete_graph(n, create_using=nx.DiGraph)  # both directions at once: 3× faster
        case EmptyNet():
            return nx.empty_graph(n)
        case RingNet(k=k):
            return nx.watts_strogatz_graph(n, k, 0.0)  # p = 0: the regular ring lattice
        case StarNet():
            return nx.star_graph(n - 1)  # node 0 is the hub
        case ErdosRenyiNet(p=p, directed=directed):
            return nx.gnp_random_graph(n, p, seed=seed, directed=directed)
        case WattsStrogatzNet(k=k, p=p):
            return nx.watts_strogatz_graph(n, k, p, seed=seed)
        case BarabasiAlbertNet(m=m):
            return nx.barabasi_albert_graph(n, m, seed=seed)
        case StochasticBlockNet(p_in=p_in, p_out=p_out):
            sizes = list(groups or [n])
            probs = [[p_in if i == j else p_out for j in range(len(sizes))] for i in range(len(sizes))]
            return nx.Graph(nx.stochastic_block_model(sizes, probs, seed=seed))
        case EdgeListNet(path=path):
            return read_edge_list(Path(path), n)
    raise NetworkError(f"network.kind: unknown kind {spec.kind!r}")  # pragma: no cover - schema forbids it


def read_edge_list(path: Path, n: int) -> nx.DiGraph:
    """Read ``u v [weight]`` lines (``#`` comments allowed); nodes must be developer indices below ``n`` and
    a weight a finite number above 0. The file must be UTF-8 text."""
    where = f"network.path: {path.name}"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise NetworkError(f"{where}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                           "an edge list is lines of 'u v [weight]'") from None
    except OSError as err:
        raise NetworkError(f"{where}: cannot read: {err.strerror}") from None
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            if len(fields) not in (2, 3):
                raise ValueError
            u, v = int(fields[0]), int(fields[1])
            weight = float(fields[2]) if len(fields) > 2 else 1.0
        except ValueError:
            shown = line.strip()[:60]
            raise NetworkError(f"{where} line {lineno}: expected 'u v [weight]', got {shown!r}") from None
        if not (0 <= u < n and 0 <= v < n):
            raise NetworkError(f"{where} line {lineno}: nodes must be 0..{n - 1}, got {u} {v}")
        if not (math.isfinite(weight) and weight > 0):  # NaN > 0 is False too
            raise NetworkError(f"{where} line {lineno}: weight must be a finite number > 0, got {fields[2]}")
        g.add_edge(u, v, weight=weight)
    return g


def reading_matrix(g: nx.DiGraph) -> np.ndarray:
    """Row-stochastic W with ``W[v, u]`` the share of v's synthetic data read from u.

    Row v is v's in-edge weights normalised to sum to 1; a developer that reads nobody has a zero row.
    With the complete graph and self-loops, W = (1/K)11ᵀ, the uniform mixing Π of Vu et al. (2025).
    """
    n = g.number_of_nodes()
    a = nx.to_numpy_array(g, nodelist=range(n), weight="weight")  # a[u, v] = weight of u → v
    w = a.T
    rows = w.sum(axis=1, keepdims=True)
    return np.divide(w, rows, out=np.zeros_like(w), where=rows > 0)


def write_edge_list(g: nx.DiGraph, path: Path) -> None:
    """Write the graph in the format :func:`read_edge_list` reads (so a run's graph can be reused), sorted
    by edge; columnar, since a complete graph of 2048 developers has four million edges."""
    edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
    weight = np.fromiter((w for _, _, w in g.edges(data="weight", default=1.0)), dtype=float, count=len(edges))
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    table = pd.DataFrame({"u": edges[order, 0], "v": edges[order, 1], "weight": weight[order]})
    with open(path, "w") as f:
        f.write("# u v weight  (u -> v: v reads u)\n")
        table.to_csv(f, sep=" ", header=False, index=False, float_format="%g", lineterminator="\n")
