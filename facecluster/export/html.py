"""A static review site: opens from disk in any browser, no server, no network.

The pages are the review page's own (facecluster/web/templates), rendered by
pages.py with `static` set: no forms, and links that are relative file
names. index.html (paginated) has a card per person and unnamed group, with
the same representative face and the same pages as the review; each person
has pages of face thumbnails linking to the original photos by relative
paths; the faces in no group have pages of their own. Thumbnails come from
the faces stored by `scan` (made square as the review shows them) and are
written once: a rerun reuses them after checking each one's size.

The folder is the user's: the site is written only into a new or empty
folder, or one holding our marker file `.facecluster-site` (a list of the
files we wrote there); anything else is refused unless `force`. Every file is
written atomically. Files a previous export wrote that this one does not
(pages of a merged or removed group, unused thumbnails) are removed, so the
site always shows the database as it is now. Every user-supplied string
(names, paths) is HTML-escaped by the templates; links to photos are
percent-encoded from the path's bytes, so names that are not UTF-8 link
correctly too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from facecluster import config
from facecluster.atomic import AtomicBatch, claim_output_folder, write_atomic
from facecluster.errors import FaceclusterError
from facecluster.files import read_regular
from facecluster.naming_rules import portable_path
from facecluster.people import Page, paginate, people_cards, person_faces_page
from facecluster.queries import faces_by_year
from facecluster.store import ExportFace, PersonSummary, Store
from facecluster.pages import STATIC, site_environment
from facecluster.thumbs import square_thumbnail

CARDS_PER_PAGE = 200
FACES_PER_PAGE = 500
MARKER = ".facecluster-site"
MARKER_FORMAT = "facecluster-html"
MAX_MARKER_BYTES = 64 * 1024 * 1024  # lists every file of the site: 20,000 people take about 1 MB
# Names this module writes; only these are ever removed, and only when the marker lists them. A squared
# thumbnail ends in -p (grey bands); -s (an older export's, padded with smeared edge pixels) is only removed.
OUR_FILES = re.compile(
    r"(index(-\d+)?|person-\d+(-\d+)?|unclustered(-\d+)?)\.html|style\.css|app\.js|thumbs/\d+-[0-9a-f]{8}(-[sp])?\.(jpg|svg)"
)
NO_THUMB = "thumbs/0-00000000.svg"
# The review's static files, under the names the site gives them.
STATIC_FILES = {"review.css": "style.css", "review.js": "app.js", "no-face.svg": NO_THUMB}


@dataclass
class HtmlSummary:
    folder: Path
    people: int
    pages: int
    thumbs_written: int
    thumbs_reused: int
    removed: int = 0  # files of an earlier export that no longer belong (merged groups, unused thumbnails)


def export_html(store: Store, folder: Path, include_ignored: bool = False, force: bool = False) -> HtmlSummary:
    """Write the review site into `folder` (created if needed).

    `folder` must be new, empty, or a site an earlier export wrote; `force`
    writes into any folder (replacing files with our names, removing none of the others).

    Example:
        export_html(Store("library.db"), Path("facecluster-html"))
    """
    folder = Path(folder)
    previous = _claim(folder, force)
    cards = people_cards(store, "everyone" if include_ignored else "all")
    with AtomicBatch() as batch:
        site = _Site(store, folder.resolve(), batch)
        site.static_files()
        for card in cards:  # a card's face is one of its person's: its thumbnail is written with their pages
            site.person_pages(card)
        unclustered = site.unclustered_pages()
        site.index_pages(cards, unclustered)
    removed = 0
    for name in sorted(previous - site.files):
        if OUR_FILES.fullmatch(name):
            try:
                (folder / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                raise FaceclusterError(f"cannot remove the old {folder / name}: {e.strerror or e}") from None
    _write_marker(folder, site.files)
    return HtmlSummary(folder, len(cards), site.pages, site.written, site.reused, removed)


def check_site_folder(folder: Path, force: bool = False) -> None:
    """Refuse, before anything is written anywhere, a folder the site may not be written into.

    Example:
        check_site_folder(Path("facecluster-html"))
    """
    _claim(Path(folder), force, dry_run=True)


def _claim(folder: Path, force: bool, dry_run: bool = False) -> set[str]:
    """Make sure we may write into `folder`; returns the files an earlier export listed there."""
    previous: set[str] = set()
    force_means = "write the site into it (replacing any index.html, style.css, app.js and person-*.html there)"
    if claim_output_folder(folder, MARKER, "export", force, force_means):
        previous = _read_marker(folder / MARKER)
    if dry_run:
        return previous
    try:
        folder.mkdir(exist_ok=True)
        (folder / "thumbs").mkdir(exist_ok=True)
        # The marker goes first, so an export killed halfway is still recognised as ours next time.
        _write_marker(folder, previous)
    except (OSError, FaceclusterError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise FaceclusterError(f"cannot write to {folder}: {reason}") from None
    return previous


def _read_marker(path: Path) -> set[str]:
    try:
        # A regular file only, and a small one: a FIFO or a symlink to /dev/zero put here must not hang the export.
        document = json.loads(read_regular(path, MAX_MARKER_BYTES).decode("utf-8"))
        files = document.get("files", []) if isinstance(document, dict) else []
        return {f for f in files if isinstance(f, str)}
    except (OSError, ValueError, RecursionError):
        return set()  # still our folder; we just do not know which old files to tidy


def _write_marker(folder: Path, files: set[str]) -> None:
    document = {"format": MARKER_FORMAT, "note": "written by facecluster export --html; lists the files it wrote here",
                "files": sorted(files)}
    write_atomic(folder / MARKER, json.dumps(document, indent=0) + "\n")


def shell_command(store_path: Path, person_id: int) -> str:
    """The start of the command that names a group, with --db when the database is not the default one."""
    command = "facecluster"
    try:
        default = Path(config.default_db_path()).resolve()
    except Exception:  # no home folder: show the path anyway
        default = None
    if Path(store_path).resolve() != default:
        command += f" --db {shlex.quote(portable_path(str(store_path)))}"
    return f"{command} name {person_id}"


class _Site:
    """The site being written: its files, its thumbnails, and the links its templates ask for (`url_for`)."""

    def __init__(self, store: Store, folder: Path, batch: AtomicBatch) -> None:
        self.store, self.folder, self.batch = store, folder, batch
        self.pages = self.written = self.reused = 0
        self.files: set[str] = set()
        self.thumbs: dict[int, str] = {}  # face id -> its file, so the card's face is not done twice
        self.photos: dict[int, str] = {}  # face id -> the relative link to its photo
        self.templates = site_environment(self.url_for)

    def _save(self, name: str, data: bytes | str) -> None:
        self.batch.write(self.folder / name, data)
        self.files.add(name)

    def url_for(self, endpoint: str, **values) -> str:
        """The review's `url_for`, answered with the site's relative file names: a face's page is its photo."""
        page = values.get("page", 1)
        if endpoint == "static":
            return STATIC_FILES[values["filename"]]
        if endpoint == "review.index":
            return _index_page(page)
        if endpoint == "review.person":
            return _person_page(values["person_id"], page)
        if endpoint == "review.unclustered":
            return _unclustered_page(page)
        if endpoint == "review.thumb":
            face_id = values["face_id"]
            if face_id not in self.thumbs:  # a card whose face was not on its person's pages (not expected)
                face = self.store.face_row(face_id)
                self.thumbs[face_id] = self.thumb(face) if face else NO_THUMB
            return self.thumbs[face_id]
        if endpoint == "review.face":
            return self.photos[values["face_id"]]
        raise ValueError(f"the static site has no page for {endpoint}")  # a template showed a review-only link

    def render(self, name: str, template: str, **context) -> None:
        self._save(name, self.templates.get_template(template).render(**context))
        self.pages += 1

    def thumb(self, face: ExportFace) -> str:
        """Relative URL of the face's thumbnail, writing the file only if a whole one is not there yet."""
        if face.face_id in self.thumbs:
            return self.thumbs[face.face_id]
        data = self.store.thumb(face.face_id) or b""
        if not data:
            self.thumbs[face.face_id] = NO_THUMB
            return NO_THUMB
        # The checksum in the name ties the file to the crop: a face id reused by
        # SQLite after a deletion cannot show a stale picture.
        squared = square_thumbnail(data, face)
        name = self.thumbs[face.face_id] = f"thumbs/{face.face_id}-{zlib.crc32(data):08x}{'-p' if squared is not data else ''}.jpg"
        self.files.add(name)
        try:
            whole = (self.folder / name).stat().st_size == len(squared)  # a 0-byte or cut file is written again
        except OSError:
            whole = False
        if whole:
            self.reused += 1
        else:
            self._save(name, squared)
            self.written += 1
        return name

    def faces(self, page: Page) -> Page:
        """`page` (of faces), with each face's thumbnail written and its photo's link known."""
        for face in page.items:
            self.thumb(face)
            self.photos[face.face_id] = self.photo_link(face)
        return page

    def photo_link(self, face: ExportFace) -> str:
        relative = os.path.relpath(face.path, self.folder)
        link = "/".join(_url_part(p) for p in relative.split(os.sep))
        if face.frame_ms is not None:
            # A media fragment: a browser opening the video starts it at the face's frame.
            link += f"#t={face.frame_ms / 1000:g}"
        return link

    def person_pages(self, card: PersonSummary) -> None:
        years = faces_by_year(self.store, card.id)
        command = shell_command(self.store.path, card.id)
        number = pages = 1
        while number <= pages:
            page = self.faces(person_faces_page(self.store, card.id, number, FACES_PER_PAGE))
            self.render(_person_page(card.id, number), "person.html", person=card, summary=card, page=page,
                        years=years, command=command)
            number, pages = number + 1, page.pages

    def unclustered_pages(self) -> int:
        """The pages of the faces in no group; returns how many faces they show."""
        number = pages = 1
        while number <= pages:
            page = self.faces(person_faces_page(self.store, None, number, FACES_PER_PAGE))
            self.render(_unclustered_page(number), "person.html", person=None, page=page)
            number, pages, total = number + 1, page.pages, page.total
        return total

    def index_pages(self, cards: list[PersonSummary], unclustered: int) -> None:
        named = sum(1 for c in cards if c.name)
        number = pages = 1
        while number <= pages:
            page = paginate(cards, number, CARDS_PER_PAGE)
            self.render(_index_page(number), "index.html", page=page, show="all", named=named, unclustered=unclustered)
            number, pages = number + 1, page.pages

    def static_files(self) -> None:
        for source, name in STATIC_FILES.items():
            self._save(name, (STATIC / source).read_bytes())


def _index_page(n: int) -> str:
    return "index.html" if n == 1 else f"index-{n}.html"


def _person_page(person_id: int, n: int) -> str:
    return f"person-{person_id}.html" if n == 1 else f"person-{person_id}-{n}.html"


def _unclustered_page(n: int) -> str:
    return "unclustered.html" if n == 1 else f"unclustered-{n}.html"


def _url_part(part: str) -> str:
    """Percent-encoding of the path's own bytes: a name that is not UTF-8 still links to its file."""
    return quote(part, errors="surrogateescape") if part != ".." else part
