"""RAW files and videos, side by side in one run: what they cost against the photos they stand beside.

Everything is made at run time from ../shared/facedata (nothing is committed):

- video, 1080p H.264: a 60-second 1920x1080 30 fps video (libx264, a keyframe a
  second, as phones write), a detailed background panning (12 Mbit/s), people
  from celeb5 at different times, in three rows, each drifting across a quarter
  of the frame while on screen. Reported: CPU seconds per minute of video for the analysis alone
  (keyframes decoded, faces detected, embedded, tracked; models loaded and warm)
  and with the file's hash (the scan reads every byte once). Target: <= 1.5 s.
  Also: which of the people were found, and the most faces kept of one person
  in one minute (target: every person, at most 3).
- video, 4K HEVC: a 3840x2160 libx265 video, scanned by `facecluster scan -j 1`
  in a child process; its peak resident memory, beside the same scan of one JPEG
  (the models alone). Target: under 500 MB.
- RAW: the same photos written as DNGs with a full-size embedded preview, as DNGs
  without one (half-size demosaic), and as JPEGs; each folder scanned with
  `--jobs 1` into a fresh database. Target: preview DNGs within 1.3x of the JPEGs.
- rescan: a library of N copies of a short video, scanned, then scanned again
  unchanged. Target: under 1 s per 5,000 files.

    python benchmarks/media_speed.py ../shared/facedata
    python benchmarks/media_speed.py ../shared/facedata --skip-4k --rescan 0
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecluster.models import load_pack  # noqa: E402
from facecluster.faces import detect_faces, faces_from_detections, find_faces  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.sources import video  # noqa: E402
from facecluster.store import Store  # noqa: E402
from tests.mediagen import dng_bytes, encode_video  # noqa: E402

PEOPLE = ["Madonna", "Jerry_Seinfeld", "Elton_John", "Ben_Affleck", "Mindy_Kaling"]


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def people_photos(facedata: Path) -> dict[str, np.ndarray]:
    return {name: np.asarray(Image.open(facedata / "celeb5_opencv_course" / name / "train_1.jpg").convert("RGB"))
            for name in PEOPLE}


def video_1080p(facedata: Path, tmp: Path) -> None:
    photos = people_photos(facedata)
    # Each person on screen for a while, at different times, several at once.
    windows = {"Madonna": (0, 25), "Jerry_Seinfeld": (10, 30), "Elton_John": (28, 45), "Ben_Affleck": (40, 60),
               "Mindy_Kaling": (50, 60)}
    start = time.perf_counter()
    clip = encode_video(tmp / "1080p.mp4", [(a, b, photos[n]) for n, (a, b) in windows.items()], size=(1920, 1080),
                        seconds=60, fps=30, gop=30, texture=True, travel=0.25, rows=3)
    print(f"(encoded a 60 s 1080p H.264 video in {time.perf_counter() - start:.0f} s: {clip.stat().st_size / 1e6:.0f} MB)")
    pack = load_pack("sface")
    stills = {}
    for name, rgb in photos.items():  # each person's own photo: who is who among the video's faces
        faces = find_faces(rgb, pack)
        stills[name] = faces[0].embedding
    parts = {"detect": 0.0, "describe": 0.0}

    def timed(name, fn, *args):
        begin = time.process_time()
        try:
            return fn(*args)
        finally:
            parts[name] += time.process_time() - begin

    runs = []
    for _ in range(2):  # the first run also warms the models and FFmpeg; the second is reported
        parts.update(detect=0.0, describe=0.0)
        begin_cpu, begin = cpu(), time.perf_counter()
        result = video.analyse(str(clip), lambda rgb, scale: timed("detect", detect_faces, rgb, pack, scale),
                               lambda rgb, found, scale: timed("describe", faces_from_detections, rgb, found, pack, scale))
        runs.append((cpu() - begin_cpu, time.perf_counter() - begin, result))
    analysis_cpu, wall, result = runs[-1]
    begin_cpu = cpu()
    import hashlib

    with open(clip, "rb") as f:
        digest = hashlib.sha256()
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    hash_cpu = cpu() - begin_cpu
    names = list(stills)
    matrix = np.stack([stills[n] for n in names])
    per_person: dict[str, list[int]] = {}
    for face in result.faces:
        d = np.linalg.norm(matrix - face.embedding, axis=1)
        if d.min() < 1.0:
            per_person.setdefault(names[int(d.argmin())], []).append(face.frame_ms)
    worst = max((sum(1 for t in times if t // 60000 == m) for times in per_person.values() for m in {t // 60000 for t in times}),
                default=0)
    minutes = (result.duration_s or 60) / 60
    print(f"{'video 1080p H.264, analysis':44s} {analysis_cpu / minutes:8.2f} CPU s per minute   (wall {wall:.2f} s, "
          f"{result.frames} frames, {result.described} faces embedded, {len(result.faces)} kept)   target <= 1.5")
    rest = analysis_cpu - parts["detect"] - parts["describe"]
    print(f"{'  of which: detect, describe (embed), the rest':44s} {parts['detect'] / minutes:8.2f} {parts['describe'] / minutes:6.2f} "
          f"{rest / minutes:6.2f}  (the rest: demux, keyframe decode, scaling, tracks)")
    print(f"{'video 1080p H.264, analysis + hash':44s} {(analysis_cpu + hash_cpu) / minutes:8.2f} CPU s per minute")
    print(f"{'people found':44s} {len(per_person)} of {len(PEOPLE)} ({', '.join(sorted(per_person))}); "
          f"most faces of one person in one minute: {worst}   target: all, <= 3")


# A child that runs one facecluster command and says its own peak memory: VmHWM, the high-water mark of
# its own address space (ru_maxrss would carry this big parent's over fork and exec).
_MEASURE = (
    "import re, sys\n"
    "from facecluster.cli import cli\n"
    "try:\n"
    "    cli.main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print('PEAK_KB=' + re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
)


def peak_rss_mb(args: list[str], env: dict) -> float:
    """Peak resident memory (MB) of a fresh process running this facecluster command."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *args], check=True, env=env, capture_output=True, text=True).stdout
    return int(out.rsplit("PEAK_KB=", 1)[1].split()[0]) / 1024


def video_4k_memory(facedata: Path, tmp: Path, seconds: int) -> None:
    photos = people_photos(facedata)
    start = time.perf_counter()
    folder = tmp / "4k"
    folder.mkdir()
    encode_video(folder / "4k.mkv", [(0, seconds, photos["Madonna"]), (seconds / 3, seconds, photos["Elton_John"])],
                 size=(3840, 2160), seconds=seconds, fps=10, codec="libx265")
    print(f"(encoded a {seconds} s 4K HEVC video in {time.perf_counter() - start:.0f} s)")
    one = tmp / "one"
    one.mkdir()
    Image.fromarray(photos["Madonna"]).save(one / "a.jpg")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    peak_rss_mb(["--db", str(tmp / "m0.db"), "scan", "-q", "-j", "1", str(one)], env)  # builds the model cache
    models = peak_rss_mb(["--db", str(tmp / "m1.db"), "scan", "-q", "-j", "1", str(one)], env)
    video_peak = peak_rss_mb(["--db", str(tmp / "m2.db"), "scan", "-q", "-j", "1", str(folder)], env)
    print(f"{'scan -j 1, one JPEG (the models)':44s} {models:8.0f} MB peak")
    print(f"{'scan -j 1, 4K HEVC video':44s} {video_peak:8.0f} MB peak   target < 500")


def scan_folder(folder: Path, db: Path) -> tuple[float, float, int]:
    store = Store(db)
    try:
        begin_cpu = cpu()
        summary = scan(store, [str(folder)], ScanOptions(jobs=1))
        return summary.seconds, cpu() - begin_cpu, store.counts()["faces"]
    finally:
        store.close()


def raw_vs_jpeg(facedata: Path, tmp: Path, limit: int) -> None:
    sources = sorted((facedata / "groups").glob("*.jpg"))[:limit]
    folders = {name: tmp / name for name in ("jpeg", "dng-preview", "dng-mosaic")}
    for folder in folders.values():
        folder.mkdir()
    for path in sources:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        Image.fromarray(rgb).save(folders["jpeg"] / f"{path.stem}.jpg", quality=92)
        (folders["dng-preview"] / f"{path.stem}.dng").write_bytes(dng_bytes(rgb, 6, preview=True))
        (folders["dng-mosaic"] / f"{path.stem}.dng").write_bytes(dng_bytes(rgb, 6))
    scan_folder(folders["jpeg"], tmp / "warm.db")  # models built and cached once, outside the timings
    results = {}
    for name, folder in folders.items():
        runs = [scan_folder(folder, tmp / f"{name}-{i}.db") for i in range(2)]
        results[name] = min(runs)
    base = results["jpeg"][0]
    for name, (seconds, cpu_s, faces) in results.items():
        target = "   target <= 1.3x" if name == "dng-preview" else ""
        print(f"{'RAW/JPEG, ' + name + f' ({len(sources)} photos)':44s} {seconds:8.2f} s  {cpu_s:6.2f} CPU s  {faces:4d} faces  "
              f"{seconds / base:5.2f}x JPEG{target}")


def rescan(tmp: Path, files: int) -> None:
    folder = tmp / "many"
    folder.mkdir()
    clip = encode_video(tmp / "short.mp4", [(0, 1, None)], size=(64, 48), seconds=1, fps=5)
    data = clip.read_bytes()
    for i in range(files):  # each a different file (a different last byte's worth of padding is not needed: paths differ)
        (folder / f"v{i:05d}.mp4").write_bytes(data)
    store = Store(tmp / "many.db")
    try:
        first = scan(store, [str(folder)], ScanOptions(jobs=1))
        again = scan(store, [str(folder)], ScanOptions(jobs=1))
    finally:
        store.close()
    print(f"{'rescan, ' + str(files) + ' unchanged videos':44s} {again.seconds:8.2f} s   "
          f"({again.seconds * 5000 / files:.2f} s per 5,000 files; first scan {first.seconds:.1f} s)   target < 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("facedata", type=Path)
    parser.add_argument("--raw-photos", type=int, default=40, help="photos of facedata/groups written as RAW and JPEG")
    parser.add_argument("--seconds-4k", type=int, default=6, help="length of the 4K HEVC video")
    parser.add_argument("--skip-4k", action="store_true")
    parser.add_argument("--skip-1080p", action="store_true")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--rescan", type=int, default=5000, help="files in the rescan library (0: skip)")
    args = parser.parse_args()
    os.environ.setdefault("FACECLUSTER_MODEL_CACHE", tempfile.mkdtemp(prefix="media-speed-models-"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.skip_1080p:
            video_1080p(args.facedata, tmp)
        if not args.skip_4k:
            video_4k_memory(args.facedata, tmp, args.seconds_4k)
        if not args.skip_raw:
            raw_vs_jpeg(args.facedata, tmp, args.raw_photos)
        if args.rescan:
            rescan(tmp, args.rescan)
    shutil.rmtree(os.environ["FACECLUSTER_MODEL_CACHE"], ignore_errors=True)


if __name__ == "__main__":
    main()
