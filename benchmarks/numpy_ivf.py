"""The hand-written inverted-file k-NN search that facecluster used before faiss.

Kept for benchmarks/knn_search.py, so the comparison can be repeated; the exact search inside each
cell is still the package's own (`neighbours._knn_among`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.neighbours import _knn_among as knn_among  # noqa: E402


def knn_ivf(x, k, seed, probes: int = 8, queries=None):
    """Approximate k-NN: k-means cells; each cell's faces search it and its `probes - 1` nearest cells.

    `queries`: only these rows search (the others keep -1 and inf).
    """
    n = len(x)
    asked = None
    if queries is not None:
        asked = np.zeros(n, bool)
        asked[queries] = True
    cells = int(np.clip(np.sqrt(n) * 2, 16, 8192))
    centroids = kmeans(x, cells, seed=seed)
    assign = nearest_centroid(x, centroids)
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(cells + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(cells)]
    near = np.argsort(-(centroids @ centroids.T), axis=1)[:, :probes]
    out_i = np.full((n, k), -1, np.int64)
    out_d = np.full((n, k), np.inf, np.float32)
    for c in range(cells):
        rows = members[c] if asked is None else members[c][asked[members[c]]]
        if len(rows) == 0:
            continue
        candidates = np.concatenate([members[j] for j in near[c]])
        if len(candidates) < 2:
            continue
        ids, dist = knn_among(x, rows, candidates, k)
        out_i[rows], out_d[rows] = ids, dist
    return out_i, out_d


def kmeans(x: np.ndarray, k: int, iterations: int = 8, seed: int = 0, sample: int = 64) -> np.ndarray:
    """Spherical k-means on a sample of about `sample` points per centroid."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(len(x), k * sample), replace=False)
    data = x[pick]
    centroids = data[rng.choice(len(data), size=k, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_centroid(data, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, data)
        empty = np.linalg.norm(sums, axis=1) == 0
        sums[empty] = data[rng.choice(len(data), size=int(empty.sum()))]
        centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return centroids.astype(np.float32)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    return np.concatenate([np.argmax(x[s : s + block] @ centroids.T, axis=1) for s in range(0, len(x), block)])
