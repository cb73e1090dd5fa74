"""names --export / --import: the schema is checked before anything is imported; every name goes through clean_name."""

import json
import os

import pytest

from facecluster.store import Store
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run
from tests.conftest import beside_a_fifo
from tests.test_export import add_photo, make_person

BOX = (100.0, 80.0, 120.0, 140.0)


def fresh_copy(tmp_path, named):
    """A database over the same photos as `named`, with no names (as after a rebuild)."""
    fresh = tmp_path / "fresh.db"
    source = Store(named)
    rows = list(source.db.execute("SELECT path, size, mtime_ns, sha256, width, height, taken, taken_source FROM photos"))
    faces = list(source.db.execute("SELECT photo_id, x, y, w, h, embedding, thumb FROM faces"))
    source.close()
    store = Store(fresh)
    store.register_model("sface", "test", 128, "none")
    with store.transaction():
        store.db.conn.executemany(
            "INSERT INTO photos (path, size, mtime_ns, sha256, width, height, taken, taken_source, status, added_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'ok', '', '')", rows)
        store.db.conn.executemany(
            "INSERT INTO faces (photo_id, model, x, y, w, h, score, size, embedding, thumb) "
            "VALUES (?, 'sface', ?, ?, ?, ?, 0.9, 100, ?, ?)", faces)
    store.close()
    return fresh


def people_of(db) -> dict[str, int]:
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    return {p["name"]: len(p["faces"]) for p in data["people"] if p["name"]}


def named_library(tmp_path, names):
    db = tmp_path / "named.db"
    store = Store(db)
    for i, name in enumerate(names):
        make_person(store, add_photo(store, tmp_path / "photos" / f"{i}.jpg", [BOX]), name)
    store.close()
    return db


def test_names_come_back_after_a_rebuild(tmp_path):
    named = named_library(tmp_path, ["Ann", "Bob"])
    ok(named, "names", "--export", str(tmp_path / "names.json"))
    fresh = fresh_copy(tmp_path, named)
    assert people_of(fresh) == {}
    result = ok(fresh, "names", "--import", str(tmp_path / "names.json"))
    assert result.stdout == "" and "Imported 2 names for 2 faces" in result.stderr
    assert people_of(fresh) == {"Ann": 1, "Bob": 1}


def name_file(tmp_path, document) -> str:
    path = tmp_path / "names.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


KEY = {"photo_sha256": "0" * 64, "box": [1, 2, 3, 4], "model": "sface", "path": "/a.jpg"}
BAD_FILES = {
    "version as text": ({"format": "facecluster-names", "version": "2", "people": []}, '"version" must be a whole number'),
    "newer version": ({"format": "facecluster-names", "version": 2, "people": []}, "newer facecluster"),
    "people as text": ({"format": "facecluster-names", "version": 1, "people": "abc"}, '"people" must be a list'),
    "faces of numbers": ({"format": "facecluster-names", "version": 1, "people": [{"name": "Ann", "faces": [1, 2]}]},
                         "people[0].faces[0] must be an object"),
    "a null person": ({"format": "facecluster-names", "version": 1, "people": [None]}, "people[0] must be an object"),
    "a box with text": ({"format": "facecluster-names", "version": 1,
                         "people": [{"name": "Ann", "faces": [{**KEY, "box": ["a", 1, 2, 3]}]}]},
                        "people[0].faces[0].box must be 4 numbers"),
    "a name that is a number": ({"format": "facecluster-names", "version": 1, "people": [{"name": 7, "faces": []}]},
                                "people[0].name must be text"),
    "a short hash": ({"format": "facecluster-names", "version": 1,
                      "people": [{"name": "Ann", "faces": [{**KEY, "photo_sha256": "abc"}]}]},
                     "photo_sha256 must be 64"),
    "deep nesting": ("[" * 100_000, "nested too deeply"),
    "not JSON": ("{", "not JSON"),
    "another format": ({"format": "something", "people": []}, "not a facecluster name file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_name_file_that_breaks_the_schema_is_one_line_and_imports_nothing(tmp_path, case):
    named = named_library(tmp_path, ["Ann"])
    fresh = fresh_copy(tmp_path, named)
    document, message = BAD_FILES[case]
    result = run(fresh, "names", "--import", name_file(tmp_path, document))
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert people_of(fresh) == {}


def test_imported_names_go_through_clean_name(tmp_path):
    named = named_library(tmp_path, ["Ann", "1", "\x1b[31mred\x07", "x" * 5000, "  Bob   Lee "])  # stored unchecked
    exported = json.loads(ok(named, "names", "--export", "-").stdout)
    assert len(exported["people"]) == 5
    fresh = fresh_copy(tmp_path, named)
    result = ok(fresh, "names", "--import", name_file(tmp_path, exported))
    assert people_of(fresh) == {"Ann": 1, "Bob Lee": 1}
    assert result.stderr.count("not imported:") == 3
    assert "not imported: 1:" in result.stderr and "\x1b" not in result.stderr
    assert "Imported 2 names for 2 faces" in result.stderr
    ok(fresh, "show", "Bob Lee")  # every imported person can be reached by its name


def test_the_import_counts_only_the_faces_it_changed(tmp_path):
    named = named_library(tmp_path, ["Ann", "Bob", "Cy"])
    names = tmp_path / "names.json"
    ok(named, "names", "--export", str(names))
    fresh = fresh_copy(tmp_path, named)
    first = ok(fresh, "names", "--import", str(names))
    assert "Imported 3 names for 3 faces; 0 had that name already" in first.stderr
    # Everything is in place now: an import again changes nothing, and says so.
    again = ok(fresh, "names", "--import", str(names))
    assert "Imported 0 names for 0 faces; 3 had that name already" in again.stderr
    assert "  Ann:" not in again.stderr
    assert people_of(fresh) == {"Ann": 1, "Bob": 1, "Cy": 1}
    # One face given back its name among faces that kept theirs: one counted.
    store = Store(fresh)
    bob = store.find_people("Bob")[0].id
    store.close()
    ok(fresh, "name", str(bob), "--unset")
    third = ok(fresh, "names", "--import", str(names))
    assert "Imported 1 name for 1 face; 2 had that name already" in third.stderr and "  Bob: 1 face" in third.stderr


def test_a_name_file_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path):
    zero = tmp_path / "zero.json"
    os.symlink("/dev/zero", zero)  # read whole, it grew to 24 GB before the kernel stepped in
    db = tmp_path / "faces.db"
    result = run(db, "names", "--import", str(zero))
    assert result.exit_code == 1 and f"cannot read {zero}: a character device, not a regular file" in result.output


def test_a_name_file_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    db = tmp_path / "faces.db"
    fifo = tmp_path / "names.json"
    result, blocked = beside_a_fifo(fifo, lambda: run(db, "names", "--import", str(fifo)))
    assert not blocked  # it waited for a writer for ever before
    assert result.exit_code == 1 and f"cannot read {fifo}: a FIFO (named pipe), not a regular file" in result.output
