import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from facecluster.errors import StoreBusy, StoreError
from facecluster.store import Store, blob_to_embedding, embedding_to_blob, from_db_path, to_db_path


def columns(db_path, table):
    with sqlite3.connect(db_path) as conn:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_migrations_build_the_schema(db_path):
    Store(db_path).close()
    assert columns(db_path, "photos") == [
        "id", "path", "size", "mtime_ns", "sha256", "width", "height", "taken", "taken_source",
        "camera", "status", "error", "added_at", "updated_at",
    ]
    assert columns(db_path, "faces") == [
        "id", "photo_id", "model", "x", "y", "w", "h", "landmarks", "score", "size", "embedding", "thumb",
        "person_id", "assigned", "xmp_name",
    ]
    assert columns(db_path, "people") == ["id", "model", "name", "ignored", "created_at", "updated_at"]
    assert columns(db_path, "face_rejections") == ["face_id", "person_id", "created_at"]
    assert columns(db_path, "photo_scans") == ["photo_id", "model", "faces", "scanned_at"]
    assert columns(db_path, "models") == ["name", "fingerprint", "dim", "licence", "first_used"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_applies_nothing_twice(db_path):
    Store(db_path).close()
    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    assert names == sorted(set(names))


def test_newer_database_is_refused_untouched(db_path):
    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('facecluster', 'm999_future', 'x')"
        )
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="newer facecluster"):
        Store(db_path)
    assert db_path.read_bytes() == before


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello " * 100)
    with pytest.raises(StoreError, match="not a facecluster database"):
        Store(path)


def test_other_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(StoreError, match="something else"):
        Store(path)


def test_embedding_blob_is_little_endian_float32():
    v = np.array([0.6, -0.8], np.float32)
    blob = embedding_to_blob(v)
    assert blob == np.array([0.6, -0.8], dtype="<f4").tobytes() and len(blob) == 8
    np.testing.assert_array_equal(blob_to_embedding(blob), v)


def test_non_utf8_paths_round_trip():
    weird = os.fsdecode(b"/photos/caf\xe9.jpg")
    assert isinstance(to_db_path(weird), bytes)
    assert from_db_path(to_db_path(weird)) == weird
    assert to_db_path("/photos/café.jpg") == "/photos/café.jpg"


HOLD_LOCK = """
import sys, time
from facecluster.store import Store
with Store(sys.argv[1]).writer("scan"):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_second_writer_waits_then_names_the_first(db_path):
    Store(db_path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy, match=rf"in use by facecluster scan \(pid {holder.pid}\)"):
            with Store(db_path).writer("scan", wait=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves no stale lock.
    with Store(db_path).writer("scan", wait=0.5):
        pass
