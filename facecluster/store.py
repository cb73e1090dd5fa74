"""The SQLite store: the only module that speaks SQL.

The schema comes from `migrations.py`, applied when a store opens. WAL mode
lets readers (people, export) run while a scan writes. Writers take an OS
file lock beside the database, so a second scan waits a bounded time and
then refuses with a message naming the process that holds it; the lock
dies with its process, so a killed scan never leaves a stale lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from facecluster import config
from facecluster.errors import StoreBusy, StoreError
from facecluster.geometry import iou
from facecluster.migrations import migrations
from facecluster.records import Face, PhotoFacts

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite's own locking still protects the file
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str


@dataclass(frozen=True)
class DrawPhoto:
    """A photo as drawing a face on it needs it: where it is, what it was when scanned, its faces."""

    id: int
    path: str
    size: int
    mtime_ns: int
    width: int | None  # full displayed size (upright)
    height: int | None
    status: str
    faces: list[tuple[int, str, tuple[float, float, float, float]]]  # (face id, model, box) of its faces


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_db_path(path: str) -> str | bytes:
    """File names that are not valid UTF-8 are stored as their raw bytes (a BLOB)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def from_db_path(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def embedding_to_blob(vector: npt.NDArray[np.floating]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def blob_to_embedding(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4")


NOT_A_PERSON = "notperson"  # faces.assigned of a face the user marked as no person at all


class Store:
    """An open facecluster database.

    Example:
        store = Store("library.db"); store.counts()
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        """Open (or, unless `readonly`, create) the database at `path`.

        readonly: for commands that only read. Never creates the file or its
        folder (a missing or empty database is a StoreError), opens in SQLite's
        read-only mode where the file or its folder cannot be written, and
        still reads when the disk is full.

        Nothing here opens the database file (or its -wal and -shm) except
        SQLite: closing any descriptor of the file would drop every POSIX lock
        this process's connections hold on it (docs/reliability.md).
        """
        self.path = Path(path)
        self.readonly = False  # True when opened in SQLite's read-only mode
        if self.path.is_dir():
            raise StoreError(f"database path {self.path} is a folder")
        exists = self.path.exists()
        if readonly and not exists:
            raise StoreError(f"no database at {self.path} (`facecluster scan FOLDER` creates one)")
        if not exists and not self.path.parent.exists():
            self._make_folder()
        if not readonly:
            self._check_writable()
        try:
            self.db = Database(self._connect(readonly))
            if readonly and not self.db.table_names():  # an empty file: a read must not write a schema into it
                self.db.close()
                raise StoreError(f"{self.path} is empty, not a facecluster database yet (`facecluster scan FOLDER` makes one)")
            self.db.execute("PRAGMA foreign_keys = ON")
            if migrations.pending(self.db):
                if self.readonly:
                    self._check_version()
                    raise StoreError(
                        f"{self.path} was made by an older facecluster and needs upgrading, "
                        "but it is read-only here; run any command that writes (such as scan) where it is writable"
                    )
                # Under the writer lock: three processes opening a fresh database at
                # once used to build the schema twice, or read it half-built.
                with self.writer("open (upgrading the database)"):
                    self._check_version()
                    if migrations.pending(self.db):
                        self.db.enable_wal()
                        migrations.apply(self.db)
            else:
                self._check_version()
            if not self.readonly:
                self.db.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commit
        except sqlite3.DatabaseError as e:
            raise StoreError(self._explain(e)) from None

    def _make_folder(self) -> None:
        """Only the default data folder is made for the database: any other missing folder is
        more likely a typo in --db than a wish, and a new empty database there would hide it."""
        folder = self.path.parent
        if folder.absolute() != config.data_dir().absolute():
            raise StoreError(f"folder {folder} does not exist: create it first (mkdir -p {folder}), or check --db")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {folder}: {e.strerror}") from None

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        """A connection that has read the file's header (SQLite says here if the file is not a database).

        A command that only reads still reads when the disk is full: SQLite cannot grow
        the -shm file then ("disk I/O error"), so the read goes again in exclusive
        locking mode, which keeps the WAL index in this process's memory and needs
        no -shm; the exclusive lock keeps every other process out while it reads.
        """
        if readonly and not _writable(self.path):
            conn = sqlite3.connect(self._readonly_uri(), uri=True, timeout=30.0)
            self.readonly = True
        else:
            conn = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as e:
            conn.close()
            if not (readonly and not self.readonly and _no_room_for_shm(e)):
                raise
        conn = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # before the first read: then no -shm is ever used
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _check_writable(self) -> None:
        """Say what stops a command that writes, before SQLite says something vaguer later."""
        folder, shm = self.path.parent, Path(f"{self.path}-shm")
        if _unusable_shm(shm):
            raise StoreError(f"cannot open database {self.path}: cannot use {shm.name} beside it (it is not a file we can write)")
        if not os.access(folder, os.W_OK):
            raise StoreError(f"cannot write database {self.path}: its folder {folder} is read-only, and SQLite needs to "
                             f"create {self.path.name}-wal and {self.path.name}-shm beside it")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"cannot write database {self.path}: the file is read-only")

    def _readonly_uri(self) -> str:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        side = [Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        if not os.access(self.path.parent, os.W_OK) and not all(p.exists() for p in side):
            # SQLite cannot create the -shm file in a read-only folder; with no
            # -wal there either, nobody can be writing: read the file as it is.
            uri += "&immutable=1"
        return uri

    def _explain(self, e: sqlite3.DatabaseError) -> str:
        """What really failed, in words (not "not a database" for a full disk or a read-only folder)."""
        text = str(e)
        folder = self.path.parent
        shm = Path(f"{self.path}-shm")
        if "full" in text:
            return f"cannot open database {self.path}: the disk is full ({text})"
        if _no_room_for_shm(e) and _disk_full(folder):
            return f"cannot open database {self.path}: the disk is full (no room for {shm.name} beside it)"
        if getattr(e, "sqlite_errorname", "") == "SQLITE_NOTADB" or "file is not a database" in text:
            return f"{self.path} is not a facecluster database (not SQLite)"
        if _unusable_shm(shm):
            return f"cannot open database {self.path}: cannot use {shm.name} beside it (it is not a file we can write)"
        if not os.access(folder, os.W_OK) and ("readonly" in text or "unable to open" in text or "I/O" in text):
            return (f"cannot open database {self.path}: its folder {folder} is read-only, and SQLite needs to create "
                    f"{self.path.name}-wal and {self.path.name}-shm beside it")
        if "readonly" in text:
            return f"cannot write database {self.path}: the file is read-only ({text})"
        return f"cannot open database {self.path}: {text}"

    def _check_version(self) -> None:
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(self.db)}
        newer = sorted(applied - known)
        if newer:
            raise StoreError(
                f"database {self.path} was written by a newer facecluster (schema {newer[-1]}); upgrade facecluster to use it"
            )
        if not applied and self.db.table_names() and "photos" not in self.db.table_names():
            raise StoreError(f"{self.path} is an SQLite database of something else, not facecluster")

    def close(self) -> None:
        self.db.close()

    # ---- locking -----------------------------------------------------------------

    @contextmanager
    def writer(self, command: str, wait: float | None = None) -> Iterator[None]:
        """Hold the database's writer lock for one command (scan, group, ...)."""
        if wait is None:
            wait = config.lock_wait_seconds() if self.lock_wait is None else self.lock_wait
        if fcntl is None:
            yield
            return
        lock_path = Path(str(self.path) + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                        raise StoreBusy(
                            f"{self.path} is in use by {holder}; wait for it to finish and try again"
                        ) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"facecluster {command} (pid {os.getpid()})".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    # ---- models --------------------------------------------------------------------

    def register_model(self, name: str, fingerprint: str, dim: int, licence: str) -> str | None:
        """Record a pack the first time it is used. Returns the fingerprint stored
        earlier under this name when it differs (the weights changed), else None."""
        row = self.db.execute("SELECT fingerprint FROM models WHERE name = ?", [name]).fetchone()
        if row is None:
            with self.db.atomic():
                self.db.execute(
                    "INSERT INTO models (name, fingerprint, dim, licence, first_used) VALUES (?, ?, ?, ?, ?)",
                    [name, fingerprint, dim, licence, now()],
                )
            return None
        return row[0] if row[0] != fingerprint else None

    # ---- scanning ------------------------------------------------------------------

    def photo_index(self) -> dict[str, PhotoRow]:
        """Every photo row by path: what a rescan compares the disk against."""
        rows = self.db.execute("SELECT id, path, size, mtime_ns, sha256, status FROM photos")
        index = {}
        for id_, path, size, mtime_ns, sha, status in rows:
            p = from_db_path(path)
            index[p] = PhotoRow(id_, p, size, mtime_ns, sha, status)
        return index

    def scan_settings(self, model: str) -> dict[int, tuple[int, float]]:
        """photo id -> (det_size, det_threshold) it was scanned with, for every photo scanned with this pack."""
        rows = self.db.execute("SELECT photo_id, det_size, det_threshold FROM photo_scans WHERE model = ?", [model])
        return {r[0]: (r[1], r[2]) for r in rows}

    def scanned_hashes_by_size(self, model: str, settings: tuple[int, float]) -> dict[int, set[str]]:
        """File size -> content hashes already scanned with this pack and these settings: their faces can be reused.

        Keyed by size so the scan can hand each file only the hashes it could match.
        """
        out: dict[int, set[str]] = {}
        rows = self.db.execute(
            "SELECT DISTINCT p.size, p.sha256 FROM photos p JOIN photo_scans s ON s.photo_id = p.id "
            "WHERE s.model = ? AND s.det_size = ? AND s.det_threshold = ? AND p.sha256 IS NOT NULL",
            [model, *settings],
        )
        for size, sha in rows:
            out.setdefault(size, set()).add(sha)
        return out

    def photos_with_hash(self, sha256: str, model: str, settings: tuple[int, float] | None = None) -> list[PhotoRow]:
        sql = ("SELECT p.id, p.path, p.size, p.mtime_ns, p.sha256, p.status FROM photos p "
               "JOIN photo_scans s ON s.photo_id = p.id WHERE p.sha256 = ? AND s.model = ?")
        args: list = [sha256, model]
        if settings is not None:
            sql += " AND s.det_size = ? AND s.det_threshold = ?"
            args += list(settings)
        rows = self.db.execute(sql + " ORDER BY p.id", args)
        return [PhotoRow(r[0], from_db_path(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def save_photo(self, facts: PhotoFacts, faces: list[Face], model: str, existing_id: int | None,
                   settings: tuple[int, float] | None = None, keep_people: bool = False) -> int:
        """Store a freshly scanned photo and its faces, replacing what the path held before.

        keep_people: the same content detected again (other settings): each new face
        takes the person, decision and rejections of the old face it overlaps, and
        old faces with a person or a decision that nothing overlaps are kept.
        """
        if existing_id is not None and keep_people:
            return self._redetected(facts, faces, model, existing_id, settings)
        if existing_id is not None:
            self._forget_faces(existing_id)
        photo_id = self._upsert_photo(facts, "ok", existing_id)
        self.db.conn.executemany(_INSERT_FACE_SQL, [_face_values(photo_id, model, f) for f in faces])
        self._mark_scanned(photo_id, model, len(faces), settings)
        return photo_id

    def _redetected(self, facts: PhotoFacts, faces: list[Face], model: str, photo_id: int,
                    settings: tuple[int, float] | None) -> int:
        old = self.db.execute(
            "SELECT id, x, y, w, h, person_id, assigned, frame_ms FROM faces WHERE photo_id = ? AND model = ?", [photo_id, model]
        ).fetchall()
        self._upsert_photo(facts, "ok", photo_id)
        new_ids = []
        for f in faces:
            cursor = self.db.execute(_INSERT_FACE_SQL, _face_values(photo_id, model, f))
            new_ids.append((int(cursor.lastrowid), f.box, f.frame_ms))
        pairs = sorted(  # a video's faces overlap only within one frame
            ((iou(o[1:5], box), o, new_id) for o in old for new_id, box, frame_ms in new_ids if o[7] == frame_ms),
            key=lambda t: -t[0],
        )
        used_old: set[int] = set()
        used_new: set[int] = set()
        for overlap, o, new_id in pairs:
            if overlap < config.SAME_FACE_IOU or o[0] in used_old or new_id in used_new:
                continue
            used_old.add(o[0])
            used_new.add(new_id)
            self.db.execute("UPDATE faces SET person_id = ?, assigned = ? WHERE id = ?", [o[5], o[6], new_id])
            self.db.execute("UPDATE face_rejections SET face_id = ? WHERE face_id = ?", [new_id, o[0]])
        # Old faces nothing overlaps: kept where a person or a decision hangs on them
        # (a name must never vanish because a detector setting changed), else dropped.
        drop = [o[0] for o in old if o[0] not in used_old and o[5] is None and o[6] != "removed"]
        drop += list(used_old)
        for chunk in _chunks(drop, 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM face_rejections WHERE face_id IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM faces WHERE id IN ({marks})", chunk)
        count = self.db.execute("SELECT count(*) FROM faces WHERE photo_id = ? AND model = ?", [photo_id, model]).fetchone()[0]
        self._mark_scanned(photo_id, model, count, settings)
        return photo_id

    def save_failure(self, facts: PhotoFacts, existing_id: int | None) -> int:
        if existing_id is not None:
            self._forget_faces(existing_id)
        return self._upsert_photo(facts, "failed", existing_id)

    def move_photo(self, photo_id: int, facts: PhotoFacts) -> None:
        """Same content at a new path (moved or renamed): faces, and so names, stay."""
        self.db.execute(
            "UPDATE photos SET path = ?, size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
            [to_db_path(facts.path), facts.size, facts.mtime_ns, now(), photo_id],
        )

    def touch_photo(self, photo_id: int, facts: PhotoFacts) -> None:
        """The file's mtime or size changed but its content did not."""
        self.db.execute(
            "UPDATE photos SET size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
            [facts.size, facts.mtime_ns, now(), photo_id],
        )

    def copy_photo(self, source_id: int, facts: PhotoFacts, model: str, existing_id: int | None,
                   settings: tuple[int, float] | None = None) -> int:
        """A second copy of already-scanned content: copy its facts and faces, skip the models."""
        if existing_id is not None:
            self._forget_faces(existing_id)
        src = self.db.execute(
            "SELECT width, height, taken, taken_source, camera, kind FROM photos WHERE id = ?", [source_id]
        ).fetchone()
        width, height, taken, taken_source, camera, kind = src
        merged = PhotoFacts(
            path=facts.path, size=facts.size, mtime_ns=facts.mtime_ns, sha256=facts.sha256,
            width=width, height=height, taken=facts.taken or taken,
            taken_source=facts.taken_source or taken_source, camera=facts.camera or camera, kind=kind or facts.kind,
        )
        photo_id = self._upsert_photo(merged, "ok", existing_id)
        self.db.execute(
            "INSERT INTO faces (photo_id, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name, quality, frame_ms) "
            "SELECT ?, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name, quality, frame_ms FROM faces "
            "WHERE photo_id = ? AND model = ? ORDER BY id",
            [photo_id, source_id, model],
        )
        count = self.db.execute("SELECT count(*) FROM faces WHERE photo_id = ?", [photo_id]).fetchone()[0]
        self._mark_scanned(photo_id, model, count, settings)
        return photo_id

    def _upsert_photo(self, facts: PhotoFacts, status: str, existing_id: int | None) -> int:
        values = [
            to_db_path(facts.path), facts.size, facts.mtime_ns, facts.sha256, facts.width, facts.height,
            facts.taken, facts.taken_source, facts.camera, status, facts.error, facts.kind, now(),
        ]
        if existing_id is None:
            cursor = self.db.execute(
                "INSERT INTO photos (path, size, mtime_ns, sha256, width, height, taken, taken_source, camera, "
                "status, error, kind, updated_at, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values, values[-1]],
            )
            return int(cursor.lastrowid)
        self.db.execute(
            "UPDATE photos SET path = ?, size = ?, mtime_ns = ?, sha256 = ?, width = ?, height = ?, taken = ?, "
            "taken_source = ?, camera = ?, status = ?, error = ?, kind = ?, updated_at = ? WHERE id = ?",
            [*values, existing_id],
        )
        return existing_id

    def _mark_scanned(self, photo_id: int, model: str, faces: int, settings: tuple[int, float] | None = None) -> None:
        det_size, det_threshold = settings or (config.DETECTION_SIZE, config.DETECTION_THRESHOLD)
        self.db.execute(
            "INSERT OR REPLACE INTO photo_scans (photo_id, model, faces, scanned_at, det_size, det_threshold) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [photo_id, model, faces, now(), det_size, det_threshold],
        )

    def save_companions(self, companions: Iterable[tuple[str, str, str, int, int]], roots: Iterable[str]) -> int:
        """Record (path, photo path, kind, size, mtime_ns) companions under `roots`, replacing what those roots had.

        A companion whose photo has no row yet (its scan was interrupted) waits for the next scan.
        Returns how many were recorded.
        """
        for root in roots:
            self.db.execute("DELETE FROM companions WHERE path >= ? AND path < ?", [root.rstrip(os.sep) + os.sep,
                                                                                  root.rstrip(os.sep) + chr(ord(os.sep) + 1)])
        ids = {}
        count = 0
        for path, photo, kind, size, mtime_ns in companions:
            if photo not in ids:
                row = self.db.execute("SELECT id FROM photos WHERE path = ?", [to_db_path(photo)]).fetchone()
                ids[photo] = row[0] if row else None
            if ids[photo] is None:
                continue
            self.db.execute(
                "INSERT OR REPLACE INTO companions (path, photo_id, kind, size, mtime_ns) VALUES (?, ?, ?, ?, ?)",
                [to_db_path(path), ids[photo], kind, size, mtime_ns],
            )
            count += 1
        self.db.execute("DELETE FROM companions WHERE photo_id NOT IN (SELECT id FROM photos)")
        return count

    def companions_of(self, photo_path: str) -> list[tuple[str, str]]:
        """(path, kind) of the files recorded as part of this photo's shot (its RAW, its Live Photo video)."""
        rows = self.db.execute(
            "SELECT c.path, c.kind FROM companions c JOIN photos p ON p.id = c.photo_id WHERE p.path = ? ORDER BY c.path",
            [to_db_path(photo_path)],
        )
        return [(from_db_path(r[0]), r[1]) for r in rows]

    def decisions_on(self, photo_ids: Iterable[int]) -> Decisions:
        """What the user decided about these photos' faces, each face counted once: named (by name),
        else in an ignored person, else taken out of a person ("not this person", `remove`)."""
        found = Decisions()
        for chunk in _chunks(list(photo_ids), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT p.name, coalesce(p.ignored, 0), f.assigned = 'removed' OR EXISTS "
                f"(SELECT 1 FROM face_rejections r WHERE r.face_id = f.id) "
                f"FROM faces f LEFT JOIN people p ON p.id = f.person_id WHERE f.photo_id IN ({marks})", chunk
            )
            for name, ignored, rejected in rows:
                if name is not None:
                    found.named[name] = found.named.get(name, 0) + 1
                elif ignored:
                    found.ignored += 1
                elif rejected:
                    found.rejected += 1
        return found

    def _forget_faces(self, photo_id: int) -> None:
        """The file's content changed: every pack's faces of it are stale."""
        self.db.execute(
            "DELETE FROM face_rejections WHERE face_id IN (SELECT id FROM faces WHERE photo_id = ?)", [photo_id]
        )
        self.db.execute("DELETE FROM faces WHERE photo_id = ?", [photo_id])
        self.db.execute("DELETE FROM photo_scans WHERE photo_id = ?", [photo_id])

    def delete_photos(self, photo_ids: Iterable[int]) -> int:
        ids = list(photo_ids)
        with self.db.atomic():
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(
                    f"DELETE FROM face_rejections WHERE face_id IN (SELECT id FROM faces WHERE photo_id IN ({marks}))", chunk
                )
                self.db.execute(f"DELETE FROM faces WHERE photo_id IN ({marks})", chunk)
                self.db.execute(f"DELETE FROM photo_scans WHERE photo_id IN ({marks})", chunk)
                self.db.execute(f"DELETE FROM photos WHERE id IN ({marks})", chunk)
        return len(ids)

    def failures_under(self, roots: Iterable[str]) -> list[Failure]:
        """Files under these roots that could not be read, with their reasons."""
        rows = self.db.execute("SELECT path, error FROM photos WHERE status = 'failed' ORDER BY path")
        roots = [r.rstrip(os.sep) + os.sep for r in roots]
        out = []
        for path, error in rows:
            p = from_db_path(path)
            if any(p.startswith(r) for r in roots):
                out.append(Failure(p, error or "unknown error"))
        return out

    # ---- reading -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "photos": q("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()[0],
            "failed": q("SELECT count(*) FROM photos WHERE status = 'failed'").fetchone()[0],
            "faces": q("SELECT count(*) FROM faces").fetchone()[0],
            "photos_with_faces": q("SELECT count(DISTINCT photo_id) FROM faces").fetchone()[0],
        }

    def thumb(self, face_id: int) -> bytes | None:
        """The face's stored crop; None when there is no such face (an id beyond SQLite's integers included)."""
        row = self.db.execute("SELECT thumb FROM faces WHERE id = ?", [face_id]).fetchone() if 0 < face_id < 2**63 else None
        return row[0] if row else None


    # ---- faces drawn by the user -----------------------------------------------------

    def draw_photo(self, photo_id: int) -> DrawPhoto | None:
        """A photo with its faces, by id; None when there is no such photo."""
        row = self.db.execute(
            "SELECT id, path, size, mtime_ns, width, height, status FROM photos WHERE id = ?", [photo_id]
        ).fetchone() if 0 < photo_id < 2**63 else None
        if row is None:
            return None
        faces = [(r[0], r[1], (r[2], r[3], r[4], r[5])) for r in self.db.execute(
            "SELECT id, model, x, y, w, h FROM faces WHERE photo_id = ? ORDER BY id", [photo_id])]
        return DrawPhoto(row[0], from_db_path(row[1]), row[2], row[3], row[4], row[5], row[6], faces)

    def draw_photo_by_path(self, path: str) -> DrawPhoto | None:
        """The photo the database holds at this path (absolute, as scanned), or None."""
        row = self.db.execute("SELECT id FROM photos WHERE path = ?", [to_db_path(path)]).fetchone()
        return self.draw_photo(row[0]) if row else None

    def draw_photo_of_face(self, face_id: int) -> DrawPhoto | None:
        """The photo a face is on, or None when there is no such face."""
        row = self.db.execute("SELECT photo_id FROM faces WHERE id = ?", [face_id]).fetchone() if 0 < face_id < 2**63 else None
        return self.draw_photo(row[0]) if row else None

    def add_face(self, photo_id: int, model: str, face: Face) -> int:
        """Save one more face of a scanned photo (a face the user drew), in no group. Returns its id."""
        face_id = int(self.db.execute(_INSERT_FACE_SQL, _face_values(photo_id, model, face)).lastrowid)
        self.db.execute("UPDATE photo_scans SET faces = faces + 1 WHERE photo_id = ? AND model = ?", [photo_id, model])
        return face_id

    # ---- people ------------------------------------------------------------------

    def grouping_inputs(self, model: str) -> GroupingInputs:
        """Everything `group` needs about one pack's faces, as arrays."""
        # A video's frames are its "photos": a person once per frame, not once per video.
        # Each frame gets an id of its own below every photo id.
        rows = self.db.execute(
            "SELECT id, CASE WHEN frame_ms IS NULL THEN photo_id ELSE -dense_rank() OVER (ORDER BY photo_id, frame_ms) END, "
            "size, score, COALESCE(person_id, -1), embedding, quality, assigned FROM faces WHERE model = ? ORDER BY id",
            [model],
        ).fetchall()
        people = {p.id: p for p in self.people_rows(model)}
        rejections = set(self.db.execute(
            "SELECT r.face_id, r.person_id FROM face_rejections r JOIN faces f ON f.id = r.face_id WHERE f.model = ?",
            [model],
        ).fetchall())
        links = self.cannot_links(model)
        if not rows:
            empty = np.zeros(0, np.int64)
            return GroupingInputs(empty, empty, np.zeros(0), np.zeros(0), empty, np.zeros((0, 0), np.float32), people, rejections,
                                  anchored=np.zeros(0, bool), excluded=np.zeros(0, bool), cannot_links=links)
        ids, photos, sizes, scores, persons, blobs, qualities, how = zip(*rows)
        return GroupingInputs(
            face_ids=np.array(ids, np.int64),
            photo_ids=np.array(photos, np.int64),
            sizes=np.array(sizes, np.float64),
            scores=np.array(scores, np.float64),
            person_ids=np.array(persons, np.int64),
            embeddings=np.stack([blob_to_embedding(b) for b in blobs]),
            people=people,
            rejections=rejections,
            qualities=np.array([np.nan if q is None else q for q in qualities], np.float64),
            # An automatic join is a member, never evidence: only the user's own faces anchor a person.
            anchored=np.array([h not in ("auto", "cluster") for h in how], bool),
            excluded=np.array([h == NOT_A_PERSON for h in how], bool),
            cannot_links=links,
        )

    def cannot_links(self, model: str | None = None) -> set[tuple[int, int]]:
        """(smaller id, larger id) of every two people the user said are not the same person."""
        sql = "SELECT l.person_a, l.person_b FROM cannot_links l"
        if model:
            return set(self.db.execute(sql + " JOIN people p ON p.id = l.person_a WHERE p.model = ?", [model]).fetchall())
        return set(self.db.execute(sql).fetchall())

    def add_cannot_link(self, a: int, b: int) -> None:
        low, high = sorted((a, b))
        self.db.execute(
            "INSERT OR IGNORE INTO cannot_links (person_a, person_b, created_at) VALUES (?, ?, ?)", [low, high, now()]
        )

    def mark_not_person(self, face_ids: Iterable[int]) -> list[tuple[int, int | None]]:
        """Faces that are no person at all (a cartoon, a statue): out of their group, out of grouping for good.
        Returns (face_id, former person) per face found."""
        done = []
        for face_id in face_ids:
            row = self.db.execute("SELECT person_id FROM faces WHERE id = ?", [face_id]).fetchone()
            if row is None:
                continue
            self.db.execute("UPDATE faces SET person_id = NULL, assigned = ? WHERE id = ?", [NOT_A_PERSON, face_id])
            done.append((face_id, row[0]))
        return done

    def xmp_labelled_faces(self, model: str) -> list[tuple[int, str, int | None]]:
        """(face id, XMP name, current person) for faces another app named."""
        return self.db.execute(
            "SELECT id, xmp_name, person_id FROM faces WHERE model = ? AND xmp_name IS NOT NULL ORDER BY id", [model]
        ).fetchall()

    def name_person_new(self, model: str, name: str) -> int:
        stamp = now()
        return int(self.db.execute(
            "INSERT INTO people (model, name, ignored, created_at, updated_at) VALUES (?, ?, 0, ?, ?)",
            [model, name, stamp, stamp],
        ).lastrowid)

    def people_rows(self, model: str | None = None) -> list[PersonRow]:
        sql = "SELECT id, model, name, ignored FROM people"
        rows = self.db.execute(sql + (" WHERE model = ?" if model else "") + " ORDER BY id", [model] if model else [])
        return [PersonRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def create_people(self, model: str, count: int) -> list[int]:
        stamp = now()
        return [
            int(self.db.execute(
                "INSERT INTO people (model, name, ignored, created_at, updated_at) VALUES (?, NULL, 0, ?, ?)",
                [model, stamp, stamp],
            ).lastrowid)
            for _ in range(count)
        ]

    def delete_people(self, person_ids: Iterable[int]) -> None:
        for chunk in _chunks(list(person_ids), 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"UPDATE faces SET person_id = NULL, assigned = NULL WHERE person_id IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM face_rejections WHERE person_id IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM people WHERE id IN ({marks})", chunk)

    def assign_faces(self, assignments: Iterable[tuple[int | None, str | None, int]]) -> None:
        """(person_id or None, how, face_id) rows: who each face belongs to, and why."""
        self.db.conn.executemany("UPDATE faces SET person_id = ?, assigned = ? WHERE id = ?", list(assignments))

    @staticmethod
    def name_key(name: str) -> str:
        """What two names must share to be one person: the same letters, ignoring case and NFC/NFD form."""
        return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())

    def find_people(self, target: str) -> list[PersonRow]:
        """People matching a group number, or a name (exact, else ignoring case)."""
        text = target.strip()
        select = "SELECT id, model, name, ignored FROM people WHERE "
        if text.isascii() and text.isdigit():
            number = int(text)  # beyond SQLite's integers there is no such group (not an OverflowError)
            rows = self.db.execute(select + "id = ?", [number]).fetchall() if number < 2**63 else []
        else:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # bytes from the command line that are not UTF-8: no name holds them
                return []
            return self._named(text)
        return [PersonRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def person_named(self, model: str, name: str) -> PersonRow | None:
        """The person of this pack with this name, ignoring case; where old databases hold two
        spellings, the exact one, else the one named first."""
        found = self._named(name, model)
        return found[0] if found else None

    def _named(self, name: str, model: str | None = None) -> list[PersonRow]:
        """People (of `model`, or any pack) named exactly `name`; if none, those whose name matches it
        ignoring case and Unicode form, in id order."""
        select = "SELECT id, model, name, ignored FROM people WHERE " + ("model = ? AND " if model else "")
        args = [model] if model else []
        rows = self.db.execute(select + "name = ?", [*args, name]).fetchall()
        if not rows:
            key = self.name_key(name)
            rows = [r for r in self.db.execute(select + "name IS NOT NULL ORDER BY id", args) if self.name_key(r[2]) == key]
        return [PersonRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def set_person(self, person_id: int, *, name: str | None | object = ..., ignored: bool | None = None) -> None:
        if name is not ...:
            self.db.execute("UPDATE people SET name = ?, updated_at = ? WHERE id = ?", [name, now(), person_id])
        if ignored is not None:
            self.db.execute("UPDATE people SET ignored = ?, updated_at = ? WHERE id = ?", [int(ignored), now(), person_id])

    def merge_person(self, source: int, target: int) -> int:
        """Move every face of `source` to `target`, then drop `source`. Returns faces moved."""
        # What grouping joined automatically stays automatic: a merge confirms the groups, not every stray join.
        moved = self.db.execute(
            "UPDATE faces SET person_id = ?, assigned = CASE WHEN assigned = 'auto' THEN 'auto' ELSE 'user' END "
            "WHERE person_id = ?", [target, source]
        ).rowcount
        for other, in self.db.execute(
            "SELECT person_b FROM cannot_links WHERE person_a = ? UNION SELECT person_a FROM cannot_links WHERE person_b = ?",
            [source, source],
        ).fetchall():
            if other != target:
                self.add_cannot_link(target, other)
        self.db.execute(
            "INSERT OR IGNORE INTO face_rejections (face_id, person_id, created_at) "
            "SELECT face_id, ?, created_at FROM face_rejections WHERE person_id = ?",
            [target, source],
        )
        self.db.execute("DELETE FROM face_rejections WHERE person_id = ?", [source])
        self.db.execute("DELETE FROM people WHERE id = ?", [source])
        return moved

    def lock_person_faces(self, person_id: int) -> None:
        """Faces of a person the user named or ignored are the user's decision now."""
        self.db.execute("UPDATE faces SET assigned = 'user' WHERE person_id = ? AND assigned = 'cluster'", [person_id])

    def reject_faces(self, face_ids: Iterable[int]) -> list[tuple[int, int | None]]:
        """Take faces out of their person for good. Returns (face_id, former person) per face found."""
        done = []
        for face_id in face_ids:
            row = self.db.execute("SELECT person_id FROM faces WHERE id = ?", [face_id]).fetchone()
            if row is None:
                continue
            if row[0] is not None:
                self.add_rejection(face_id, row[0])
            self.db.execute("UPDATE faces SET person_id = NULL, assigned = 'removed' WHERE id = ?", [face_id])
            done.append((face_id, row[0]))
        return done

    def people_summaries(self, model: str | None = None) -> list[PersonSummary]:
        """Every person with its counts, dates and representative face (the largest, most confident),
        in one pass over the faces (a GROUP BY on the person index), no query per person."""
        where = "WHERE p.model = ?" if model else ""
        rows = self.db.execute(
            f"""
            SELECT p.id, p.model, p.name, p.ignored, count(f.id), count(DISTINCT f.photo_id),
                   -- a file's own date (copied, downloaded) is not when the photo was taken
                   min(CASE WHEN ph.taken_source = 'exif' THEN ph.taken END),
                   max(CASE WHEN ph.taken_source = 'exif' THEN ph.taken END),
                   f.id, ph.path, max(f.score * f.size)
            FROM people p
            LEFT JOIN faces f ON f.person_id = p.id
            LEFT JOIN photos ph ON ph.id = f.photo_id
            {where}
            GROUP BY p.id
            """,
            [model] if model else [],
        ).fetchall()  # SQLite: with max(), the bare columns f.id and ph.path come from the row holding the maximum
        return [
            PersonSummary(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7], r[8] if r[4] else None,
                          from_db_path(r[9]) if r[4] and r[9] is not None else None)
            for r in rows
        ]

    def person_samples(self, person_ids: Iterable[int], per_person: int) -> dict[int, tuple[str | None, int, list[int]]]:
        """person id -> (name, face count, up to `per_person` face ids, the largest and most confident
        first) for each of these people that exists: a few indexed queries a person, no pass over every face."""
        out = {}
        for person_id in dict.fromkeys(person_ids):
            row = self.db.execute("SELECT name FROM people WHERE id = ?", [person_id]).fetchone()
            if row is None:
                continue
            count = self.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [person_id]).fetchone()[0]
            faces = [r[0] for r in self.db.execute(
                "SELECT id FROM faces WHERE person_id = ? ORDER BY score * size DESC, id LIMIT ?", [person_id, per_person])]
            out[person_id] = (row[0], count, faces)
        return out

    def unclustered_count(self, model: str | None = None, not_person: bool = True) -> int:
        """Faces in no person; `not_person=False` leaves out those marked as no person at all."""
        sql = "SELECT count(*) FROM faces WHERE person_id IS NULL" + ("" if not_person else f" AND assigned IS NOT '{NOT_A_PERSON}'")
        return self.db.execute(sql + (" AND model = ?" if model else ""), [model] if model else []).fetchone()[0]

    def person_faces(self, person_id: int) -> list[PersonFace]:
        rows = self.db.execute(
            "SELECT f.id, p.path, p.taken, f.x, f.y, f.w, f.h, f.score, f.frame_ms FROM faces f "
            "JOIN photos p ON p.id = f.photo_id WHERE f.person_id = ? ORDER BY p.taken, p.path, f.frame_ms, f.id",
            [person_id],
        )
        return [PersonFace(r[0], from_db_path(r[1]), r[2], (r[3], r[4], r[5], r[6]), r[7], r[8]) for r in rows]

    def export_faces(self) -> Iterator[ExportFace]:
        """Every face with what an export shows of it, ordered by person, then date taken."""
        rows = self.db.execute(_EXPORT_FACE_SQL + "ORDER BY f.person_id IS NULL, f.person_id, p.taken, p.path, f.id")
        for r in rows:
            yield _export_face(r)

    def backup_to(self, destination: Path) -> None:
        """A consistent copy through SQLite's online backup API, safe while others read."""
        target = sqlite3.connect(str(destination))
        try:
            with target:
                self.db.conn.backup(target)
        finally:
            target.close()

    def named_face_keys(self) -> list[tuple[str, str, str, tuple[float, float, float, float], str]]:
        """(name, model, photo sha256, box, path) for every face of a named person."""
        rows = self.db.execute(
            "SELECT pe.name, f.model, ph.sha256, f.x, f.y, f.w, f.h, ph.path FROM faces f "
            "JOIN people pe ON pe.id = f.person_id JOIN photos ph ON ph.id = f.photo_id "
            "WHERE pe.name IS NOT NULL AND ph.sha256 IS NOT NULL ORDER BY pe.name, ph.sha256, f.x"
        )
        return [(r[0], r[1], r[2], (r[3], r[4], r[5], r[6]), from_db_path(r[7])) for r in rows]

    def faces_of_content(self, sha256: str) -> list[tuple[int, str, tuple[float, float, float, float], int | None]]:
        """(face id, model, box, person id) of every face in photos with this content."""
        rows = self.db.execute(
            "SELECT f.id, f.model, f.x, f.y, f.w, f.h, f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id "
            "WHERE p.sha256 = ? ORDER BY f.id",
            [sha256],
        )
        return [(r[0], r[1], (r[2], r[3], r[4], r[5]), r[6]) for r in rows]

    def photo_paths(self) -> dict[int, str]:
        return {r[0]: from_db_path(r[1]) for r in self.db.execute("SELECT id, path FROM photos")}

    def models_with_faces(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model FROM faces ORDER BY model")]

    # ---- info ----------------------------------------------------------------------

    def info(self) -> StoreInfo:
        """Where the database is, how big, what it holds: what `facecluster info` shows.

        Example:
            Store("library.db").info().faces
        """
        q = self.db.execute
        size = sum(f.stat().st_size for f in (self.path, Path(f"{self.path}-wal")) if f.exists())
        applied = migrations.applied(self.db)
        faces_by_model = dict(q("SELECT model, count(*) FROM faces GROUP BY model").fetchall())
        packs = [
            ModelInfo(name=r[0], dim=r[1], licence=r[2], first_used=r[3], fingerprint=r[4], faces=faces_by_model.get(r[0], 0))
            for r in q("SELECT name, dim, licence, first_used, fingerprint FROM models ORDER BY first_used, name")
        ]
        people = q(
            "SELECT coalesce(sum(name IS NOT NULL), 0), coalesce(sum(name IS NULL AND NOT ignored), 0), "
            "coalesce(sum(ignored <> 0), 0) FROM people"
        ).fetchone()
        return StoreInfo(
            path=str(self.path.resolve()),
            bytes=size,
            schema=applied[-1].name if applied else None,
            migrations=len(applied),
            sqlite=sqlite3.sqlite_version,
            photos=q("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()[0],
            failed=q("SELECT count(*) FROM photos WHERE status = 'failed'").fetchone()[0],
            faces=sum(faces_by_model.values()),
            unclustered=q("SELECT count(*) FROM faces WHERE person_id IS NULL").fetchone()[0],
            named=people[0],
            groups=people[1],
            ignored=people[2],
            packs=packs,
        )

    # ---- review: action log and suggestions ----------------------------------------

    # How long `writer` waits when its caller gives no wait: None reads $FACECLUSTER_LOCK_WAIT. The
    # review server sets a short one, so a click while a scan runs gets a message, not a hang.
    lock_wait: float | None = None

    def snapshot(self, person_ids: Iterable[int], face_ids: Iterable[int] = (), rows_only: Iterable[int] = ()) -> dict:
        """The rows an action may change, as they are now: these people and all their faces; the
        faces given and the rows of their people; the people in `rows_only` without their faces;
        and every rejection naming any of these people or faces. `restore` puts them back."""
        with_faces = sorted(set(person_ids))
        faces: dict[int, tuple[int | None, str | None]] = {}
        for column, ids in (("person_id", with_faces), ("id", sorted(set(face_ids)))):
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for face_id, person, how in self.db.execute(
                    f"SELECT id, person_id, assigned FROM faces WHERE {column} IN ({marks})", chunk
                ):
                    faces[face_id] = (person, how)
        people = sorted(set(with_faces) | set(rows_only) | {p for p, _ in faces.values() if p is not None})
        rows = []
        for chunk in _chunks(people, 500):
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                f"SELECT id, model, name, ignored, created_at, updated_at FROM people WHERE id IN ({marks})", chunk
            ).fetchall()
        rejections = set()
        for column, ids in (("person_id", people), ("face_id", sorted(faces))):
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rejections.update(self.db.execute(
                    f"SELECT face_id, person_id, created_at FROM face_rejections WHERE {column} IN ({marks})", chunk
                ).fetchall())
        links = set()
        for chunk in _chunks(people, 500):
            marks = ",".join("?" * len(chunk))
            links.update(self.db.execute(
                f"SELECT person_a, person_b, created_at FROM cannot_links WHERE person_a IN ({marks}) OR person_b IN ({marks})",
                chunk + chunk,
            ).fetchall())
        return {
            "people": [list(r) for r in rows],
            "person_ids": people,
            "faces": [[f, p, h] for f, (p, h) in sorted(faces.items())],
            "rejections": sorted(list(r) for r in rejections),
            "links": sorted(list(r) for r in links),
        }

    def restore(self, snapshot: dict) -> None:
        """Put back the rows `snapshot` took: people (re-created if merged away), who each face
        belongs to, and the rejections of those people and faces. Faces deleted since (their photo
        changed or was pruned) are skipped. Run inside a transaction."""
        face_ids = [f for f, _, _ in snapshot["faces"]]
        existing = set()
        for chunk in _chunks(sorted(set(face_ids) | {r[0] for r in snapshot["rejections"]}), 500):
            marks = ",".join("?" * len(chunk))
            existing.update(r[0] for r in self.db.execute(f"SELECT id FROM faces WHERE id IN ({marks})", chunk))
        # Names first cleared, then set: two people swapping names never meet the unique index.
        for person_id, model, _name, _ignored, created, updated in snapshot["people"]:
            self.db.execute(
                "INSERT OR IGNORE INTO people (id, model, name, ignored, created_at, updated_at) VALUES (?, ?, NULL, 0, ?, ?)",
                [person_id, model, created, updated],
            )
            self.db.execute("UPDATE people SET name = NULL WHERE id = ?", [person_id])
        for person_id, _model, name, ignored, _created, updated in snapshot["people"]:
            self.db.execute("UPDATE people SET name = ?, ignored = ?, updated_at = ? WHERE id = ?", [name, ignored, updated, person_id])
        self.db.conn.executemany(
            "UPDATE faces SET person_id = ?, assigned = ? WHERE id = ?",
            [(p, h, f) for f, p, h in snapshot["faces"] if f in existing],
        )
        for column, ids in (("person_id", snapshot["person_ids"]), ("face_id", face_ids)):
            for chunk in _chunks(list(ids), 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM face_rejections WHERE {column} IN ({marks})", chunk)
        self.db.conn.executemany(  # a rejection of a group that is gone since is not brought back
            "INSERT OR IGNORE INTO face_rejections (face_id, person_id, created_at) "
            "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM people WHERE id = ?)",
            [(f, p, c, p) for f, p, c in snapshot["rejections"] if f in existing],
        )
        if "links" in snapshot:  # snapshots from before cannot-links have none to restore
            for chunk in _chunks(list(snapshot["person_ids"]), 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM cannot_links WHERE person_a IN ({marks}) OR person_b IN ({marks})", chunk + chunk)
            self.db.conn.executemany(  # a link to a group that is gone since is not brought back
                "INSERT OR IGNORE INTO cannot_links (person_a, person_b, created_at) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM people WHERE id = ?) AND EXISTS (SELECT 1 FROM people WHERE id = ?)",
                [(a, b, c, a, b) for a, b, c in snapshot["links"]],
            )
        # People the action created (an import's new names): gone again, unless faces joined them since.
        for person_id in snapshot.get("created", []):
            if not self.db.execute("SELECT 1 FROM faces WHERE person_id = ? LIMIT 1", [person_id]).fetchone():
                self.db.execute("DELETE FROM face_rejections WHERE person_id = ?", [person_id])
                self.db.execute("DELETE FROM people WHERE id = ?", [person_id])

    def log_action(self, kind: str, summary: str, undo: dict | None, keep: int = 50) -> int:
        """Record an action; only the last `keep` actions keep what undoing them needs."""
        action_id = int(self.db.execute(
            "INSERT INTO actions (kind, summary, undo, created_at) VALUES (?, ?, ?, ?)",
            [kind, summary, json.dumps(undo, separators=(",", ":")) if undo is not None else None, now()],
        ).lastrowid)
        self.db.execute("UPDATE actions SET undo = NULL WHERE id <= ? AND undo IS NOT NULL", [action_id - keep])
        return action_id

    def last_action(self) -> ActionRow | None:
        """The most recent action not undone yet."""
        row = self.db.execute(
            "SELECT id, kind, summary, undo, created_at FROM actions WHERE undone_at IS NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return ActionRow(row[0], row[1], row[2], row[4], json.loads(row[3]) if row[3] else None)

    def mark_undone(self, action_id: int) -> None:
        self.db.execute("UPDATE actions SET undone_at = ? WHERE id = ?", [now(), action_id])

    def recent_actions(self, limit: int = 10) -> list[ActionRow]:
        rows = self.db.execute(
            "SELECT id, kind, summary, created_at, undone_at FROM actions ORDER BY id DESC LIMIT ?", [limit]
        ).fetchall()
        return [ActionRow(r[0], r[1], r[2], r[3], None, r[4]) for r in rows]

    def add_rejection(self, face_id: int, person_id: int) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO face_rejections (face_id, person_id, created_at) VALUES (?, ?, ?)", [face_id, person_id, now()]
        )

    def drop_rejection(self, face_id: int, person_id: int) -> None:
        self.db.execute("DELETE FROM face_rejections WHERE face_id = ? AND person_id = ?", [face_id, person_id])

    def face_count(self, person_id: int) -> int:
        return self.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [person_id]).fetchone()[0]

    def face_row(self, face_id: int) -> ExportFace | None:
        """One face with its photo, as an export shows it; None when there is no such face."""
        r = self.db.execute(_EXPORT_FACE_SQL + "WHERE f.id = ?", [face_id]).fetchone() if 0 < face_id < 2**63 else None
        return None if r is None else _export_face(r)

    def person_face_rows(self, person_id: int | None, offset: int, limit: int) -> list[ExportFace]:
        """One page of a person's faces (None: the faces in no person, less those marked as no person at all),
        in date order."""
        where, args = (("f.person_id = ?", [person_id]) if person_id is not None
                       else (f"f.person_id IS NULL AND f.assigned IS NOT '{NOT_A_PERSON}'", []))
        rows = self.db.execute(
            _EXPORT_FACE_SQL + f"WHERE {where} ORDER BY p.taken, p.path, f.id LIMIT ? OFFSET ?", [*args, limit, offset]
        )
        return [_export_face(r) for r in rows]

    def suggestion_inputs(self, person_id: int, model: str, unclustered_only: bool = False) -> SuggestionInputs:
        """A person's embeddings, and the faces that could be theirs: the pack's faces in no group (or, unless
        `unclustered_only`, in an unnamed, shown group), less those the user refused for this person or
        marked as no person at all."""
        own = [blob_to_embedding(r[0]) for r in self.db.execute("SELECT embedding FROM faces WHERE person_id = ?", [person_id])]
        where = "f.person_id IS NULL" if unclustered_only else "(f.person_id IS NULL OR (p.name IS NULL AND p.ignored = 0))"
        rows = self.db.execute(
            "SELECT f.id, COALESCE(f.person_id, -1), f.embedding FROM faces f LEFT JOIN people p ON p.id = f.person_id "
            f"WHERE f.model = ? AND {where} AND f.assigned IS NOT '{NOT_A_PERSON}' "
            "AND NOT EXISTS (SELECT 1 FROM face_rejections r WHERE r.face_id = f.id AND r.person_id = ?) ORDER BY f.id",
            [model, person_id],
        ).fetchall()
        dim = len(own[0]) if own else (len(rows[0][2]) // 4 if rows else 0)
        return SuggestionInputs(
            person=np.stack(own) if own else np.zeros((0, dim), np.float32),
            face_ids=np.array([r[0] for r in rows], np.int64),
            person_ids=np.array([r[1] for r in rows], np.int64),
            embeddings=np.stack([blob_to_embedding(r[2]) for r in rows]) if rows else np.zeros((0, dim), np.float32),
        )

    def person_centres(self) -> PersonCentres:
        """The centre (mean of its unit embeddings, made unit again) of every shown person or group with faces."""
        rows = self.db.execute(
            "SELECT p.id, p.model, p.name IS NOT NULL, f.embedding FROM faces f JOIN people p ON p.id = f.person_id "
            "WHERE p.ignored = 0 ORDER BY p.id"
        ).fetchall()
        if not rows:
            return PersonCentres(np.zeros(0, np.int64), [], np.zeros(0, bool), np.zeros((0, 0), np.float32))
        ids = np.array([r[0] for r in rows], np.int64)
        x = np.frombuffer(b"".join(r[3] for r in rows), "<f4").reshape(len(rows), -1)
        people, first, counts = np.unique(ids, return_index=True, return_counts=True)
        sums = np.add.reduceat(x, first, axis=0)
        centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return PersonCentres(people, [rows[i][1] for i in first.tolist()], np.array([bool(rows[i][2]) for i in first.tolist()]),
                             centres.astype(np.float32))

    # ---- face quality ------------------------------------------------------------------

    def faces_without_quality(self, model: str, limit: int = 1000) -> list[tuple[int, bytes | None, str | None, float, float]]:
        """(face id, thumbnail, landmarks JSON, size, score) of up to `limit` faces scanned before the quality score."""
        return self.db.execute(
            "SELECT id, thumb, landmarks, size, score FROM faces WHERE model = ? AND quality IS NULL ORDER BY id LIMIT ?",
            [model, limit],
        ).fetchall()

    def set_face_quality(self, pairs: Iterable[tuple[int, float]]) -> None:
        """Store (face id, quality) pairs."""
        self.db.conn.executemany("UPDATE faces SET quality = ? WHERE id = ?", [(q, face_id) for face_id, q in pairs])

    # ---- using the people: photo queries, links, identify, imports -------------------------

    def photos_matching(self, q: PhotoFilter) -> list[PhotoHit]:
        """The photos (read, status ok) that `q` asks for, in date-taken order, then by path.

        One statement: each person criterion is a subquery on the faces' (person_id, photo_id)
        index (migration m008), so the cost follows the people asked about, not the library.
        """
        where, args = ["ph.status = 'ok'"], []
        for ids in q.with_all:
            where.append(f"ph.id IN (SELECT photo_id FROM faces WHERE person_id IN ({_marks(ids)}))")
            args += ids
        if q.with_any:
            where.append(f"ph.id IN (SELECT photo_id FROM faces WHERE person_id IN ({_marks(q.with_any)}))")
            args += q.with_any
        if q.without:
            where.append(f"ph.id NOT IN (SELECT photo_id FROM faces WHERE person_id IN ({_marks(q.without)}))")
            args += q.without
        if q.only is not None:
            # Nobody else recognisable: no face of another person or group, ignored groups (strangers) aside.
            where.append("NOT EXISTS (SELECT 1 FROM faces o JOIN people op ON op.id = o.person_id "
                         f"WHERE o.photo_id = ph.id AND op.ignored = 0 AND o.person_id NOT IN ({_marks(q.only)}))")
            args += q.only
        if q.taken_from is not None or q.taken_to is not None:
            where.append("ph.taken_source = 'exif'")  # a file's own date is not a date taken
        if q.taken_from is not None:
            where.append("ph.taken >= ?")
            args.append(q.taken_from)
        if q.taken_to is not None:
            where.append("ph.taken < ?")
            args.append(q.taken_to)
        if q.under is not None:
            # A range on the unique path index: every path that starts with "FOLDER/" (text or, for
            # names that are not UTF-8, bytes), and nothing else ("FOLDER0" follows "FOLDER/" + anything).
            folder = q.under.rstrip(os.sep)
            text, raw = folder + os.sep, os.fsencode(folder) + os.fsencode(os.sep)
            where.append("((ph.path >= ? AND ph.path < ?) OR (ph.path >= ? AND ph.path < ?))")
            args += [text, text[:-1] + chr(ord(os.sep) + 1), raw, raw[:-1] + bytes([raw[-1] + 1])]
        if q.videos is not None:
            where.append("ph.kind IS 'video'" if q.videos else "ph.kind IS NOT 'video'")
        rows = self.db.execute(
            "SELECT ph.id, ph.path, ph.taken, ph.taken_source FROM photos ph WHERE " + " AND ".join(where) +
            " ORDER BY ph.taken IS NULL, ph.taken, ph.path",
            args,
        )
        return [PhotoHit(r[0], r[1] if isinstance(r[1], str) else from_db_path(r[1]), r[2], r[3]) for r in rows]

    def faces_in_photos(self, photo_ids: list[int]) -> dict[int, list[PhotoFaceRow]]:
        """photo id -> its faces with their person (any pack), in id order."""
        out: dict[int, list[PhotoFaceRow]] = {}
        for chunk in _chunks(photo_ids, 500):
            rows = self.db.execute(
                "SELECT f.photo_id, f.id, f.model, f.x, f.y, f.w, f.h, f.score, f.person_id, p.name, p.ignored "
                f"FROM faces f LEFT JOIN people p ON p.id = f.person_id WHERE f.photo_id IN ({_marks(chunk)}) ORDER BY f.id",
                chunk,
            )
            for r in rows:
                out.setdefault(r[0], []).append(
                    PhotoFaceRow(r[1], r[2], (r[3], r[4], r[5], r[6]), r[7], r[8], r[9], bool(r[10]) if r[10] is not None else False)
                )
        return out

    def people_photos(self, include_groups: bool) -> list[tuple[int, str | None, int, str]]:
        """(person id, name, photo id, path) for each photo of each named person (and unnamed group, if
        asked) that is not ignored; each photo once per person."""
        where = "pe.ignored = 0" + ("" if include_groups else " AND pe.name IS NOT NULL")
        rows = self.db.execute(
            "SELECT DISTINCT pe.id, pe.name, ph.id, ph.path FROM faces f JOIN people pe ON pe.id = f.person_id "
            f"JOIN photos ph ON ph.id = f.photo_id WHERE {where} AND ph.status = 'ok' ORDER BY pe.id, ph.id"
        )
        return [(r[0], r[1], r[2], from_db_path(r[3])) for r in rows]

    def named_embeddings(self, model: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """(person id per row, embeddings) of every face of a named, shown person of this pack."""
        rows = self.db.execute(
            "SELECT f.person_id, f.embedding FROM faces f JOIN people p ON p.id = f.person_id "
            "WHERE p.model = ? AND p.name IS NOT NULL AND p.ignored = 0 ORDER BY f.person_id, f.id",
            [model],
        ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        blob = b"".join(r[1] for r in rows)
        return np.array([r[0] for r in rows], np.int64), np.frombuffer(blob, dtype="<f4").reshape(len(rows), -1)

    def photo_for_import(self, path: str, sha256: str | None = None) -> ImportPhoto | None:
        """The library's photo at `path`, else one with this content; None when neither is known."""
        select = "SELECT id, path, sha256, width, height FROM photos WHERE status = 'ok' AND "
        row = self.db.execute(select + "path = ?", [to_db_path(path)]).fetchone()
        if row is None and sha256 is not None:
            row = self.db.execute(select + "sha256 = ? ORDER BY id LIMIT 1", [sha256]).fetchone()
        if row is None:
            return None
        faces = self.db.execute(
            "SELECT f.id, f.model, f.x, f.y, f.w, f.h, f.person_id, f.embedding FROM faces f WHERE f.photo_id = ? ORDER BY f.id",
            [row[0]],
        ).fetchall()
        return ImportPhoto(row[0], from_db_path(row[1]), row[2], row[3], row[4],
                           [(f[0], f[1], (f[2], f[3], f[4], f[5]), f[6], blob_to_embedding(f[7])) for f in faces])

    def photo_at(self, path: str) -> PhotoRow | None:
        """The library's row for this exact path, or None."""
        r = self.db.execute("SELECT id, path, size, mtime_ns, sha256, status FROM photos WHERE path = ?", [to_db_path(path)]).fetchone()
        return PhotoRow(r[0], from_db_path(r[1]), r[2], r[3], r[4], r[5]) if r else None

    def faces_by_year(self, person_id: int) -> list[tuple[str | None, int]]:
        """(year taken, faces) for one person, oldest first; None for faces whose photo has no date taken."""
        rows = self.db.execute(
            "SELECT CASE WHEN ph.taken_source = 'exif' THEN substr(ph.taken, 1, 4) END AS year, count(*) "
            "FROM faces f JOIN photos ph ON ph.id = f.photo_id WHERE f.person_id = ? GROUP BY year ORDER BY year IS NULL, year",
            [person_id],
        )
        return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class PhotoFilter:
    """What `Store.photos_matching` asks: person ids (each name may stand for a person per pack)."""

    with_all: list[list[int]] = field(default_factory=list)  # each inner list: one name, all must appear
    with_any: list[int] = field(default_factory=list)  # at least one of these
    without: list[int] = field(default_factory=list)
    only: list[int] | None = None  # nobody recognisable besides these people
    taken_from: str | None = None  # ISO date-time, inclusive
    taken_to: str | None = None  # ISO date-time, exclusive
    under: str | None = None  # an absolute folder
    videos: bool | None = None  # True: videos only; False: no videos; None: both


class PhotoHit(NamedTuple):  # a tuple, not a frozen dataclass: a query may return 100,000 of them
    id: int
    path: str
    taken: str | None
    taken_source: str | None


@dataclass(frozen=True)
class PhotoFaceRow:
    face_id: int
    model: str
    box: tuple[float, float, float, float]
    score: float
    person_id: int | None
    name: str | None
    ignored: bool


@dataclass(frozen=True)
class ImportPhoto:
    id: int
    path: str
    sha256: str | None
    width: int | None
    height: int | None
    faces: list  # (face id, model, box, person id, embedding)


@dataclass
class Decisions:
    """The user's decisions held by some faces (what a prune would drop); see Store.decisions_on."""

    named: dict[str, int] = field(default_factory=dict)  # name -> faces of that named person
    ignored: int = 0  # faces of ignored people
    rejected: int = 0  # faces taken out of a person (`remove`, "not this person")

    @property
    def faces(self) -> int:
        return sum(self.named.values()) + self.ignored + self.rejected


@dataclass(frozen=True)
class ActionRow:
    id: int
    kind: str  # name, unset, merge, remove, ignore, unignore, yes, no
    summary: str
    created_at: str
    undo: dict | None = None  # what Store.restore puts back; None once too old to undo
    undone_at: str | None = None


@dataclass
class SuggestionInputs:
    person: npt.NDArray[np.float32]  # the person's own embeddings
    face_ids: npt.NDArray[np.int64]  # candidates
    person_ids: npt.NDArray[np.int64]  # each candidate's unnamed group, -1 for none
    embeddings: npt.NDArray[np.float32]


@dataclass(frozen=True)
class PersonRow:
    id: int
    model: str
    name: str | None
    ignored: bool


@dataclass(frozen=True)
class PersonSummary:
    id: int
    model: str
    name: str | None
    ignored: bool
    faces: int
    photos: int
    first_taken: str | None  # dates the photos carry (EXIF); a file's own date is not a date taken
    last_taken: str | None
    face_id: int | None  # the face that stands for the person: the largest, most confident
    sample_path: str | None  # that face's photo


@dataclass(frozen=True)
class PersonFace:
    face_id: int
    path: str
    taken: str | None
    box: tuple[float, float, float, float]
    score: float
    frame_ms: int | None = None  # a video's face: its time in the video


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dim: int
    licence: str
    first_used: str
    fingerprint: str
    faces: int


@dataclass(frozen=True)
class StoreInfo:
    path: str
    bytes: int  # the database file and its write-ahead log
    schema: str | None  # the last migration applied
    migrations: int
    sqlite: str
    photos: int
    failed: int
    faces: int
    unclustered: int
    named: int
    groups: int
    ignored: int
    packs: list[ModelInfo]


@dataclass(frozen=True)
class ExportFace:
    face_id: int
    person_id: int | None
    model: str
    path: str
    taken: str | None
    width: int | None
    height: int | None
    box: tuple[float, float, float, float]
    score: float
    size: float
    landmarks: tuple[float, ...]
    taken_source: str | None = None  # "exif", or "mtime": no date in the photo, `taken` is the file's date
    frame_ms: int | None = None  # a video's face: its time in the video (None: a still)
    kind: str | None = None  # photo, motion, raw, video (None: a photo scanned before kinds were recorded)


@dataclass
class PersonCentres:
    person_ids: npt.NDArray[np.int64]
    models: list[str]
    named: npt.NDArray[np.bool_]
    centres: npt.NDArray[np.float32]  # one unit vector per person


@dataclass
class GroupingInputs:
    face_ids: npt.NDArray[np.int64]
    photo_ids: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    person_ids: npt.NDArray[np.int64]  # -1: no person
    embeddings: npt.NDArray[np.float32]
    people: dict[int, PersonRow]
    rejections: set[tuple[int, int]]
    qualities: npt.NDArray[np.float64] | None = None  # facecluster.quality score; NaN or None: not known
    # Per face: the user put it where it is (named, merged, accepted, imported). None: every face of a
    # named or ignored person counts as the user's.
    anchored: npt.NDArray[np.bool_] | None = None
    excluded: npt.NDArray[np.bool_] | None = None  # per face: marked "not a person"; None: none are
    cannot_links: set[tuple[int, int]] = field(default_factory=set)  # (smaller, larger) person ids


def _writable(path: Path) -> bool:
    """Can this process write the database file and create files beside it?"""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _no_room_for_shm(e: sqlite3.DatabaseError) -> bool:
    """SQLite could not create or grow the -shm file (what a full disk does to a WAL database)."""
    name = getattr(e, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name.startswith("SQLITE_IOERR_SHM") or name == "SQLITE_FULL"
    return str(e) in ("disk I/O error", "database or disk is full")


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except (OSError, AttributeError):  # no statvfs (Windows): say what SQLite said
        return False


def _unusable_shm(shm: Path) -> bool:
    """A -shm file beside the database that SQLite could not use (a folder, or not ours to write).

    Another connection may delete the -shm file at any moment (the last one out
    does), so a file that vanishes between two looks counts as usable.
    """
    try:
        if shm.is_dir():
            return True
        return not os.access(shm, os.R_OK | os.W_OK) and shm.exists()
    except OSError:
        return False


_INSERT_FACE_SQL = (
    "INSERT INTO faces (photo_id, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name, quality, frame_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _face_values(photo_id: int, model: str, f: Face) -> tuple:
    # Landmarks stored at 2 decimals: the quality score is computed from them as stored (scan and backfill agree).
    return (photo_id, model, *f.box, json.dumps([round(v, 2) for v in f.landmarks]), f.score, f.size,
            embedding_to_blob(f.embedding), f.thumb, f.label, f.quality, f.frame_ms)


# A face with what an export (or the review page) shows of it; read by _export_face.
_EXPORT_FACE_SQL = (
    "SELECT f.id, f.person_id, f.model, p.path, p.taken, p.width, p.height, f.x, f.y, f.w, f.h, "
    "f.score, f.size, f.landmarks, p.taken_source, f.frame_ms, p.kind FROM faces f JOIN photos p ON p.id = f.photo_id "
)


def _export_face(r) -> ExportFace:
    return ExportFace(
        face_id=r[0], person_id=r[1], model=r[2], path=from_db_path(r[3]), taken=r[4],
        width=r[5], height=r[6], box=(r[7], r[8], r[9], r[10]), score=r[11], size=r[12],
        landmarks=tuple(json.loads(r[13])) if r[13] else (), taken_source=r[14], frame_ms=r[15], kind=r[16],
    )


def _marks(items: list) -> str:
    return ",".join("?" * len(items))


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
