"""Read models for using the people: photo queries, links, identify, imports, faces by year."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from facecluster.store.rows import (
    _ACTIVE_VECTOR,
    ImportPhoto,
    PhotoFaceRow,
    PhotoFilter,
    PhotoHit,
    PhotoRow,
    _chunks,
    _marks,
    blob_to_embedding,
    from_db_path,
    to_db_path,
)


class QueryStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

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
            f"SELECT f.person_id, e_.vector FROM faces f JOIN people p ON p.id = f.person_id {_ACTIVE_VECTOR}"
            "WHERE p.model = ? AND p.name IS NOT NULL AND p.ignored = 0 AND e_.vector IS NOT NULL ORDER BY f.person_id, f.id",
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
            f"SELECT f.id, f.model, f.x, f.y, f.w, f.h, f.person_id, e_.vector, length(f.embedding) / 4 FROM faces f {_ACTIVE_VECTOR}"
            "WHERE f.photo_id = ? ORDER BY f.id",
            [row[0]],
        ).fetchall()
        # A face with no vector of the embedder in use yet (`scan --embedder` has not reached it) is far from everyone.
        return ImportPhoto(row[0], from_db_path(row[1]), row[2], row[3], row[4],
                           [(f[0], f[1], (f[2], f[3], f[4], f[5]), f[6],
                             blob_to_embedding(f[7]) if f[7] is not None else np.zeros(f[8], np.float32)) for f in faces])

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
