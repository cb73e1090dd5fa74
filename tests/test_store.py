import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facecluster.errors import FaceclusterError, StoreBusy, StoreError
from facecluster.store import Store, blob_to_embedding, embedding_to_blob, from_db_path, to_db_path


def columns(db_path, table):
    with sqlite3.connect(db_path) as conn:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_migrations_build_the_schema(db_path):
    Store(db_path).close()
    assert columns(db_path, "photos") == [
        "id", "path", "size", "mtime_ns", "sha256", "width", "height", "taken", "taken_source",
        "camera", "status", "error", "added_at", "updated_at", "kind",
    ]
    assert columns(db_path, "faces") == [
        "id", "photo_id", "model", "x", "y", "w", "h", "landmarks", "score", "size", "embedding", "thumb",
        "person_id", "assigned", "xmp_name", "quality", "frame_ms",
    ]
    assert columns(db_path, "companions") == ["path", "photo_id", "kind", "size", "mtime_ns"]
    assert columns(db_path, "people") == ["id", "model", "name", "ignored", "created_at", "updated_at"]
    assert columns(db_path, "face_rejections") == ["face_id", "person_id", "created_at"]
    assert columns(db_path, "photo_scans") == ["photo_id", "model", "faces", "scanned_at", "det_size", "det_threshold"]
    assert columns(db_path, "models") == ["name", "fingerprint", "dim", "licence", "first_used", "embedder"]
    assert columns(db_path, "embeddings") == ["face_id", "embedder", "dim", "vector"]
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


OPEN_AT_ONCE = """
import os, sys
from facecluster.store import Store
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):  # spinning, not sleeping: all three go within moments of each other
    pass
Store(sys.argv[1]).close()
print("opened")
"""


@pytest.mark.slow
def test_three_processes_opening_a_fresh_database_at_once(tmp_path):
    # Before the migrations ran under the writer lock, this failed in 11 of 15 rounds
    # ("not a facecluster database", "table people already exists", "database is locked").
    for round_ in range(5):
        db, go = tmp_path / f"fresh{round_}.db", tmp_path / f"go{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(db), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for p in procs:  # all three loaded and spinning, however busy the machine: then go
            ready = p.stdout.readline()
            assert ready == "ready\n", ready + p.stderr.read()
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "opened", err
        with sqlite3.connect(db) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
        assert len(names) == len(set(names))


def test_readonly_never_creates_a_database_or_a_folder(tmp_path):
    missing = tmp_path / "typo" / "x.db"
    with pytest.raises(StoreError, match=r"no database at .*x\.db"):
        Store(missing, readonly=True)
    assert not missing.parent.exists()


def test_readonly_reads_an_existing_database(db_path):
    Store(db_path).close()
    store = Store(db_path, readonly=True)
    assert store.counts()["photos"] == 0
    store.close()


def test_readonly_database_file_opens_in_read_only_mode(db_path):
    if os.geteuid() == 0:
        pytest.skip("root can write any file, so a read-only file cannot be made here")
    Store(db_path).close()
    db_path.chmod(0o444)
    store = Store(db_path, readonly=True)
    assert store.readonly and store.counts()["photos"] == 0


def test_cannot_create_the_shm_file_is_said_as_such(db_path):
    Store(db_path).close()
    Path(f"{db_path}-shm").mkdir()  # SQLite cannot create its shared-memory file beside the database
    with pytest.raises(StoreError) as caught:
        Store(db_path)
    assert "not a facecluster database" not in str(caught.value)
    assert f"cannot use {db_path.name}-shm beside it" in str(caught.value)


def test_error_messages_name_what_failed(db_path):
    store = Store(db_path)
    assert "the disk is full" in store._explain(sqlite3.OperationalError("database or disk is full"))
    assert "not SQLite" not in store._explain(sqlite3.OperationalError("unable to open database file"))
    store.close()


def test_bad_lock_wait_is_a_clear_error(db_path, monkeypatch):
    monkeypatch.setenv("FACECLUSTER_LOCK_WAIT", "abc")
    with pytest.raises(FaceclusterError, match="FACECLUSTER_LOCK_WAIT must be a number of seconds"):
        with Store(db_path).writer("scan"):
            pass


READ_ONLY_MOUNT = """
import sys
from facecluster.errors import StoreError
from facecluster.store import Store
store = Store(sys.argv[1], readonly=True)
print("read-only open:", store.readonly, store.counts()["photos"])
try:
    Store(sys.argv[1])
except StoreError as e:
    print("writer:", e)
"""


def test_database_on_a_read_only_mount(tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm is not available here (needs user namespaces to mount read-only)")
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "faces.db"
    Store(db).close()
    script = f'mount --bind -o ro "{folder}" "{folder}" && exec "{sys.executable}" -c "$0" "$1"'
    result = subprocess.run([unshare, "-rm", "sh", "-c", script, READ_ONLY_MOUNT, str(db)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "read-only open: True 0" in result.stdout
    assert f"writer: cannot write database {db}: its folder {folder} is read-only" in result.stdout
    assert "not a facecluster database" not in result.stdout
