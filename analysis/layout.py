"""Where a reading network's developers and edges are drawn: one layout for the report and the dashboard.

Both stay readable and fast at any size. Up to :data:`SPRING_UP_TO` developers a seeded spring layout (weak
springs between all pairs keep disconnected communities in view); above it, a circle with each community on
its own arc (a spring layout of thousands of nodes is a blob, and costs minutes on a dense graph). At most
:data:`EDGES_DRAWN` edges are drawn: a seeded uniform sample when there are more, and the picture says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np

SPRING_UP_TO = 300  # developers; above, a circle ordered by community
EDGES_DRAWN = 2000  # edges; above, a seeded sample of this many
GLUE = 0.05  # weight of the spring layout's all-pairs springs


def positions(graph: nx.DiGraph, groups: Sequence[int] | None = None, seed: int = 0) -> np.ndarray:
    """Node positions ``(N, 2)`` in [0, 1]² for nodes ``0..N-1``: the same graph is always drawn the same way."""
    n = graph.number_of_nodes()
    if n == 0:
        return np.zeros((0, 2))
    if n > SPRING_UP_TO:
        order = np.argsort(np.asarray(groups) if groups is not None else np.zeros(n), kind="stable")
        angle = np.empty(n)
        angle[order] = 2 * np.pi * np.arange(n) / n
        return 0.5 + 0.5 * np.column_stack([np.cos(angle), np.sin(angle)])
    springs = nx.Graph()
    springs.add_nodes_from(range(n))
    springs.add_weighted_edges_from((u, v, GLUE) for u in range(n) for v in range(u + 1, n))
    springs.add_weighted_edges_from((u, v, 1.0) for u, v in graph.edges if u != v)
    layout = nx.spring_layout(springs, weight="weight", seed=seed)
    xy = np.array([layout[u] for u in range(n)])
    span = np.ptp(xy, axis=0)
    return (xy - xy.min(axis=0)) / np.where(span > 0, span, 1.0)


def drawn_edges(graph: nx.DiGraph, limit: int = EDGES_DRAWN, seed: int = 0) -> tuple[np.ndarray, int]:
    """The edges to draw ``(k, 2)`` (source, reader; self-loops left out) and how many there are in all.

    All of them up to ``limit``; above it a seeded uniform sample of ``limit``, in the graph's edge order."""
    edges = np.fromiter((x for u, v in graph.edges if u != v for x in (u, v)), dtype=np.int64).reshape(-1, 2)
    total = len(edges)
    if total > limit:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
        edges = edges[keep]
    return edges, total
