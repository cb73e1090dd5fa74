"""Photos by who is in them: "Alice and Bob together", "Alice but not Bob", "only the kids".

`find_photos` turns names into person ids (a name may stand for one person per model pack),
checks dates and folders, and asks the store one question. Unknown names are refused with
one line that offers the nearest known names ("did you mean").
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from datetime import date, datetime

from facecluster.errors import PeopleError, UsageProblem
from facecluster.people import matching_people
from facecluster.store import PhotoFaceRow, PhotoFilter, PhotoHit, Store


@dataclass(frozen=True)
class PhotoQuery:
    """A question about people. Names as the user typed them; dates as YYYY, YYYY-MM or YYYY-MM-DD."""

    with_all: tuple[str, ...] = ()
    with_any: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    only: bool = False
    taken_from: str | None = None
    taken_to: str | None = None
    under: str | None = None
    videos: bool | None = None  # True: videos only; False: leave videos out; None: both


@dataclass
class PhotoResult:
    photo: PhotoHit
    faces: list[PhotoFaceRow] = field(default_factory=list)  # filled with `with_faces`


def find_photos(store: Store, query: PhotoQuery, with_faces: bool = False) -> list[PhotoResult]:
    """The photos matching `query`, oldest first (photos without a date taken last).

    --with: every name must be in the photo; --any: at least one; --without: none;
    --only: nobody recognisable besides the --with and --any people (faces in no group,
    or in an ignored group, are strangers and do not count).

    Example:
        [r.photo.path for r in find_photos(store, PhotoQuery(with_all=("Alice", "Bob")))]
    """
    if query.only and not (query.with_all or query.with_any):
        raise UsageProblem("--only goes with --with or --any: only whom?")
    with_all = [person_ids(store, name) for name in query.with_all]
    with_any = sorted({i for name in query.with_any for i in person_ids(store, name)})
    without = sorted({i for name in query.without for i in person_ids(store, name)})
    asked = {i for ids in with_all for i in ids} | set(with_any)
    clash = asked & set(without)
    if clash:
        raise UsageProblem("a person cannot be both asked for and excluded (--with/--any and --without)")
    taken_from = date_bound(query.taken_from, "--from", end=False) if query.taken_from else None
    taken_to = date_bound(query.taken_to, "--to", end=True) if query.taken_to else None
    if taken_from and taken_to and taken_from >= taken_to:
        raise UsageProblem(f"--from {query.taken_from} is after --to {query.taken_to}")
    under = None
    if query.under is not None:
        if not query.under.strip():
            raise UsageProblem("--under needs a folder name")
        under = os.path.abspath(os.path.expanduser(query.under))
    hits = store.photos_matching(PhotoFilter(
        with_all=with_all, with_any=with_any, without=without, only=sorted(asked) if query.only else None,
        taken_from=taken_from, taken_to=taken_to, under=under, videos=query.videos,
    ))
    results = [PhotoResult(h) for h in hits]
    if with_faces and results:
        faces = store.faces_in_photos([r.photo.id for r in results])
        for r in results:
            r.faces = faces.get(r.photo.id, [])
    return results


def person_ids(store: Store, name: str) -> list[int]:
    """Every person (one per model pack) a name or a group number ("12", "#12") stands for.

    An unknown name raises PeopleError with the nearest known names.

    Example:
        person_ids(store, "alice")  # [3]
    """
    text = (name or "").strip()
    if not text:
        raise UsageProblem("a name cannot be empty")
    found = matching_people(store, text)
    if found:
        return [p.id for p in found]
    known = sorted({p.name for p in store.people_rows() if p.name})
    raise PeopleError(f"no person named {text!r}" + did_you_mean(text, known))


def did_you_mean(text: str, known: list[str]) -> str:
    """ "; did you mean 'Alice'?" (up to three close names), or where to look when none is close.

    Example:
        did_you_mean("Alcie", ["Alice", "Bob"]) == "; did you mean 'Alice'?"
    """
    by_key = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(text.casefold(), list(by_key), n=3, cutoff=0.6)
    if not close:
        # A first or last name alone: "Alice" for "Alice Smith".
        close = [k for k in by_key if text.casefold() in k.split()][:3]
    if not close:
        return "; see facecluster people for the names"
    return "; did you mean " + " or ".join(repr(by_key[k]) for k in close) + "?"


def date_bound(text: str, option: str, end: bool) -> str:
    """The first moment of a YYYY, YYYY-MM or YYYY-MM-DD period (with `end`: the first moment after it),
    as the ISO text photos.taken holds, so that text order is time order.

    Example:
        date_bound("2019-02", "--to", end=True) == "2019-03-01T00:00:00"
    """
    value = text.strip()
    try:
        if len(value) == 4 and value.isdigit():
            start, after = date(int(value), 1, 1), (date(int(value) + 1, 1, 1) if int(value) < 9999 else None)
        elif len(value) == 7:
            first = datetime.strptime(value, "%Y-%m").date()
            start = first
            after = date(first.year + (first.month == 12), first.month % 12 + 1, 1) if first < date(9999, 12, 1) else None
        else:
            start = datetime.strptime(value, "%Y-%m-%d").date()
            after = date.fromordinal(start.toordinal() + 1) if start < date(9999, 12, 31) else None
    except ValueError:
        raise UsageProblem(f"{option} {text!r} is not a date: use YYYY, YYYY-MM or YYYY-MM-DD") from None
    bound = after if end else start
    return bound.isoformat() + "T00:00:00" if bound is not None else "9999-12-31T23:59:60"


def faces_by_year(store: Store, person_id: int) -> str:
    """A person's life at a glance: faces per year taken, oldest first ("2015: 3 · 2016: 12 · no date: 4"),
    so a child's group that should span ten years, or a stranger in the wrong year, shows at once.
    Only the photo's own (EXIF) date counts; faces without one are "no date". "" for no faces.

    Example:
        faces_by_year(store, 3)  # '2015: 3 · 2016: 12 · no date: 4'
    """
    return " · ".join(f"{year or 'no date'}: {count}" for year, count in store.faces_by_year(person_id))
