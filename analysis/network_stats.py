"""Statistics of the reading network: who reads whom, and how fast reading mixes the models.

An edge ``u → v`` means "v reads u's outputs" (see :mod:`ecosystem.network`). Self-loops are a modelling
device (a developer reading its own outputs) and carry no structure, so every graph statistic here is taken
on the graph *without* them: degrees, density, reciprocity, clustering, path lengths, modularity, PageRank
and betweenness. The spectral statistics are taken on the reading matrix W *as built*, self-loops included,
because W is what the ecosystem actually does each generation.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from ecosystem.network import reading_matrix


def without_self_loops(g: nx.DiGraph) -> nx.DiGraph:
    """A copy of ``g`` without its self-loops (node attributes kept)."""
    h = g.copy()
    h.remove_edges_from(list(nx.selfloop_edges(h)))
    return h


def group_labels(g: nx.DiGraph, groups: Sequence[int] | None = None) -> np.ndarray:
    """Community label of each node ``0..n-1``: ``groups`` if given, else node attribute ``group`` (or 0)."""
    if groups is not None:
        labels = np.asarray(groups, dtype=int)
        if len(labels) != g.number_of_nodes():
            raise ValueError(f"groups: need one label per node ({g.number_of_nodes()}), got {len(labels)}")
        return labels
    return np.array([g.nodes[u].get("group", 0) for u in range(g.number_of_nodes())], dtype=int)


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
    """
    n = g.number_of_nodes()
    h = without_self_loops(g)
    labels = group_labels(g, groups)
    pairs = n * (n - 1)

    lengths = [d for u, dist in nx.shortest_path_length(h) for v, d in dist.items() if u != v]
    reachable = len(lengths)
    modularity = float("nan")
    if h.number_of_edges():
        communities = [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]
        modularity = nx.community.modularity(h, communities, weight=None)

    moduli = np.sort(np.abs(np.linalg.eigvals(reading_matrix(g))))[::-1]
    slem = float(moduli[1]) if n > 1 else float("nan")
    return {
        "nodes": float(n),
        "edges": float(h.number_of_edges()),
        "density": nx.density(h) if n > 1 else float("nan"),
        "reciprocity": nx.overall_reciprocity(h) if h.number_of_edges() else float("nan"),
        "clustering": nx.average_clustering(h.to_undirected()) if n else float("nan"),
        "avg_path_length": float(np.mean(lengths)) if reachable else float("nan"),
        "reachability": reachable / pairs if pairs else float("nan"),
        "efficiency": float(np.sum(1.0 / np.asarray(lengths, dtype=float))) / pairs if pairs else float("nan"),
        "modularity": float(modularity),
        "slem": slem,
        "spectral_gap": 1.0 - slem,
    }


def node_statistics(g: nx.DiGraph, groups: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per developer: ``developer, group, in_degree, out_degree, pagerank, betweenness``.

    ``in_degree`` counts the developers v reads, ``out_degree`` the developers that read v (self-loops
    excluded). ``pagerank`` is taken on the reversed graph, where an edge points from reader to source as a
    citation does, so it measures *influence*: high for developers read by developers who are themselves
    read (Brin & Page 1998; damping 0.85, edge weights used). ``betweenness`` is the normalised shortest-path
    betweenness on the directed graph (Brandes 2001): how often a developer relays content between others.
    """
    h = without_self_loops(g)
    nodes = list(range(g.number_of_nodes()))
    # networkx's default tolerance leaves errors in the 6th digit; tighter costs nothing at ecosystem sizes.
    pagerank = nx.pagerank(h.reverse(copy=True), weight="weight", tol=1e-10, max_iter=1000) if nodes else {}
    betweenness = nx.betweenness_centrality(h)
    return pd.DataFrame(
        {
            "developer": nodes,
            "group": group_labels(g, groups),
            "in_degree": [h.in_degree(u) for u in nodes],
            "out_degree": [h.out_degree(u) for u in nodes],
            "pagerank": [pagerank[u] for u in nodes],
            "betweenness": [betweenness[u] for u in nodes],
        }
    )
