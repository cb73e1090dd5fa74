"""Re-embedding a scanned library with another embedder keeps every user row.

On a COPY of a scanned database (default /tmp/base/db, a scan of all of ../shared/facedata made
by older code; its photos under /tmp/base/lib): open it (the store migrates it: embeddings table),
group it, make the decisions a user makes (names, "not this person", "not the same person", an
undo), then `scan --embedder` in place (facecluster.reembed) and group again with the new vectors.
Printed: the rows before and after each step, whether every face id, person, name, rejection,
cannot-link and action row is the same, and the time of each step.

    python benchmarks/reembed.py
    python benchmarks/reembed.py --db /tmp/base/db --library /tmp/base/lib --embedder sface-flip
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from contextlib import closing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.grouping import group  # noqa: E402
from facecluster.people import answer_same, answer_suggestion, list_people, name_person, undo_last  # noqa: E402
from facecluster.reembed import reembed  # noqa: E402
from facecluster.store import Store  # noqa: E402

# What the user owns: every row of these, compared whole.
USER_ROWS = {
    "faces": "SELECT id, photo_id, model, person_id, assigned FROM faces ORDER BY id",
    "people": "SELECT * FROM people ORDER BY id",
    "face_rejections": "SELECT * FROM face_rejections ORDER BY face_id, person_id",
    "cannot_links": "SELECT * FROM cannot_links ORDER BY person_a, person_b",
    "actions": "SELECT * FROM actions ORDER BY id",
}


def user_rows(db: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(db)) as conn:  # closed, so the store's last close checkpoints the WAL
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: conn.execute(sql).fetchall() if t in tables else [] for t, sql in USER_ROWS.items()}


def counts(rows: dict[str, list[tuple]]) -> str:
    named = sum(1 for r in rows["people"] if r[2] is not None)
    return ", ".join(f"{len(v)} {k}" for k, v in rows.items()) + f" ({named} named people)"


def decide(store: Store) -> None:
    """A user's work: name the 30 largest groups, say "not the same person" of 5 pairs of other groups,
    refuse 5 faces in no group for the first name, then undo the last answer."""
    groups = sorted((p for p in list_people(store) if p.name is None), key=lambda p: -p.faces)
    for i, p in enumerate(groups[:30]):
        name_person(store, str(p.id), f"Person {i + 1}")
    rest = groups[30:40]
    for a, b in zip(rest[::2], rest[1::2]):
        answer_same(store, str(a.id), str(b.id), yes=False)
    loose = [r[0] for r in store.db.execute("SELECT id FROM faces WHERE person_id IS NULL ORDER BY id LIMIT 6")]
    for face_id in loose:
        answer_suggestion(store, "Person 1", face_id, yes=False)
    undo_last(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/base/db"), help="a scanned database (it is copied, never opened)")
    parser.add_argument("--library", default="/tmp/base/lib", help="where its photos are")
    parser.add_argument("--embedder", default="sface-flip")
    parser.add_argument("--keep", type=Path, help="also copy the re-embedded database here (for other benchmarks)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reembed-"))
    db = work / "library.db"
    shutil.copy(args.db, db)
    with closing(sqlite3.connect(db)) as conn:
        photos = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    print(f"{args.db}: {photos} photos; before opening: {counts(user_rows(db))}")

    started = time.monotonic()
    store = Store(db)
    vectors = store.vector_counts()
    print(f"opened (migrated) in {time.monotonic() - started:.2f} s: vectors {vectors}; {counts(user_rows(db))}")

    started = time.monotonic()
    first = group(store)
    decide(store)
    print(f"grouped with sface ({first.groups} groups) and decided in {time.monotonic() - started:.1f} s")
    before = user_rows(db)
    print(f"before re-embedding: {counts(before)}")

    summary = reembed(store, [args.library], args.embedder, progress=lambda m: print("  " + m, flush=True))
    after = user_rows(db)
    print(f"re-embedded {summary.faces} faces of {summary.photos} files with {args.embedder} in {summary.seconds:.1f} s "
          f"({summary.faces / max(summary.seconds, 1e-9):.1f} faces/s); {len(summary.failed)} files failed, "
          f"{summary.missing} faces still without a vector; vectors {store.vector_counts()}")
    print(f"after re-embedding: {counts(after)}")
    for table in USER_ROWS:
        same = before[table] == after[table]
        print(f"  {table}: {len(after[table])} of {len(before[table])} rows kept, identical: {same}")

    lines: list[str] = []
    started = time.monotonic()
    second = group(store, progress=lines.append)
    named = [p for p in list_people(store) if p.name is not None]
    print(f"grouped again ({lines[-1]}) in {time.monotonic() - started:.1f} s: {second.groups} groups, "
          f"{len(named)} named people, {sum(len(v) for v in [user_rows(db)['face_rejections']])} rejections, "
          f"{len(user_rows(db)['cannot_links'])} cannot-links")
    if args.keep:  # before the undo below, through SQLite (the WAL's pages included)
        with closing(sqlite3.connect(args.keep)) as kept:
            store.db.conn.backup(kept)
    print(f"undo after re-embedding: {undo_last(store)}")
    store.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
