"""A folder per person holding links to their photos: what a file browser or photo manager can show.

`export --links DIR` makes DIR/Alice/, DIR/Bob/, ... (and, with `groups`, DIR/Group 12/ for unnamed
groups), each holding a relative symlink (or, with `hardlinks`, a hard link) per photo the person is
in. A link is named `<stem>-<8 hex digits of the photo's path><ext>`, so two photos called
IMG_0001.jpg in two folders never collide, and the same photo always gets the same name.

The folder is the user's: DIR must be new, empty, or one an earlier `--links` export made (it holds
our marker `.facecluster-links`, listing every link written there). A rerun changes only what
changed: links for photos that left a person are removed, new ones added. Only an entry the marker
lists, and that is still exactly what we made (the same symlink text, or the same file for a hard
link, and never a file's last name), is ever removed; anything else found in our way is left alone
and reported. The originals are never opened, copied, moved or touched. A rerun with nothing
changed writes nothing, not even the marker.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from facecluster.atomic import claim_output_folder, write_atomic
from facecluster.errors import FaceclusterError
from facecluster.store import Store

MARKER = ".facecluster-links"
MARKER_FORMAT = "facecluster-links"
MAX_NAME_BYTES = 255  # most file systems' limit for one name
FOLDER_NAME_BYTES = 200  # a person's folder name is cut here (a long name still leaves room to tell it apart)


@dataclass
class LinksSummary:
    folder: Path
    people: int = 0  # person folders in DIR now
    links: int = 0  # links in DIR now
    added: int = 0
    removed: int = 0
    folders_removed: int = 0  # person folders left empty and removed
    symlinked_instead: int = 0  # --hardlinks across file systems: a symlink was made instead
    missing: int = 0  # photos gone from disk: no link made
    left_alone: list[tuple[str, str]] = field(default_factory=list)  # (path in DIR, why it was not touched)

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.folders_removed


@dataclass(frozen=True)
class _Want:
    photo: str
    link: str | None  # the symlink's text (relative); None: a hard link


def export_links(store: Store, folder: Path, groups: bool = False, hardlinks: bool = False,
                 force: bool = False) -> LinksSummary:
    """Make or update the folder-per-person view in `folder`.

    Example:
        summary = export_links(Store("library.db"), Path("~/People").expanduser())
    """
    folder = Path(folder)
    previous = claim_links_folder(folder, force)
    real = Path(os.path.realpath(folder))
    summary = LinksSummary(folder)
    wanted = _wanted(store, real, groups, hardlinks)
    ours_folders: set[str] = set(previous.get("folders", []))

    kept = _keep_or_remove_old(real, previous.get("links", {}), wanted, summary)
    _add_new(real, wanted, kept, ours_folders, summary)
    in_use = {name.split("/", 1)[0] for name in kept}
    _remove_emptied_folders(real, ours_folders, in_use, summary)
    summary.people = len(in_use)
    summary.links = len(kept)
    document = _marker(kept, ours_folders)
    if document != previous:
        write_atomic(real / MARKER, json.dumps(document, indent=0, sort_keys=True) + "\n")
    return summary


def _keep_or_remove_old(real: Path, old_links: dict[str, dict], wanted: dict[str, _Want], summary: LinksSummary) -> dict[str, dict]:
    """The old links still wanted as they are; the others go first (where still what we made)."""
    kept: dict[str, dict] = {}
    for name, record in sorted(old_links.items()):
        want = wanted.get(name)
        if want is not None and _matches(real / name, record, want):
            kept[name] = record
            continue
        # Removed when still what we made; otherwise left alone (and reported), and no longer listed as ours.
        if _remove_ours(real / name, record, summary, name):
            summary.removed += 1
    return kept


def _add_new(real: Path, wanted: dict[str, _Want], kept: dict[str, dict], ours_folders: set[str], summary: LinksSummary) -> None:
    """Make each wanted link not kept, into `kept`; never over something of the user's."""
    for name, want in sorted(wanted.items()):
        if name in kept:
            continue
        target = real / name
        if not os.path.exists(want.photo):
            summary.missing += 1
            continue
        person_folder = name.split("/", 1)[0]
        if not _person_folder(real, person_folder, ours_folders, summary):
            continue
        if os.path.lexists(target):
            record = _record_of(target, want)
            if record is not None:  # exactly what we would make (a run killed before its marker): ours now
                kept[name] = record
            else:
                summary.left_alone.append((name, "something else has this name; not replaced"))
            continue
        record = _make(target, want, real, summary)
        if record is not None:
            kept[name] = record
            summary.added += 1


def _remove_emptied_folders(real: Path, ours_folders: set[str], in_use: set[str], summary: LinksSummary) -> None:
    """Person folders we made that hold nothing of ours now: removed if empty (never with anything in them)."""
    for person_folder in sorted(ours_folders - in_use):
        try:
            os.rmdir(real / person_folder)
            summary.folders_removed += 1
            ours_folders.discard(person_folder)
        except FileNotFoundError:
            ours_folders.discard(person_folder)
        except OSError:
            pass  # not empty: the user put something there; it stays, and stays listed


def claim_links_folder(folder: Path, force: bool, dry_run: bool = False) -> dict:
    """Check that `folder` may hold the links (new, empty, ours, or `force`); returns its marker's
    content ({} when there is none). Creates the folder and an empty marker unless `dry_run`.

    Example:
        claim_links_folder(Path("People"), force=False, dry_run=True)
    """
    previous: dict = {}
    if claim_output_folder(folder, MARKER, "links", force, "make the links there (nothing of yours is replaced or removed)"):
        previous = _read_marker(folder / MARKER)
    if dry_run or previous:
        return previous
    try:
        folder.mkdir(exist_ok=True)
        # The marker first: a run killed halfway leaves a folder still known as ours.
        write_atomic(folder / MARKER, json.dumps(_marker({}, set()), indent=0, sort_keys=True) + "\n")
    except OSError as e:
        raise FaceclusterError(f"cannot write to {folder}: {e.strerror or e}") from None
    return _marker({}, set())


def folder_name(name: str | None, person_id: int) -> str:
    """A person's folder: the name made safe for a file system, or "Group 12" for an unnamed group.

    "/" (and NUL) cannot be in a file name and becomes "_"; a leading "." would hide the folder
    and becomes "_."; long names are cut at 200 bytes.

    Example:
        folder_name("AC/DC", 3) == "AC_DC"; folder_name(None, 12) == "Group 12"
    """
    if not name:
        return f"Group {person_id}"
    text = unicodedata.normalize("NFC", name).replace("/", "_").replace("\0", "_").strip()
    if text.startswith("."):
        text = "_" + text
    return _cut(text, FOLDER_NAME_BYTES) or f"Person {person_id}"


def link_name(path: str) -> str:
    """The link's name for a photo: `<stem>-<8 hex digits of sha1(path)><ext>`, at most 255 bytes.

    Example:
        link_name("/photos/2019/IMG_0001.jpg")  # 'IMG_0001-5c1d0a3e.jpg'
    """
    raw = os.fsencode(path)
    digest = hashlib.sha1(raw).hexdigest()[:8]
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    if len(os.fsencode(ext)) > 16:  # not a real extension: keep it in the stem
        stem, ext = base, ""
    room = MAX_NAME_BYTES - len(os.fsencode(ext)) - 9
    return _cut(stem, room) + "-" + digest + ext


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes in the file system's encoding, never inside a character."""
    raw = os.fsencode(text)
    if len(raw) <= limit:
        return text
    cut = raw[:limit]
    while cut:
        try:
            cut.decode("utf-8")
            break
        except UnicodeDecodeError:
            cut = cut[:-1]
    return os.fsdecode(cut) if cut else ""


def _wanted(store: Store, real: Path, groups: bool, hardlinks: bool) -> dict[str, _Want]:
    """Every link the folder should hold: 'Folder/link-name' -> what it links to."""
    rows = store.people_photos(include_groups=groups)
    # One folder per name (the same name in two packs is one person to the user); names that
    # become the same folder name (or differ only in case, for case-blind file systems) get their number.
    by_key: dict[str, str] = {}
    folders: dict[int, str] = {}
    for person_id, name, _photo, _path in rows:
        if person_id in folders:
            continue
        base = folder_name(name, person_id)
        owner = Store.name_key(name) if name else f"#{person_id}"
        chosen = base
        if by_key.get(chosen.casefold(), owner) != owner:
            chosen = _cut(base, FOLDER_NAME_BYTES - 24) + f" (#{person_id})"
        by_key.setdefault(chosen.casefold(), owner)
        folders[person_id] = chosen
    wanted: dict[str, _Want] = {}
    link_texts: dict[tuple[str, str], str] = {}
    for person_id, _name, _photo, path in rows:
        person_folder = folders[person_id]
        name = f"{person_folder}/{link_name(path)}"
        if hardlinks:
            wanted[name] = _Want(path, None)
            continue
        key = (person_folder, os.path.dirname(path))
        if key not in link_texts:  # relpath per folder of photos, not per photo: 10,000 photos, a few hundred folders
            link_texts[key] = os.path.relpath(os.path.dirname(path), real / person_folder)
        wanted[name] = _Want(path, os.path.join(link_texts[key], os.path.basename(path)))
    return wanted


def _matches(target: Path, record: dict, want: _Want) -> bool:
    """Is the entry at `target` the one `record` lists, and the one wanted now?"""
    if want.link is not None:
        return record.get("link") == want.link and _is_symlink_to(target, want.link)
    return record.get("photo") == want.photo and _same_file(target, record)


def _record_of(target: Path, want: _Want) -> dict | None:
    """The marker's record for an entry found at `target` when it is exactly what we would make; else None."""
    if want.link is not None:
        return {"link": want.link} if _is_symlink_to(target, want.link) else None
    try:
        ours, theirs = os.lstat(target), os.stat(want.photo)
    except OSError:
        return None
    if stat.S_ISREG(ours.st_mode) and (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
        return {"photo": want.photo, "dev": ours.st_dev, "ino": ours.st_ino}
    return None


def _is_symlink_to(target: Path, text: str) -> bool:
    try:
        return os.readlink(target) == text
    except OSError:  # not there, or not a symlink
        return False


def _same_file(target: Path, record: dict) -> bool:
    try:
        st = os.lstat(target)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (record.get("dev"), record.get("ino"))


def _remove_ours(target: Path, record: dict, summary: LinksSummary, name: str) -> bool:
    """Remove an entry the marker lists, only if it is still what we made. True when removed."""
    if not os.path.lexists(target):
        return False
    if "link" in record:
        ours = _is_symlink_to(target, record["link"])
    else:
        ours = _same_file(target, record)
        try:
            if ours and os.lstat(target).st_nlink < 2:
                summary.left_alone.append((name, "the photo's other names are gone; this is its last copy, kept"))
                return False
        except OSError:
            return False
    if not ours:
        summary.left_alone.append((name, "changed since facecluster made it; left as it is"))
        return False
    try:
        os.unlink(target)
    except FileNotFoundError:
        return False
    except OSError as e:
        summary.left_alone.append((name, f"cannot remove it: {e.strerror or e}"))
        return False
    return True


def _person_folder(real: Path, name: str, ours: set[str], summary: LinksSummary) -> bool:
    """Make a person's folder where needed; False (and reported once) where something else has its name."""
    path = real / name
    if name in ours and path.is_dir() and not path.is_symlink():
        return True
    try:
        os.mkdir(path)
        ours.add(name)
        return True
    except FileExistsError:
        if path.is_dir() and not path.is_symlink():
            return True  # the user's own folder of that name (with --force): links go in, it is never removed
        if (name, "not a folder") not in summary.left_alone:
            summary.left_alone.append((name, "not a folder"))
        return False
    except OSError as e:
        summary.left_alone.append((name, f"cannot make the folder: {e.strerror or e}"))
        return False


def _make(target: Path, want: _Want, real: Path, summary: LinksSummary) -> dict | None:
    if want.link is None:
        try:
            os.link(want.photo, target, follow_symlinks=True)
            st = os.lstat(target)
            return {"photo": want.photo, "dev": st.st_dev, "ino": st.st_ino}
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                summary.left_alone.append((str(target.relative_to(real)), f"cannot link: {e.strerror or e}"))
                return None
        # Another file system (or one without hard links): a symlink still shows the photo.
        summary.symlinked_instead += 1
        link = os.path.relpath(want.photo, target.parent)
    else:
        link = want.link
    try:
        os.symlink(link, target)
    except OSError as e:
        summary.left_alone.append((str(target.relative_to(real)), f"cannot link: {e.strerror or e}"))
        return None
    return {"link": link}


def _marker(links: dict[str, dict], folders: set[str]) -> dict:
    return {
        "format": MARKER_FORMAT,
        "version": 1,
        "note": "written by facecluster export --links; lists the links (and person folders) it made here, "
                "the only things it ever removes",
        "folders": sorted(folders),
        "links": links,
    }


def _read_marker(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return _marker({}, set())  # still our folder; nothing listed, so nothing is removed
    if not isinstance(document, dict) or document.get("format") != MARKER_FORMAT:
        return _marker({}, set())
    links = document.get("links")
    folders = document.get("folders")
    clean_links = {k: v for k, v in links.items() if isinstance(k, str) and isinstance(v, dict) and _safe_entry(k)} \
        if isinstance(links, dict) else {}
    clean_folders = {f for f in folders if isinstance(f, str) and _safe_entry(f + "/x")} if isinstance(folders, list) else set()
    document = _marker(clean_links, clean_folders)
    return document


def _safe_entry(name: str) -> bool:
    """A marker entry names `Folder/link` inside DIR, never a path that leaves it."""
    parts = name.split("/")
    return len(parts) == 2 and all(p and p not in (".", "..") and "\0" not in p for p in parts)
