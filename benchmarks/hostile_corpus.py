"""Scan a corpus of hostile files and measure the whole process tree's memory.

Builds, in a temporary folder: good photos, every decompression bomb and
format oddity we know of (a 14000 x 14000 16-bit PNG, a 14000 x 14000 WebP,
400 MP and 900 MP images, a 144 MP JPEG, progressive JPEGs of 199 and 200 MP,
a baseline JPEG of 200 MP, a float32 TIFF), a PostScript loop named .jpg and
a PDF named .png, a FIFO, sparse files of 1 and 2 GB, odd names (newline,
escape sequences, bytes that are not UTF-8, 240 bytes long), odd sidecars
(2 GB, broken XML, an `ns1:` prefix, a FIFO, a symlink to /dev/zero), a file
time past 2**63 ns, empty, truncated and random files. Then runs
`facecluster scan --jobs 2` on it as a user would, samples the RSS of the
scan and every process below it from /proc every 20 ms, and prints:

- the exit status and the seconds taken;
- the peak of the summed RSS of the process tree (an upper bound: shared
  library pages count once per process) and the peak of each process;
- every bad file and whether the scan listed it with a reason;
- whether any process of the tree is left once the scan has exited.

Usage:
    python benchmarks/hostile_corpus.py [--jobs 2] [--keep DIR]
    python benchmarks/hostile_corpus.py --calibrate   # decode peak per format, for decode.decode_bytes

Linux only (reads /proc). Needs about 1 GB of disk for the corpus (the big
files are sparse).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

PAGE = os.sysconf("SC_PAGE_SIZE")


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def portrait() -> Image.Image:
    try:
        from skimage.data import astronaut

        return Image.fromarray(astronaut())
    except ImportError:  # any picture will do for the memory numbers
        return Image.new("RGB", (512, 512), (180, 140, 120))


def build(folder: Path) -> dict[str, str]:
    """Write the corpus; returns {file name: what a listed reason must contain} for every bad file."""
    folder.mkdir(parents=True, exist_ok=True)
    face = portrait()
    good = encode(face, "JPEG", quality=90)
    bad: dict[str, str] = {}
    Image.MAX_IMAGE_PIXELS = None  # we are making the bombs here

    def write(name: str, data: bytes, reason: str | None = None) -> Path:
        path = folder / name
        path.write_bytes(data)
        if reason is not None:
            bad[name] = reason
        return path

    for i in range(6):
        write(f"good_{i}.jpg", encode(face.rotate(i * 2), "JPEG", quality=88 + i))
    write("good.png", encode(face, "PNG"))
    write("good.webp", encode(face, "WEBP"))
    write("good.tif", encode(face, "TIFF"))
    # Bombs and giants.
    write("png16_14000.png", encode(Image.fromarray(np.zeros((14000, 14000), np.uint16)), "PNG"))  # decoded, in budget
    write("webp_14000.webp", encode(Image.new("RGB", (14000, 14000), (90, 90, 90)), "WEBP", quality=1),
          "over the 512 MB limit")
    write("rgba_png_12000.png", encode(Image.new("RGBA", (12000, 12000), (1, 2, 3, 4)), "PNG"), "over the 512 MB limit")
    write("png_20000.png", encode(Image.new("1", (20000, 20000)), "PNG"), "over the 200 MP limit")
    write("gif_30000.gif", encode(Image.new("P", (30000, 30000)), "GIF"), "over the 200 MP limit")
    write("jpeg_12000.jpg", encode(Image.new("RGB", (12000, 12000), (120, 100, 90)), "JPEG", quality=50))  # drafted
    # Progressive JPEGs are decoded from all their coefficients at full size, whatever the draft
    # scale: 6 bytes a pixel at 4:4:4, 3 at 4:2:0, 2 for greys. The reported file: 2.4 MB on disk,
    # 1,185 MB to decode before the budget covered JPEG.
    side_200mp = 14142  # 199.99 MP, just under the pixel limit
    ramp = Image.linear_gradient("L")
    write("progressive_14100.jpg", encode(ramp.resize((14100, 14100)).convert("RGB"), "JPEG", quality=80,
                                          progressive=True, subsampling=0), "over the 512 MB limit")
    write("progressive_200mp.jpg", encode(ramp.resize((side_200mp, side_200mp)).convert("RGB"), "JPEG", quality=80,
                                          progressive=True, subsampling=2), "over the 512 MB limit")
    # In the budget (about 400 MB of coefficients): decoded, the largest JPEG decode a worker does.
    write("progressive_200mp_grey.jpg", encode(ramp.resize((side_200mp, side_200mp)), "JPEG", quality=80, progressive=True))
    write("baseline_200mp.jpg", encode(ramp.resize((side_200mp, side_200mp)).convert("RGB"), "JPEG", quality=80))  # drafted
    # Floating-point greys (stored as a black image before): read, scaled by their range.
    write("float32.tif", encode(Image.fromarray(np.asarray(face.convert("L"), np.float32) / 255), "TIFF"))
    # Documents that Pillow's EPS plugin would hand to Ghostscript (which loops for ever on this one).
    write("postscript_loop.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{ 1 pop } loop\n",
          "a PostScript document, not opened")
    write("document.png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
          "a PDF document, not opened")
    # Not images, or broken ones.
    write("zero.jpg", b"", "empty file")
    write("truncated.jpg", good[: len(good) // 2], "broken image data")
    write("random.jpg", np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes(), "not an image")
    write("text.jpg", b"hello, not a photo\n", "not an image")
    for name, size in (("sparse_1g.jpg", 1 << 30), ("sparse_2g.png", 2 << 30)):
        with open(folder / name, "wb") as f:
            f.truncate(size)  # read whole into memory before; now hashed a chunk at a time
        bad[name] = "not an image"
    os.mkfifo(folder / "fifo.jpg")
    bad["fifo.jpg"] = "skipped: a FIFO (named pipe)"
    # Odd names.
    write("new\nline.jpg", encode(face, "JPEG", quality=81))
    write("\x1b[31mred\x1b]0;pwned\x07.jpg", encode(face, "JPEG", quality=82))
    (folder / os.fsdecode(b"caf\xe9.jpg")).write_bytes(encode(face, "JPEG", quality=83))
    write("x" * 236 + ".jpg", encode(face, "JPEG", quality=84))
    # Odd sidecars beside good photos.
    write("sidecar_huge.jpg", encode(face, "JPEG", quality=85))
    with open(folder / "sidecar_huge.xmp", "wb") as f:
        f.truncate(2 << 30)
    write("sidecar_broken.jpg", encode(face, "JPEG", quality=86))
    write("sidecar_broken.xmp", b"<x:xmpmeta><rdf:RDF>& not xml")
    # Sidecars that are not regular files: never read, never replaced (a FIFO hung the scan's reader).
    write("sidecar_fifo.jpg", encode(face, "JPEG", quality=75))
    os.mkfifo(folder / "sidecar_fifo.jpg.xmp")
    write("sidecar_zero.jpg", encode(face, "JPEG", quality=74))
    os.symlink("/dev/zero", folder / "sidecar_zero.jpg.xmp")
    write("sidecar_ns1.jpg", encode(face, "JPEG", quality=87))
    write("sidecar_ns1.xmp", b'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:ns1="http://example.com/ns1/">'
                             b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
    # A file time beyond what SQLite's integers hold (ext4 keeps it as the year 2446).
    late = write("far_future.jpg", encode(face, "JPEG", quality=80))
    os.utime(late, (3e11, 3e11))
    return bad


def tree(root: int) -> dict[int, int]:
    """pid -> RSS bytes for `root` and every process below it."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            with open(f"/proc/{entry.name}/statm") as f:
                rss[int(entry.name)] = int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    found, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                todo.append(child)
    return {pid: rss.get(pid, 0) for pid in found if pid in rss}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_scan(corpus: Path, db: Path, jobs: int) -> dict:
    command = [sys.executable, "-m", "facecluster", "--db", str(db), "scan", "--jobs", str(jobs), str(corpus)]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               errors="backslashreplace")
    peak_total, peak_each, seen = 0, {}, set()
    outputs: dict[str, str] = {}

    def drain(name: str, stream) -> None:
        outputs[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    while process.poll() is None:
        sample = tree(process.pid)
        seen.update(sample)
        peak_total = max(peak_total, sum(sample.values()))
        for pid, rss in sample.items():
            peak_each[pid] = max(peak_each.get(pid, 0), rss)
        time.sleep(0.02)
    for reader in readers:
        reader.join(timeout=60)
    seconds = time.monotonic() - started
    deadline = time.monotonic() + 10
    while any(alive(p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {
        "code": process.returncode, "seconds": seconds, "peak_total": peak_total,
        "peak_each": sorted(peak_each.values(), reverse=True), "leftover": [p for p in seen if alive(p)],
        "stdout": outputs.get("out", ""), "stderr": outputs.get("err", ""),
    }


def calibrate() -> None:
    """Peak memory of decoding one big image per format, next to decode_bytes's estimate."""
    with tempfile.TemporaryDirectory() as tmp:
        Image.MAX_IMAGE_PIXELS = None
        makers = {
            "RGB PNG 8000x8000": ("png", lambda: Image.new("RGB", (8000, 8000), (10, 20, 30)), {}),
            "RGBA PNG 8000x8000": ("png", lambda: Image.new("RGBA", (8000, 8000), (10, 20, 30, 40)), {}),
            "16-bit PNG 14000x14000": ("png", lambda: Image.fromarray(np.zeros((14000, 14000), np.uint16)), {}),
            "WebP 8000x8000": ("webp", lambda: Image.new("RGB", (8000, 8000), (10, 20, 30)), {"quality": 10}),
            "TIFF deflate 8000x8000": ("tiff", lambda: Image.new("RGB", (8000, 8000), (10, 20, 30)),
                                       {"compression": "tiff_deflate"}),
            "GIF 10000x10000": ("gif", lambda: Image.new("P", (10000, 10000)), {}),
            "JPEG 12000x12000": ("jpeg", lambda: Image.new("RGB", (12000, 12000), (10, 20, 30)), {}),
            "progressive JPEG 4:4:4 8000x8000": ("jpeg", lambda: Image.new("RGB", (8000, 8000), (10, 20, 30)),
                                                 {"progressive": True, "subsampling": 0}),
            "progressive JPEG 4:2:0 8000x8000": ("jpeg", lambda: Image.new("RGB", (8000, 8000), (10, 20, 30)),
                                                 {"progressive": True, "subsampling": 2}),
        }
        for label, (ext, make, kwargs) in makers.items():
            path = Path(tmp) / f"img.{ext}"
            make().save(path, **kwargs)
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent that made the image.
            code = (
                "from PIL import Image\nfrom facecluster.decode import decode, decode_bytes, jpeg_held_bytes\n"
                "def hwm():\n    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
                "base = hwm()\n"
                f"decode(open({str(path)!r}, 'rb'), max_bytes=10**12)\n"
                "peak = hwm()\n"
                f"Image.MAX_IMAGE_PIXELS = None\nim = Image.open({str(path)!r})\n"
                "im.draft('RGB', (2048, 2048)) if im.format == 'JPEG' else None\n"
                f"held = jpeg_held_bytes(open({str(path)!r}, 'rb')) if im.format == 'JPEG' else 0\n"
                "print((peak - base) // 1024, (decode_bytes(im) + held) // 2**20)\n"
            )
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            measured, estimate = result.stdout.split() if result.returncode == 0 else ("?", "?")
            print(f"{label:34s} decode peak {measured:>5} MB   estimate {estimate:>5} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the corpus here and keep it")
    parser.add_argument("--calibrate", action="store_true", help="measure decode peaks per format instead")
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
        return
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        corpus = args.keep or tmp / "corpus"
        t0 = time.monotonic()
        bad = build(corpus)
        print(f"corpus: {len(os.listdir(corpus))} files in {corpus} (built in {time.monotonic() - t0:.0f} s)")
        result = run_scan(corpus, tmp / "hostile.db", args.jobs)
        print(f"exit status {result['code']} after {result['seconds']:.1f} s with --jobs {args.jobs}")
        print(f"peak RSS of the process tree (summed): {result['peak_total'] / 2**20:.0f} MB")
        print("peak RSS per process: " + ", ".join(f"{r / 2**20:.0f} MB" for r in result["peak_each"][:6]))
        print(f"processes left after exit: {len(result['leftover'])}")
        listed = result["stdout"] + result["stderr"]
        missing = []
        for name, reason in sorted(bad.items()):
            line = next((line for line in listed.splitlines() if name in line), "")
            ok = reason in line
            missing += [] if ok else [name]
            print(f"  {'listed ' if ok else 'MISSING'} {name}: {line.split(chr(9))[-1].strip()[:110] if line else '-'}")
        print(f"bad files listed with their reason: {len(bad) - len(missing)} of {len(bad)}")
        print("scan summary: " + next((line for line in result["stderr"].splitlines() if line.startswith("Scanned")), "-"))
        if "Traceback" in listed:
            print("TRACEBACK in the output:\n" + listed[-3000:])
        healthy = result["code"] == 0 and not missing and not result["leftover"] and "Traceback" not in listed
        print("RESULT: " + ("ok" if healthy and result["peak_total"] < 2 << 30 else "FAILED"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
