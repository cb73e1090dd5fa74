"""Where a --jobs 1 scan spends its time, stage by stage, in ms per photo and per face.

Steady state (models loaded and warmed, one process, no prefetch so that each
stage's time is its own): every photo is analysed --times over by
`scan_file.analyse_file` with each stage wrapped in a timer, then the results are
written by the scan's own result writer into a fresh database. The detector and
embedder are split into the onnxruntime call itself and the Python around it
(resize, blob, YuNet decoding and NMS; crop layout, normalising).

    python benchmarks/scan_profile.py ../shared/facedata/compreface_samples --times 3
    python benchmarks/scan_profile.py ../shared/facedata/groups --cprofile 25

--cprofile N also runs a whole `scan(..., ScanOptions(jobs=1))` into a fresh
database (models loaded cold, prefetch on) under cProfile and prints the N
functions with the most time of their own.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import facecluster.faces as faces_module  # noqa: E402
import facecluster.scan_file as scan_file  # noqa: E402
import facecluster.sources.photo as photo_source  # noqa: E402
from facecluster.crawl import crawl  # noqa: E402
from facecluster.models import load_pack  # noqa: E402
from facecluster.scan import ScanOptions, ScanSummary, scan  # noqa: E402
from facecluster.scan_file import analyse_file  # noqa: E402
from facecluster.scan_writer import ResultWriter  # noqa: E402
from facecluster.store import Store  # noqa: E402

# (stage, module, attribute): module-level names the scan looks up when it runs.
WRAPPED = [
    ("prepare (read + sha256 + decode + EXIF)", scan_file, "_prepare"),
    ("decode", photo_source, "decode"),
    ("EXIF (photo_info)", photo_source, "photo_info"),
    ("find_faces", scan_file, "find_faces"),
    ("align", faces_module, "align_faces"),
    ("thumbnail", faces_module, "face_thumbnail"),
    ("quality", faces_module, "thumb_quality"),
    ("XMP regions", scan_file, "read_regions"),
]


def timed(totals: dict[str, float], stage: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - start

    return wrapper


def wrap_sessions(totals: dict[str, float], stage: str, model) -> list:
    """Time every onnxruntime session of a model (SFace float has two: trunk and head)."""
    sessions = [s for s in (getattr(model, "_session", None), getattr(model, "_head", None)) if s is not None]
    for session in sessions:
        session.run = timed(totals, stage, session.run)
    return sessions


def breakdown(entries, pack, options: ScanOptions, db: Path) -> tuple[dict[str, float], int, int]:
    totals: dict[str, float] = defaultdict(float)
    saved = []
    for stage, module, name in WRAPPED:
        original = getattr(module, name)
        saved.append((module, name, original))
        setattr(module, name, timed(totals, stage, original))
    detect, embed = pack.detector.predict, pack.embedder.predict
    pack.detector.predict = timed(totals, "detector (all)", detect)
    pack.embedder.predict = timed(totals, "embedder (all)", embed)
    sessions = wrap_sessions(totals, "detector onnxruntime", pack.detector) + wrap_sessions(totals, "embedder onnxruntime", pack.embedder)
    try:
        start = time.perf_counter()
        results = [analyse_file(e, pack, options, frozenset()) for e in entries]
        totals["analyse_file (all)"] = time.perf_counter() - start
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
        del pack.detector.predict, pack.embedder.predict
        for session in sessions:
            del session.run
    store = Store(db)
    try:
        store.register_model(pack.name, pack.fingerprint, 128, pack.licence)
        writer = ResultWriter(store, pack.name, {}, ScanSummary(roots=[], model=pack.name), options.batch, options.settings)
        start = time.perf_counter()
        for i, r in enumerate(results):  # each a photo of its own, even with --times
            writer.add(replace(r, facts=replace(r.facts, path=f"{r.facts.path}#{i}")))
        writer.flush()
        totals["SQLite (result writer)"] = time.perf_counter() - start
    finally:
        store.close()
    faces = sum(len(r.faces) for r in results)
    return totals, len(results), faces


def print_breakdown(totals: dict[str, float], photos: int, faces: int) -> None:
    t = dict(totals)
    t["read + sha256"] = t["prepare (read + sha256 + decode + EXIF)"] - t["decode"] - t["EXIF (photo_info)"]
    t["detector Python (resize, blob, decode, NMS)"] = t["detector (all)"] - t["detector onnxruntime"]
    t["embedder Python"] = t["embedder (all)"] - t["embedder onnxruntime"]
    t["find_faces rest (per-face loop)"] = (t["find_faces"] - t["detector (all)"] - t["embedder (all)"] - t["align"]
                                            - t["thumbnail"] - t["quality"])
    t["analyse_file rest"] = t["analyse_file (all)"] - t["prepare (read + sha256 + decode + EXIF)"] - t["find_faces"] - t["XMP regions"]
    rows = [
        "read + sha256", "decode", "EXIF (photo_info)", "detector Python (resize, blob, decode, NMS)",
        "detector onnxruntime", "align", "embedder Python", "embedder onnxruntime", "thumbnail", "quality",
        "find_faces rest (per-face loop)", "XMP regions", "analyse_file rest", "SQLite (result writer)",
    ]
    total = t["analyse_file (all)"] + t["SQLite (result writer)"]
    outside = total - t["detector onnxruntime"] - t["embedder onnxruntime"]
    print(f"{photos} photos, {faces} faces   load average {os.getloadavg()[0]:.2f}")
    print(f"{'stage':46s} {'s':>7s} {'ms/photo':>9s} {'ms/face':>8s} {'share':>6s}")
    for name in rows:
        s = t[name]
        print(f"{name:46s} {s:7.3f} {1000 * s / photos:9.2f} {1000 * s / max(faces, 1):8.2f} {100 * s / total:5.1f}%")
    print(f"{'total':46s} {total:7.3f} {1000 * total / photos:9.2f} {1000 * total / max(faces, 1):8.2f}")
    print(f"{'outside the two onnxruntime calls':46s} {outside:7.3f} {1000 * outside / photos:9.2f} "
          f"{1000 * outside / max(faces, 1):8.2f} {100 * outside / total:5.1f}%")


def profile_scan(folders: list[str], top: int) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCAN_PROFILE_TMP")) as tmp:
        store = Store(Path(tmp) / "profile.db")
        profiler = cProfile.Profile()
        try:
            profiler.enable()
            summary = scan(store, folders, ScanOptions(jobs=1))
            profiler.disable()
        finally:
            store.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"\ncProfile of scan(..., jobs=1): {summary.seconds:.2f} s, {summary.new} photos, {summary.faces} faces")
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--times", type=int, default=1, help="every photo analysed this many times over")
    parser.add_argument("--repeat", type=int, default=1, help="breakdowns to run; the fastest total is printed")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="also profile a whole scan; print the top N")
    args = parser.parse_args()
    options = ScanOptions(jobs=1)
    entries = sorted(crawl(args.folders), key=lambda e: e.path) * max(1, args.times)
    pack = load_pack(options.model, options.det_size, options.det_threshold)
    pack.load()
    for entry in entries[:3]:  # the first inferences warm the sessions
        analyse_file(entry, pack, options, frozenset())
    best = None
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCAN_PROFILE_TMP")) as tmp:
        for i in range(max(1, args.repeat)):
            run = breakdown(entries, pack, options, Path(tmp) / f"breakdown{i}.db")
            if best is None or sum(run[0].values()) < sum(best[0].values()):
                best = run
    print_breakdown(*best)
    if args.cprofile:
        profile_scan(args.folders, args.cprofile)


if __name__ == "__main__":
    main()
