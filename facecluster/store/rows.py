"""The records the store hands out, and how rows are encoded (paths, embeddings, SQL fragments)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from facecluster.records import Face

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
    face_id: int | None  # the face that stands for the person: its best quality (REPRESENTATIVE_ORDER)
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
    embedder: str = ""  # the embedder in use for this pack's faces (`scan --embedder`)


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


# The face that stands for a person, on the review page and in the export alike (faces `b`): the best stored
# quality (facecluster.quality; NULL, not scored yet, last), then the largest and most confident, then the
# oldest face: every tie broken, so the same database always shows the same face.
REPRESENTATIVE_ORDER = "b.quality DESC, b.score * b.size DESC, b.id"


# Joins a face `f` to its vector from the embedder its pack uses now (models.embedder; NULL: the pack's
# own, named as the pack): `e_.vector`, NULL where the face has none of that embedder yet.
_ACTIVE_VECTOR = (
    "LEFT JOIN models m_ ON m_.name = f.model "
    "LEFT JOIN embeddings e_ ON e_.face_id = f.id AND e_.embedder = coalesce(m_.embedder, f.model) "
)


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

