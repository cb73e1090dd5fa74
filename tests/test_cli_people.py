"""group, people, name, show, ignore, remove: decisions that survive regrouping (real faces)."""

import json
import shutil
import sqlite3

import pytest

from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run

PEOPLE = ["Ben_Affleck", "Elton_John", "Jerry_Seinfeld", "Madonna", "Mindy_Kaling"]




def people(db, *extra):
    return json.loads(ok(db, "people", "--json", *extra).stdout)


def members(db, person_id):
    """Folder (identity) of every face's photo in a person or group."""
    data = json.loads(ok(db, "show", str(person_id), "--json").stdout)
    return [f["photo"].split("/")[-2] for f in data["faces"]]


def group_of(db, identity):
    """The group holding most faces of `identity`."""
    best = max(people(db, "--all"), key=lambda p: members(db, p["id"]).count(identity))
    return best["id"]


@pytest.fixture(scope="module")
def celeb5_train(facedata, tmp_path_factory):
    """celeb5's train photos, scanned and grouped once; each test copies the database."""
    root = tmp_path_factory.mktemp("celeb5")
    library = root / "library"
    for who in PEOPLE:
        (library / who).mkdir(parents=True)
        for photo in sorted((facedata / "celeb5_opencv_course" / who).glob("train_*.jpg")):
            shutil.copy(photo, library / who / photo.name)
    db = root / "template.db"
    ok(db, "scan", "-q", str(library))
    ok(db, "group", "-q")
    return library, db


@pytest.fixture
def lib(celeb5_train, tmp_path):
    library, template = celeb5_train
    db = tmp_path / "faces.db"
    shutil.copy(template, db)
    return library, db


def test_groups_are_the_five_people(lib):
    library, db = lib
    groups = people(db)
    assert len(groups) == 5
    for who in PEOPLE:
        faces = members(db, group_of(db, who))
        assert faces.count(who) / len(faces) > 0.9


def test_alice_keeps_her_name_and_new_photos_strangers_stay_out(celeb5_train, facedata, tmp_path):
    library = shutil.copytree(celeb5_train[0], tmp_path / "library")  # a library of its own to add to
    db = tmp_path / "faces.db"
    ok(db, "scan", "-q", str(library))
    ok(db, "group", "-q")
    alice = group_of(db, "Madonna")
    others = {who: group_of(db, who) for who in PEOPLE if who != "Madonna"}
    ok(db, "name", str(alice), "Alice")

    # New photos of Alice, and of strangers.
    new_alice = sorted((facedata / "celeb5_opencv_course" / "Madonna").glob("val_*.jpg"))
    (library / "new").mkdir()
    for photo in new_alice:
        shutil.copy(photo, library / "new" / f"alice_{photo.name}")
    strangers = sorted((facedata / "lfw_subset_krasserm").glob("*/*.jpg"))[:30]
    (library / "Stranger").mkdir()
    for i, photo in enumerate(strangers):
        shutil.copy(photo, library / "Stranger" / f"{i}_{photo.name}")
    ok(db, "scan", "-q", str(library))
    result = ok(db, "group", "-q")
    assert "joined Alice" in result.stdout

    named = [p for p in people(db) if p["name"] == "Alice"]
    assert [p["id"] for p in named] == [alice]
    folders = members(db, alice)
    assert folders.count("new") >= 0.8 * len(new_alice)
    assert "Stranger" not in folders
    assert set(folders) <= {"Madonna", "new"}
    for who, gid in others.items():  # untouched groups keep their numbers
        assert group_of(db, who) == gid
        faces = members(db, gid)
        assert faces.count(who) / len(faces) > 0.9


def test_merge_survives_regroup(lib):
    library, db = lib
    ben, jerry = group_of(db, "Ben_Affleck"), group_of(db, "Jerry_Seinfeld")
    total = len(members(db, ben)) + len(members(db, jerry))
    ok(db, "name", str(ben), "Pair")
    merged = ok(db, "name", str(jerry), "Pair")
    assert f"Merged group {jerry} into Pair (#{ben})" in merged.stdout
    ok(db, "group", "-q")
    pair = [p for p in people(db) if p["name"] == "Pair"]
    assert len(pair) == 1 and pair[0]["id"] == ben and pair[0]["faces"] == total
    assert jerry not in [p["id"] for p in people(db, "--all")]
    # Renaming renames everywhere; --unset gives the group back.
    ok(db, "name", "Pair", "Duo")
    assert json.loads(ok(db, "show", "Duo", "--json").stdout)["id"] == ben
    ok(db, "name", "Duo", "--unset")
    assert [p["name"] for p in people(db) if p["id"] == ben] == [None]


def test_ignore_survives_regroup(lib):
    library, db = lib
    mindy = group_of(db, "Mindy_Kaling")
    faces = len(members(db, mindy))
    ok(db, "ignore", str(mindy))
    assert mindy not in [p["id"] for p in people(db)]
    ok(db, "group", "-q")
    assert mindy not in [p["id"] for p in people(db)]
    hidden = [p for p in people(db, "--all") if p["id"] == mindy]
    assert hidden and hidden[0]["ignored"] and hidden[0]["faces"] == faces
    ok(db, "ignore", str(mindy), "--undo")
    assert mindy in [p["id"] for p in people(db)]


def test_removed_face_never_rejoins(lib):
    library, db = lib
    elton = group_of(db, "Elton_John")
    ok(db, "name", str(elton), "Elton")
    face = json.loads(ok(db, "show", "Elton", "--json").stdout)["faces"][0]["face_id"]
    result = ok(db, "remove", str(face))
    assert f"Face {face} removed from #{elton}" in result.stdout
    for _ in range(2):
        ok(db, "group", "-q")
        ids = [f["face_id"] for f in json.loads(ok(db, "show", "Elton", "--json").stdout)["faces"]]
        assert face not in ids


def test_unnamed_group_remove_sticks_too(lib):
    library, db = lib
    jerry = group_of(db, "Jerry_Seinfeld")
    face = json.loads(ok(db, "show", str(jerry), "--json").stdout)["faces"][0]["face_id"]
    ok(db, "remove", str(face))
    ok(db, "group", "-q")
    assert group_of(db, "Jerry_Seinfeld") == jerry
    assert face not in [f["face_id"] for f in json.loads(ok(db, "show", str(jerry), "--json").stdout)["faces"]]


def test_a_person_appears_once_per_photo(lib):
    library, db = lib
    with sqlite3.connect(db) as conn:
        dupes = conn.execute(
            "SELECT person_id, photo_id, count(*) FROM faces WHERE person_id IS NOT NULL "
            "GROUP BY person_id, photo_id HAVING count(*) > 1"
        ).fetchall()
    assert dupes == []


def test_people_table_and_unclustered(lib):
    library, db = lib
    result = ok(db, "list")
    assert "5 people and groups" in result.stdout and "faces are not in any group" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["name", "999", "Bob"], "no group 999"),
        (["name", "Nobody", "Bob"], "no person named 'Nobody'"),
        (["name", "1", "   "], "a name cannot be empty"),
        (["show", "12345"], "no group 12345"),
        (["ignore", "Nobody"], "no person named 'Nobody'"),
        (["remove", "99999"], "no face with id 99999"),
    ],
)
def test_people_errors_are_one_line(lib, args, message):
    library, db = lib
    result = run(db, *args)
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_group_on_empty_database(tmp_path):
    result = run(tmp_path / "empty.db", "group")
    assert result.exit_code == 1
    assert "no faces of model pack 'sface' in the database; run facecluster scan first" in result.output


def test_name_needs_a_name_or_unset(tmp_path):
    result = run(tmp_path / "x.db", "name", "3")
    assert result.exit_code == 2 and "give a NAME, or --unset" in result.output
