"""Which detector input size? Faces found against annotated counts, and time.

Uses the 18 photos of ../shared/facedata/groups whose face count is
annotated (INDEX.tsv), and counts every face found in the whole folder.

    python benchmarks/detection_size.py ../shared/facedata/groups
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.decode import decode  # noqa: E402
from facecluster.models import load_pack  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/facedata/groups")
    if not (folder / "INDEX.tsv").is_file():
        sys.exit(f"no INDEX.tsv in {folder}")
    with open(folder / "INDEX.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    annotated = {r["file"]: int(r["annotated_faces"]) for r in rows if r.get("annotated_faces")}
    photos = {r["file"]: decode((folder / r["file"]).read_bytes()) for r in rows}
    print(f"{len(photos)} photos, {len(annotated)} with annotated counts ({sum(annotated.values())} faces)")
    print(f"{'size':>6} {'found(annotated)':>17} {'over':>5} {'found(all)':>11} {'ms/photo':>9}")
    for size in (480, 640, 800, 960, 1280):
        pack = load_pack("sface", det_size=size)
        pack.detector.load()
        found_annotated = over = total = 0
        start = time.perf_counter()
        for name, photo in photos.items():
            n = len(pack.detector.predict(photo.rgb))
            total += n
            if name in annotated:
                found_annotated += min(n, annotated[name])
                over += max(0, n - annotated[name])
        ms = (time.perf_counter() - start) / len(photos) * 1000
        print(f"{size:>6} {found_annotated:>10}/{sum(annotated.values()):<6} {over:>5} {total:>11} {ms:>9.1f}")


if __name__ == "__main__":
    main()
