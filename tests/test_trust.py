"""Names a user can trust: only the user's decisions pull faces into a person, and a regroup with
nothing new changes nothing (a property on random embeddings, and real faces)."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facecluster import people
from facecluster.grouping import GroupOptions, plan_groups, settle
from facecluster.store import GroupingInputs, PersonRow, Store
from facecluster.suggestions import likelihood, same_person_pairs, suggest
from tests.conftest import cli_ok


def apply(data: GroupingInputs, settled, next_id: int) -> tuple[GroupingInputs, int]:
    """What `group` writes, as new inputs: joins are automatic members, groups keep or get numbers."""
    person_ids = data.person_ids.copy()
    anchored = data.anchored.copy()
    people_rows = {p: r for p, r in data.people.items() if p not in settled.gone}
    row_of = {int(f): i for i, f in enumerate(data.face_ids.tolist())}
    for face, person in settled.joined:
        person_ids[row_of[face]], anchored[row_of[face]] = person, False
    for number, members in settled.groups:
        if number is None:
            number, next_id = next_id, next_id + 1
            people_rows[number] = PersonRow(number, "sface", None, False)
        for face in members:
            person_ids[row_of[face]], anchored[row_of[face]] = number, False
    for face in settled.unplaced:
        person_ids[row_of[face]] = -1
    return replace(data, person_ids=person_ids, anchored=anchored, people=people_rows), next_id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 14), min_size=2, max_size=7),
    spread=st.floats(0.02, 0.25),
    named=st.lists(st.booleans(), min_size=7, max_size=7),
    seed=st.integers(0, 2**16),
)
def test_regroup_is_a_fixed_point(sizes, spread, named, seed):
    """Group, name some groups, then regroup: the second regroup with nothing new moves nothing."""
    rng = np.random.default_rng(seed)
    dim = 16
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + rng.normal(0, spread * 4, (n, dim)) for c, n in zip(centres, sizes)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    photos = rng.integers(0, max(2, n * 3 // 4), n)  # some photos hold several faces
    data = GroupingInputs(
        face_ids=np.arange(1, n + 1, dtype=np.int64), photo_ids=photos.astype(np.int64),
        sizes=np.full(n, 100.0), scores=np.full(n, 0.9), person_ids=np.full(n, -1, np.int64),
        embeddings=x, people={}, rejections=set(), anchored=np.zeros(n, bool), excluded=np.zeros(n, bool),
    )
    options = GroupOptions()
    data, next_id = apply(data, settle(data, plan_groups(data, options)), 1)
    # The user names some groups: their faces become anchors.
    for i, (number, row) in enumerate(sorted(data.people.items())):
        if named[i % len(named)]:
            data.people[number] = replace(row, name=f"P{number}")
            data.anchored[data.person_ids == number] = True
    first, next_id = apply(data, settle(data, plan_groups(data, options)), next_id)
    again = settle(first, plan_groups(first, options))
    second, _ = apply(first, again, next_id)
    assert second.person_ids.tolist() == first.person_ids.tolist()
    assert all(number is not None for number, _ in again.groups)  # every group kept its number
    assert again.gone == []


def test_likelihood_words_follow_the_calibration():
    levels = ((0.8, "very likely"), (0.9, "likely"), (1.0, "possible"))
    assert [likelihood(d, levels) for d in (0.5, 0.85, 0.95, 1.05)] == ["very likely", "likely", "possible", None]


# ---- real faces -------------------------------------------------------------------------------------

LOOKALIKES = ("Leonardo_DiCaprio", "Brad_Pitt", "Angelina_Jolie", "Megan_Fox")


@pytest.fixture(scope="module")
def lookalike_db(tmp_path_factory, facedata):
    """Four look-alike people of celebrity17 (24 photos each), scanned and grouped once."""
    root = tmp_path_factory.mktemp("lookalikes")
    library = root / "library"
    for who in LOOKALIKES:
        source = facedata / "celebrity17_kaggle_via_macfaceswap" / who
        (library / who).mkdir(parents=True)
        for photo in sorted(source.glob("*.jpg"))[:24]:
            shutil.copy(photo, library / who / photo.name)
    db = root / "library.db"
    cli_ok(db, "scan", "-q", str(library))
    cli_ok(db, "group", "-q")
    return db


@pytest.fixture
def db(lookalike_db, tmp_path):
    copy = tmp_path / "library.db"
    shutil.copy(lookalike_db, copy)
    return copy


def owners(db) -> dict[int, int | None]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT id, person_id FROM faces").fetchall())


def groups_by_folder(db) -> dict[str, int]:
    """The group most of each person's faces are in."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT p.path, f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id "
                            "WHERE f.person_id IS NOT NULL").fetchall()
    counts: dict[str, dict[int, int]] = {}
    for path, person in rows:
        who = next(w for w in LOOKALIKES if f"/{w}/" in path)
        counts.setdefault(who, {}).setdefault(person, 0)
        counts[who][person] += 1
    return {who: max(c, key=c.get) for who, c in counts.items()}


@pytest.mark.facedata
@pytest.mark.slow
def test_a_named_person_never_absorbs_a_lookalike(db):
    """Name DiCaprio and Jolie, regroup five times: nothing moves, Pitt and Fox keep their groups."""
    groups = groups_by_folder(db)
    assert len(set(groups.values())) == 4, groups
    cli_ok(db, "name", str(groups["Leonardo_DiCaprio"]), "Leonardo DiCaprio")
    cli_ok(db, "name", str(groups["Angelina_Jolie"]), "Angelina Jolie")
    named = owners(db)
    for _ in range(5):
        cli_ok(db, "group", "-q")
        assert owners(db) == named
    after = groups_by_folder(db)
    assert after["Brad_Pitt"] == groups["Brad_Pitt"] and after["Megan_Fox"] == groups["Megan_Fox"]


@pytest.mark.facedata
@pytest.mark.slow
def test_group_twice_changes_nothing(db):
    cli_ok(db, "group", "-q")
    first = owners(db)
    cli_ok(db, "group", "-q")
    assert owners(db) == first


@pytest.mark.facedata
@pytest.mark.slow
def test_different_is_honoured_by_group_and_suggestions(db):
    groups = groups_by_folder(db)
    pitt, leo = groups["Brad_Pitt"], groups["Leonardo_DiCaprio"]
    cli_ok(db, "name", str(leo), "Leonardo DiCaprio")
    # Merge Pitt's group into Leo by hand, then undo: the merge and its undo leave everything as it was.
    before = owners(db)
    cli_ok(db, "merge", str(pitt), "Leonardo DiCaprio")
    cli_ok(db, "undo")
    assert owners(db) == before
    result = cli_ok(db, "different", "Leonardo DiCaprio", str(pitt))
    assert "different people" in result.output
    store = Store(db)
    try:
        assert (min(pitt, leo), max(pitt, leo)) in store.cannot_links()
        assert all(g.b != pitt for g in suggest(store, "Leonardo DiCaprio").groups)
        assert all({s.a, s.b} != {pitt, leo} for s in same_person_pairs(store))
        # Every face of Pitt's group is refused for Leo: none can join him by itself.
        pitt_faces = {f for f, p in owners(db).items() if p == pitt}
        refused = {f for f, p in store.db.execute("SELECT face_id, person_id FROM face_rejections") if p == leo}
        assert pitt_faces <= refused
    finally:
        store.close()
    cli_ok(db, "group", "-q")
    assert owners(db) == before or {f for f, p in owners(db).items() if p == leo} == {f for f, p in before.items() if p == leo}


@pytest.mark.facedata
@pytest.mark.slow
def test_not_a_person_never_groups_again(db):
    groups = groups_by_folder(db)
    fox = groups["Megan_Fox"]
    faces = sorted(f for f, p in owners(db).items() if p == fox)
    cli_ok(db, "not-a-person", *map(str, faces))
    for _ in range(2):
        cli_ok(db, "group", "-q")
        now = owners(db)
        assert all(now[f] is None for f in faces)
    with closing(sqlite3.connect(db)) as conn:
        assert {h for (h,) in conn.execute(f"SELECT assigned FROM faces WHERE id IN ({','.join(map(str, faces))})")} == {"notperson"}
    store = Store(db)
    try:
        assert people.undo_last(store).startswith("Marked")
    finally:
        store.close()
    assert {owners(db)[f] for f in faces} == {fox}


@pytest.mark.facedata
@pytest.mark.slow
def test_give_faces_anchor_a_new_person(db):
    groups = groups_by_folder(db)
    fox = groups["Megan_Fox"]
    faces = sorted(f for f, p in owners(db).items() if p == fox)[:3]
    result = cli_ok(db, "give", *map(str, faces), "--to", "Megan Fox")
    assert "3 faces now with Megan Fox" in result.output
    with closing(sqlite3.connect(db)) as conn:
        assert {h for (h,) in conn.execute(f"SELECT assigned FROM faces WHERE id IN ({','.join(map(str, faces))})")} == {"user"}
    cli_ok(db, "group", "-q")
    # The rest of Fox's group stays a group of its own (a suggestion), not absorbed by the new name.
    now = owners(db)
    assert {now[f] for f in faces} != {fox}
    assert any(p == fox for p in now.values())
    store = Store(db)
    try:
        found = suggest(store, "Megan Fox")
        assert any(g.b == fox for g in found.groups)
    finally:
        store.close()


@pytest.mark.facedata
@pytest.mark.slow
def test_undo_of_give_to_a_new_name_leaves_no_empty_person(db):
    faces = sorted(f for f, p in owners(db).items() if p is not None)[:2]
    before = owners(db)
    cli_ok(db, "give", *map(str, faces), "--to", "Somebody New")
    cli_ok(db, "undo")
    assert owners(db) == before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM people WHERE name = 'Somebody New'").fetchone()[0] == 0
