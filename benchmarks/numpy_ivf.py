"""The hand-written inverted-file k-NN search that facecluster/cluster.py used before faiss.

Kept verbatim for benchmarks/knn_search.py, so the comparison can be repeated.
"""

from __future__ import annotations

import numpy as np


def knn_among(x, rows, candidates, k, block: int = 1024):
    """Exact k nearest (excluding self) of x[rows] among x[candidates]."""
    out_i = np.empty((len(rows), k), np.int64)
    out_d = np.empty((len(rows), k), np.float32)
    cand = x[candidates]
    for start in range(0, len(rows), block):
        r = rows[start : start + block]
        sim = x[r] @ cand.T
        sim[candidates[None, :] == r[:, None]] = -np.inf  # never your own neighbour
        kk = min(k, len(candidates) - 1)
        part = np.argpartition(-sim, kk - 1, axis=1)[:, :kk] if kk < sim.shape[1] else np.argsort(-sim, axis=1)[:, :kk]
        top = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-top, axis=1)
        part = np.take_along_axis(part, order, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        dist = np.sqrt(np.maximum(2.0 - 2.0 * top, 0.0))
        ids = candidates[part]
        if kk < k:  # fewer candidates than k: pad with "infinitely far"
            ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, k - kk)), constant_values=np.inf)
        out_i[start : start + len(r)] = ids
        out_d[start : start + len(r)] = dist
    return out_i, out_d


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
