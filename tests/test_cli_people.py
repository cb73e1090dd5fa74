"""group, people, name, show, ignore, remove: decisions that survive regrouping.

Most tests use a library made from the photos that ship inside the packages
(scikit-image's astronaut, insightface's t1.jpg with six people), so they run
without ../shared/facedata; the two that measure grouping on real labelled
people carry the facedata mark.
"""

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


def face_ids(db, target):
    return [f["face_id"] for f in json.loads(ok(db, "show", str(target), "--json").stdout)["faces"]]


def group_of(db, identity):
    """The group holding most faces of `identity`."""
    best = max(people(db, "--all"), key=lambda p: members(db, p["id"]).count(identity))
    return best["id"]


def astronaut_group(db):
    return group_of(db, "astronaut")


def t1_groups(db):
    return [p["id"] for p in people(db, "--all") if set(members(db, p["id"])) == {"t1"}]


def test_package_library_groups_into_seven_people(plib):
    library, db = plib
    groups = people(db)
    assert len(groups) == 7 and all(p["faces"] == 6 and p["photos"] == 6 for p in groups)
    assert set(members(db, astronaut_group(db))) == {"astronaut"}
    assert len(t1_groups(db)) == 6


def test_merge_survives_regroup(plib):
    library, db = plib
    one, two = astronaut_group(db), t1_groups(db)[0]
    total = len(members(db, one)) + len(members(db, two))
    ok(db, "name", str(one), "Pair")
    merged = ok(db, "name", str(two), "Pair")
    assert f"Merged group {two} into Pair (#{one}): 6 faces moved." in merged.stdout
    ok(db, "group", "-q")
    pair = [p for p in people(db) if p["name"] == "Pair"]
    assert len(pair) == 1 and pair[0]["id"] == one and pair[0]["faces"] == total
    assert two not in [p["id"] for p in people(db, "--all")]
    # Renaming renames everywhere; --unset gives the group back.
    ok(db, "name", "Pair", "Duo")
    assert json.loads(ok(db, "show", "Duo", "--json").stdout)["id"] == one
    ok(db, "name", "Duo", "--unset")
    assert [p["name"] for p in people(db) if p["id"] == one] == [None]


def test_ignore_survives_regroup(plib):
    library, db = plib
    stranger = t1_groups(db)[1]
    faces = len(members(db, stranger))
    result = ok(db, "ignore", str(stranger))
    assert f"Group {stranger} is ignored." in result.stdout
    assert stranger not in [p["id"] for p in people(db)]
    ok(db, "group", "-q")
    assert stranger not in [p["id"] for p in people(db)]
    hidden = [p for p in people(db, "--all") if p["id"] == stranger]
    assert hidden and hidden[0]["ignored"] and hidden[0]["faces"] == faces
    ok(db, "ignore", str(stranger), "--undo")
    assert stranger in [p["id"] for p in people(db)]


def test_removed_face_never_rejoins(plib):
    library, db = plib
    astro = astronaut_group(db)
    ok(db, "name", str(astro), "Eileen")
    face = face_ids(db, "Eileen")[0]
    result = ok(db, "remove", str(face))
    assert f"Face {face} removed from Eileen (#{astro})." in result.stdout
    for _ in range(2):
        ok(db, "group", "-q")
        assert face not in face_ids(db, "Eileen")


def test_unnamed_group_remove_sticks_too(plib):
    library, db = plib
    group = t1_groups(db)[2]
    face = face_ids(db, group)[0]
    result = ok(db, "remove", str(face))
    assert f"Face {face} removed from group {group}." in result.stdout
    ok(db, "group", "-q")
    assert group in t1_groups(db)
    assert face not in face_ids(db, group)


def test_a_person_appears_once_per_photo(plib):
    library, db = plib
    with sqlite3.connect(db) as conn:
        dupes = conn.execute(
            "SELECT person_id, photo_id, count(*) FROM faces WHERE person_id IS NOT NULL "
            "GROUP BY person_id, photo_id HAVING count(*) > 1"
        ).fetchall()
        per_photo = conn.execute("SELECT count(DISTINCT person_id) FROM faces WHERE person_id IS NOT NULL "
                                 "GROUP BY photo_id").fetchall()
    assert dupes == []
    assert sorted({n for (n,) in per_photo}) == [1, 6]  # the astronaut's photos, t1's photos


def test_people_table_and_unclustered(plib):
    library, db = plib
    result = ok(db, "list")
    assert "7 people and groups" in result.stderr and "0 faces are not in any group." in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "name", "faces", "photos", "first", "last", "sample"]
    assert len(lines) == 8 and all(line.split("\t")[1] == "(unnamed)" for line in lines[1:])


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
def test_people_errors_are_one_line(plib, args, message):
    library, db = plib
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


# ---- real labelled people (../shared/facedata) ----------------------------------------


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


@pytest.mark.facedata
def test_groups_are_the_five_people(celeb5_train, tmp_path):
    db = tmp_path / "faces.db"
    shutil.copy(celeb5_train[1], db)
    groups = people(db)
    assert len(groups) == 5
    for who in PEOPLE:
        faces = members(db, group_of(db, who))
        assert faces.count(who) / len(faces) > 0.9


@pytest.mark.facedata
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
    assert "joined Alice" in result.stderr

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


def test_people_dates_are_dates_taken_never_file_dates(plib):
    """These photos carry no EXIF date: a file's copy date must not show as when a person was seen."""
    _, db = plib
    listed = people(db)
    assert listed and all(p["first"] is None and p["last"] is None for p in listed), listed
