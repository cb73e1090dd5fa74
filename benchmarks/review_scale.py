"""`facecluster review` page times on a large library: 5,000 groups, 100,000 faces.

Builds a synthetic database (the real store, one small JPEG as every
thumbnail, random unit embeddings so suggestions do real work), names one
group, then times each page and action through the real Flask application
(in-process, no network): the median of `--repeat` runs per request.

    python benchmarks/review_scale.py [FACES] [GROUPS]
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.records import Face, PhotoFacts  # noqa: E402
from facecluster.store import Store  # noqa: E402
from facecluster.suggestions import same_person_pairs, suggest  # noqa: E402
from facecluster.web import create_app  # noqa: E402

TOKEN = "benchmark"


def build(db: Path, faces: int, groups: int) -> None:
    store = Store(db)
    store.register_model("sface", "synthetic", 128, "none")
    out = io.BytesIO()
    Image.new("RGB", (128, 128), (120, 90, 80)).save(out, "JPEG")
    thumb = out.getvalue()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(groups, 128)).astype(np.float32)
    with store.transaction():
        people = store.create_people("sface", groups)
        assignments = []
        for i in range(faces):
            g = i % groups
            vector = centres[g] + 0.5 * rng.normal(size=128).astype(np.float32)
            vector /= np.linalg.norm(vector)
            facts = PhotoFacts(f"/photos/{i // 1000}/{i}.jpg", 1000, i, f"{i:064x}", 4000, 3000,
                               f"20{10 + i % 15}-01-01T00:00:00", "exif")
            face = Face((100.0, 100.0, 80.0, 80.0), (120, 130, 160, 130, 140, 150, 125, 170, 155, 170), 0.9, 80.0, vector, thumb)
            photo_id = store.save_photo(facts, [face], "sface", None)
            # A twentieth of the faces stay in no group: candidates for suggestions.
            assignments.append((None if i % 20 == 19 else people[g], "cluster", photo_id))
        store.assign_faces(assignments)
    store.close()


def timed(client, method: str, url: str, repeat: int, **data) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.open(url, method=method, data={"token": TOKEN, **data} if method == "POST" else None)
        times.append(time.perf_counter() - start)
        assert response.status_code in (200, 303, 304), (url, response.status_code)
    return statistics.median(times), len(response.data)


def main() -> None:
    faces = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    groups = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "x.db"
        start = time.perf_counter()
        build(db, faces, groups)
        print(f"built {faces} faces in {groups} groups in {time.perf_counter() - start:.0f} s")
        client = create_app(db, token=TOKEN).test_client()
        client.get(f"/?token={TOKEN}")
        rows = [
            ("GET", "/", {}),
            ("GET", "/?page=40", {}),
            ("GET", "/?show=unnamed&page=10", {}),
            ("GET", "/person/1", {}),
            ("GET", "/unclustered", {}),
            ("GET", "/thumb/1", {}),
            ("GET", "/face/1", {}),
            ("POST", "/name", {"person": "1", "name": "Alice"}),
            ("GET", "/person/1/suggestions", {}),
            ("GET", "/suggestions", {}),
            ("POST", "/give", {"face": "20", "to": "1"}),
            ("POST", "/undo", {}),
            ("POST", "/undo", {}),
            ("POST", "/ignore", {"person": "2"}),
            ("POST", "/undo", {}),
        ]
        store = Store(db)
        for label, call in (("same_person_pairs (core)", lambda: same_person_pairs(store)),
                            ("suggest group 3 (core)", lambda: suggest(store, "3"))):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            print(f"{label:<32} {statistics.median(times) * 1000:>7.0f} ms")
        store.close()
        print(f"{'request':<32} {'median':>9} {'bytes':>9}")
        for method, url, data in rows:
            seconds, size = timed(client, method, url, 1 if method == "POST" else 5, **data)
            print(f"{method + ' ' + url:<32} {seconds * 1000:>7.0f} ms {size:>9}")


if __name__ == "__main__":
    main()
