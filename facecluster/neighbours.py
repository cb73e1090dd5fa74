"""Nearest neighbours of unit vectors: exact in blocks for small sets, faiss's inverted file beyond.

Grouping needs each face's k nearest other faces (the HDBSCAN graph, attaching
left-out faces, trimming loose members) and each face's nearest anchors. Every
search here is one of three shapes:

- `knn`: every row among all rows;
- `knn_of`: some rows among all rows (the left-out faces of a million);
- `knn_across`: queries among a separate base (faces among the user's anchors).

Distances are Euclidean between L2-normalised rows, from dot products:
d^2 = 2 - 2 cos. Missing neighbours are -1 with distance inf. The benchmark
that chose faiss over a hand-written inverted file: docs/quality.md "Scale".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

Neighbours = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # (ids, distances), sorted nearest first

# Up to this many faces an exact neighbour search is quick (block matrix products).
EXACT_KNN_LIMIT = 20_000


def knn(x: npt.NDArray[np.float32], k: int, seed: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Indices and Euclidean distances of each row's k nearest other rows.

    `x` must be L2-normalised: distances come from dot products, d^2 = 2 - 2 cos.
    """
    n = len(x)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    if n <= EXACT_KNN_LIMIT:
        return _knn_among(x, np.arange(n), np.arange(n), k)
    return _knn_ivf(x, k, seed)


def _knn_among(x, rows, candidates, k, block: int = 1024):
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
        # fewer candidates than k: padded with "infinitely far"
        out_i[start : start + len(r)], out_d[start : start + len(r)] = _padded(candidates[part], dist, k)
    return out_i, out_d


def knn_of(
    x: npt.NDArray[np.float32], rows: npt.NDArray[np.intp], k: int, seed: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Like `knn`, for some rows only: n x k arrays, rows not asked about hold -1 and inf.

    Left-out faces are a small share of a library; searching for them alone
    keeps attaching them cheap at a million faces.
    """
    n = len(x)
    k = min(k, n - 1)
    out_i, out_d = np.full((n, max(k, 0)), -1, np.int64), np.full((n, max(k, 0)), np.inf, np.float32)
    rows = np.asarray(rows, np.int64)
    if k <= 0 or len(rows) == 0:
        return out_i, out_d
    if n <= EXACT_KNN_LIMIT:
        out_i[rows], out_d[rows] = _knn_among(x, rows, np.arange(n), k)
        return out_i, out_d
    ids, dist = _knn_ivf(x, k, seed, queries=rows)
    return ids, dist


def _ivf_index(base: npt.NDArray[np.float32], seed: int, probes: int):
    """A faiss inverted file over `base`: 2 sqrt(n) k-means cells, `probes` searched per query.

    faiss rather than the numpy inverted file this module had: at the same time it finds more of
    the true neighbours (recall@15 0.86 against 0.77 at 100,000 faces, docs/quality.md "Scale"),
    because each query searches the cells nearest to itself, not to its cell's centre. The cells
    hold the vectors in 16-bit floats (`IndexIVFScalarQuantizer`, fp16): half the memory of a
    float32 copy and, since a search mostly waits on memory, about half the time; `_ivf_search`
    computes the distances of what it found again from the float32 vectors.
    """
    # Imported here: faiss loads a large native library and OpenMP, needed only above EXACT_KNN_LIMIT.
    import faiss

    n, dim = base.shape
    cells = int(np.clip(np.sqrt(n) * 2, 16, 8192))
    cells = min(cells, n)
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim), dim, cells, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT,
    )
    index.by_residual = False  # the vectors themselves, not their offsets from the cell's centre
    index.cp.seed = seed
    # k-means on about 64 faces per cell, as the numpy version did (faiss's default 256 is 4x the
    # training time for no recall measured); 1 silences faiss's "too few points" warning on stderr.
    index.cp.max_points_per_centroid = 64
    index.cp.min_points_per_centroid = 1
    index.train(base)
    index.add(base)
    index.nprobe = min(probes, cells)
    return index


def _by_cell(index, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """`rows` (rows of the indexed array) in the order of the cells holding them.

    Consecutive queries from one cell probe the same cells, which then stay in the processor's
    cache: 13 % faster at a million faces, with the same results.
    """
    import faiss  # already loaded by _ivf_index

    lists = index.invlists
    cells = [c for c in range(index.nlist) if lists.list_size(c) > 0]  # an empty cell's ids pointer may be NULL
    order = np.concatenate(
        [faiss.rev_swig_ptr(lists.get_ids(c), lists.list_size(c)).copy() for c in cells] + [np.zeros(0, np.int64)],
    )
    wanted = np.zeros(index.ntotal, bool)
    wanted[rows] = True
    return order[wanted[order]].astype(np.int64)


def _ivf_search(index, base, queries, k: int, own=None, block: int = 4096):
    """Search `queries`; with `own` (each query's row in the index) that row is dropped. -1 / inf where missing.

    Distances are computed again from the float32 `base` (the index holds 16-bit copies), and the
    lists sorted by them.
    """
    _, ids = index.search(queries, k + (own is not None))
    if own is not None:
        drop = ids == own[:, None]
        drop[~drop.any(axis=1), -1] = True  # own row not found: drop the farthest instead
        ids = ids[~drop].reshape(len(ids), k)
    ids = ids.astype(np.int64)
    sims = np.empty(ids.shape, np.float32)
    for start in range(0, len(ids), block):  # in blocks: base[ids] is k vectors per query
        part = ids[start : start + block]
        sims[start : start + block] = np.matmul(base[np.maximum(part, 0)], queries[start : start + block, :, None])[:, :, 0]
    sims[ids < 0] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")
    ids, sims = np.take_along_axis(ids, order, axis=1), np.take_along_axis(sims, order, axis=1)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * sims, 0.0)).astype(np.float32)
    dist[ids < 0] = np.inf
    return ids, dist


def _knn_ivf(x, k, seed, probes: int = 8, queries=None):
    """Approximate k-NN of each row (or only of `queries`; the others keep -1 and inf) among all rows."""
    x = np.ascontiguousarray(x, np.float32)
    index = _ivf_index(x, seed, probes)
    rows = np.arange(len(x), dtype=np.int64) if queries is None else np.asarray(queries, np.int64)
    rows = _by_cell(index, rows)
    out_i = np.full((len(x), k), -1, np.int64)
    out_d = np.full((len(x), k), np.inf, np.float32)
    for start in range(0, len(rows), 65_536):  # in slices: faiss's result arrays for a million rows at once
        r = rows[start : start + 65_536]
        out_i[r], out_d[r] = _ivf_search(index, x, x[r], k, own=r)
    return out_i, out_d


def knn_across(
    queries: npt.NDArray[np.float32], base: npt.NDArray[np.float32], k: int, seed: int = 0, probes: int = 8, block: int = 1024,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Indices into `base` and distances of each query's k nearest base rows (unit vectors), nearest first.

    Exact in blocks while queries x base stays small; beyond, through the same
    inverted-file index as `knn` (k-means cells of `base`; each query searches
    its `probes` nearest cells). Missing neighbours are -1 and inf.
    """
    n, k = len(queries), min(k, len(base))
    out_i = np.full((n, max(k, 0)), -1, np.int64)
    out_d = np.full((n, max(k, 0)), np.inf, np.float32)
    if n == 0 or k <= 0:
        return out_i, out_d
    if n * len(base) > EXACT_KNN_LIMIT**2:
        base = np.ascontiguousarray(base, np.float32)
        return _ivf_search(_ivf_index(base, seed, probes), base, np.ascontiguousarray(queries, np.float32), k)
    for start in range(0, n, block):
        sim = queries[start : start + block] @ base.T
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else np.argsort(-sim, axis=1)[:, :k]
        top = np.take_along_axis(sim, part, axis=1)
        order_in = np.argsort(-top, axis=1)
        out_i[start : start + len(sim)] = np.take_along_axis(part, order_in, axis=1)
        out_d[start : start + len(sim)] = np.sqrt(np.maximum(2.0 - 2.0 * np.take_along_axis(top, order_in, axis=1), 0.0))
    return out_i, out_d


def knn_graph(ids: npt.NDArray[np.int64], dist: npt.NDArray[np.float32], n: int) -> sp.csr_matrix:
    """Symmetric sparse distance graph from k-NN lists (missing neighbours dropped).

    Each undirected edge is kept once (by its smaller endpoint first) and then
    mirrored, which needs far less memory at a million faces than
    `graph.maximum(graph.T)`.
    """
    rows = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1])
    cols, vals = ids.ravel(), dist.ravel().astype(np.float32)
    ok = cols >= 0
    rows, cols, vals = rows[ok], cols[ok], vals[ok]
    low, high = np.minimum(rows, cols), np.maximum(rows, cols)
    key = low * n + high
    del rows, cols, low, high
    key, first = np.unique(key, return_index=True)
    vals = vals[first]
    low, high = np.divmod(key, n)
    del key, first
    # A stored zero would read as "no edge": identical faces get a tiny distance.
    vals = np.maximum(vals, 1e-6)
    graph = sp.coo_matrix(
        (np.concatenate([vals, vals]), (np.concatenate([low, high]).astype(np.int32), np.concatenate([high, low]).astype(np.int32))),
        shape=(n, n),
    )
    return graph.tocsr()


def knn_of_reusing(
    x: npt.NDArray[np.float32], asked: npt.NDArray[np.intp], k: int, known_rows: npt.NDArray[np.intp], known: Neighbours,
    known_x: npt.NDArray[np.float32] | None = None,
) -> Neighbours:
    """`knn_of(x, asked, k)`, reusing a search already done among some of the rows.

    `known` is `knn(x[known_rows], k)` (indices into `known_rows`), and
    `known_x` is `x[known_rows]` where the caller has that copy already. A row's k
    nearest among all rows are the k nearest of two lists: its nearest among
    `known_rows` (found already, or searched here for an asked row outside
    them) and its nearest among the other rows (searched here). Grouping asks
    this for the faces left out of a clustering of the faces that passed the
    quality gate: when every face passed, nothing is searched again.

    Example:
        ids, dist = knn_of_reusing(x, np.array([3, 7]), 15, strong_rows, knn(x[strong_rows], 15))
    """
    n, asked = len(x), np.asarray(asked, np.int64)
    known_rows = np.asarray(known_rows, np.int64)
    out_i, out_d = np.full((n, k), -1, np.int64), np.full((n, k), np.inf, np.float32)
    if len(asked) == 0 or k <= 0:
        return out_i, out_d
    position = np.full(n, -1, np.int64)
    position[known_rows] = np.arange(len(known_rows))
    inside = position[asked] >= 0
    ids, dist = _padded(known[0][position[asked[inside]]], known[1][position[asked[inside]]], k)
    out_i[asked[inside]] = np.where(ids >= 0, known_rows[ids], -1)
    out_d[asked[inside]] = dist
    outside = asked[~inside]
    if len(outside):
        base = known_x if known_x is not None else x[known_rows]
        ids, dist = _padded(*knn_across(x[outside], base, k), k)
        out_i[outside], out_d[outside] = np.where(ids >= 0, known_rows[ids], -1), dist
    others = np.setdiff1d(np.arange(n), known_rows)
    if len(others):
        ids, dist = _padded(*knn_across(x[asked], x[others], k + 1), k + 1)
        ids = np.where(ids >= 0, others[ids], -1)
        dist[ids == asked[:, None]] = np.inf  # never your own neighbour
        ids, dist = np.concatenate([out_i[asked], ids], axis=1), np.concatenate([out_d[asked], dist], axis=1)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        ids, dist = np.take_along_axis(ids, order, axis=1), np.take_along_axis(dist, order, axis=1)
        out_i[asked], out_d[asked] = np.where(np.isfinite(dist), ids, -1), dist
    return out_i, out_d


def _padded(ids: npt.NDArray[np.int64], dist: npt.NDArray[np.float32], k: int) -> Neighbours:
    """Neighbour lists cut or padded (-1, inf) to exactly k columns."""
    if ids.shape[1] >= k:
        return ids[:, :k], dist[:, :k]
    pad = ((0, 0), (0, k - ids.shape[1]))
    return np.pad(ids, pad, constant_values=-1), np.pad(dist, pad, constant_values=np.inf)
