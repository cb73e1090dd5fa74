"""Scan speed against pure decode time, on one folder, in one run.

Prints photos/s and faces/s of a full `scan` (fresh database, all cores by
default), then the time spent only reading and decoding the same photos the
way the scan does (same size limits, same parallelism), and their ratio.

    python benchmarks/scan_speed.py ../shared/facedata/compreface_samples
    python benchmarks/scan_speed.py ../shared/facedata/groups --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster import config  # noqa: E402
from facecluster.crawl import crawl  # noqa: E402
from facecluster.decode import decode  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import Store  # noqa: E402


def decode_one(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return decode(data).rgb.size
    except Exception:
        return 0


def pure_decode_seconds(paths: list[str], jobs: int) -> float:
    if jobs == 1:
        start = time.perf_counter()
        for p in paths:
            decode_one(p)
        return time.perf_counter() - start
    # Cold, like the scan: starting the worker processes counts on both sides.
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(decode_one, paths, chunksize=1))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--jobs", type=int, default=config.default_jobs())
    parser.add_argument("--det-size", type=int, default=config.DETECTION_SIZE)
    parser.add_argument("--repeat", type=int, default=1, help="scan runs; the best is reported")
    args = parser.parse_args()
    if not os.path.isdir(args.folder):
        sys.exit(f"folder not found: {args.folder}")

    paths = [e.path for e in crawl([args.folder])]
    best = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.db")
            summary = scan(store, [args.folder], ScanOptions(jobs=args.jobs, det_size=args.det_size))
            faces = store.counts()["faces"]
            store.close()
        if best is None or summary.seconds < best[0]:
            best = (summary.seconds, summary, faces)
    seconds, summary, faces = best
    decode_s = min(pure_decode_seconds(paths, args.jobs) for _ in range(max(1, args.repeat)))
    print(f"folder          {args.folder}")
    print(f"photos          {len(paths)} ({summary.failed} unreadable)")
    print(f"jobs            {args.jobs}   det-size {args.det_size}")
    print(f"scan            {seconds:.2f} s   {len(paths) / seconds:.1f} photos/s   {faces / seconds:.1f} faces/s   {faces} faces")
    print(f"decode only     {decode_s:.2f} s   {len(paths) / decode_s:.1f} photos/s")
    print(f"scan / decode   {seconds / decode_s:.2f}x")


if __name__ == "__main__":
    main()
