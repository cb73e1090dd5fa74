"""Names are precious: back them up, carry them across rebuilds and model changes.

A name file lists, per named person, keys that survive a rebuild of the
database: the photo's content hash (sha256) and the face box. Importing it
into a fresh scan, or a scan with another model pack, finds the same faces by
content and overlap and gives them their names back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from facecluster.errors import FaceclusterError
from facecluster.store import Store
from facecluster.xmp import iou

FORMAT = "facecluster-names"
VERSION = 1
MIN_IOU = 0.5  # the same face, found again, by another detector or after a rebuild


@dataclass
class ImportSummary:
    named: dict[str, int] = field(default_factory=dict)  # name -> faces given that name
    not_found: int = 0  # keys whose photo or face is not in this database
    conflicts: int = 0  # faces another named person already holds: left alone


def backup(store: Store, destination: Path) -> Path:
    """Copy the whole database, consistently, to a new file.

    Example:
        backup(Store("library.db"), Path("library-2026-11-23.db"))
    """
    destination = Path(destination)
    if destination.exists():
        raise FaceclusterError(f"{destination} exists already; choose a new file name")
    if not destination.parent.is_dir():
        raise FaceclusterError(f"folder not found: {destination.parent}")
    try:
        store.backup_to(destination)
    except Exception as e:  # sqlite3 or OS errors: one line for the user
        destination.unlink(missing_ok=True)
        raise FaceclusterError(f"cannot write backup {destination}: {e}") from None
    return destination


def export_names(store: Store, destination: Path | None) -> dict:
    """Write (or return, for stdout) every name with the keys of its faces.

    Example:
        export_names(Store("library.db"), Path("names.json"))
    """
    people: dict[str, list[dict]] = {}
    for name, model, sha256, box, path in store.named_face_keys():
        people.setdefault(name, []).append(
            {"photo_sha256": sha256, "box": [round(v, 1) for v in box], "model": model, "path": path}
        )
    document = {
        "format": FORMAT,
        "version": VERSION,
        "people": [{"name": name, "faces": faces} for name, faces in people.items()],
    }
    if destination is not None:
        try:
            Path(destination).write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            raise FaceclusterError(f"cannot write {destination}: {e.strerror}") from None
    return document


def import_names(store: Store, source: Path) -> ImportSummary:
    """Give faces their names back from a name file written by `export_names`.

    Example:
        import_names(Store("rebuilt.db"), Path("names.json"))
    """
    try:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as e:
        raise FaceclusterError(f"cannot read {source}: {e.strerror}") from None
    except ValueError:
        raise FaceclusterError(f"{source} is not a facecluster name file (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FaceclusterError(f"{source} is not a facecluster name file")
    if document.get("version", 0) > VERSION:
        raise FaceclusterError(f"{source} was written by a newer facecluster; upgrade to import it")
    summary = ImportSummary()
    with store.writer("names --import"):
        people = {(p.model, p.name): p.id for p in store.people_rows() if p.name}
        named_ids = set(people.values())
        with store.transaction():
            for person in document.get("people", []):
                name = " ".join(str(person.get("name", "")).split())
                if not name:
                    continue
                for key in person.get("faces", []):
                    match = _find_face(store, key)
                    if match is None:
                        summary.not_found += 1
                        continue
                    face_id, model, current = match
                    target = people.get((model, name))
                    if current is not None and current in named_ids and current != target:
                        summary.conflicts += 1
                        continue
                    if target is None:
                        target = people[(model, name)] = store.name_person_new(model, name)
                        named_ids.add(target)
                    store.assign_faces([(target, "user", face_id)])
                    summary.named[name] = summary.named.get(name, 0) + 1
    return summary


def _find_face(store: Store, key: dict) -> tuple[int, str, int | None] | None:
    sha256, box = key.get("photo_sha256"), key.get("box")
    if not sha256 or not isinstance(box, list) or len(box) != 4:
        return None
    best, best_overlap = None, MIN_IOU
    for face_id, model, face_box, person in store.faces_of_content(sha256):
        overlap = iou(tuple(float(v) for v in box), face_box)
        if overlap >= best_overlap:
            best, best_overlap = (face_id, model, person), overlap
    return best


