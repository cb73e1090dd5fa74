"""`facecluster photos` (and `identify`'s matching) on a big library: 100,000 faces.

Builds a synthetic database with the store's own methods (save_photo, create_people,
assign_faces): photos of 1 to 4 faces, 5,000 groups of which 200 are named (the first ones, so
the named people are the most photographed), dates over 15 years, 100 folders. Then times
each query through queries.find_photos (what the command runs), the median of 5 runs, with
the m008 (person_id, photo_id) index and, for comparison, without it. With --identify, also
times identify's matching at this size: loading the named people's faces once, then one photo
through the scan's pipeline and the match (the astronaut portrait from scikit-image).

    python benchmarks/photos_query.py [FACES] [--identify]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.queries import PhotoQuery, find_photos  # noqa: E402
from facecluster.records import Face, PhotoFacts  # noqa: E402
from facecluster.store import Store  # noqa: E402

GROUPS, NAMED = 5000, 200


def build(db: Path, faces: int) -> None:
    store = Store(db)
    store.register_model("sface", "synthetic", 128, "none")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(GROUPS, 128)).astype(np.float32)
    # Zipf-like: a few people in many photos, most in few, as in a family library.
    weights = 1.0 / np.arange(1, GROUPS + 1)
    weights /= weights.sum()
    with store.transaction():
        people = store.create_people("sface", GROUPS)
        for i in range(NAMED):
            store.set_person(people[i], name=f"Person {i:03d}")
        made, photo, assignments = 0, 0, []
        while made < faces:
            count = min(int(rng.integers(1, 5)), faces - made)
            who = rng.choice(GROUPS, size=count, replace=False, p=weights)
            facts = PhotoFacts(f"/photos/{photo % 100:02d}/{photo}.jpg", 1000, photo, f"{photo:064x}", 4000, 3000,
                               f"{2010 + photo % 15}-{1 + photo % 12:02d}-01T10:00:00", "exif")
            batch = []
            for j, g in enumerate(who):
                vector = centres[g] + 0.5 * rng.normal(size=128).astype(np.float32)
                vector /= np.linalg.norm(vector)
                batch.append(Face((100.0 + 200 * j, 100.0, 80.0, 80.0), (0.0,) * 10, 0.9, 80.0, vector, b""))
            photo_id = store.save_photo(facts, batch, "sface", None)
            ids = [r[0] for r in store.db.execute("SELECT id FROM faces WHERE photo_id = ? ORDER BY id", [photo_id])]
            # A tenth of the faces stay in no group.
            assignments += [(None if rng.random() < 0.1 else people[g], "cluster", f) for g, f in zip(who, ids)]
            made += count
            photo += 1
        store.assign_faces(assignments)
    store.close()


QUERIES = [
    ("--with P000", PhotoQuery(with_all=("Person 000",))),
    ("--with P000 --with P001", PhotoQuery(with_all=("Person 000", "Person 001"))),
    ("--with P000 --with P001 --with P002", PhotoQuery(with_all=("Person 000", "Person 001", "Person 002"))),
    ("--any P050 --any P051 --without P000", PhotoQuery(with_any=("Person 050", "Person 051"), without=("Person 000",))),
    ("--with P000 --only", PhotoQuery(with_all=("Person 000",), only=True)),
    ("--with P001 --from 2015 --to 2018", PhotoQuery(with_all=("Person 001",), taken_from="2015", taken_to="2018")),
    ("--with P000 --under /photos/07", PhotoQuery(with_all=("Person 000",), under="/photos/07")),
    ("--without P000 (most of the library)", PhotoQuery(without=("Person 000",))),
]


def time_queries(store: Store) -> None:
    for label, query in QUERIES:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            found = find_photos(store, query)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        find_photos(store, query, with_faces=True)
        json_s = time.perf_counter() - start
        print(f"{label:<40} {statistics.median(times) * 1000:>7.1f} ms {len(found):>7} photos   (--json {json_s * 1000:.0f} ms)")


def time_identify(store: Store) -> None:
    from skimage import data  # only for this part: a real face to match

    from facecluster.identify import Reference, _analyse, match_faces
    from facecluster.models import load_pack
    from facecluster.scan import ScanOptions
    from tests.conftest import jpeg_bytes

    photo = Path(tempfile.mkdtemp()) / "astronaut.jpg"
    photo.write_bytes(jpeg_bytes(data.astronaut()))
    pack = load_pack("sface")
    pack.load()
    start = time.perf_counter()
    reference = Reference.load(store, "sface")
    load_s = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        _, result = _analyse(str(photo), pack, ScanOptions(jobs=1))
        match_faces(reference, result.faces)
        times.append(time.perf_counter() - start)
    match_start = time.perf_counter()
    for _ in range(20):
        match_faces(reference, result.faces)
    match_s = (time.perf_counter() - match_start) / 20
    print(f"identify: named people's {len(reference.embeddings)} faces loaded in {load_s * 1000:.0f} ms (once per run); "
          f"one photo {statistics.median(times) * 1000:.0f} ms (median of 5; the match alone {match_s * 1000:.1f} ms)")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    faces = int(args[0]) if args else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "x.db"
        start = time.perf_counter()
        build(db, faces)
        print(f"built {faces} faces in {GROUPS} groups ({NAMED} named) in {time.perf_counter() - start:.0f} s")
        store = Store(db, readonly=True)
        print("with the m008 index (person_id, photo_id):")
        time_queries(store)
        if "--identify" in sys.argv:
            time_identify(store)
        store.close()
        raw = Store(db)
        raw.db.execute("DROP INDEX faces_person_photo")
        print("without it (only the person_id index):")
        time_queries(raw)
        raw.close()


if __name__ == "__main__":
    main()
