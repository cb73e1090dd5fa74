"""People: names, merges, ignores and "not this person".

Every correction a user makes (from the CLI or the review page) is one of
these functions. Grouping (grouping.py) reads the decisions they record and
never undoes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from facecluster.errors import PeopleError
from facecluster.naming_rules import MAX_ID, clean_name, group_number, is_text, name_order, plural
from facecluster.store import PersonFace, PersonRow, PersonSummary, Store


class NothingToDo(PeopleError):
    """The correction asked for is already so (unset an unnamed group, show a shown one): nothing
    was changed and nothing was recorded for undo. Not an error: the message says what is so."""


# ---- naming and corrections ----------------------------------------------------------


def resolve(store: Store, target: str) -> PersonRow:
    """A person by number ("12" or "#12") or name (any case), or a clear error.

    Example:
        resolve(store, "Alice").id
    """
    text = (target or "").strip()
    if not text:
        raise PeopleError("give a group number or a person's name")
    found = matching_people(store, text)
    if not found:
        raise PeopleError(f"no person named {text!r}; see facecluster people")
    if len(found) > 1:
        raise PeopleError(f"{text!r} names {len(found)} people (one per model pack); use the number instead")
    return found[0]


def matching_people(store: Store, text: str) -> list[PersonRow]:
    """The people a group number ("12", "#12") or a name (exact, else any case; one per model pack)
    stands for. An unknown number, or a name that is not UTF-8, is a PeopleError; an unknown name is [].

    Example:
        matching_people(store, "#12")[0].id == 12
    """
    number = group_number(text)
    if number is not None:
        found = store.find_people(str(number)) if 0 < number <= MAX_ID else []
        if not found:
            raise PeopleError(f"no group {number}; see facecluster people")
        return found
    if not is_text(text):
        raise PeopleError(f"no person named {text!r}: the name holds bytes that are not UTF-8")
    return store.find_people(text)


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
            if person.name is None:
                raise NothingToDo(f"Group {person.id} has no name: nothing to do.")
            with store.transaction():
                before = store.snapshot([], rows_only=[person.id])
                store.set_person(person.id, name=None)
                store.log_action("unset", f"Took the name {person.name or '-'} off group {person.id}", before)
            return NameResult(person.id, None, previous_name=person.name)
        name = clean_name(name)
        other = store.person_named(person.model, name)
        with store.transaction():
            if other is not None and other.id != person.id:
                before = store.snapshot([person.id], rows_only=[other.id])  # the target's faces do not change
                moved = store.merge_person(person.id, other.id)
                store.log_action("merge", f"Merged {_label(person)} into {_label(other)}", before)
                return NameResult(other.id, other.name, merged_from=person.id, faces_moved=moved, previous_name=person.name)
            before = store.snapshot([person.id])
            store.set_person(person.id, name=name, ignored=False)
            store.lock_person_faces(person.id)
            if _unchanged(before, store.snapshot([person.id])):  # rolls the transaction back: nothing to undo either
                raise NothingToDo(f"{_label(person)} is {name} already: nothing to do.")
            renamed = f"Renamed {person.name} to {name} (#{person.id})" if person.name else f"Named group {person.id} {name}"
            store.log_action("name", renamed, before)
        return NameResult(person.id, name, previous_name=person.name)


def ignore_person(store: Store, target: str, undo: bool = False) -> PersonRow:
    """Hide a group of strangers (its faces are never offered again), or bring it back.

    Example:
        ignore_person(store, "7")
    """
    with store.writer("ignore"):
        person = resolve(store, target)
        if person.ignored == (not undo):
            state = "already ignored" if person.ignored else "not ignored"
            raise NothingToDo(f"{_label(person) if person.name else f'Group {person.id}'} is {state}: nothing to do.")
        with store.transaction():
            before = store.snapshot([person.id])
            store.set_person(person.id, ignored=not undo)
            if not undo:
                store.lock_person_faces(person.id)
            store.log_action("unignore" if undo else "ignore",
                             f"Showed {_label(person)} again" if undo else f"Ignored {_label(person)}", before)
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
            before = store.snapshot([], face_ids=face_ids)
            grouped = [f for f, p, _ in before["faces"] if p is not None]
            # A face in no group (removed before, or never grouped) has nothing to leave: it is left as it is.
            done = store.reject_faces(grouped) if grouped else []
            done += [(f, None) for f, p, _ in before["faces"] if p is None]
            if grouped:
                names = {row[0]: row[2] for row in before["people"]}
                groups = sorted({p for _, p in done if p is not None})
                where = ", ".join(_label_of(p, names.get(p)) for p in groups)
                store.log_action("remove", f"Took {plural(len(grouped), 'face')} ({_ids(grouped)}) out of {where}", before)
        done.sort(key=lambda pair: face_ids.index(pair[0]))
    missing = sorted(set(face_ids) - {f for f, _ in done})
    if missing:
        removed = sum(1 for _, p in done if p is not None)
        raise PeopleError(f"no face with id {', '.join(map(str, missing))}" + (
            f" ({plural(removed, 'face was', 'faces were')} removed: {_ids(f for f, p in done if p is not None)})" if removed else ""))
    return done


def list_people(store: Store, include_ignored: bool = False) -> list[PersonSummary]:
    """Named people first (by name), then groups by size, then ignored ones if asked.

    Example:
        list_people(Store("library.db"))
    """
    # An unnamed group with no faces left (its faces named elsewhere by names --import) is no one: not listed.
    rows = [p for p in store.people_summaries() if (include_ignored or not p.ignored) and (p.faces or p.name is not None)]
    return sorted(rows, key=lambda p: (p.ignored, p.name is None, name_order(p.name or ""), -p.faces, p.id))


def show_person(store: Store, target: str) -> tuple[PersonRow, list[PersonFace]]:
    """A person's faces with their photos, in date order.

    Example:
        show_person(store, "Alice")
    """
    person = resolve(store, target)
    return person, store.person_faces(person.id)


def unclustered(store: Store) -> int:
    return store.unclustered_count()


# ---- review: merging several groups, suggestions, undo, pages -----------------------------


def _unchanged(before: dict, after: dict) -> bool:
    """Whether two snapshots of the same rows hold the same people, faces and rejections (the
    people's updated_at aside: setting a value to what it was still stamps it)."""
    def rows(snapshot: dict) -> list:
        return [row[:5] for row in snapshot["people"]]

    return rows(before) == rows(after) and before["faces"] == after["faces"] and before["rejections"] == after["rejections"]


def _label(person: PersonRow) -> str:
    return _label_of(person.id, person.name)


def _label_of(person_id: int, name: str | None) -> str:
    """How the action log names a person: "Ann (#12)", or "group 12"."""
    return f"{name} (#{person_id})" if name else f"group {person_id}"


def _ids(ids) -> str:
    ids = sorted(ids)
    return ", ".join(map(str, ids[:8])) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def merge_people(store: Store, targets: list[str], name: str | None = None) -> NameResult:
    """Merge several groups into one person, optionally naming it.

    The faces go to the person named `name` where one exists (as `name` does), else to the one
    named person among the targets, else to the largest group. Two differently named people are
    not merged: which name wins is the user's call (name one with the other's name). Merged
    unnamed groups stay one group until the next `group`, which may split them again; a name
    makes the merge permanent.

    Example:
        merge_people(store, ["12", "15", "31"], name="Alice")
    """
    with store.writer("merge"):
        people: dict[int, PersonRow] = {}
        for target in targets:
            person = resolve(store, target)
            people.setdefault(person.id, person)
        if len(people) < 2 and name is None:
            raise PeopleError("choose at least two groups to merge")
        models = {p.model for p in people.values()}
        if len(models) > 1:
            raise PeopleError(f"these groups hold faces of different model packs ({', '.join(sorted(models))}); they cannot be merged")
        model = models.pop()
        name = clean_name(name) if name is not None else None
        # Every named person involved: those ticked, and the one the typed name belongs to. Two of them
        # are two people the user told apart; which name wins is theirs to say (docs/review.md), typed name or not.
        named = {p.id: p for p in people.values() if p.name is not None}
        owner = store.person_named(model, name) if name is not None else None
        if owner is not None:
            named.setdefault(owner.id, owner)
        if len(named) > 1:
            names = sorted((p.name for p in named.values()), key=name_order)
            raise PeopleError(f"{', '.join(names[:-1])} and {names[-1]} are different people: they are not merged. "
                              "If they are one person, name one of them with the other's name")
        if named:
            into = next(iter(named.values()))
        else:
            into = min(people.values(), key=lambda p: (-store.face_count(p.id), p.id))
        sources = [p for p in people.values() if p.id != into.id]
        if not sources and into.name == name:
            raise NothingToDo(f"{_label(into)} is {name} already: nothing to do.")
        moved = 0
        with store.transaction():
            # Naming locks the faces `into` already has: then they are part of what undo restores.
            locks = into.name is None and name is not None
            before = store.snapshot([p.id for p in sources] + [into.id] * locks, rows_only=[into.id])
            for source in sources:
                moved += store.merge_person(source.id, into.id)
            final = into.name
            if name is not None and into.name != name:
                store.set_person(into.id, name=name, ignored=False)
                final = name
            if final is not None:
                store.lock_person_faces(into.id)
            label = _label_of(into.id, final)
            what = ", ".join(_label(p) for p in sources) or _label(into)
            store.log_action("merge", f"Merged {what} into {label}" if sources else f"Named group {into.id} {final}", before)
        return NameResult(into.id, final, merged_from=sources[0].id if sources else None, faces_moved=moved,
                          previous_name=into.name)


def answer_suggestion(store: Store, target: str, face_id: int, yes: bool) -> str:
    """The user's answer to "is this face Alice?": yes moves the face to her (for good), no records
    a rejection that grouping respects (and takes the face out of her if it was hers). Returns a
    sentence saying what was done.

    Example:
        answer_suggestion(store, "Alice", 1234, yes=True)
    """
    with store.writer("suggestion"):
        person = resolve(store, target)
        face = store.face_row(face_id)
        if face is None:
            raise PeopleError(f"no face with id {face_id}")
        if face.model != person.model:
            raise PeopleError(f"face {face_id} was found by the {face.model} pack, {_label(person)} by {person.model}")
        with store.transaction():
            before = store.snapshot([], face_ids=[face_id], rows_only=[person.id])
            if yes:
                store.drop_rejection(face_id, person.id)
                store.assign_faces([(person.id, "user", face_id)])
                done = f"Face {face_id} is {_label(person)}"
            else:
                store.add_rejection(face_id, person.id)
                if face.person_id == person.id:
                    store.assign_faces([(None, "removed", face_id)])
                done = f"Face {face_id} is not {_label(person)}"
            if _unchanged(before, store.snapshot([], face_ids=[face_id], rows_only=[person.id])):  # rolls back
                raise NothingToDo(f"{done} already: nothing to do.")
            store.log_action("yes" if yes else "no", done, before)
        return done


def answer_same(store: Store, first: str, second: str, yes: bool) -> str:
    """The user's answer to "are these two the same person?" (people or groups, by number or name).

    Yes merges them (as `merge_people`: into the named one, else the larger group). No is
    remembered as a cannot-link: grouping never puts them together again and the question is
    never asked again; where one of them is named, the other's faces are also refused for that
    person, so none of them joins it by itself later. Returns a sentence saying what was done.

    Example:
        answer_same(store, "Alice", "12", yes=False)
    """
    if yes:
        merged = merge_people(store, [first, second])
        return f"Merged into {_label_of(merged.person_id, merged.name)}"
    with store.writer("different"):
        a, b = resolve(store, first), resolve(store, second)
        if a.id == b.id:
            raise PeopleError(f"{_label(a)} is one person; choose two")
        if a.model != b.model:
            raise PeopleError(f"{_label(a)} and {_label(b)} hold faces of different model packs")
        with store.transaction():
            before = store.snapshot([a.id, b.id])
            store.add_cannot_link(a.id, b.id)
            for named, other in ((a, b), (b, a)):
                if named.name is not None and other.name is None:
                    for face in store.person_faces(other.id):
                        store.add_rejection(face.face_id, named.id)
            done = f"{_label(a)} and {_label(b)} are different people"
            store.log_action("different", done, before)
        return done


def not_a_person(store: Store, face_ids: list[int]) -> str:
    """ "Not a person" (a cartoon, a statue, a poster): the faces leave their groups and never form or
    join people again. Undoable. Returns a sentence saying what was done.

    Example:
        not_a_person(store, [1234, 1240])
    """
    if not face_ids:
        raise PeopleError("give at least one face id")
    with store.writer("not a person"):
        with store.transaction():
            before = store.snapshot([], face_ids=face_ids)
            done = store.mark_not_person(face_ids)
            missing = sorted(set(face_ids) - {f for f, _ in done})
            if missing:
                raise PeopleError(f"no face with id {', '.join(map(str, missing))}")
            summary = f"Marked {plural(len(done), 'face')} ({_ids(f for f, _ in done)}) as not a person"
            store.log_action("notperson", summary, before)
        return summary


def give_faces(store: Store, face_ids: list[int], target: str) -> NameResult:
    """Put faces with a person, for good: `target` is a group number or a name; a new name makes a new
    person of these faces. Each face is the user's decision from then on (it anchors the person).

    Example:
        give_faces(store, [1234, 1240], "Alice")
    """
    if not face_ids:
        raise PeopleError("give at least one face id")
    with store.writer("give"):
        return put_faces(store, face_ids, target)


def put_faces(store: Store, face_ids: list[int], target: str) -> NameResult:
    """`give_faces` for a caller that holds the writer lock already (drawn.add_face gives the face it
    has just added in the same transaction). Logged and undoable like `give_faces`.

    Example:
        with store.writer("add face"): put_faces(store, [1234], "Alice")
    """
    try:
        person = resolve(store, target)
    except PeopleError:
        if group_number(target.strip()) is not None:
            raise
        person = None
    rows = {f: store.face_row(f) for f in face_ids}
    missing = sorted(f for f, row in rows.items() if row is None)
    if missing:
        raise PeopleError(f"no face with id {', '.join(map(str, missing))}")
    models = {row.model for row in rows.values()} | ({person.model} if person else set())
    if len(models) > 1:
        raise PeopleError("these faces were found by different model packs; they cannot be one person")
    with store.transaction():
        before = store.snapshot([], face_ids=face_ids, rows_only=[person.id] if person else [])
        if person is None:
            name = clean_name(target)
            person = PersonRow(store.name_person_new(models.pop(), name), "", name, False)
            before["created"] = [person.id]  # undo takes the new person away again
        for face_id in face_ids:
            store.drop_rejection(face_id, person.id)
        store.assign_faces([(person.id, "user", f) for f in face_ids])
        if person.name is not None:
            store.lock_person_faces(person.id)
        store.log_action("give", f"Put {plural(len(face_ids), 'face')} ({_ids(face_ids)}) with {_label(person)}", before)
    return NameResult(person.id, person.name, faces_moved=len(face_ids))


def undo_last(store: Store) -> str:
    """Undo the last correction (from the review page or the CLI): the people and faces it touched
    go back to how they were just before it. Called again, it undoes the one before. Returns what
    was undone.

    Example:
        undo_last(store)  # "Named group 12 Alice"
    """
    with store.writer("undo"):
        action = store.last_action()
        if action is None:
            raise PeopleError("nothing to undo")
        if action.undo is None:
            raise PeopleError(f"{action.summary} ({action.created_at[:16]}) is too old to undo: only the last 50 actions can be")
        with store.transaction():
            # A name the action took away may have been given again since by something that is not an
            # action (names --import, or group reading XMP names): that person is freed of the name,
            # so the restore cannot collide with it, and then joins the person the name comes back to,
            # as naming a group with a taken name merges it. One name, one person.
            holders = _free_names(store, action.undo)
            store.restore(action.undo)
            for holder, into in holders:
                store.merge_person(holder.id, into)
            store.mark_undone(action.id)
        joined = "".join(f"; {_label(holder)}, named since, joined #{into} again" for holder, into in holders)
        return action.summary + joined


def _free_names(store: Store, snapshot: dict) -> list[tuple[PersonRow, int]]:
    """Take off people outside `snapshot` the names `snapshot` gives back (any case); (holder, person the
    name returns to) for each."""
    inside = set(snapshot["person_ids"])
    freed = []
    for person_id, model, name, *_ in snapshot["people"]:
        if name is None:
            continue
        for holder in store.find_people(name):
            if holder.model == model and holder.id not in inside:
                store.set_person(holder.id, name=None)
                freed.append((holder, person_id))
    return freed


def recent_actions(store: Store, limit: int = 10):
    """The last actions, newest first, undone ones marked.

    Example:
        [a.summary for a in recent_actions(store)]
    """
    return store.recent_actions(limit)


@dataclass(frozen=True)
class Page:
    items: list
    number: int  # 1-based
    pages: int
    total: int


def paginate(items: list, number: int, per_page: int) -> Page:
    """One page of `items`; a page number out of range gives the nearest page.

    Example:
        paginate(list(range(250)), 2, 100).items[0] == 100
    """
    number, pages = _page_bounds(len(items), number, per_page)
    return Page(items[(number - 1) * per_page : number * per_page], number, pages, len(items))


def _page_bounds(total: int, number: int, per_page: int) -> tuple[int, int]:
    """(the page number brought into range, the number of pages) for `total` items."""
    pages = max(1, -(-total // per_page))
    return min(max(1, number), pages), pages


SHOWN = ("all", "named", "unnamed", "ignored")
_KEEP = {
    "all": lambda c: not c.ignored,
    "named": lambda c: not c.ignored and c.name is not None,
    "unnamed": lambda c: not c.ignored and c.name is None,
    "ignored": lambda c: c.ignored,
    "everyone": lambda c: True,  # the export's --include-ignored: every card, the ignored ones last
}


def people_cards(store: Store, show: str = "all") -> list[PersonSummary]:
    """The people index's cards (PersonSummary, each with its representative face) in `list_people`'s order:
    named first by name, then groups by size; `show` picks all (not ignored), named, unnamed, ignored or
    everyone. The review page and the static export list these same cards.

    Example:
        [c.face_id for c in people_cards(store, "unnamed")]
    """
    if show not in _KEEP:
        raise PeopleError(f"show must be one of {', '.join(SHOWN)}")
    keep = _KEEP[show]
    # Within each choice but "everyone" `ignored` is the same for every card, so list_people's order is the
    # order asked for; in "everyone" list_people puts the ignored ones last.
    return [c for c in list_people(store, include_ignored=True) if c.faces and keep(c)]


def people_page(store: Store, number: int = 1, per_page: int = 100, show: str = "all") -> Page:
    """A page of `people_cards`.

    Example:
        people_page(store, 1, show="unnamed").items[0].faces
    """
    if show not in SHOWN:
        raise PeopleError(f"show must be one of {', '.join(SHOWN)}")
    return paginate(people_cards(store, show), number, per_page)


def faces_page(store: Store, target: str | None, number: int = 1, per_page: int = 200) -> tuple[PersonRow | None, Page]:
    """A page of one person's faces in date order; target None: the faces in no group (less those marked
    "not a person").

    Example:
        person, page = faces_page(store, "Alice", 2)
    """
    person = resolve(store, target) if target is not None else None
    return person, person_faces_page(store, person.id if person else None, number, per_page)


def person_faces_page(store: Store, person_id: int | None, number: int = 1, per_page: int = 200) -> Page:
    """`faces_page` of a person known by id (None: the faces in no group): what the export pages through.

    Example:
        person_faces_page(store, 12, 2).items[0].path
    """
    if person_id is None:
        total = store.unclustered_count(not_person=False)  # faces marked "not a person" are done with: not listed
    else:
        total = store.face_count(person_id)
    number, pages = _page_bounds(total, number, per_page)
    return Page(store.person_face_rows(person_id, (number - 1) * per_page, per_page), number, pages, total)


def face_detail(store: Store, face_id: int):
    """A face with its photo's path, size and date, and its person (or None).

    Example:
        face, person = face_detail(store, 1234)
    """
    face = store.face_row(face_id)
    if face is None:
        raise PeopleError(f"no face with id {face_id}")
    person = store.find_people(str(face.person_id))[0] if face.person_id is not None else None
    return face, person


def known_names(store: Store) -> list[str]:
    """Every name in use, sorted: what the review offers while typing a name.

    Example:
        known_names(store) == ["Alice", "Bob"]
    """
    return sorted({p.name for p in store.people_rows() if p.name}, key=name_order)


@dataclass(frozen=True)
class PersonChange:
    id: int
    name: str | None
    before: int  # faces before regrouping (0: a new group)
    after: int  # faces after (0: the group is gone)


def compare_people(before: list[PersonSummary], after: list[PersonSummary]) -> list[PersonChange]:
    """What a regroup changed: every person or group whose face count changed, new groups and gone groups.

    Example:
        compare_people(store.people_summaries(), store.people_summaries()) == []
    """
    old = {p.id: p for p in before}
    new = {p.id: p for p in after}
    changes = []
    for pid in sorted(old.keys() | new.keys()):
        a, b = old.get(pid), new.get(pid)
        count_a, count_b = (a.faces if a else 0), (b.faces if b else 0)
        if count_a != count_b:
            changes.append(PersonChange(pid, (b or a).name, count_a, count_b))
    return sorted(changes, key=lambda c: (c.name is None, -abs(c.after - c.before), c.id))
