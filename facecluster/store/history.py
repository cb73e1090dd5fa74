"""What the library holds (info), the action log with its undo snapshots, and suggestion inputs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facecluster.migrations import migrations
from facecluster.store.rows import (
    ActionRow,
    ExportFace,
    ModelInfo,
    NOT_A_PERSON,
    PersonCentres,
    StoreInfo,
    SuggestionInputs,
    _ACTIVE_VECTOR,
    _EXPORT_FACE_SQL,
    _chunks,
    _export_face,
    blob_to_embedding,
    now,
)


class HistoryStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

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
            ModelInfo(name=r[0], dim=r[1], licence=r[2], first_used=r[3], fingerprint=r[4], faces=faces_by_model.get(r[0], 0),
                      embedder=r[5] or r[0])
            for r in q("SELECT name, dim, licence, first_used, fingerprint, embedder FROM models ORDER BY first_used, name")
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
        own = [blob_to_embedding(r[0]) for r in self.db.execute(
            f"SELECT e_.vector FROM faces f {_ACTIVE_VECTOR} WHERE f.person_id = ? AND e_.vector IS NOT NULL", [person_id])]
        where = "f.person_id IS NULL" if unclustered_only else "(f.person_id IS NULL OR (p.name IS NULL AND p.ignored = 0))"
        rows = self.db.execute(
            f"SELECT f.id, COALESCE(f.person_id, -1), e_.vector FROM faces f LEFT JOIN people p ON p.id = f.person_id {_ACTIVE_VECTOR}"
            f"WHERE f.model = ? AND {where} AND f.assigned IS NOT '{NOT_A_PERSON}' AND e_.vector IS NOT NULL "
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
            f"SELECT p.id, p.model, p.name IS NOT NULL, e_.vector FROM faces f JOIN people p ON p.id = f.person_id {_ACTIVE_VECTOR}"
            "WHERE p.ignored = 0 AND e_.vector IS NOT NULL ORDER BY p.id"
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
