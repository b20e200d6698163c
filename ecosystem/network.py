"""Who reads whom: seeded networkx builders and the row-stochastic reading matrix.

An edge ``u → v`` means "v reads u's outputs". Symmetric families (ring, small world, scale free, ...)
become directed graphs with both directions. Nodes are developer indices ``0..n-1``; a node attribute
``group`` holds the developer community where the scenario names one (``developers.groups``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

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
    read_utf8,
)


class NetworkError(ValueError):
    """A network that cannot be built for this scenario (message names the field)."""


@dataclass(frozen=True)
class Edges:
    """A reading network as arrays: edge ``k`` is ``source[k] → reader[k]`` (the reader reads the source) with
    ``weight[k] > 0``; ``labels (n,)`` is each developer's community.

    The simulation needs only these arrays and the reading matrix built from them, so a complete graph of
    thousands of developers (millions of edges) costs arrays, not millions of networkx dictionaries; the
    networkx graph is built on demand (:meth:`graph`) for network statistics and figures.
    """

    n: int
    source: np.ndarray
    reader: np.ndarray
    weight: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_graph(cls, g: nx.DiGraph, labels: np.ndarray | None = None) -> Edges:
        """The arrays of a networkx graph with nodes ``0..n-1`` (weight 1 where an edge has none), read
        straight from its adjacency: millions of edges in a second."""
        n, m = g.number_of_nodes(), g.number_of_edges()
        rows = list(g.adjacency())  # (u, {v: attributes})
        source = np.fromiter(chain.from_iterable(repeat(u, len(nbrs)) for u, nbrs in rows), np.int64, count=m)
        reader = np.fromiter(chain.from_iterable(nbrs for _, nbrs in rows), np.int64, count=m)
        weight = np.fromiter((d.get("weight", 1.0) for _, nbrs in rows for d in nbrs.values()), np.float64, count=m)
        return cls(n, source, reader, weight, np.zeros(n, dtype=int) if labels is None else np.asarray(labels))

    def reading_matrix(self) -> np.ndarray:
        """Row-stochastic W ``(n, n)`` (see :func:`reading_matrix`)."""
        w = np.zeros((self.n, self.n))
        w[self.reader, self.source] = self.weight
        rows = w.sum(axis=1, keepdims=True)
        return np.divide(w, rows, out=np.zeros_like(w), where=rows > 0)

    def graph(self) -> nx.DiGraph:
        """The networkx graph with node attribute ``group`` (u → v: v reads u)."""
        g = nx.DiGraph()
        g.add_nodes_from((u, {"group": int(c)}) for u, c in enumerate(self.labels))
        g.add_weighted_edges_from(zip(self.source.tolist(), self.reader.tolist(), self.weight.tolist(), strict=True))
        return g


def build_edges(spec: NetworkSpec, n: int, seed: int, groups: list[int] | None = None) -> Edges:
    """The reading network of ``n`` developers for a scenario's ``network`` section, as arrays.

    Parameters
    ----------
    spec : the network section (its ``kind`` selects the builder).
    n : number of developers.
    seed : seed of the random graph families (derived from the run's seed).
    groups : sizes of the developer communities, in node order (stochastic_block needs them).
    """
    labels = np.repeat(np.arange(len(groups)), groups) if groups else np.zeros(n, dtype=int)
    if isinstance(spec, CompleteNet):  # every ordered pair, built as arrays (the graph is dense)
        source, reader = np.divmod(np.arange(n * n, dtype=np.int64), n)
        weight = np.ones(n * n)
    elif isinstance(spec, EdgeListNet):
        source, reader, weight = read_edges(Path(spec.path), n)
    else:
        g = _build(spec, n, seed, groups)
        drawn = Edges.from_graph(g if g.is_directed() else g.to_directed())
        source, reader, weight = drawn.source, drawn.reader, drawn.weight
    loop = source == reader
    if spec.self_loops:  # add the missing ones; an edge list's own self-loops keep their weights
        missing = np.setdiff1d(np.arange(n), source[loop])
        source, reader = np.concatenate([source, missing]), np.concatenate([reader, missing])
        weight = np.concatenate([weight, np.ones(len(missing))])
    else:
        source, reader, weight = source[~loop], reader[~loop], weight[~loop]
    return Edges(n, source, reader, weight, labels)


def build_network(spec: NetworkSpec, n: int, seed: int, groups: list[int] | None = None) -> nx.DiGraph:
    """The reading graph of ``n`` developers as a networkx graph with node attribute ``group`` (see
    :func:`build_edges`)."""
    return build_edges(spec, n, seed, groups).graph()


def _build(spec: NetworkSpec, n: int, seed: int, groups: list[int] | None) -> nx.Graph:
    match spec:
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
    raise NetworkError(f"network.kind: unknown kind {spec.kind!r}")  # pragma: no cover - schema forbids it


def read_edge_list(path: Path, n: int) -> nx.DiGraph:
    """The graph of an edge list file (see :func:`read_edges`), nodes ``0..n-1``."""
    source, reader, weight = read_edges(path, n)
    return Edges(n, source, reader, weight, np.zeros(n, dtype=int)).graph()


def read_edges(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``u v [weight]`` lines (``#`` comments allowed) as ``(source, reader, weight)`` arrays; nodes must
    be developer indices below ``n`` and a weight a finite number above 0 (default 1); of repeated edges the
    last line counts. The file must be UTF-8 text.

    A plain file (single spaces, comments only at the top, as :func:`write_edge_list` writes) is read by
    Arrow's CSV reader, millions of lines a second; anything else, or anything wrong, line by line, so an
    error names its line."""
    where = f"network.path: {path.name}"
    text = read_utf8(path, where, "an edge list is lines of 'u v [weight]'", NetworkError)
    columns = _plain_columns(text, n)
    if columns is not None:
        return columns
    edges: dict[tuple[int, int], float] = {}
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
        edges[u, v] = weight  # the last line of a repeated edge counts
    pairs = np.array(list(edges), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1], np.fromiter(edges.values(), dtype=np.float64, count=len(edges))


def _plain_columns(text: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The columns of a plain edge list, all valid, or None (then the line-by-line reader decides)."""
    start = 0
    while text.startswith("#", start) or text.startswith("\n", start):  # leading comment lines
        end = text.find("\n", start)
        start = len(text) if end < 0 else end + 1
    body = text[start:]
    first = body.split("\n", 1)[0]
    if "#" in body or "\r" in body or not first or len(first.split(" ")) not in (2, 3):
        return None
    names = ["u", "v", "weight"][: len(first.split(" "))]
    types = {"u": pa.int64(), "v": pa.int64(), "weight": pa.float64()}
    try:
        table = pacsv.read_csv(pa.py_buffer(body.encode()), pacsv.ReadOptions(column_names=names),
                               pacsv.ParseOptions(delimiter=" "),
                               pacsv.ConvertOptions(column_types={k: types[k] for k in names}))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    u, v = table["u"].to_numpy(), table["v"].to_numpy()
    w = table["weight"].to_numpy() if "weight" in names else np.ones(len(u))
    if table.column("u").null_count or table.column("v").null_count or (len(names) > 2 and
                                                                           table.column("weight").null_count):
        return None
    if not (((u >= 0) & (u < n) & (v >= 0) & (v < n)).all() and (np.isfinite(w) & (w > 0)).all()):
        return None
    key = u * n + v
    if len(np.unique(key)) < len(key):  # repeated edges: the line-by-line reader keeps the last of each
        return None
    return u.astype(np.int64), v.astype(np.int64), w.astype(np.float64)


def reading_matrix(g: nx.DiGraph) -> np.ndarray:
    """Row-stochastic W with ``W[v, u]`` the share of v's synthetic data read from u.

    Row v is v's in-edge weights normalised to sum to 1; a developer that reads nobody has a zero row.
    With the complete graph and self-loops, W = (1/K)11ᵀ, the uniform mixing Π of Vu et al. (2025).
    """
    return Edges.from_graph(g).reading_matrix()


def write_edge_list(g: nx.DiGraph | Edges, path: Path) -> None:
    """Write the graph in the format :func:`read_edge_list` reads (so a run's graph can be reused), sorted
    by edge, weights in their shortest exact form; columnar (Arrow's CSV writer), since a complete graph of
    2048 developers has four million edges."""
    edges = g if isinstance(g, Edges) else Edges.from_graph(g)
    source, reader, weight = edges.source, edges.reader, edges.weight
    order = np.lexsort((reader, source))
    table = pa.table({"u": source[order], "v": reader[order], "weight": weight[order]})
    with open(path, "wb") as f:
        f.write(b"# u v weight  (u -> v: v reads u)\n")
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none"))
