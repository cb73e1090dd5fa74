"""`scan --dask` on a LocalCluster of N worker processes (1 thread each) against `scan --jobs N`,
on the same photos, each into a fresh database; the fastest of --repeat runs is reported.

- jobs N: a real `scan` with N local worker processes (their start and model load counted).
- dask, cold: a fresh LocalCluster for each run; the cluster's own start is not counted
  (a real cluster is up before the scan), its workers' first model load is.
- dask, warm: the same cluster scanned again: the workers keep their models between scans.

    python benchmarks/dask_speed.py ../shared/facedata/celeb5_opencv_course \\
        ../shared/facedata/compreface_samples ../shared/facedata/groups --repeat 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import Store  # noqa: E402


def scan_once(folders: list[str], options: ScanOptions) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        try:
            start = time.perf_counter()
            summary = scan(store, folders, options)
            return time.perf_counter() - start, summary.new + summary.failed, store.counts()["faces"]
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for folder in args.folders:
        if not os.path.isdir(folder):
            sys.exit(f"folder not found: {folder}")
    from distributed import LocalCluster

    n = args.workers
    rows: dict[str, list[tuple[float, int, int]]] = {f"scan --jobs {n}": [], f"dask {n} workers, cold": [],
                                                     f"dask {n} workers, warm": []}
    for _ in range(max(1, args.repeat)):
        rows[f"scan --jobs {n}"].append(scan_once(args.folders, ScanOptions(jobs=n)))
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            options = ScanOptions(dask=cluster.scheduler_address)
            rows[f"dask {n} workers, cold"].append(scan_once(args.folders, options))
            rows[f"dask {n} workers, warm"].append(scan_once(args.folders, options))
    print(f"folders  {' '.join(args.folders)}   best of {args.repeat}   load {os.getloadavg()[0]:.2f}")
    print(f"{'pipeline':26s} {'seconds':>8s} {'photos/s':>9s} {'faces':>6s} {'faces/s':>8s} {'vs jobs':>8s}   all runs (s)")
    base = min(r[0] for r in rows[f"scan --jobs {n}"])
    for name, runs in rows.items():
        seconds, photos, faces = min(runs)
        every = " ".join(f"{r[0]:.2f}" for r in runs)
        print(f"{name:26s} {seconds:8.2f} {photos / seconds:9.1f} {faces:6d} {faces / seconds:8.1f} {seconds / base:7.2f}x   {every}")


if __name__ == "__main__":
    main()
