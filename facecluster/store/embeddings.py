"""Face vectors per embedder (the `embeddings` table), and which embedder each pack uses now.

A face's first vector is written by the scan (through faces.embedding and the
`faces_scan_vector` trigger, under the pack's name); `scan --embedder` adds
vectors of another embedder for the same face ids (facecluster/reembed.py) and
makes it the pack's active one. Every read of vectors for grouping, suggestions
and `identify` takes the active embedder's (`_ACTIVE_VECTOR` in rows.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facecluster.store.rows import _chunks, embedding_to_blob, from_db_path


@dataclass(frozen=True)
class FaceToEmbed:
    """A stored face to describe again: where it is (its photo, a video's frame time) and its landmarks."""

    face_id: int
    photo_id: int
    path: str
    kind: str | None  # photos.kind: "photo", "motion", "raw", "video" (None: a photo scanned before kinds)
    landmarks: str | None  # JSON, ten numbers in the photo's displayed pixels
    frame_ms: int | None
    det_size: int | None  # what the photo was scanned with (a RAW's preview-or-demosaic choice depends on it)
    size: int | None = None  # the file as scanned: one that changed since is not re-embedded from old landmarks
    mtime_ns: int | None = None


class EmbeddingStore:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

    def active_embedder(self, model: str) -> str:
        """The embedder whose vectors pack `model`'s faces are compared with: the one `scan --embedder` chose,
        else the pack's own (named as the pack).

        Example:
            store.active_embedder("sface")  # "sface", or "sface-flip" after `scan --embedder sface-flip`
        """
        row = self.db.execute("SELECT embedder FROM models WHERE name = ?", [model]).fetchone()
        return row[0] if row and row[0] else model

    def set_active_embedder(self, model: str, embedder: str) -> None:
        """Make `embedder` the one pack `model`'s faces are compared with (NULL when it is the pack's own)."""
        self.db.execute("UPDATE models SET embedder = ? WHERE name = ?", [None if embedder == model else embedder, model])

    def missing_vectors(self, model: str, embedder: str) -> int:
        """How many faces of pack `model` have no vector of `embedder`."""
        return self.db.execute(
            "SELECT count(*) FROM faces f WHERE f.model = ? AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.embedder = ?)", [model, embedder]
        ).fetchone()[0]

    def faces_to_embed(self, model: str, embedder: str, roots: Iterable[str]) -> list[FaceToEmbed]:
        """Faces of pack `model` under `roots` (absolute folders or files) with no vector of `embedder`, by photo."""
        rows = self.db.execute(
            "SELECT f.id, f.photo_id, p.path, p.kind, f.landmarks, f.frame_ms, s.det_size, p.size, p.mtime_ns FROM faces f "
            "JOIN photos p ON p.id = f.photo_id LEFT JOIN photo_scans s ON s.photo_id = f.photo_id AND s.model = f.model "
            "WHERE f.model = ? AND p.status = 'ok' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.face_id = f.id AND e.embedder = ?) ORDER BY p.path, f.frame_ms, f.id",
            [model, embedder],
        ).fetchall()
        tops = [r.rstrip(os.sep) for r in roots]
        found = []
        for row in rows:
            p = from_db_path(row[2])
            if any(p == top or p.startswith(top + os.sep) for top in tops):
                found.append(FaceToEmbed(row[0], row[1], p, *row[3:]))
        return found

    def save_vectors(self, embedder: str, pairs: Iterable[tuple[int, npt.NDArray[np.floating]]]) -> int:
        """Store (face id, unit vector) pairs as `embedder`'s, replacing any it had. Returns how many."""
        values = [(face_id, embedder, int(len(v)), embedding_to_blob(v)) for face_id, v in pairs]
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO embeddings (face_id, embedder, dim, vector) VALUES (?, ?, ?, ?)", values
        )
        return len(values)

    def vector_counts(self) -> dict[str, int]:
        """embedder -> how many faces have a vector of it.

        Example:
            store.vector_counts()  # {"sface": 1467, "sface-flip": 1467}
        """
        return dict(self.db.execute("SELECT embedder, count(*) FROM embeddings GROUP BY embedder").fetchall())

    def vectors_of(self, face_ids: Iterable[int], embedder: str) -> dict[int, npt.NDArray[np.float32]]:
        """face id -> its `embedder` vector, for those of `face_ids` that have one."""
        out = {}
        for chunk in _chunks(sorted(set(face_ids)), 500):
            marks = ",".join("?" * len(chunk))
            for face_id, blob in self.db.execute(
                f"SELECT face_id, vector FROM embeddings WHERE embedder = ? AND face_id IN ({marks})", [embedder, *chunk]
            ):
                out[face_id] = np.frombuffer(blob, "<f4").copy()
        return out
