"""Scan speed, side by side in one run: decode only, facecluster with 1 job and with
all jobs, and face_recognition's pipeline (where it is installed), on the same photos.

For each pipeline: seconds, photos/s, faces found, faces/s, faces/s per core
(faces/s over the processes it ran), CPU seconds (the process and its workers,
every thread) and faces per CPU-second (the fairer "per core": `--jobs 1`
decodes the next photo in a thread that can use a second core), then the
ratios that matter: scan time over decode time (at the same number of
processes), the speed-up of all jobs over one, and facecluster's faces/s per
core and per CPU-second over face_recognition's.

- decode only: read and decode every photo the way the scan does (same draft
  mode and size limits), in 1 process and in N (started cold, like the scan's).
- facecluster: a real `scan` into a fresh database, --jobs 1 and --jobs N.
- face_recognition (ageitgey, dlib): `load_image_file`, `face_locations` (HOG,
  its default) and `face_encodings` (ResNet) per photo, one process. Skipped,
  with a line saying so, when the package is not installed
  (pip install face_recognition).

    python benchmarks/scan_speed.py ../shared/facedata/celeb5_opencv_course \\
        ../shared/facedata/compreface_samples ../shared/facedata/groups
    python benchmarks/scan_speed.py ../shared/facedata/groups --jobs 2 --repeat 2
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster import config  # noqa: E402
from facecluster.crawl import crawl  # noqa: E402
from facecluster.decode import decode  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import Store  # noqa: E402


@dataclass
class Run:
    name: str
    seconds: float
    photos: int
    cores: int
    faces: int | None = None
    cpu: float | None = None  # CPU seconds of the process and its workers, all threads

    def row(self) -> str:
        faces = "-" if self.faces is None else str(self.faces)
        per_s = "-" if self.faces is None else f"{self.faces / self.seconds:.1f}"
        per_core = "-" if self.faces is None else f"{self.faces / self.seconds / self.cores:.1f}"
        cpu = "-" if self.cpu is None else f"{self.cpu:.2f}"
        per_cpu = "-" if self.faces is None or not self.cpu else f"{self.faces / self.cpu:.1f}"
        return (f"{self.name:34s} {self.seconds:8.2f} {self.photos / self.seconds:9.1f} {faces:>7s} {per_s:>8s} {per_core:>10s}"
                f" {cpu:>8s} {per_cpu:>10s}")


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its finished child processes (scan workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, *args):
    """(fn's result, CPU seconds it took): workers are reaped before fn returns, so theirs count."""
    start = cpu_seconds()
    result = fn(*args)
    return result, cpu_seconds() - start


def decode_one(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return decode(data).rgb.size
    except Exception:
        return 0


def decode_seconds(paths: list[str], jobs: int) -> float:
    start = time.perf_counter()
    if jobs == 1:
        for p in paths:
            decode_one(p)
    else:
        # Cold, like the scan: starting the worker processes counts on both sides.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(decode_one, paths, chunksize=1))
    return time.perf_counter() - start


def scan_run(folders: list[str], jobs: int, det_size: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        try:
            summary = scan(store, folders, ScanOptions(jobs=jobs, det_size=det_size))
            return summary.seconds, store.counts()["faces"]
        finally:
            store.close()


def face_recognition_run(paths: list[str]) -> tuple[float, int]:
    import face_recognition

    faces = 0
    start = time.perf_counter()
    for path in paths:
        try:
            image = face_recognition.load_image_file(path)
        except Exception:
            continue  # unreadable for it: counted in the time, like the scan's failures
        boxes = face_recognition.face_locations(image)
        faces += len(face_recognition.face_encodings(image, boxes))
    return time.perf_counter() - start, faces


def best(runs):
    """The fastest run: ((seconds, ...), cpu) pairs, by seconds."""
    return min(runs, key=lambda r: r[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--jobs", type=int, default=config.default_jobs(), help="the 'all jobs' run (default: one per core)")
    parser.add_argument("--det-size", type=int, default=config.DETECTION_SIZE)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each pipeline; the fastest is reported")
    parser.add_argument("--no-face-recognition", action="store_true", help="skip face_recognition even where installed")
    args = parser.parse_args()
    for folder in args.folders:
        if not os.path.isdir(folder):
            sys.exit(f"folder not found: {folder}")

    paths = [e.path for e in crawl(args.folders)]
    n, repeat = len(paths), max(1, args.repeat)
    job_counts = sorted({1, args.jobs})
    runs: dict[str, Run] = {}
    for jobs in job_counts:
        runs[f"decode{jobs}"] = Run(f"decode only, {jobs} process{'es' if jobs > 1 else ''}",
                                    min(decode_seconds(paths, jobs) for _ in range(repeat)), n, jobs)
    for jobs in job_counts:
        (seconds, faces), cpu = best([timed(scan_run, args.folders, jobs, args.det_size) for _ in range(repeat)])
        runs[f"scan{jobs}"] = Run(f"facecluster scan --jobs {jobs}", seconds, n, jobs, faces, cpu)
    skipped = None
    if args.no_face_recognition:
        skipped = "skipped (--no-face-recognition)"
    elif importlib.util.find_spec("face_recognition") is None:
        skipped = "not installed (pip install face_recognition), skipped"
    else:
        (seconds, faces), cpu = best([timed(face_recognition_run, paths) for _ in range(repeat)])
        runs["fr"] = Run("face_recognition (HOG + ResNet), 1", seconds, n, 1, faces, cpu)

    print(f"folders   {' '.join(args.folders)}")
    print(f"photos    {n}   det-size {args.det_size}   cores {config.default_jobs()}   best of {repeat}")
    print(f"{'pipeline':34s} {'seconds':>8s} {'photos/s':>9s} {'faces':>7s} {'faces/s':>8s} {'faces/s/core':>10s}"
          f" {'cpu s':>8s} {'faces/cpu-s':>10s}")
    for run in runs.values():
        print(run.row())
    if skipped:
        print(f"{'face_recognition':34s} {skipped}")
    print("ratios")
    for jobs in job_counts:
        ratio = runs[f"scan{jobs}"].seconds / runs[f"decode{jobs}"].seconds
        print(f"  scan / decode, {jobs} process{'es' if jobs > 1 else ''}:{'':9s} {ratio:6.2f}x")
    if args.jobs > 1:
        one, many = runs["scan1"], runs[f"scan{args.jobs}"]
        print(f"  scan --jobs {args.jobs} over --jobs 1 (time):{'':7s} {one.seconds / many.seconds:6.2f}x")
    if "fr" in runs:
        fr, one = runs["fr"], runs["scan1"]
        print(f"  facecluster / face_recognition, faces/s per core: {(one.faces / one.seconds) / max(fr.faces / fr.seconds, 1e-9):6.2f}x"
              f"   (faces found: {one.faces} / {fr.faces})")
        # --jobs 1 decodes the next photo in a thread, on another core where there is one:
        # faces per CPU-second counts every thread, the fairer "per core".
        print(f"  facecluster / face_recognition, faces per CPU-second: {(one.faces / one.cpu) / max(fr.faces / fr.cpu, 1e-9):6.2f}x")


if __name__ == "__main__":
    main()
