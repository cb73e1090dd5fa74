"""Exports: what the store knows about people, shaped for HTML, JSON/CSV and XMP.

`collect` gathers people (named first, then groups by size) and the
unclustered faces once; each format module renders that.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from facecluster.naming_rules import name_order
from facecluster.store import ExportFace, Store


@dataclass
class PersonExport:
    id: int
    name: str | None
    ignored: bool
    faces: list[ExportFace] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.name else f"Unnamed #{self.id}"

    @property
    def photos(self) -> int:
        return len({f.path for f in self.faces})

    @property
    def dates(self) -> tuple[str | None, str | None]:
        """First and last date taken; a file's own date (no date in the photo) is not a date taken."""
        taken = sorted(f.taken for f in self.faces if f.taken and f.taken_source != "mtime")
        return (taken[0], taken[-1]) if taken else (None, None)


@dataclass
class Collection:
    people: list[PersonExport]
    unclustered: list[ExportFace]


def collect(store: Store, include_ignored: bool = False) -> Collection:
    """People and their faces, ordered as a person reviewing them wants.

    Example:
        everyone = collect(Store("library.db"))
    """
    rows = {p.id: p for p in store.people_rows()}
    people: dict[int, PersonExport] = {}
    unclustered: list[ExportFace] = []
    for face in store.export_faces():
        if face.person_id is None or face.person_id not in rows:
            unclustered.append(face)
            continue
        row = rows[face.person_id]
        if row.ignored and not include_ignored:
            continue
        if face.person_id not in people:
            people[face.person_id] = PersonExport(row.id, row.name, row.ignored)
        people[face.person_id].faces.append(face)
    ordered = sorted(
        people.values(),
        key=lambda p: (p.ignored, p.name is None, name_order(p.name or ""), -len(p.faces), p.id),
    )
    return Collection(ordered, unclustered)


def frontalness(face: ExportFace) -> float:
    """1.0 when the nose sits midway between the eyes, falling to 0 as the head turns."""
    if len(face.landmarks) < 6:
        return 0.5
    lx, rx, nx = face.landmarks[0], face.landmarks[2], face.landmarks[4]  # x of eye, eye, nose
    half = abs(rx - lx) / 2
    if half <= 0:
        return 0.0
    return max(0.0, 1.0 - abs(nx - (lx + rx) / 2) / half)


def sharpness(jpeg: bytes | None) -> float:
    """Variance of the Laplacian of a thumbnail: higher is sharper."""
    if not jpeg:
        return 0.0
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(jpeg), formats=["JPEG"]).convert("L"), np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1])
    return float(lap.var())


def representative(store: Store, faces: list[ExportFace], candidates: int = 5) -> ExportFace:
    """The face to show for a person: large, confident and frontal first, then the sharpest of those.

    Chosen afresh from the person's faces at every export, so after a merge or
    a `remove` the card shows one of the faces the person has now.

    Example:
        face = representative(store, person.faces)
    """
    ranked = sorted(faces, key=lambda f: (f.size * f.score * (0.25 + frontalness(f)), -f.face_id), reverse=True)[:candidates]
    return max(ranked, key=lambda f: (sharpness(store.thumb(f.face_id)) * (0.25 + frontalness(f)), -f.face_id))
