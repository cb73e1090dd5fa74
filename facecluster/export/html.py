"""A static review site: opens from disk in any browser, no server, no network.

index.html (paginated) has a card per person and unnamed group; each person
has pages of face thumbnails linking to the original photos by relative
paths; unclustered faces have pages of their own. Thumbnails come from the
faces stored by `scan` and are written once: a rerun reuses them after
checking each one's size.

The folder is the user's: the site is written only into a new or empty
folder, or one holding our marker file `.facecluster-site` (a list of the
files we wrote there); anything else is refused unless `force`. Every file is
written atomically. Files a previous export wrote that this one does not
(pages of a merged or removed group, unused thumbnails) are removed, so the
site always shows the database as it is now. Every user-supplied string
(names, paths) is HTML-escaped; links to photos are percent-encoded from the
path's bytes, so names that are not UTF-8 link correctly too.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from facecluster import config
from facecluster.atomic import AtomicBatch, claim_output_folder, write_atomic
from facecluster.errors import FaceclusterError
from facecluster.export import Collection, PersonExport, collect, representative
from facecluster.files import read_regular
from facecluster.names import portable_path
from facecluster.naming_rules import plural
from facecluster.queries import faces_by_year
from facecluster.sources.video import clock
from facecluster.store import ExportFace, Store

CARDS_PER_PAGE = 200
FACES_PER_PAGE = 500
MARKER = ".facecluster-site"
MARKER_FORMAT = "facecluster-html"
MAX_MARKER_BYTES = 64 * 1024 * 1024  # lists every file of the site: 20,000 people take about 1 MB
# Names this module writes; only these are ever removed, and only when the marker lists them.
OUR_FILES = re.compile(
    r"(index(-\d+)?|person-\d+(-\d+)?|unclustered(-\d+)?)\.html|style\.css|app\.js|thumbs/\d+-[0-9a-f]{8}(-s)?\.(jpg|svg)"
)
NO_THUMB = "thumbs/0-00000000.svg"


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
    everyone = collect(store, include_ignored)
    with AtomicBatch() as batch:
        writer = _SiteWriter(store, folder.resolve(), batch)
        cards = []
        for person in everyone.people:
            face = representative(store, person.faces) if person.faces else None
            cards.append((person, writer.thumb(face) if face else writer.no_thumb()))
            writer.person_pages(person)
        writer.unclustered_pages(everyone.unclustered)
        writer.index_pages(cards, everyone)
        writer.static()
    removed = 0
    for name in sorted(previous - writer.files):
        if OUR_FILES.fullmatch(name):
            try:
                (folder / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                raise FaceclusterError(f"cannot remove the old {folder / name}: {e.strerror or e}") from None
    _write_marker(folder, writer.files)
    return HtmlSummary(folder, len(everyone.people), writer.pages, writer.written, writer.reused, removed)


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


class _SiteWriter:
    def __init__(self, store: Store, folder: Path, batch: AtomicBatch) -> None:
        self.store, self.folder, self.batch = store, folder, batch
        self.pages = self.written = self.reused = 0
        self.files: set[str] = set()
        self.thumbs: dict[int, str] = {}  # face id -> its file, so the card's face is not done twice

    def _save(self, name: str, data: bytes | str) -> None:
        self.batch.write(self.folder / name, data)
        self.files.add(name)

    def thumb(self, face: ExportFace) -> str:
        """Relative URL of the face's thumbnail, writing the file only if a whole one is not there yet."""
        if face.face_id in self.thumbs:
            return self.thumbs[face.face_id]
        data = self.store.thumb(face.face_id) or b""
        if not data:
            return self.no_thumb()
        # The checksum in the name ties the file to the crop: a face id reused by
        # SQLite after a deletion cannot show a stale picture.
        squared = square_thumbnail(data, face)
        name = self.thumbs[face.face_id] = f"thumbs/{face.face_id}-{zlib.crc32(data):08x}{'-s' if squared is not data else ''}.jpg"
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

    def no_thumb(self) -> str:
        if NO_THUMB not in self.files:
            self._save(NO_THUMB, NO_THUMB_SVG)
        return NO_THUMB

    def photo_link(self, face: ExportFace) -> str:
        relative = os.path.relpath(face.path, self.folder)
        link = "/".join(_url_part(p) for p in relative.split(os.sep))
        if face.frame_ms is not None:
            # A media fragment: a browser opening the video starts it at the face's frame.
            link += f"#t={face.frame_ms / 1000:g}"
        return link

    def write(self, name: str, title: str, body: str) -> None:
        self._save(name, PAGE.format(title=escape(title), body=body))
        self.pages += 1

    def index_pages(self, cards: list[tuple[PersonExport, str]], everyone: Collection) -> None:
        pages = _paginate(cards, CARDS_PER_PAGE)
        named = sum(1 for p, _ in cards if p.name)
        for number, chunk in enumerate(pages, 1):
            items = []
            for person, thumb in chunk:
                css = "card named" if person.name else "card"
                ignored = ' <span class="tag">ignored</span>' if person.ignored else ""
                items.append(
                    f'<a class="{css}" href="{_person_page(person.id, 1)}">'
                    f'<img src="{thumb}" alt="" width="128" height="128" loading="lazy">'
                    f'<span class="name">{escape(portable_path(person.label))}{ignored}</span>'
                    f'<span class="meta">{plural(len(person.faces), "face")} · {plural(person.photos, "photo")}</span>'
                    f'<span class="meta">{_date_range(person)}</span></a>'
                )
            header = (
                f"<h1>People</h1><p>{named} named, {plural(len(cards) - named, 'unnamed group')}, "
                f'<a href="{_unclustered_page(1)}">{plural(len(everyone.unclustered), "unclustered face")}</a>.</p>'
            )
            body = header + _pager(pages, number, _index_page) + f'<div class="grid">{"".join(items)}</div>'
            self.write(_index_page(number), "People", body + _pager(pages, number, _index_page))

    def person_pages(self, person: PersonExport) -> None:
        pages = _paginate(person.faces, FACES_PER_PAGE)
        label = portable_path(person.label)
        header = f'<p><a href="index.html">All people</a></p><h1>{escape(label)}</h1>'
        header += f"<p>{plural(len(person.faces), 'face')} in {plural(person.photos, 'photo')}"
        header += f", {_date_range(person)}</p>" if person.dates[0] else "</p>"
        years = faces_by_year(self.store, person.id)
        if years:
            header += f'<p class="years">Faces by year: {escape(years)}</p>'
        if person.name is None:
            command = escape(shell_command(self.store.path, person.id))
            header += (
                f'<p class="command"><label>Name this group: <input id="name" type="text" placeholder="a name" '
                f'autocomplete="off"></label> <code id="cmd" data-command="{command}">{command} NAME</code> '
                f'<button type="button" class="copy">Copy</button></p>'
            )
        for number, chunk in enumerate(pages, 1):
            body = header + _pager(pages, number, lambda n: _person_page(person.id, n))
            body += self.faces_grid(chunk)
            self.write(_person_page(person.id, number), label, body)

    def unclustered_pages(self, faces: list[ExportFace]) -> None:
        pages = _paginate(faces, FACES_PER_PAGE)
        for number, chunk in enumerate(pages, 1):
            body = (
                '<p><a href="index.html">All people</a></p><h1>Unclustered faces</h1>'
                f"<p>{plural(len(faces), 'face')} in no group: too small or unsure to group, or seen too few times.</p>"
            )
            body += _pager(pages, number, _unclustered_page) + self.faces_grid(chunk)
            self.write(_unclustered_page(number), "Unclustered faces", body)

    def faces_grid(self, faces: list[ExportFace]) -> str:
        items = []
        for face in faces:
            when, note = _taken(face)
            if face.frame_ms is not None:  # a video's face: where in the video, before the date
                at = clock(face.frame_ms / 1000)
                when, note = f"▶ {at} · {when}", f"at {at} in the video · {note}"
            title = f"{portable_path(face.path)} · {note} · face {face.face_id}"
            items.append(
                f'<a class="face" href="{escape(self.photo_link(face))}" title="{escape(title)}">'
                f'<img src="{self.thumb(face)}" alt="face {face.face_id}" width="128" height="128" loading="lazy">'
                f'<span class="meta">{escape(when)}</span></a>'
            )
        return f'<div class="grid">{"".join(items)}</div>'

    def static(self) -> None:
        self._save("style.css", STYLE)
        self._save("app.js", SCRIPT)


def _date_range(person: PersonExport) -> str:
    """First and last date taken, each kept on one line; the line may break only between them."""
    first, last = person.dates
    if not first:
        return "no dates taken"
    a, b = escape(first[:10]), escape((last or first)[:10])
    if a == b:
        return f'<span class="date">{a}</span>'
    return f'<span class="date">{a}</span> – <span class="date">{b}</span>'


def _taken(face: ExportFace) -> tuple[str, str]:
    """What a face's card says about the date, and the longer note for its tooltip."""
    if not face.taken:
        return "date unknown", "date unknown"
    if face.taken_source == "exif":
        return face.taken[:10], f"taken {face.taken[:19]}"
    # No date in the photo: the scan fell back to the file's time, which is when it was copied, not taken.
    return f"file date {face.taken[:10]}", f"no date in the photo; file date {face.taken[:19]}"


def square_thumbnail(data: bytes, face: ExportFace) -> bytes:
    """The stored crop made square; returns `data` itself when it already is.

    A face near the photo's edge has a crop cut short on that side. It is
    padded on that side by repeating its edge pixels, so the face stays where
    the card expects it and no blank bar shows.

    Example:
        square_thumbnail(store.thumb(face.face_id), face)
    """
    import numpy as np
    from PIL import Image

    if not _near_an_edge(face):
        return data  # the crop was not cut: no need to open it (this keeps a rerun with 20,000 faces fast)
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG"])  # our own thumbnails: nothing else is tried
        width, height = image.size
        if width == height:
            return data
        pixels = np.asarray(image.convert("RGB"))
    except Exception:  # a crop PIL cannot read is shown as it is, rather than not at all
        return data
    x, y, w, h = face.box
    side = max(w, h) * 1.4  # the margin scan.face_thumbnail cut around the face
    before_x = _cut_before(x + w / 2, side, face.width)
    before_y = _cut_before(y + h / 2, side, face.height)
    extra_x, extra_y = max(0, height - width), max(0, width - height)
    pad_x = (round(extra_x * before_x), extra_x - round(extra_x * before_x))
    pad_y = (round(extra_y * before_y), extra_y - round(extra_y * before_y))
    square = np.pad(pixels, (pad_y, pad_x, (0, 0)), mode="edge")
    out = io.BytesIO()
    Image.fromarray(square).save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def _near_an_edge(face: ExportFace) -> bool:
    """Whether scan's square crop around the face reached past (or to within a pixel of) the photo's edge."""
    if not face.width or not face.height:
        return True
    x, y, w, h = face.box
    half = max(w, h) * 1.4 / 2
    cx, cy = x + w / 2, y + h / 2
    return cx - half < 1 or cy - half < 1 or cx + half > face.width - 1 or cy + half > face.height - 1


def _cut_before(centre: float, side: float, limit: int | None) -> float:
    """Which share of the missing margin was cut on the low side (left or top): 1, 0, or in between."""
    low = max(0.0, side / 2 - centre)
    high = max(0.0, centre + side / 2 - (limit or 0)) if limit else 0.0
    return 0.5 if low + high == 0 else low / (low + high)


def _paginate(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _pager(pages: list, current: int, page_name: Callable[[int], str]) -> str:
    if len(pages) <= 1:
        return ""
    links = []
    for n in range(1, len(pages) + 1):
        links.append(f"<b>{n}</b>" if n == current else f'<a href="{page_name(n)}">{n}</a>')
    return f'<nav class="pager">Page {" ".join(links)}</nav>'


def _index_page(n: int) -> str:
    return "index.html" if n == 1 else f"index-{n}.html"


def _person_page(person_id: int, n: int) -> str:
    return f"person-{person_id}.html" if n == 1 else f"person-{person_id}-{n}.html"


def _unclustered_page(n: int) -> str:
    return "unclustered.html" if n == 1 else f"unclustered-{n}.html"


def _url_part(part: str) -> str:
    """Percent-encoding of the path's own bytes: a name that is not UTF-8 still links to its file."""
    from urllib.parse import quote

    return quote(part, errors="surrogateescape") if part != ".." else part


NO_THUMB_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128"><rect width="128" height="128" fill="#ddd"/>'
    '<text x="64" y="70" font-size="14" text-anchor="middle" fill="#666">no picture</text></svg>\n'
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · facecluster</title>
<link rel="stylesheet" href="style.css">
<link rel="icon" href="data:,">
</head>
<body>
{body}
<script src="app.js"></script>
</body>
</html>
"""

STYLE = """body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #fafafa; color: #222; }
h1 { margin: 0.2rem 0 0.5rem; }
a { color: #0b57d0; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; margin: 1rem 0; }
.card, .face { display: flex; flex-direction: column; width: 140px; padding: 6px; background: #fff;
  border: 1px solid #ddd; border-radius: 8px; text-decoration: none; color: inherit; }
.card.named { border-color: #0b57d0; }
.card img, .face img { width: 128px; height: 128px; object-fit: cover; border-radius: 4px; background: #eee; }
.name { font-weight: 600; margin-top: 4px; overflow-wrap: anywhere; }
.meta { font-size: 0.8rem; color: #666; }
.tag { font-size: 0.7rem; background: #eee; border-radius: 4px; padding: 0 4px; }
.pager a, .pager b { margin: 0 4px; }
.command code { background: #eee; padding: 2px 6px; border-radius: 4px; }
.date { white-space: nowrap; }
"""

SCRIPT = r"""// Naming a group: the command follows the name typed, quoted for a POSIX shell.
function quoted(text) {
  if (/^[A-Za-z0-9_.,:+@%\/=-]+$/.test(text) && text[0] !== '-') return text;
  return "'" + text.replace(/'/g, "'\"'\"'") + "'";
}
function command() {
  var code = document.getElementById('cmd'), input = document.getElementById('name');
  var name = input ? input.value.trim() : '';
  if (!code) return '';
  var base = code.getAttribute('data-command');
  if (!name) return base + ' ';
  return base + (name[0] === '-' ? ' -- ' : ' ') + quoted(name);
}
document.addEventListener('input', function (event) {
  if (event.target.id !== 'name') return;
  var code = document.getElementById('cmd');
  var text = command();
  code.textContent = text.trim() === code.getAttribute('data-command') ? text + 'NAME' : text;
});
document.addEventListener('click', function (event) {
  var button = event.target.closest('button.copy');
  if (!button) return;
  var text = command();
  function done() { button.textContent = 'Copied'; setTimeout(function () { button.textContent = 'Copy'; }, 1500); }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(); });
  } else { fallback(); }
  function fallback() {
    var area = document.createElement('textarea');
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand('copy'); done(); } catch (e) { button.textContent = 'Select and copy'; }
    document.body.removeChild(area);
  }
});
"""
