"""Exports: what the store knows about people, shaped for JSON/CSV, XMP and links.

`collect` gathers people (named first, then groups by size) and the
unclustered faces once; each format module renders that. The HTML site
(html.py) is the review page's own templates and cards (people.people_cards),
so it shows the same faces as the review.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
