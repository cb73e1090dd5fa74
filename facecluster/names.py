"""Names are precious: back them up, carry them across rebuilds and model changes.

A name file lists, per named person, keys that survive a rebuild of the
database: the photo's content hash (sha256) and the face box. Importing it
into a fresh scan, or a scan with another model pack, finds the same faces by
content and overlap and gives them their names back.

Every file here is written atomically (facecluster/atomic.py) and an existing
file is replaced only when the caller says so (`--force`). A name file is
checked against its schema before anything is imported, and every name goes
through the same `clean_name` as `facecluster name`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facecluster import config
from facecluster.atomic import atomic_path, check_new_file, write_atomic
from facecluster.errors import FaceclusterError, PeopleError
from facecluster.geometry import iou
from facecluster.files import FileTooBig, read_regular
from facecluster.naming_rules import clean_name, portable_path
from facecluster.store import Store

FORMAT = "facecluster-names"
VERSION = 1
MAX_NAME_FILE_BYTES = 512 * 1024 * 1024  # about 2 million faces; a bigger file is not a name file
_SHA256 = re.compile(r"[0-9a-f]{64}")


class NameFileError(FaceclusterError):
    """A name file that does not follow its schema: nothing was imported."""


@dataclass
class ImportSummary:
    named: dict[str, int] = field(default_factory=dict)  # name -> faces given that name (they had another or none)
    unchanged: int = 0  # faces that had that name already
    not_found: int = 0  # keys whose photo or face is not in this database
    conflicts: int = 0  # faces another named person already holds: left alone
    refused: dict[str, str] = field(default_factory=dict)  # name as in the file -> why it was not imported
    left_out: dict[str, int] = field(default_factory=dict)  # Picasa, Takeout: why names were not given -> how many


def backup(store: Store, destination: Path, force: bool = False) -> Path:
    """Copy the whole database, consistently and atomically, to a new file (or over one, with `force`).

    Example:
        backup(Store("library.db"), Path("library-2026-11-23.db"))
    """
    destination = Path(destination)
    check_new_file(destination, force)
    if destination.resolve() == Path(store.path).resolve():
        raise FaceclusterError(f"{destination} is the database itself; choose another file")
    with atomic_path(destination, overwrite=force) as temporary:
        try:
            store.backup_to(temporary)
        except Exception as e:  # sqlite3 or OS errors: one line for the user
            raise FaceclusterError(f"cannot write backup {destination}: {e}") from None
    return destination


def export_names(store: Store, destination: Path | None, force: bool = False) -> dict:
    """Write (or return, for stdout) every name with the keys of its faces.

    Example:
        export_names(Store("library.db"), Path("names.json"))
    """
    if destination is not None:
        check_new_file(Path(destination), force)
    people: dict[str, list[dict]] = {}
    for name, model, sha256, box, path in store.named_face_keys():
        people.setdefault(name, []).append(
            {"photo_sha256": sha256, "box": [round(v, 1) for v in box], "model": model, "path": portable_path(path)}
        )
    document = {
        "format": FORMAT,
        "version": VERSION,
        "people": [{"name": name, "faces": faces} for name, faces in people.items()],
    }
    if destination is not None:
        write_atomic(destination, json.dumps(document, ensure_ascii=False, indent=1) + "\n", overwrite=force)
    return document


def import_names(store: Store, source: Path) -> ImportSummary:
    """Give faces their names back from a name file written by `export_names`.

    The whole file is checked first: a file that breaks the schema imports nothing.
    The import is one action: the review page's Undo takes it back.

    Example:
        import_names(Store("rebuilt.db"), Path("names.json"))
    """
    return apply_names(store, read_name_file(Path(source)), f"Imported names from {Path(source).name}")


def apply_names(store: Store, people: list[tuple[str, list[dict]]], what: str,
                summary: ImportSummary | None = None) -> ImportSummary:
    """Name the faces that `people`'s keys ({"photo_sha256", "box"}) find, in one transaction and one
    undoable action: the one path every import takes (name files, Picasa, Google Takeout).

    Each name goes through `clean_name`; a face another named person holds is left alone.

    Example:
        apply_names(store, [("Alice", [{"photo_sha256": "9f2c...", "box": [10, 20, 30, 40]}])], "Imported names")
    """
    summary = summary or ImportSummary()
    with store.writer("names --import"):
        cache: dict[tuple[str, str], int | None] = {}
        named_ids = {p.id for p in store.people_rows() if p.name}
        plan: list[tuple[str, int, str, int | None]] = []
        for raw_name, faces in people:
            try:
                name = clean_name(raw_name)
            except PeopleError as e:
                summary.refused[raw_name] = str(e)
                continue
            for key in faces:
                match = _find_face(store, key)
                if match is None:
                    summary.not_found += 1
                    continue
                plan.append((name, *match))
        with store.transaction():
            before = store.snapshot([], face_ids=[face_id for _, face_id, _, _ in plan])
            created: list[int] = []
            for name, face_id, model, current in plan:
                if (model, name) not in cache:
                    found = store.person_named(model, name)
                    cache[(model, name)] = found.id if found else None
                target = cache[(model, name)]
                if current is not None and current in named_ids and current != target:
                    summary.conflicts += 1
                    continue
                if current is not None and current == target:
                    # Already that person's: set as the user's own choice (safe from regrouping), not counted as imported.
                    store.assign_faces([(target, "user", face_id)])
                    summary.unchanged += 1
                    continue
                if target is None:
                    target = cache[(model, name)] = store.name_person_new(model, name)
                    named_ids.add(target)
                    created.append(target)
                store.assign_faces([(target, "user", face_id)])
                summary.named[name] = summary.named.get(name, 0) + 1
            if summary.named or summary.unchanged:
                before["created"] = created
                faces = sum(summary.named.values())
                store.log_action("import", f"{what}: {len(summary.named)} name{'s' * (len(summary.named) != 1)} "
                                           f"for {faces} face{'s' * (faces != 1)}", before)
    return summary


def read_name_file(source: Path) -> list[tuple[str, list[dict]]]:
    """(name, face keys) per person of a name file, after checking the whole file against its schema.

    Raises NameFileError with one line that says where the file is wrong.

    Example:
        read_name_file(Path("names.json"))[0]  # ("Alice", [{"photo_sha256": "9f2c...", "box": [...]}])
    """
    document = _load_json(source)

    def wrong(where: str, what: str) -> NameFileError:
        return NameFileError(f"{source}: {where} {what}; nothing was imported")

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise NameFileError(f'{source} is not a facecluster name file (no "format": "{FORMAT}")')
    version = document.get("version")
    if not _is_int(version):
        raise wrong('"version"', "must be a whole number")
    if version > VERSION:
        raise NameFileError(f"{source} was written by a newer facecluster (version {version}); upgrade to import it")
    if version < 1:
        raise wrong('"version"', "must be 1")
    people = document.get("people")
    if not isinstance(people, list):
        raise wrong('"people"', "must be a list")
    result = []
    for i, person in enumerate(people):
        where = f"people[{i}]"
        if not isinstance(person, dict):
            raise wrong(where, 'must be an object with "name" and "faces"')
        name, faces = person.get("name"), person.get("faces")
        if not isinstance(name, str):
            raise wrong(f"{where}.name", "must be text")
        if not isinstance(faces, list):
            raise wrong(f"{where}.faces", "must be a list")
        for j, key in enumerate(faces):
            _check_face_key(key, f"{where}.faces[{j}]", wrong)
        result.append((name, faces))
    return result


def _load_json(source: Path) -> object:
    """The name file's JSON, read as a regular file of bounded size; one-line errors for anything else."""
    try:
        # Only a regular file, read with a limit: a symlink to /dev/zero grew to 24 GB before, a FIFO waited for ever.
        text = read_regular(source, MAX_NAME_FILE_BYTES).decode("utf-8")
    except FileTooBig:
        raise NameFileError(f"{source} is too big to be a facecluster name file") from None
    except OSError as e:
        raise FaceclusterError(f"cannot read {source}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise NameFileError(f"{source} is not a facecluster name file (not UTF-8 text)") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise NameFileError(f"{source} is not a facecluster name file (JSON nested too deeply)") from None
    except ValueError as e:
        raise NameFileError(f"{source} is not a facecluster name file (not JSON: {e})") from None
    return document


def _check_face_key(key: object, here: str, wrong: Callable[[str, str], NameFileError]) -> None:
    """One face key: {"photo_sha256": 64 hex digits, "box": [x, y, w, h], optional "model" and "path" as text}."""
    if not isinstance(key, dict):
        raise wrong(here, 'must be an object with "photo_sha256" and "box"')
    sha256, box = key.get("photo_sha256"), key.get("box")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise wrong(f"{here}.photo_sha256", "must be 64 lowercase hex digits")
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise wrong(f"{here}.box", "must be 4 numbers [x, y, w, h]")
    if box[2] <= 0 or box[3] <= 0:
        raise wrong(f"{here}.box", "must have a positive width and height")
    for optional in ("model", "path"):
        if optional in key and not isinstance(key[optional], str):
            raise wrong(f"{here}.{optional}", "must be text")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _find_face(store: Store, key: dict) -> tuple[int, str, int | None] | None:
    sha256, box = key["photo_sha256"], tuple(float(v) for v in key["box"])
    best, best_overlap = None, config.SAME_FACE_IOU
    for face_id, model, face_box, person in store.faces_of_content(sha256):
        overlap = iou(box, face_box)
        if overlap >= best_overlap:
            best, best_overlap = (face_id, model, person), overlap
    return best
