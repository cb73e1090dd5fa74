"""HTML export time against library size, and the rerun that reuses thumbnails.

Builds synthetic databases (real store, real thumbnails: one small JPEG
reused) with N faces spread over N/20 groups plus one person holding a
quarter of them, and times `export --html` twice.

    python benchmarks/export_scale.py 10000 20000 40000 100000
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.export.html import export_html  # noqa: E402
from facecluster.records import Face, PhotoFacts  # noqa: E402
from facecluster.store import Store  # noqa: E402


def build(db: Path, faces: int) -> Store:
    store = Store(db)
    store.register_model("sface", "synthetic", 128, "none")
    out = io.BytesIO()
    Image.new("RGB", (128, 128), (120, 90, 80)).save(out, "JPEG")
    thumb = out.getvalue()
    vector = np.ones(128, np.float32) / np.sqrt(128)
    groups = max(1, faces // 20)
    with store.transaction():
        people = store.create_people("sface", groups)
        assignments = []
        for i in range(faces):
            facts = PhotoFacts(f"/photos/{i // 1000}/{i}.jpg", 1000, i, f"{i:064x}", 4000, 3000, "2020-01-01T00:00:00", "exif")
            face = Face((100.0, 100.0, 80.0, 80.0), (120, 130, 160, 130, 140, 150, 125, 170, 155, 170), 0.9, 80.0, vector, thumb)
            photo_id = store.save_photo(facts, [face], "sface", None)
            person = people[0] if i % 4 == 0 else people[i % groups]
            assignments.append((person, "cluster", photo_id))  # one face per photo: face id == photo id
        store.assign_faces(assignments)
    return store


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 20_000, 40_000]
    print(f"{'faces':>8} {'groups':>7} {'biggest':>8} {'first export':>13} {'rerun':>8} {'pages':>6}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = build(Path(tmp) / "x.db", n)
            start = time.perf_counter()
            summary = export_html(store, Path(tmp) / "site")
            first = time.perf_counter() - start
            start = time.perf_counter()
            again = export_html(store, Path(tmp) / "site")
            rerun = time.perf_counter() - start
            assert again.thumbs_written == 0
            print(f"{n:>8} {n // 20:>7} {n // 4:>8} {first:>11.1f} s {rerun:>6.1f} s {summary.pages:>6}")


if __name__ == "__main__":
    main()
