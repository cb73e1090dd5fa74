"""k-nearest-neighbour search for grouping: the hand-written inverted file against faiss.

`group` needs every face's 15 nearest other faces (neighbours.knn). This compares,
on the synthetic embeddings of benchmarks/group_scale.py:

- `numpy-ivf`: the search as it was before faiss (numpy spherical k-means into 2 sqrt(n)
  cells; each cell's faces search their own and the 7 nearest cells);
- `faiss-ivf-8`, `faiss-ivf-16`: faiss IndexIVFFlat, inner product, nlist 2 sqrt(n), nprobe 8 / 16;
- `faiss-hnsw-64`, `faiss-hnsw-128`: faiss IndexHNSWFlat (M=32, inner product), efSearch 64 / 128;
- `facecluster`: neighbours.knn as it is now.

Each (method, size) runs in a fresh process (so its peak RSS is its own), with 2 threads;
the data column is the RSS after loading the vectors and importing faiss and facecluster.
Time is build + search of all n faces; the peak RSS is read before the recall is computed.
Recall@15: for 2,000 sampled faces, the share of their exact 15 nearest other faces
(faiss IndexFlatIP) that the method returned.

    python benchmarks/knn_search.py 100000 1000000
    python benchmarks/knn_search.py 100000 --methods numpy-ivf,faiss-hnsw-64
"""

from __future__ import annotations

import os

# Two threads for every library (BLAS for numpy, OpenMP for faiss), set before they load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "2"

import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from group_scale import synthetic  # noqa: E402

K = 15
SAMPLE = 2_000
METHODS = ["numpy-ivf", "faiss-ivf-8", "faiss-ivf-16", "faiss-hnsw-64", "faiss-hnsw-128", "facecluster"]


def drop_self(ids: np.ndarray, sims: np.ndarray, k: int) -> np.ndarray:
    """k neighbours per row from a k+1 search, without the row itself (or the last, if self was missed)."""
    own = ids == np.arange(len(ids))[:, None]
    missed = ~own.any(axis=1)
    own[missed, -1] = True  # self not found: drop the farthest instead
    return ids[~own].reshape(len(ids), k)


def search(method: str, x: np.ndarray) -> np.ndarray:
    import faiss

    from facecluster import neighbours

    faiss.omp_set_num_threads(2)
    n, dim = x.shape
    if method == "numpy-ivf":
        return numpy_ivf(x)
    if method == "facecluster":
        return neighbours.knn(x, K)[0]
    if method.startswith("faiss-ivf"):
        nlist = int(np.clip(np.sqrt(n) * 2, 16, 8192))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        index.nprobe = int(method.rsplit("-", 1)[1])
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.add(x)
        index.hnsw.efSearch = int(method.rsplit("-", 1)[1])
    sims, ids = index.search(x, K + 1)
    return drop_self(ids, sims, K)


def numpy_ivf(x: np.ndarray) -> np.ndarray:
    """The hand-written search, kept here for comparison once facecluster no longer has it."""
    from numpy_ivf import knn_ivf

    return knn_ivf(x, K, 0)[0]


def one(method: str, n: int, path: str) -> None:
    import faiss

    import numpy_ivf  # noqa: F401  (imported before the baseline, like faiss and neighbours)
    from facecluster import neighbours  # noqa: F401

    x = np.load(path)
    data_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    ids = search(method, x)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=min(SAMPLE, n), replace=False)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    sims, truth = exact.search(x[sample], K + 1)
    truth = drop_self(truth, sims, K)
    found = ids[sample]
    recall = np.mean([len(np.intersect1d(a, b)) / K for a, b in zip(found, truth)])
    print(f"{n:>9} {method:<15} {seconds:>8.1f} s {peak:>8.0f} MB (data {data_mb:>5.0f} MB) recall@{K} {recall:.4f}", flush=True)


def main() -> None:
    if len(sys.argv) > 4 and sys.argv[1] == "--one":
        one(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    args = sys.argv[1:]
    methods = METHODS
    if "--methods" in args:
        at = args.index("--methods")
        methods = args[at + 1].split(",")
        del args[at : at + 2]
    sizes = [int(a) for a in args] or [100_000, 1_000_000]
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}, 2 threads, k={K}")
    print(f"{'faces':>9} {'method':<15} {'time':>10} {'peak RSS':>11} {'':>17} recall")
    for n in sizes:
        # The embeddings are made once per size and loaded by each method's process, so the
        # "data" baseline is the vectors and the imported libraries, not the generator's peak.
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "x.npy")
            np.save(path, synthetic(n)[0])
            for method in methods:
                subprocess.run([sys.executable, __file__, "--one", method, str(n), path], check=True)
        print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}", flush=True)


if __name__ == "__main__":
    main()
