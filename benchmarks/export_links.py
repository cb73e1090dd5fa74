"""`facecluster export --links` on 10,000 photos: the first run, a rerun with nothing changed, a rerun after changes.

Builds a synthetic database with the store's own methods (10,000 small real files on disk, 1 to 3
faces each, 300 named people, Zipf-like: a few people in many photos), then times export_links:
the first run (every link made), a rerun with nothing changed (must write nothing: the marker's
and the folder's times are checked), and a rerun after a person is renamed and 100 faces removed.

    python benchmarks/export_links.py [PHOTOS]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.export.links import MARKER, export_links  # noqa: E402
from facecluster.records import Face, PhotoFacts  # noqa: E402
from facecluster.store import Store  # noqa: E402

PEOPLE = 300


def build(db: Path, photos: Path, count: int) -> None:
    store = Store(db)
    store.register_model("sface", "synthetic", 128, "none")
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, PEOPLE + 1)
    weights /= weights.sum()
    vector = np.ones(128, np.float32) / np.sqrt(128)
    with store.transaction():
        people = store.create_people("sface", PEOPLE)
        for i, person in enumerate(people):
            store.set_person(person, name=f"Person {i:03d}")
        assignments = []
        for i in range(count):
            path = photos / f"{i % 50:02d}" / f"IMG_{i // 50:04d}.jpg"  # the same names in all 50 folders
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"x")
            who = rng.choice(PEOPLE, size=int(rng.integers(1, 4)), replace=False, p=weights)
            faces = [Face((100.0 + 200 * j, 100.0, 80.0, 80.0), (0.0,) * 10, 0.9, 80.0, vector, b"") for j in range(len(who))]
            photo_id = store.save_photo(PhotoFacts(str(path), 1, i, f"{i:064x}", 4000, 3000), faces, "sface", None)
            ids = [r[0] for r in store.db.execute("SELECT id FROM faces WHERE photo_id = ? ORDER BY id", [photo_id])]
            assignments += [(people[g], "user", f) for g, f in zip(who, ids)]
        store.assign_faces(assignments)
    store.close()


def timed(store: Store, folder: Path, label: str):
    start = time.perf_counter()
    summary = export_links(store, folder)
    seconds = time.perf_counter() - start
    print(f"{label:<48} {seconds:>6.2f} s  {summary.links} links in {summary.people} folders, "
          f"{summary.added} added, {summary.removed} removed, {summary.folders_removed} folders removed")
    return summary


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        db = root / "x.db"
        start = time.perf_counter()
        build(db, root / "photos", count)
        print(f"built {count} photos in {time.perf_counter() - start:.0f} s")
        store = Store(db)
        folder = root / "People"
        timed(store, folder, "first run")
        stamps = (os.stat(folder).st_mtime_ns, os.stat(folder / MARKER).st_mtime_ns)
        again = timed(store, folder, "rerun, nothing changed")
        assert again.changed == 0 and (os.stat(folder).st_mtime_ns, os.stat(folder / MARKER).st_mtime_ns) == stamps
        print("  nothing written (the folder's and the marker's times unchanged)")
        with store.transaction():
            person = store.find_people("Person 001")[0].id
            store.set_person(person, name="Someone Else")
            gone = [r[0] for r in store.db.execute("SELECT id FROM faces WHERE person_id IS NOT NULL ORDER BY id LIMIT 100")]
            store.reject_faces(gone)
        timed(store, folder, "rerun after a rename and 100 faces removed")
        store.close()


if __name__ == "__main__":
    main()
