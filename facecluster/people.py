"""People: names, merges, ignores and "not this person".

Every correction a user makes (from the CLI or the review page) is one of
these functions. Grouping (grouping.py) reads the decisions they record and
never undoes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from facecluster.errors import FaceclusterError
from facecluster.store import PersonFace, PersonRow, PersonSummary, Store


class PeopleError(FaceclusterError):
    """An unknown person, an empty name, nothing to group, ..."""


# ---- naming and corrections ----------------------------------------------------------


def resolve(store: Store, target: str) -> PersonRow:
    """A person by number or name, or a clear error."""
    if not target or not target.strip():
        raise PeopleError("give a group number or a person's name")
    found = store.find_people(target)
    if not found:
        what = f"group {target.strip()}" if target.strip().isdigit() else f"person named {target.strip()!r}"
        raise PeopleError(f"no {what}; see facecluster people")
    if len(found) > 1:
        raise PeopleError(f"{target!r} names {len(found)} people (one per model pack); use the number instead")
    return found[0]


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise PeopleError("a name cannot be empty")
    if cleaned.isdigit():
        raise PeopleError(f"{cleaned!r} looks like a group number; a name needs a letter")
    if len(cleaned) > 200:
        raise PeopleError("a name can be at most 200 characters")
    return cleaned


@dataclass(frozen=True)
class NameResult:
    person_id: int
    name: str | None
    merged_from: int | None = None
    faces_moved: int = 0
    previous_name: str | None = None


def name_person(store: Store, target: str, name: str | None) -> NameResult:
    """Name a group (or rename a person); naming a second group with a taken name merges it.

    `name=None` removes the name: the group becomes an ordinary group again.

    Example:
        name_person(store, "12", "Alice")
    """
    with store.writer("name"):
        person = resolve(store, target)
        if name is None:
            with store.transaction():
                store.set_person(person.id, name=None)
            return NameResult(person.id, None, previous_name=person.name)
        name = clean_name(name)
        other = store.person_named(person.model, name)
        with store.transaction():
            if other is not None and other.id != person.id:
                moved = store.merge_person(person.id, other.id)
                return NameResult(other.id, name, merged_from=person.id, faces_moved=moved, previous_name=person.name)
            store.set_person(person.id, name=name, ignored=False)
            store.lock_person_faces(person.id)
        return NameResult(person.id, name, previous_name=person.name)


def ignore_person(store: Store, target: str, undo: bool = False) -> PersonRow:
    """Hide a group of strangers (its faces are never offered again), or bring it back.

    Example:
        ignore_person(store, "7")
    """
    with store.writer("ignore"):
        person = resolve(store, target)
        with store.transaction():
            store.set_person(person.id, ignored=not undo)
            if not undo:
                store.lock_person_faces(person.id)
        return PersonRow(person.id, person.model, person.name, not undo)


def remove_faces(store: Store, face_ids: list[int]) -> list[tuple[int, int | None]]:
    """"This face is not this person": each face leaves its person and never rejoins it by itself.

    Example:
        remove_faces(store, [1234, 1240])
    """
    if not face_ids:
        raise PeopleError("give at least one face id")
    with store.writer("remove"):
        with store.transaction():
            done = store.reject_faces(face_ids)
    missing = sorted(set(face_ids) - {f for f, _ in done})
    if missing:
        raise PeopleError(f"no face with id {', '.join(map(str, missing))}" + (
            f" (the other {len(done)} were removed)" if done else ""))
    return done


def list_people(store: Store, include_ignored: bool = False) -> list[PersonSummary]:
    """Named people first (by name), then groups by size, then ignored ones if asked.

    Example:
        list_people(Store("library.db"))
    """
    rows = [p for p in store.people_summaries() if include_ignored or not p.ignored]
    return sorted(rows, key=lambda p: (p.ignored, p.name is None, (p.name or "").lower(), -p.faces, p.id))


def show_person(store: Store, target: str) -> tuple[PersonRow, list[PersonFace]]:
    """A person's faces with their photos, in date order.

    Example:
        show_person(store, "Alice")
    """
    person = resolve(store, target)
    return person, store.person_faces(person.id)


def unclustered(store: Store) -> int:
    return store.unclustered_count()
