"""Decode overlapped with inference, in steady state (models loaded, one process): the same photos
--times over, (1) read + hash + decode + EXIF only, (2) analysed one by one, (3) analysed by
`scan_file.analyse_stream`, which decodes each next photo in a thread while this one is in the models
(and makes this photo's face thumbnails in another while its faces are embedded).
Best of 3; ratios over (1); and the CPU time of the calling thread, best of 3.

    python benchmarks/overlap_speed.py ../shared/facedata/compreface_samples --times 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.crawl import crawl  # noqa: E402
from facecluster.models import load_pack  # noqa: E402
from facecluster.scan_file import _prepare_file, analyse_file, analyse_stream  # noqa: E402
from facecluster.scan_options import ScanOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--times", type=int, default=5)
    args = parser.parse_args()
    options = ScanOptions(jobs=1)
    entries = list(crawl(args.folders)) * args.times
    pack = load_pack(options.model, options.det_size, options.det_threshold)
    pack.load()
    for entry in entries[:3]:  # first inferences warm the sessions
        analyse_file(entry, pack, options, frozenset())
    best: dict[str, float] = {}
    main_cpu: dict[str, float] = {}
    for _ in range(3):
        runs = {
            "read+hash+decode+exif": lambda: [_prepare_file(e, options, frozenset()) for e in entries],
            "analysed one by one": lambda: [analyse_file(e, pack, options, frozenset()) for e in entries],
            "analyse_stream (prefetch)": lambda: list(analyse_stream([(e, frozenset()) for e in entries], pack, options)),
        }
        for name, run in runs.items():
            start, cpu = time.perf_counter(), time.thread_time()
            run()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
            main_cpu[name] = min(main_cpu.get(name, float("inf")), time.thread_time() - cpu)
    print(f"{len(entries)} photos   load average {os.getloadavg()[0]:.2f}   best of 3")
    # The calling thread's own CPU time: what the wall time comes down to where the
    # helper threads (decode, thumbnails) have a core of their own.
    print(f"{'':28s} {'wall':>8s} {'ratio':>6s} {'CPU of the calling thread':>26s}")
    for name, seconds in best.items():
        print(f"{name:28s} {seconds:6.2f} s {seconds / best['read+hash+decode+exif']:5.2f}x {main_cpu[name]:24.2f} s")


if __name__ == "__main__":
    main()
