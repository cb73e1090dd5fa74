"""A static review site: opens from disk in any browser, no server, no network.

index.html (paginated) has a card per person and unnamed group; each person
has pages of face thumbnails linking to the original photos by relative
paths; unclustered faces have pages of their own. Thumbnails come from the
faces stored by `scan` and are written once: a rerun reuses them.
Every user-supplied string (names, paths) is HTML-escaped.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from facecluster.errors import FaceclusterError
from facecluster.export import Collection, PersonExport, collect, representative
from facecluster.store import ExportFace, Store

CARDS_PER_PAGE = 200
FACES_PER_PAGE = 500


@dataclass
class HtmlSummary:
    folder: Path
    people: int
    pages: int
    thumbs_written: int
    thumbs_reused: int


def export_html(store: Store, folder: Path, include_ignored: bool = False,
                progress: Callable[[str], None] | None = None) -> HtmlSummary:
    """Write the review site into `folder` (created if needed).

    Example:
        export_html(Store("library.db"), Path("facecluster-html"))
    """
    say = progress or (lambda message: None)
    folder = Path(folder)
    try:
        (folder / "thumbs").mkdir(parents=True, exist_ok=True)
        probe = folder / ".facecluster-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise FaceclusterError(f"cannot write to {folder}: {e.strerror or e}") from None
    everyone = collect(store, include_ignored)
    writer = _SiteWriter(store, folder.resolve())
    say(f"writing {len(everyone.people)} people")
    cards = []
    for person in everyone.people:
        face = representative(store, person.faces)
        cards.append((person, writer.thumb(face)))
        writer.person_pages(person)
    writer.unclustered_pages(everyone.unclustered)
    writer.index_pages(cards, everyone)
    writer.static()
    return HtmlSummary(folder, len(everyone.people), writer.pages, writer.written, writer.reused)


class _SiteWriter:
    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.pages = self.written = self.reused = 0

    def thumb(self, face: ExportFace) -> str:
        """Relative URL of the face's thumbnail, writing the file only if it is not there yet."""
        data = self.store.thumb(face.face_id) or b""
        # The checksum in the name ties the file to the crop: a face id reused by
        # SQLite after a deletion cannot show a stale picture.
        name = f"thumbs/{face.face_id}-{zlib.crc32(data):08x}.jpg"
        path = self.folder / name
        if path.exists():
            self.reused += 1
        else:
            path.write_bytes(data)
            self.written += 1
        return name

    def photo_link(self, face: ExportFace) -> str:
        relative = os.path.relpath(face.path, self.folder)
        return "/".join(_url_part(p) for p in relative.split(os.sep))

    def write(self, name: str, title: str, body: str) -> None:
        page = PAGE.format(title=escape(title), body=body)
        (self.folder / name).write_text(page, encoding="utf-8")
        self.pages += 1

    def index_pages(self, cards: list[tuple[PersonExport, str]], everyone: Collection) -> None:
        pages = _paginate(cards, CARDS_PER_PAGE)
        named = sum(1 for p, _ in cards if p.name)
        for number, chunk in enumerate(pages, 1):
            items = []
            for person, thumb in chunk:
                first, last = person.dates
                dates = f"{(first or '')[:10]} – {(last or '')[:10]}" if first else "no dates"
                css = "card named" if person.name else "card"
                ignored = ' <span class="tag">ignored</span>' if person.ignored else ""
                items.append(
                    f'<a class="{css}" href="{_person_page(person.id, 1)}">'
                    f'<img src="{thumb}" alt="" width="128" height="128" loading="lazy">'
                    f'<span class="name">{escape(person.label)}{ignored}</span>'
                    f'<span class="meta">{len(person.faces)} faces · {person.photos} photos</span>'
                    f'<span class="meta">{escape(dates)}</span></a>'
                )
            header = (
                f"<h1>People</h1><p>{named} named, {len(cards) - named} unnamed groups, "
                f'<a href="{_unclustered_page(1)}">{len(everyone.unclustered)} unclustered faces</a>.</p>'
            )
            body = header + _pager(pages, number, _index_page) + f'<div class="grid">{"".join(items)}</div>'
            self.write(_index_page(number), "People", body + _pager(pages, number, _index_page))

    def person_pages(self, person: PersonExport) -> None:
        pages = _paginate(person.faces, FACES_PER_PAGE)
        first, last = person.dates
        header = f'<p><a href="index.html">All people</a></p><h1>{escape(person.label)}</h1>'
        header += f"<p>{len(person.faces)} faces in {person.photos} photos"
        header += f", {escape((first or '')[:10])} – {escape((last or '')[:10])}</p>" if first else "</p>"
        if person.name is None:
            command = f'facecluster name {person.id} "..."'
            header += (
                f'<p class="command">Name this group: <code id="cmd">{escape(command)}</code> '
                f'<button type="button" class="copy" data-copy="{escape(command)}">Copy</button></p>'
            )
        for number, chunk in enumerate(pages, 1):
            body = header + _pager(pages, number, lambda n: _person_page(person.id, n))
            body += self.faces_grid(chunk)
            self.write(_person_page(person.id, number), person.label, body)

    def unclustered_pages(self, faces: list[ExportFace]) -> None:
        pages = _paginate(faces, FACES_PER_PAGE)
        for number, chunk in enumerate(pages, 1):
            body = (
                '<p><a href="index.html">All people</a></p><h1>Unclustered faces</h1>'
                f"<p>{len(faces)} faces in no group: too small or unsure to group, or seen too few times.</p>"
            )
            body += _pager(pages, number, _unclustered_page) + self.faces_grid(chunk)
            self.write(_unclustered_page(number), "Unclustered faces", body)

    def faces_grid(self, faces: list[ExportFace]) -> str:
        items = []
        for face in faces:
            title = f"{face.path} · {(face.taken or '')[:19]} · face {face.face_id}"
            items.append(
                f'<a class="face" href="{escape(self.photo_link(face))}" title="{escape(title)}">'
                f'<img src="{self.thumb(face)}" alt="face {face.face_id}" width="128" height="128" loading="lazy">'
                f'<span class="meta">{escape((face.taken or "")[:10])}</span></a>'
            )
        return f'<div class="grid">{"".join(items)}</div>'

    def static(self) -> None:
        (self.folder / "style.css").write_text(STYLE, encoding="utf-8")
        (self.folder / "app.js").write_text(SCRIPT, encoding="utf-8")


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
    from urllib.parse import quote

    return quote(part, errors="surrogateescape") if part != ".." else part


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
"""

SCRIPT = """document.addEventListener('click', function (event) {
  var button = event.target.closest('button.copy');
  if (!button) return;
  var text = button.getAttribute('data-copy');
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
