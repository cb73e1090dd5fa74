"""Photos and their faces: what a scan writes and reads (single faces: faces.py; their vectors: embeddings.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable


from facecluster import config
from facecluster.geometry import iou
from facecluster.records import Face, PhotoFacts
from facecluster.store.rows import (
    Decisions,
    Failure,
    PhotoRow,
    _INSERT_FACE_SQL,
    _chunks,
    _face_values,
    from_db_path,
    now,
    to_db_path,
)


class PhotoStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

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
