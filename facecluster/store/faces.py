"""Single faces: a face's stored crop, faces drawn by the user, and the quality score of older faces."""

from __future__ import annotations

from collections.abc import Iterable

from facecluster.records import Face
from facecluster.store.rows import DrawPhoto, _INSERT_FACE_SQL, _face_values, from_db_path, to_db_path


class FaceStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

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
