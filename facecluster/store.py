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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from facecluster import config
from facecluster.errors import StoreBusy, StoreError
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


class Store:
    """An open facecluster database.

    Example:
        store = Store("library.db"); store.counts()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"database path {self.path} is a folder")
        if not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create {self.path.parent}: {e.strerror}") from None
        try:
            conn = sqlite3.connect(str(self.path), timeout=30.0)
            self.db = Database(conn)
            self._check_sqlite_file()
            self.db.execute("PRAGMA foreign_keys = ON")
            self._check_version()
            if migrations.pending(self.db):
                self.db.enable_wal()
                migrations.apply(self.db)
            self.db.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commit
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from None

    def _check_sqlite_file(self) -> None:
        try:
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            raise StoreError(f"{self.path} is not a facecluster database (not SQLite)") from None

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
        wait = config.LOCK_WAIT_SECONDS if wait is None else wait
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

    def scanned_photo_ids(self, model: str) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT photo_id FROM photo_scans WHERE model = ?", [model])}

    def scanned_hashes(self, model: str) -> set[str]:
        """Content hashes already scanned with this pack: their faces can be reused."""
        return {
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT p.sha256 FROM photos p JOIN photo_scans s ON s.photo_id = p.id "
                "WHERE s.model = ? AND p.sha256 IS NOT NULL",
                [model],
            )
        }

    def photos_with_hash(self, sha256: str, model: str) -> list[PhotoRow]:
        rows = self.db.execute(
            "SELECT p.id, p.path, p.size, p.mtime_ns, p.sha256, p.status FROM photos p "
            "JOIN photo_scans s ON s.photo_id = p.id WHERE p.sha256 = ? AND s.model = ? ORDER BY p.id",
            [sha256, model],
        )
        return [PhotoRow(r[0], from_db_path(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def save_photo(self, facts: PhotoFacts, faces: list[Face], model: str, existing_id: int | None) -> int:
        """Store a freshly scanned photo and its faces, replacing what the path held before."""
        if existing_id is not None:
            self._forget_faces(existing_id)
        photo_id = self._upsert_photo(facts, "ok", existing_id)
        self.db.conn.executemany(
            "INSERT INTO faces (photo_id, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    photo_id,
                    model,
                    *f.box,
                    json.dumps([round(v, 2) for v in f.landmarks]),
                    f.score,
                    f.size,
                    embedding_to_blob(f.embedding),
                    f.thumb,
                    f.label,
                )
                for f in faces
            ],
        )
        self._mark_scanned(photo_id, model, len(faces))
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

    def copy_photo(self, source_id: int, facts: PhotoFacts, model: str, existing_id: int | None) -> int:
        """A second copy of already-scanned content: copy its facts and faces, skip the models."""
        if existing_id is not None:
            self._forget_faces(existing_id)
        src = self.db.execute(
            "SELECT width, height, taken, taken_source, camera FROM photos WHERE id = ?", [source_id]
        ).fetchone()
        width, height, taken, taken_source, camera = src
        merged = PhotoFacts(
            path=facts.path, size=facts.size, mtime_ns=facts.mtime_ns, sha256=facts.sha256,
            width=width, height=height, taken=facts.taken or taken,
            taken_source=facts.taken_source or taken_source, camera=facts.camera or camera,
        )
        photo_id = self._upsert_photo(merged, "ok", existing_id)
        self.db.execute(
            "INSERT INTO faces (photo_id, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name) "
            "SELECT ?, model, x, y, w, h, landmarks, score, size, embedding, thumb, xmp_name FROM faces "
            "WHERE photo_id = ? AND model = ? ORDER BY id",
            [photo_id, source_id, model],
        )
        count = self.db.execute("SELECT count(*) FROM faces WHERE photo_id = ?", [photo_id]).fetchone()[0]
        self._mark_scanned(photo_id, model, count)
        return photo_id

    def _upsert_photo(self, facts: PhotoFacts, status: str, existing_id: int | None) -> int:
        values = [
            to_db_path(facts.path), facts.size, facts.mtime_ns, facts.sha256, facts.width, facts.height,
            facts.taken, facts.taken_source, facts.camera, status, facts.error, now(),
        ]
        if existing_id is None:
            cursor = self.db.execute(
                "INSERT INTO photos (path, size, mtime_ns, sha256, width, height, taken, taken_source, camera, "
                "status, error, updated_at, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values, values[-1]],
            )
            return int(cursor.lastrowid)
        self.db.execute(
            "UPDATE photos SET path = ?, size = ?, mtime_ns = ?, sha256 = ?, width = ?, height = ?, taken = ?, "
            "taken_source = ?, camera = ?, status = ?, error = ?, updated_at = ? WHERE id = ?",
            [*values, existing_id],
        )
        return existing_id

    def _mark_scanned(self, photo_id: int, model: str, faces: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO photo_scans (photo_id, model, faces, scanned_at) VALUES (?, ?, ?, ?)",
            [photo_id, model, faces, now()],
        )

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
        row = self.db.execute("SELECT thumb FROM faces WHERE id = ?", [face_id]).fetchone()
        return row[0] if row else None


    # ---- people ------------------------------------------------------------------

    def grouping_inputs(self, model: str) -> GroupingInputs:
        """Everything `group` needs about one pack's faces, as arrays."""
        rows = self.db.execute(
            "SELECT id, photo_id, size, score, COALESCE(person_id, -1), embedding FROM faces "
            "WHERE model = ? ORDER BY id",
            [model],
        ).fetchall()
        people = {p.id: p for p in self.people_rows(model)}
        rejections = set(self.db.execute(
            "SELECT r.face_id, r.person_id FROM face_rejections r JOIN faces f ON f.id = r.face_id WHERE f.model = ?",
            [model],
        ).fetchall())
        if not rows:
            empty = np.zeros(0, np.int64)
            return GroupingInputs(empty, empty, np.zeros(0), np.zeros(0), empty, np.zeros((0, 0), np.float32), people, rejections)
        ids, photos, sizes, scores, persons, blobs = zip(*rows)
        return GroupingInputs(
            face_ids=np.array(ids, np.int64),
            photo_ids=np.array(photos, np.int64),
            sizes=np.array(sizes, np.float64),
            scores=np.array(scores, np.float64),
            person_ids=np.array(persons, np.int64),
            embeddings=np.stack([blob_to_embedding(b) for b in blobs]),
            people=people,
            rejections=rejections,
        )

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

    def find_people(self, target: str) -> list[PersonRow]:
        """People matching a number, or a name (exact, else case-insensitive)."""
        text = target.strip()
        select = "SELECT id, model, name, ignored FROM people WHERE "
        if text.isdigit():
            rows = self.db.execute(select + "id = ?", [int(text)]).fetchall()
        else:
            rows = self.db.execute(select + "name = ?", [text]).fetchall() or self.db.execute(
                select + "lower(name) = lower(?)", [text]
            ).fetchall()
        return [PersonRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def person_named(self, model: str, name: str) -> PersonRow | None:
        row = self.db.execute(
            "SELECT id, model, name, ignored FROM people WHERE model = ? AND name = ?", [model, name]
        ).fetchone()
        return PersonRow(row[0], row[1], row[2], bool(row[3])) if row else None

    def set_person(self, person_id: int, *, name: str | None | object = ..., ignored: bool | None = None) -> None:
        if name is not ...:
            self.db.execute("UPDATE people SET name = ?, updated_at = ? WHERE id = ?", [name, now(), person_id])
        if ignored is not None:
            self.db.execute("UPDATE people SET ignored = ?, updated_at = ? WHERE id = ?", [int(ignored), now(), person_id])

    def merge_person(self, source: int, target: int) -> int:
        """Move every face of `source` to `target`, then drop `source`. Returns faces moved."""
        moved = self.db.execute(
            "UPDATE faces SET person_id = ?, assigned = 'user' WHERE person_id = ?", [target, source]
        ).rowcount
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
                self.db.execute(
                    "INSERT OR IGNORE INTO face_rejections (face_id, person_id, created_at) VALUES (?, ?, ?)",
                    [face_id, row[0], now()],
                )
            self.db.execute("UPDATE faces SET person_id = NULL, assigned = 'removed' WHERE id = ?", [face_id])
            done.append((face_id, row[0]))
        return done

    def people_summaries(self, model: str | None = None) -> list[PersonSummary]:
        where = "WHERE p.model = ?" if model else ""
        rows = self.db.execute(
            f"""
            SELECT p.id, p.model, p.name, p.ignored, count(f.id), count(DISTINCT f.photo_id),
                   min(ph.taken), max(ph.taken),
                   (SELECT ph2.path FROM faces f2 JOIN photos ph2 ON ph2.id = f2.photo_id
                    WHERE f2.person_id = p.id ORDER BY f2.score * f2.size DESC LIMIT 1)
            FROM people p
            LEFT JOIN faces f ON f.person_id = p.id
            LEFT JOIN photos ph ON ph.id = f.photo_id
            {where}
            GROUP BY p.id
            """,
            [model] if model else [],
        ).fetchall()
        return [
            PersonSummary(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7], from_db_path(r[8]) if r[8] is not None else None)
            for r in rows
        ]

    def unclustered_count(self, model: str | None = None) -> int:
        sql = "SELECT count(*) FROM faces WHERE person_id IS NULL"
        return self.db.execute(sql + (" AND model = ?" if model else ""), [model] if model else []).fetchone()[0]

    def person_faces(self, person_id: int) -> list[PersonFace]:
        rows = self.db.execute(
            "SELECT f.id, p.path, p.taken, f.x, f.y, f.w, f.h, f.score, f.assigned FROM faces f "
            "JOIN photos p ON p.id = f.photo_id WHERE f.person_id = ? ORDER BY p.taken, p.path, f.id",
            [person_id],
        )
        return [PersonFace(r[0], from_db_path(r[1]), r[2], (r[3], r[4], r[5], r[6]), r[7], r[8]) for r in rows]

    def export_faces(self) -> Iterator[ExportFace]:
        """Every face with what an export shows of it, ordered by person, then date taken."""
        rows = self.db.execute(
            "SELECT f.id, f.person_id, f.model, p.path, p.taken, p.width, p.height, f.x, f.y, f.w, f.h, "
            "f.score, f.size, f.landmarks FROM faces f JOIN photos p ON p.id = f.photo_id "
            "ORDER BY f.person_id IS NULL, f.person_id, p.taken, p.path, f.id"
        )
        for r in rows:
            yield ExportFace(
                face_id=r[0], person_id=r[1], model=r[2], path=from_db_path(r[3]), taken=r[4],
                width=r[5], height=r[6], box=(r[7], r[8], r[9], r[10]), score=r[11], size=r[12],
                landmarks=tuple(json.loads(r[13])) if r[13] else (),
            )

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

    def named_faces_under(self, photo_ids: Iterable[int]) -> int:
        ids = list(photo_ids)
        total = 0
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            total += self.db.execute(
                f"SELECT count(*) FROM faces f JOIN people p ON p.id = f.person_id "
                f"WHERE p.name IS NOT NULL AND f.photo_id IN ({marks})", chunk
            ).fetchone()[0]
        return total

    def photo_paths(self) -> dict[int, str]:
        return {r[0]: from_db_path(r[1]) for r in self.db.execute("SELECT id, path FROM photos")}

    def models_with_faces(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model FROM faces ORDER BY model")]


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
    first_taken: str | None
    last_taken: str | None
    sample_path: str | None


@dataclass(frozen=True)
class PersonFace:
    face_id: int
    path: str
    taken: str | None
    box: tuple[float, float, float, float]
    score: float
    assigned: str | None


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


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
