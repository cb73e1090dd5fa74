"""People and names, faces assigned to them, rejections and cannot-links."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from facecluster.errors import ModelError
from facecluster.store.rows import (
    ExportFace,
    GroupingInputs,
    NOT_A_PERSON,
    PersonFace,
    PersonRow,
    PersonSummary,
    REPRESENTATIVE_ORDER,
    _EXPORT_FACE_SQL,
    _chunks,
    _export_face,
    blob_to_embedding,
    from_db_path,
    now,
)


class PeopleStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

    # ---- people ------------------------------------------------------------------

    def grouping_inputs(self, model: str) -> GroupingInputs:
        """Everything `group` needs about one pack's faces, as arrays."""
        # A video's frames are its "photos": a person once per frame, not once per video.
        # Each frame gets an id of its own below every photo id.
        embedder = self.active_embedder(model)
        rows = self.db.execute(
            "SELECT f.id, CASE WHEN f.frame_ms IS NULL THEN f.photo_id ELSE -dense_rank() OVER (ORDER BY f.photo_id, f.frame_ms) END, "
            "f.size, f.score, COALESCE(f.person_id, -1), e.vector, f.quality, f.assigned FROM faces f "
            "LEFT JOIN embeddings e ON e.face_id = f.id AND e.embedder = ? WHERE f.model = ? ORDER BY f.id",
            [embedder, model],
        ).fetchall()
        lacking = sum(1 for r in rows if r[5] is None)
        if lacking:
            raise ModelError(f"{lacking} of {len(rows)} faces of pack {model!r} have no {embedder!r} vector yet: "
                             f"run `facecluster scan --embedder {embedder} FOLDER...` on the folders that hold them")
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
        """Every person with its counts, dates and representative face, in one pass over the faces (a GROUP BY
        on the person index) and one indexed look-up a person for the representative (REPRESENTATIVE_ORDER)."""
        where = "WHERE p.model = ?" if model else ""
        rows = self.db.execute(
            f"""
            SELECT s.*, ph.path FROM (
                SELECT p.id, p.model, p.name, p.ignored, count(f.id), count(DISTINCT f.photo_id),
                       -- a file's own date (copied, downloaded) is not when the photo was taken
                       min(CASE WHEN ph.taken_source = 'exif' THEN ph.taken END),
                       max(CASE WHEN ph.taken_source = 'exif' THEN ph.taken END),
                       (SELECT b.id FROM faces b WHERE b.person_id = p.id ORDER BY {REPRESENTATIVE_ORDER} LIMIT 1) AS best
                FROM people p
                LEFT JOIN faces f ON f.person_id = p.id
                LEFT JOIN photos ph ON ph.id = f.photo_id
                {where}
                GROUP BY p.id
            ) s LEFT JOIN faces bf ON bf.id = s.best LEFT JOIN photos ph ON ph.id = bf.photo_id
            ORDER BY s.id
            """,
            [model] if model else [],
        ).fetchall()
        return [
            PersonSummary(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7], r[8] if r[4] else None,
                          from_db_path(r[9]) if r[4] and r[9] is not None else None)
            for r in rows
        ]

    def person_samples(self, person_ids: Iterable[int], per_person: int) -> dict[int, tuple[str | None, int, list[int]]]:
        """person id -> (name, face count, up to `per_person` face ids, the representative
        first) for each of these people that exists: a few indexed queries a person, no pass over every face."""
        out = {}
        for person_id in dict.fromkeys(person_ids):
            row = self.db.execute("SELECT name FROM people WHERE id = ?", [person_id]).fetchone()
            if row is None:
                continue
            count = self.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [person_id]).fetchone()[0]
            faces = [r[0] for r in self.db.execute(
                f"SELECT b.id FROM faces b WHERE b.person_id = ? ORDER BY {REPRESENTATIVE_ORDER} LIMIT ?", [person_id, per_person])]
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
