"""Statistics of the reading network: who reads whom, and how fast reading mixes the models.

An edge ``u → v`` means "v reads u's outputs" (see :mod:`ecosystem.network`). Self-loops are a modelling
device (a developer reading its own outputs) and carry no structure, so every graph statistic here is taken
on the graph *without* them: degrees, density, reciprocity, clustering, path lengths, modularity, PageRank
and betweenness. The spectral statistics are taken on the reading matrix W *as built*, self-loops included,
because W is what the ecosystem actually does each generation.

The definitions are networkx's (the tests compare with its functions), computed as sparse linear algebra
so that a dense graph of 2000 developers takes seconds rather than minutes: the graph is read once into a
scipy adjacency matrix, and shortest paths and betweenness come from one breadth-first search from all
sources at once, level by level (:func:`shortest_paths`), each level a sparse product — or a dense BLAS
product where the frontier is dense, as on dense graphs. Above ``SAMPLE_ABOVE`` developers the search runs
from ``SAMPLED_SOURCES`` seeded sources instead of all of them (networkx's ``k=``), so path statistics and
betweenness are then unbiased estimates.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ecosystem.network import Edges, reading_matrix

SAMPLE_ABOVE = 4096  # developers above which paths and betweenness come from sampled sources
SAMPLED_SOURCES = 1024  # sources sampled then (networkx's k)
SAMPLE_SEED = 0  # seed of that sample (Python's random.Random, as networkx's seed=)
DENSE_ABOVE = 1 / 64  # a level's product is a dense matmul when its sparse work exceeds this share of b·n²
DENSE_NODES = 4096  # never hold a dense n × n adjacency above this size
BLOCK_ENTRIES = 1 << 22  # sources searched together: about this many (source, node) entries per block


def group_labels(g: nx.DiGraph, groups: Sequence[int] | None = None) -> np.ndarray:
    """Community label of each node ``0..n-1``: ``groups`` if given, else node attribute ``group`` (or 0)."""
    if groups is not None:
        labels = np.asarray(groups, dtype=int)
        if len(labels) != g.number_of_nodes():
            raise ValueError(f"groups: need one label per node ({g.number_of_nodes()}), got {len(labels)}")
        return labels
    return np.array([g.nodes[u].get("group", 0) for u in range(g.number_of_nodes())], dtype=int)


def weights(g: nx.DiGraph) -> sp.csr_array:
    """Edge weights as a sparse ``(n, n)`` matrix, self-loops included: ``a[u, v]`` = weight of u → v
    (default 1), nodes ``0..n-1``."""
    e = Edges.from_graph(g)
    return sp.csr_array((e.weight, (e.source, e.reader)), shape=(e.n, e.n))


def without_self_loops(a: sp.csr_array, binary: bool = False) -> sp.csr_array:
    """A weight matrix without its diagonal; ``binary``: with every remaining weight set to 1."""
    a = a.copy()
    a.setdiag(0)
    a.eliminate_zeros()
    if binary:
        a.data[:] = 1.0
    return a


def slem(g: nx.DiGraph, a: sp.csr_array) -> float:
    """Second-largest eigenvalue modulus of the reading matrix W of ``g`` (``a``: its weights).

    When the weights are symmetric, W = D⁻¹a (D the weighted degrees) is similar to the symmetric
    D^-1/2 a D^-1/2, whose eigenvalues a symmetric solver finds fast and accurately (a nonsymmetric one
    takes tens of seconds on a 2000-node ring); a developer that reads nobody adds an eigenvalue 0.
    Otherwise the eigenvalues of W itself."""
    n = a.shape[0]
    if n < 2:
        return float("nan")
    if abs(a - a.T).max() == 0:
        degree = np.asarray(a.sum(0)).ravel()
        reads = degree > 0
        scale = sp.diags_array(1 / np.sqrt(degree[reads]))
        inner = (scale @ a[reads][:, reads] @ scale).toarray()
        values = np.concatenate([np.linalg.eigvalsh((inner + inner.T) / 2), np.zeros(n - reads.sum())])
    else:
        values = np.linalg.eigvals(reading_matrix(g))
    return float(np.sort(np.abs(values))[-2])


def network_statistics(g: nx.DiGraph, groups: Sequence[int] | None = None) -> dict[str, float]:
    """Whole-graph statistics of a reading network with nodes ``0..n-1``.

    Parameters
    ----------
    g : the reading graph (u → v: v reads u), self-loops allowed.
    groups : developer community label per node; default: the node attribute ``group``.

    Returns
    -------
    A flat dict of floats (NaN where a statistic is undefined):

    - ``nodes``, ``edges`` (directed, without self-loops), ``density`` = edges / (n(n−1)).
    - ``reciprocity``: share of edges whose reverse edge exists.
    - ``clustering``: mean local clustering coefficient of the undirected view (Watts & Strogatz 1998).
    - ``avg_path_length``: mean directed shortest-path length over the *reachable* ordered pairs u ≠ v,
      so it stays defined on disconnected graphs; ``reachability`` is the share of ordered pairs u ≠ v
      with a path u ⇝ v (1 for strongly connected graphs), which says how many pairs that mean covers.
    - ``efficiency``: global efficiency, the mean of 1/d(u, v) over all ordered pairs with 1/∞ = 0
      (Latora & Marchiori 2001), a single number that combines both.
    - ``modularity``: directed modularity of the developer communities (Leicht & Newman 2008); 0 with a
      single community, NaN without edges.
    - ``slem``: second-largest eigenvalue modulus of W, and ``spectral_gap`` = 1 − slem. Under repeated
      averaging x ← Wx the disagreement between developers shrinks like slem^t (DeGroot 1974; Boyd,
      Diaconis & Xiao 2004), so a large gap means fast homogenization; slem = 1 (gap 0) when W has several
      closed classes (disconnected communities) or is periodic.

    Above ``SAMPLE_ABOVE`` nodes the three path statistics are estimated from the pairs leaving
    ``SAMPLED_SOURCES`` seeded sources.
    """
    n = g.number_of_nodes()
    weighted = weights(g)
    a = without_self_loops(weighted, binary=True)
    edges = a.nnz
    labels = group_labels(g, groups)
    paths = shortest_paths(a, source_sample(n))
    pairs = len(paths.sources) * (n - 1)
    spectral = slem(g, weighted)
    return {
        "nodes": float(n),
        "edges": float(edges),
        "density": edges / (n * (n - 1)) if n > 1 else float("nan"),
        "reciprocity": float(a.multiply(a.T).sum()) / edges if edges else float("nan"),
        "clustering": float(np.mean(clustering(a))) if n else float("nan"),
        "avg_path_length": paths.length_sum / paths.reached if paths.reached else float("nan"),
        "reachability": paths.reached / pairs if pairs else float("nan"),
        "efficiency": paths.inverse_sum / pairs if pairs else float("nan"),
        "modularity": modularity(a, labels) if edges else float("nan"),
        "slem": spectral,
        "spectral_gap": 1.0 - spectral,
    }


def node_statistics(g: nx.DiGraph, groups: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per developer: ``developer, group, in_degree, out_degree, pagerank, betweenness``.

    ``in_degree`` counts the developers v reads, ``out_degree`` the developers that read v (self-loops
    excluded). ``pagerank`` is taken on the reversed graph, where an edge points from reader to source as a
    citation does, so it measures *influence*: high for developers read by developers who are themselves
    read (Brin & Page 1998; damping 0.85, edge weights used). ``betweenness`` is the normalised shortest-path
    betweenness on the directed graph (Brandes 2001): how often a developer relays content between others;
    above ``SAMPLE_ABOVE`` nodes it is estimated from ``SAMPLED_SOURCES`` seeded sources, scaled as
    networkx's ``betweenness_centrality(k=...)`` does.
    """
    n = g.number_of_nodes()
    weighted = weights(g)
    a = without_self_loops(weighted, binary=True)
    paths = shortest_paths(a, source_sample(n), dependencies=True)
    return pd.DataFrame(
        {
            "developer": np.arange(n),
            "group": group_labels(g, groups),
            "in_degree": np.diff(a.tocsc().indptr),
            "out_degree": np.diff(a.indptr),
            # networkx's default tolerance leaves errors in the 6th digit; tighter costs nothing.
            "pagerank": pagerank(without_self_loops(weighted).T.tocsr(), tol=1e-10, max_iter=1000),
            "betweenness": betweenness(paths, n),
        }
    )


# ── the statistics, on a sparse adjacency matrix ──────────────────────────────────────────────────────


def clustering(a: sp.csr_array) -> np.ndarray:
    """Local clustering coefficient ``(n,)`` of the undirected view of the 0/1 adjacency ``a``: for a node of
    degree d in the view, (U³)_vv / (d(d − 1)), the share of its neighbour pairs that are linked
    (Watts & Strogatz 1998); 0 below degree 2."""
    n = a.shape[0]
    u = ((a + a.T) > 0).astype(np.float32).tocsr()  # symmetric 0/1
    degree = np.diff(u.indptr).astype(np.float64)
    if _dense(float(degree @ degree), n, n):
        # Entries of U² are counts ≤ n, exact in float32; the row sums are taken in float64.
        dense = u.toarray()
        closed = ((dense @ dense) * dense).sum(1, dtype=np.float64)  # (U³)_vv = 2 × triangles at v
    else:
        closed = np.asarray((u @ u).multiply(u).sum(1), dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(degree > 1, closed / (degree * (degree - 1)), 0.0)


def modularity(a: sp.csr_array, labels: np.ndarray) -> float:
    """Directed modularity Q = Σ_c [m_c / m − (out_c · in_c) / m²] of the communities ``labels`` (Leicht &
    Newman 2008): m_c edges inside community c, out_c and in_c the out- and in-degrees of its nodes."""
    coo = a.tocoo()
    m = coo.nnz
    _, label = np.unique(labels, return_inverse=True)
    k = label.max(initial=-1) + 1
    inside = np.bincount(label[coo.row], weights=label[coo.row] == label[coo.col], minlength=k)
    out = np.bincount(label[coo.row], minlength=k)
    into = np.bincount(label[coo.col], minlength=k)
    return float(np.sum(inside / m - out * into / m**2))


def pagerank(m: sp.csr_array, alpha: float = 0.85, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    """PageRank ``(n,)`` of the weighted graph ``m[u, v]`` = weight of u → v, by power iteration as networkx's
    ``pagerank`` does (uniform teleport, dangling nodes spread uniformly, stop when the L1 change is below
    n · tol; Brin & Page 1998)."""
    n = m.shape[0]
    if n == 0:
        return np.empty(0)
    out = np.asarray(m.sum(1)).ravel()
    dangling = out == 0
    inverse = np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out))
    q = (sp.diags_array(inverse) @ m).tocsr()  # row-stochastic except the dangling rows
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        last = x
        x = alpha * (x @ q + x[dangling].sum() / n) + (1 - alpha) / n
        if np.abs(x - last).sum() < n * tol:
            return x
    raise nx.PowerIterationFailedConvergence(max_iter)


# ── shortest paths from many sources at once ──────────────────────────────────────────────────────────


def source_sample(n: int) -> np.ndarray:
    """The search's sources: every node up to ``SAMPLE_ABOVE`` nodes, else ``SAMPLED_SOURCES`` of them drawn
    as networkx's ``k=``, ``seed=SAMPLE_SEED`` draws them (so the estimates match networkx's)."""
    if n <= SAMPLE_ABOVE:
        return np.arange(n)
    return np.array(random.Random(SAMPLE_SEED).sample(range(n), SAMPLED_SOURCES))


@dataclass(frozen=True)
class Paths:
    """What a breadth-first search from ``sources`` found: over the pairs (s, v), v ≠ s, with a path s ⇝ v,
    their count, the sum of their lengths and of 1/length; with dependencies, Brandes' (2001) δ_s(v)
    summed over the sources, per node v (``(n,)``, each source's own term left out)."""

    sources: np.ndarray
    reached: int
    length_sum: float
    inverse_sum: float
    dependency: np.ndarray | None


def shortest_paths(a: sp.csr_array, sources: np.ndarray, dependencies: bool = False) -> Paths:
    """Breadth-first search on the 0/1 adjacency ``a`` from all ``sources`` at once (blocks of sources).

    Level ℓ holds the pairs (s, v) at distance ℓ and σ_sv, the number of shortest paths s ⇝ v; level ℓ + 1
    is the product of level ℓ (as a sources × nodes matrix) with ``a``, kept where no distance is known yet,
    which sums σ over the predecessors. With ``dependencies``, Brandes' recursion
    δ_s(v) = Σ_{w: v → w, d(s,w) = d(s,v) + 1} σ_sv / σ_sw · (1 + δ_s(w)) runs back down the levels, each step
    a product with aᵀ (Brandes 2001, written as an algebraic BFS: Kepner & Gilbert 2011, ch. 6).
    """
    n = a.shape[0]
    op = _Adjacency(a)
    reached, length_sum, inverse_sum = 0, 0.0, 0.0
    dependency = np.zeros(n) if dependencies else None
    step = max(1, BLOCK_ENTRIES // max(n, 1))
    for first in range(0, len(sources), step):
        block = sources[first : first + step]
        b = len(block)
        distance = np.full((b, n), -1, dtype=np.int32)
        distance[np.arange(b), block] = 0
        levels = [(np.arange(b), block, np.ones(b))]  # (rows, columns, σ) of the pairs at each distance
        found = b
        while found < b * n and len(levels[-1][0]):
            product = op.times(*levels[-1], b)
            if isinstance(product, np.ndarray):
                rows, cols = np.nonzero((distance < 0) & (product > 0))
                sigma = product[rows, cols]
            else:
                product = product.tocoo()
                new = distance[product.row, product.col] < 0
                rows, cols, sigma = product.row[new], product.col[new], product.data[new]
            distance[rows, cols] = len(levels)
            found += len(rows)
            levels.append((rows, cols, sigma))
        for ell, (rows, _, _) in enumerate(levels[1:], start=1):
            reached += len(rows)
            length_sum += ell * len(rows)
            inverse_sum += len(rows) / ell
        if dependencies:
            delta = np.zeros((b, n))
            # δ at level ℓ − 1 from level ℓ; level 0 (the sources themselves) is never needed.
            for ell in range(len(levels) - 1, 1, -1):
                rows, cols, sigma = levels[ell]
                below_rows, below_cols, below_sigma = levels[ell - 1]
                pulled = op.times(rows, cols, (1.0 + delta[rows, cols]) / sigma, b, transpose=True)
                delta[below_rows, below_cols] += below_sigma * np.asarray(pulled[below_rows, below_cols]).ravel()
            dependency += delta.sum(0)
    return Paths(sources, reached, length_sum, inverse_sum, dependency)


def betweenness(paths: Paths, n: int) -> np.ndarray:
    """Normalised betweenness ``(n,)`` from a search's dependencies: divided by the (s, t) pairs that could
    pass through v, (n − 1)(n − 2) with every source, and with k sampled sources as networkx's
    ``_rescale`` does (k (n − 2), or (k − 1)(n − 2) for a sampled node, which is never its own source)."""
    if n < 3:
        return np.zeros(n)
    k = len(paths.sources)
    if k == n:
        return paths.dependency / ((n - 1) * (n - 2))
    sampled = np.zeros(n, dtype=bool)
    sampled[paths.sources] = True
    return paths.dependency / (np.where(sampled, k - 1, k) * (n - 2))


class _Adjacency:
    """Products of a sparse ``(b, n)`` matrix with the adjacency or its transpose: sparse, or a dense matmul
    when the sparse product would touch more than ``DENSE_ABOVE`` of b·n² entries (a dense frontier)."""

    def __init__(self, a: sp.csr_array) -> None:
        self.a = a.tocsr().astype(np.float64)
        self.at = self.a.T.tocsr()
        self._dense: np.ndarray | None = None

    def times(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, b: int,
              transpose: bool = False) -> np.ndarray | sp.csr_array:
        a = self.at if transpose else self.a
        n = a.shape[0]
        # Row v of a has degree[v] entries: the sparse product touches that many per entry (·, v).
        if n <= DENSE_NODES and _dense(float(np.diff(a.indptr)[cols].sum()), b, n):
            if self._dense is None:
                self._dense = self.a.toarray()
            x = np.zeros((b, n))
            x[rows, cols] = values
            return x @ (self._dense.T if transpose else self._dense)
        return sp.csr_array((values, (rows, cols)), shape=(b, n)) @ a


def _dense(sparse_work: float, b: int, n: int) -> bool:
    """Whether a product whose sparse form touches ``sparse_work`` entries is cheaper as a dense
    ``(b, n) @ (n, n)`` matmul (BLAS does ~100× more multiply-adds per second than a sparse product)."""
    return sparse_work > DENSE_ABOVE * b * n * n
