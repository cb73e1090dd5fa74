"""Names from the tools people used before: Picasa's `.picasa.ini` files and Google Takeout's sidecars.

Both are read whole and checked before anything changes (a file that breaks its format imports
nothing, with one line saying where), turned into the same face keys a name file holds (the
photo's content hash and our face's box), and given to `names.apply_names`: the one import
path, with `clean_name`, conflicts left alone, one transaction and one undoable action.

Picasa (desktop, until 2016) keeps, in a `.picasa.ini` in each photo folder, a line per photo
`faces=rect64(HEX),CONTACT_ID;...`: each rect64 is 16 hex digits, four 16-bit numbers (left, top,
right, bottom, as fractions of 65536 of the photo). Names are in Picasa's `contacts.xml` (in
Picasa's own data folder: `%LOCALAPPDATA%\\Google\\Picasa2\\contacts\\contacts.xml` on Windows,
`~/Library/Application Support/Google/Picasa3/contacts/contacts.xml` on a Mac) and, for newer
versions, in `[Contacts2]` sections of the ini files themselves. Each rectangle is matched to the
face of ours it overlaps most, as XMP regions are (xmp.match_regions).

Google Takeout (takeout.google.com, Google Photos) writes beside each photo a JSON sidecar
(`IMG_1234.jpg.json`, in newer exports `IMG_1234.jpg.supplemental-metadata.json`) whose `people`
list names who is in it, without boxes. A name is given to a face only where that is unambiguous:
the photo has one face and one name, or the face is "very likely" that person (identify's
evidence: the mean distance to the person's 3 nearest faces) judging by the faces this import
named unambiguously and the person's faces already in the library. Everything left out is counted
by reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecluster.errors import FaceclusterError, PeopleError, UsageProblem
from facecluster.files import open_regular
from facecluster.identify import VERY_LIKELY, Reference, wording
from facecluster.names import FORMAT, ImportSummary, NameFileError, apply_names, import_names
from facecluster.naming_rules import clean_name
from facecluster.store import ImportPhoto, Store
from facecluster.xmp import Region, SidecarProblem, match_regions, parse_xml

FORMATS = ("auto", "facecluster", "picasa", "takeout")
PICASA_INI = (".picasa.ini", "picasa.ini")  # compared in lower case: Picasa 3 and Picasa 2 names
MAX_SIDE_FILE_BYTES = 16 * 1024 * 1024  # an ini or a sidecar is a few KB; a bigger one is not one
_RECT = re.compile(r"rect64\(([0-9a-fA-F]{1,16})\),([0-9a-fA-F]{1,16})")
_SUPPLEMENTAL = ".supplemental-metadata"


@dataclass
class _Plan:
    """Names and face keys to apply, and what was left out (reason -> count)."""

    people: dict[str, list[dict]] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    def give(self, name: str, photo: ImportPhoto, box: tuple[float, float, float, float]) -> None:
        self.people.setdefault(name, []).append({"photo_sha256": photo.sha256, "box": list(box)})

    def leave(self, reason: str, count: int = 1) -> None:
        self.left_out[reason] = self.left_out.get(reason, 0) + count


def import_any(store: Store, source: Path, fmt: str = "auto", contacts: Path | None = None) -> ImportSummary:
    """Import names from a facecluster name file, Picasa ini files or a Google Takeout folder.

    `fmt` "auto" tells them apart: a `.picasa.ini` (or a folder holding some) is Picasa, a JSON
    sidecar with `people` (or a folder of them) is Takeout, a file with "format":
    "facecluster-names" is a name file.

    Example:
        import_any(store, Path("~/Takeout/Google Photos").expanduser())
    """
    source = Path(source)
    if fmt not in FORMATS:
        raise UsageProblem(f"--format must be one of {', '.join(FORMATS)}")
    if not source.exists():
        raise UsageProblem(f"not found: {source}")
    if contacts is not None and fmt not in ("auto", "picasa"):
        raise UsageProblem("--contacts goes with Picasa ini files")
    kind = detect_format(source) if fmt == "auto" else fmt
    if kind == "facecluster":
        if source.is_dir():
            raise UsageProblem(f"{source} is a folder; a facecluster name file is one file")
        return import_names(store, source)
    if kind == "picasa":
        plan = picasa_plan(store, source, contacts)
        what = f"Imported Picasa names from {source.name}"
    else:
        plan = takeout_plan(store, source)
        what = f"Imported Google Takeout names from {source.name}"
    summary = ImportSummary(left_out=dict(plan.left_out))
    return apply_names(store, sorted(plan.people.items()), what, summary)


def detect_format(source: Path) -> str:
    """ "facecluster", "picasa" or "takeout", from the file or the folder's files (a folder of neither is an error).

    Example:
        detect_format(Path("photos/.picasa.ini")) == "picasa"
    """
    if source.is_dir():
        if _files(source, lambda n: n.lower() in PICASA_INI):
            return "picasa"
        if any(_people_list(_read_json(p)) is not None for p in _files(source, _is_json)):
            return "takeout"
        raise NameFileError(f"{source} holds neither Picasa .picasa.ini files nor Google Takeout sidecars with people in them")
    if source.name.lower() in PICASA_INI:
        return "picasa"
    if _is_json(source.name):
        document = _read_json(source)
        if not (isinstance(document, dict) and document.get("format") == FORMAT) and _people_list(document) is not None:
            return "takeout"
    return "facecluster"  # and if it is not one, the name file's own checks say where it goes wrong


# ---- Picasa -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PicasaFace:
    photo: str  # full path: the ini's folder and the section's file name
    box: tuple[float, float, float, float]  # left, top, width, height as fractions of the photo
    contact: str


def read_picasa_ini(path: Path) -> tuple[list[PicasaFace], dict[str, str]]:
    """The faces an ini lists, and the names its [Contacts2] section gives contact ids.

    Raises NameFileError naming the line of anything that is not Picasa's format.

    Example:
        faces, names = read_picasa_ini(Path("2019/.picasa.ini"))
    """
    text = _read_text(path)
    faces, names, section = [], {}, None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise NameFileError(f"{path}: line {number} is neither [section] nor key=value; nothing was imported")
        if section is None:
            continue
        if section.lower() == "contacts2":
            names[key.strip().lower()] = value.split(";", 1)[0]
            continue
        if key.strip().lower() != "faces":
            continue
        for entry in filter(None, (e.strip() for e in value.split(";"))):
            found = _RECT.fullmatch(entry)
            if found is None:
                raise NameFileError(f"{path}: line {number}: {entry[:60]!r} is not rect64(HEX),CONTACT_ID; nothing was imported")
            box = _rect64(found.group(1))
            if box is None:
                raise NameFileError(f"{path}: line {number}: {entry[:60]!r} is not a rectangle inside the photo; nothing was imported")
            faces.append(PicasaFace(os.path.join(str(path.parent), section), box, found.group(2).lower()))
    return faces, names


def read_contacts_xml(path: Path) -> dict[str, str]:
    """Contact id -> name from Picasa's contacts.xml (`<contact id=".." name=".." display=".."/>`).

    Example:
        read_contacts_xml(Path("contacts.xml"))["8e62398ebda8c1a5"]  # 'Alice Smith'
    """
    data = _read_text(path).encode("utf-8")
    try:
        root = parse_xml(data)
    except SidecarProblem as e:
        raise NameFileError(f"{path}: {e}; nothing was imported") from None
    if root.tag != "contacts":
        raise NameFileError(f"{path} is not Picasa's contacts.xml (its root element is <{root.tag}>); nothing was imported")
    names = {}
    for contact in root.iter("contact"):
        contact_id, name = contact.get("id"), contact.get("name") or contact.get("display")
        if contact_id and name:
            names[contact_id.strip().lower()] = name
    return names


def picasa_plan(store: Store, source: Path, contacts: Path | None) -> _Plan:
    """Every ini under `source` read and checked, then each named rectangle matched to our faces."""
    inis = [source] if source.is_file() else _files(source, lambda n: n.lower() in PICASA_INI)
    if not inis:
        raise NameFileError(f"no .picasa.ini under {source}")
    faces: list[PicasaFace] = []
    names: dict[str, str] = {}
    for ini in inis:
        found, more = read_picasa_ini(ini)
        faces += found
        names.update(more)
    if contacts is None and source.is_dir():
        candidates = _files(source, lambda n: n.lower() == "contacts.xml")
        contacts = candidates[0] if candidates else None
    if contacts is not None:
        names.update(read_contacts_xml(Path(contacts)))  # contacts.xml is Picasa's own list: it wins
    plan = _Plan()
    by_photo: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
    for face in faces:
        name = names.get(face.contact)
        if face.contact == "ffffffffffffffff":
            plan.leave("faces Picasa found but nobody named")
        elif name is None:
            plan.leave("faces whose Picasa contact has no name here (give --contacts contacts.xml)")
        else:
            by_photo.setdefault(face.photo, []).append((name, face.box))
    for path, named in sorted(by_photo.items()):
        photo = _library_photo(store, path)
        if photo is None:
            plan.leave("named faces in photos not in this library", len(named))
            continue
        if not photo.width or not photo.height:
            plan.leave("named faces in photos whose size is not known", len(named))
            continue
        for model in sorted({f[1] for f in photo.faces}):
            ours = [f for f in photo.faces if f[1] == model]
            regions = [Region(name, (x * photo.width, y * photo.height, w * photo.width, h * photo.height))
                       for name, (x, y, w, h) in named]
            matched = match_regions(regions, [f[2] for f in ours])
            for face, name in zip(ours, matched):
                if name is not None:
                    plan.give(name, photo, face[2])
            missed = len(named) - sum(n is not None for n in matched)
            if missed:
                plan.leave("named faces where no face of ours overlaps", missed)
        if not photo.faces:
            plan.leave("named faces where no face of ours overlaps", len(named))
    return plan


def _rect64(digits: str) -> tuple[float, float, float, float] | None:
    value = int(digits, 16)
    left, top, right, bottom = ((value >> shift) & 0xFFFF for shift in (48, 32, 16, 0))
    if right <= left or bottom <= top:
        return None
    return left / 65536, top / 65536, (right - left) / 65536, (bottom - top) / 65536


# ---- Google Takeout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TakeoutPhoto:
    candidates: tuple[str, ...]  # the photo's possible paths: by the sidecar's title, by its own name
    names: tuple[str, ...]


def read_takeout_sidecar(path: Path) -> TakeoutPhoto | None:
    """The photo a sidecar describes and the names in its `people` list; None for JSON that is not a
    sidecar with people (album metadata, say). Raises NameFileError for a `people` list that is wrong.

    Example:
        read_takeout_sidecar(Path("IMG_1234.jpg.json")).names  # ('Alice', 'Bob')
    """
    document = _read_json(path, strict=True)
    people = _people_list(document)
    if people is None:
        return None
    names = []
    for i, person in enumerate(people):
        name = person.get("name") if isinstance(person, dict) else None
        if not isinstance(name, str):
            raise NameFileError(f'{path}: people[{i}] must be an object with a text "name"; nothing was imported')
        if name not in names:
            names.append(name)
    candidates = []
    title = document.get("title")
    if isinstance(title, str) and title and "/" not in title and title not in (".", ".."):
        candidates.append(os.path.join(str(path.parent), title))
    candidates.append(os.path.join(str(path.parent), _photo_name(path.name)))
    return TakeoutPhoto(tuple(dict.fromkeys(candidates)), tuple(names))


def takeout_plan(store: Store, source: Path) -> _Plan:
    """Every sidecar read and checked, then names given where unambiguous (see the module's docstring)."""
    files = [source] if source.is_file() else _files(source, _is_json)
    sidecars = [s for s in (read_takeout_sidecar(f) for f in files) if s is not None and s.names]
    if not sidecars:
        raise NameFileError(f"no Google Takeout sidecar with people in it under {source}")
    plan = _Plan()
    pending: list[tuple[ImportPhoto, str, list[str]]] = []  # photos with several faces or names: (photo, model, names)
    evidence: dict[tuple[str, str], list[np.ndarray]] = {}  # (model, name) -> embeddings named unambiguously
    for sidecar in sidecars:
        names = []
        for raw in sidecar.names:
            try:
                names.append(clean_name(raw))
            except PeopleError:
                plan.leave("names that are not valid names (a bare number, control characters)")
        photo = next((p for p in (_library_photo(store, c) for c in sidecar.candidates) if p is not None), None)
        if photo is None:
            plan.leave("names in photos not in this library", len(names))
            continue
        if not photo.faces:
            plan.leave("names in photos where we found no face", len(names))
            continue
        for model in sorted({f[1] for f in photo.faces}):
            ours = [f for f in photo.faces if f[1] == model]
            if len(ours) == 1 and len(names) == 1:
                plan.give(names[0], photo, ours[0][2])
                evidence.setdefault((model, names[0]), []).append(ours[0][4])
            else:
                pending.append((photo, model, names))
    _confirmed_by_other_photos(store, plan, pending, evidence)
    return plan


def _confirmed_by_other_photos(store: Store, plan: _Plan, pending: list[tuple[ImportPhoto, str, list[str]]],
                               evidence: dict[tuple[str, str], list[np.ndarray]]) -> None:
    """In photos with several faces, a listed name goes to the face that is "very likely" that person, judging
    by the faces named unambiguously and the person's faces already in the library; the rest are left out."""
    references: dict[str, Reference] = {}
    for model in sorted({m for _, m, _ in pending}):
        person_ids, embeddings = store.named_embeddings(model)
        rows = {p.id: p.name for p in store.people_rows(model) if p.name}
        labels: dict[str, int] = {}
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        for pid, vector in zip(person_ids.tolist(), embeddings):
            ids.append(labels.setdefault(Store.name_key(rows[pid]), len(labels)))
            vectors.append(vector)
        for (m, name), found in evidence.items():
            if m == model:
                for vector in found:
                    ids.append(labels.setdefault(Store.name_key(name), len(labels)))
                    vectors.append(vector)
        if vectors:
            references[model] = Reference(np.array(ids, np.int64), np.stack(vectors), {i: k for k, i in labels.items()})
    for photo, model, names in pending:
        reference = references.get(model)
        ours = [f for f in photo.faces if f[1] == model]
        given: set[int] = set()
        for name in names:
            key = Store.name_key(name)
            best = None
            if reference is not None:
                for face in ours:
                    ranked = reference.candidates(face[4])
                    mine = next((c for c in ranked if c.name == key), None)
                    others = [c for c in ranked if c.name != key]
                    if mine is not None and wording(mine, others[0] if others else None) == VERY_LIKELY:
                        if best is None or mine.distance < best[1].distance:
                            best = (face, mine)
            if best is None or best[0][0] in given:
                plan.leave("names in photos with several faces where nothing confirmed which face")
                continue
            given.add(best[0][0])
            plan.give(name, photo, best[0][2])


def _photo_name(sidecar: str) -> str:
    """The photo a sidecar's own name points to: IMG_1.jpg.json, IMG_1.jpg.supplemental-metadata.json (or
    cut short, as Takeout cuts long names: .supplemental-metad.json), IMG_1.jpg(1).json for IMG_1(1).jpg."""
    base = sidecar[: -len(".json")] if sidecar.lower().endswith(".json") else sidecar
    dot = base.rfind(".s")
    if dot > 0 and _SUPPLEMENTAL.startswith(base[dot:]) and len(base) - dot > 2:
        base = base[:dot]
    numbered = re.fullmatch(r"(.*)(\.[^.()]+)\((\d+)\)", base)
    return f"{numbered.group(1)}({numbered.group(3)}){numbered.group(2)}" if numbered else base


def _people_list(document: object) -> list | None:
    if isinstance(document, dict) and "people" in document and ("title" in document or "photoTakenTime" in document):
        people = document["people"]
        return people if isinstance(people, list) else []
    return None


# ---- shared ----------------------------------------------------------------------------------------


def _library_photo(store: Store, path: str) -> ImportPhoto | None:
    """Our photo at `path`, else (the file being there) ours with the same content."""
    photo = store.photo_for_import(path)
    if photo is not None or not os.path.isfile(path):
        return photo
    try:
        digest = hashlib.sha256()
        with open_regular(path) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except Exception:  # unreadable, or not a regular file (open_regular refuses FIFOs and devices): not ours
        return None
    return store.photo_for_import(path, digest.hexdigest())


def _files(folder: Path, wanted) -> list[Path]:
    """Files under `folder` whose name `wanted` accepts, in path order; symlinked folders not followed."""
    found = []
    for top, folders, names in os.walk(folder):
        folders.sort()
        found += [Path(top) / n for n in sorted(names) if wanted(n)]
    return found


def _is_json(name: str) -> bool:
    return name.lower().endswith(".json")


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_SIDE_FILE_BYTES:
            raise NameFileError(f"{path} is too big to be what it is named; nothing was imported")
        with open_regular(str(path)) as f:
            data = f.read(MAX_SIDE_FILE_BYTES + 1)
    except OSError as e:
        raise FaceclusterError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # open_regular's refusal of a FIFO or a device
        raise FaceclusterError(f"cannot read {path}: {e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")  # Picasa on Windows wrote the system's code page


def _read_json(path: Path, strict: bool = False) -> object:
    """A JSON file's content; with `strict`, a file that is not JSON is an error, else None."""
    try:
        return json.loads(_read_text(path))
    except (ValueError, RecursionError) as e:
        if strict:
            raise NameFileError(f"{path} is not JSON ({str(e)[:100]}); nothing was imported") from None
        return None

