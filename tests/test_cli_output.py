"""What people, show, name, ignore, remove and info print, and how they fail.

Names and paths are shown escaped, never acted on by the terminal; records
are one per line; bad input is one line, never a traceback; usage errors show
the sub-command's usage; names match whatever their case.
"""

import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from facecluster import cli as cli_module
from facecluster.cli import output as cli_output
from facecluster import config
from facecluster.errors import PeopleError
from facecluster.naming_rules import clean_name, group_number
from facecluster.store import Store
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run
from tests.test_cli_people import astronaut_group, face_ids, people, t1_groups

EVIL = "\x1b[31mred\x1b]0;pwned\x07"


@pytest.fixture
def lib(request):
    """A fresh copy of the package-image library's database: 7 groups of 6 faces."""
    return request.getfixturevalue("plib")


def run(db, *args, env=None):
    """cli_run, and the command ended by its own choice: no exception escaped (a traceback in a terminal)."""
    result = cli_run(db, *args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def one_line_error(result, status=1):
    assert result.exit_code == status, result.output
    if status == 1:
        assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


# ---- clean_name: the one check of a name ------------------------------------------------


@pytest.mark.parametrize("bad", [
    "a\x1b[31mb", "bell\x07", "nul\x00l", "del\x7f", "csi\x9b1m", "right\u202eto left", "zero\u200bwidth", "\ufeffbom",
    "bytes\udcff",
])
def test_clean_name_refuses_control_and_invisible_characters(bad):
    with pytest.raises(PeopleError, match="control or invisible|not UTF-8"):
        clean_name(bad)


@pytest.mark.parametrize("bad", ["12", "²", "-1", "+3", "#12", "   ", "x" * 201])
def test_clean_name_refuses_numbers_empty_and_long(bad):
    with pytest.raises(PeopleError):
        clean_name(bad)


def test_clean_name_keeps_real_names():
    assert clean_name("  Alice \t Smith\n") == "Alice Smith"
    assert clean_name("👨\u200d👩\u200d👧 family") == "👨\u200d👩\u200d👧 family"  # emoji joiners are part of the text
    assert clean_name("Zoe\u0301") == "Zoé"  # one NFC form, whichever way it was typed
    assert clean_name("R2-D2") == "R2-D2"


def test_group_number_forms():
    assert [group_number(t) for t in ("12", "#12", "-1", "²", "Alice", "#")] == [12, 12, -1, None, None, None]


def test_name_with_escape_sequences_is_refused(lib):
    library, db = lib
    output = one_line_error(run(db, "name", str(astronaut_group(db)), EVIL))
    assert "U+001B" in output and "\x1b" not in output
    assert all(p["name"] is None for p in people(db))


# ---- terminal escape injection ------------------------------------------------------------


def test_names_and_paths_with_escapes_are_shown_escaped(lib):
    """An old database (or one another tool wrote) holding ESC/OSC/BEL in a name and a path."""
    library, db = lib
    astro = astronaut_group(db)
    face = face_ids(db, astro)[0]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET name = ? WHERE id = ?", [EVIL, astro])
        conn.execute("UPDATE photos SET path = ? WHERE id = (SELECT photo_id FROM faces WHERE id = ?)",
                     [f"/photos/{EVIL}\u202e.jpg", face])
    outputs = [
        ok(db, "people").output,
        ok(db, "show", str(astro)).output,
        ok(db, "remove", str(face_ids(db, astro)[1])).output,
        ok(db, "ignore", str(astro)).output,
        ok(db, "ignore", str(astro), "--undo").output,
        ok(db, "name", str(astro), "Eileen").output,
        one_line_error(run(db, "show", EVIL)),
    ]
    for output in outputs:
        assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output, output
    assert "\\x1b[31mred\\x1b]0;pwned\\x07" in outputs[0] + outputs[1]
    assert "\\u202e.jpg" in outputs[1]
    assert "Renamed \\x1b[31mred" in outputs[5]


# ---- tracebacks from bad input ------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["name", "99999999999999999999999", "Bob"],
    ["show", "99999999999999999999999"],
    ["ignore", "99999999999999999999999"],
    ["remove", "99999999999999999999999"],
    ["name", "²", "Bob"],
    ["show", "²"],
    ["name", "1", "\udcff\udcfe"],  # what Python makes of the bytes \xff\xfe on the command line
    ["show", "\udcff"],
    ["remove", "0"],
])
def test_bad_targets_are_one_line_not_a_traceback(lib, args):
    library, db = lib
    result = run(db, *args)
    assert result.exit_code in (1, 2), result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    if result.exit_code == 1:
        one_line_error(result)


def test_show_minus_one_is_a_group_number(lib):
    library, db = lib
    assert "no group -1" in one_line_error(run(db, "show", "--", "-1"))


# ---- read-only commands never create a database --------------------------------------------


@pytest.mark.parametrize("args", [["people"], ["list"], ["show", "1"], ["info"]])
def test_read_only_commands_create_nothing(tmp_path, args):
    db = tmp_path / "typo" / "faces.db"
    result = run(db, *args)
    assert result.exit_code in (0, 1)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("args", [["export", "--json", "-"], ["export", "--csv", "-"], ["names", "--export", "-"],
                                  ["backup", "{tmp}/copy.db"], ["people"], ["info", "--json"]])
def test_commands_that_only_read_never_create_a_database(tmp_path, args):
    # `export --json -`, `names --export` and `backup` once made a new empty database.
    db = tmp_path / "new.db"
    result = run(db, *[a.format(tmp=tmp_path) for a in args])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    if args[0] != "info":
        assert "no database at" in one_line_error(result)


@pytest.mark.parametrize("args", [["people"], ["show", "1"], ["export", "--json", "-"], ["names", "--export", "-"],
                                  ["backup", "{tmp}/copy.db"]])
def test_commands_that_only_read_leave_an_empty_file_empty(tmp_path, args):
    # A read-only command on a 0-byte file once wrote a whole schema into it.
    db = tmp_path / "empty.db"
    db.touch()
    result = run(db, *[a.format(tmp=tmp_path) for a in args])
    assert "is empty, not a facecluster database yet" in one_line_error(result)
    assert db.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.parametrize("args", [["export", "--json", "{db}", "--force"], ["export", "--csv", "{db}.lock", "--force"],
                                  ["names", "--export", "{link}", "--force"], ["backup", "{db}", "--force"]])
def test_force_never_replaces_the_database_in_use(lib, tmp_path, args):
    # `export --json faces.db --force` renamed a JSON file over the open database.
    library, db = lib
    link = tmp_path / "another-name.db"
    link.symlink_to(db)
    Path(f"{db}.lock").touch()  # the writer lock every command that writes leaves beside the database
    before = db.read_bytes()
    result = run(db, *[a.format(db=db, link=link) for a in args])
    assert result.exit_code == 2 and "is the database in use (or one of its files)" in result.output, result.output
    assert db.read_bytes() == before and link.is_symlink()


def test_a_missing_folder_is_refused_not_made(tmp_path, monkeypatch):
    # `--db /typo/x.db scan` once made the folder and a new database in it: a typo is an
    # error; only the default data folder is made (its first use).
    photos = tmp_path / "photos"
    photos.mkdir()
    db = tmp_path / "typo" / "x.db"
    for args in (["scan", "-q", str(photos)], ["name", "1", "Bob"], ["group"], ["names", "--import", str(db)]):
        message = one_line_error(run(db, *args))
        assert f"folder {db.parent} does not exist: create it first" in message, args
    assert not db.parent.exists()
    data = tmp_path / "data" / "facecluster"
    monkeypatch.setattr(config, "data_dir", lambda: data)
    monkeypatch.delenv("FACECLUSTER_DB", raising=False)
    result = CliRunner().invoke(cli_module.cli, ["scan", "-q", str(photos)])
    assert result.exit_code == 0, result.output
    assert (data / "facecluster.db").is_file()


# ---- one record per line ---------------------------------------------------------------------


@pytest.fixture
def long_paths(lib):
    """Every photo path made longer than a terminal line; returns the astronaut's group and its paths."""
    library, db = lib
    deep = "/" + "/".join(["a-rather-long-folder-name"] * 5)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE photos SET path = ? || path", [deep])
    astro = astronaut_group(db)
    paths = [f["photo"] for f in json.loads(ok(db, "show", str(astro), "--json").stdout)["faces"]]
    assert len(paths) == 6 and all(len(p) > 150 for p in paths)
    return db, astro, paths


def test_piped_output_is_one_record_per_line_with_whole_paths(long_paths):
    db, astro, paths = long_paths
    env = {"COLUMNS": "80"}
    listing = run(db, "people", env=env)
    lines = listing.stdout.splitlines()
    assert len(lines) == 1 + 7 and all(len(line.split("\t")) == 7 for line in lines)
    assert [line.split("\t")[6] for line in lines if line.split("\t")[0] == str(astro)][0] in paths
    assert "people and groups" not in listing.stdout  # the count is a summary: stderr
    shown = run(db, "show", str(astro), env=env)
    lines = shown.stdout.splitlines()
    assert lines[0].split("\t") == ["face", "taken", "box (x, y, w, h)", "photo"]
    assert [line.split("\t")[3] for line in lines[1:]] == paths


def test_terminal_output_keeps_paths_whole_in_a_narrow_terminal(long_paths, monkeypatch):
    db, astro, paths = long_paths
    screen = io.StringIO()
    monkeypatch.setattr(cli_output, "out", Console(file=screen, force_terminal=True, width=40, soft_wrap=True,
                                                   highlight=False, color_system=None))
    ok(db, "show", str(astro))
    lines = screen.getvalue().splitlines()
    assert lines[0].split() == ["face", "taken", "box", "(x,", "y,", "w,", "h)", "photo"]
    assert len(lines) == 7 and [line.endswith(path) for line, path in zip(lines[1:], paths)] == [True] * 6


# ---- usage errors belong to the sub-command ------------------------------------------------


@pytest.mark.parametrize("args,usage,message", [
    (["scan", "/no/such/Picturez"], "scan [OPTIONS]", "folder not found"),
    (["group", "--min-faces", "1"], "group [OPTIONS]", "--min-faces must be at least 2"),
    (["name", "3", "X", "--unset"], "name [OPTIONS]", "NAME ('X') and --unset conflict"),
    (["name", "3"], "name [OPTIONS]", "give a NAME, or --unset"),
    (["people", "--db", "x.db"], "people [OPTIONS]", "global options go before the command"),
    (["remove", "abc"], "remove [OPTIONS]", "'abc' is not a face id"),
])
def test_usage_errors_show_the_sub_commands_usage(tmp_path, args, usage, message):
    result = run(tmp_path / "faces.db", *args)
    assert result.exit_code == 2
    assert result.output.startswith("Usage: ")
    assert usage in result.output.splitlines()[0] and message in result.output  # not the top-level usage line


def test_missing_folder_is_a_usage_error_everywhere(tmp_path):
    ok(tmp_path / "faces.db", "info")
    for args in (["scan", str(tmp_path / "nope")], ["backup", str(tmp_path / "nope" / "b.db")]):
        assert run(tmp_path / "faces.db", *args).exit_code == 2


# ---- wording --------------------------------------------------------------------------------


def test_remove_twice_and_by_name(lib):
    library, db = lib
    astro = astronaut_group(db)
    ok(db, "name", str(astro), "Eileen")
    face = face_ids(db, "Eileen")[0]
    assert f"Face {face} removed from Eileen (#{astro})." in ok(db, "remove", str(face)).stdout
    again = ok(db, "remove", str(face)).stdout
    assert f"Face {face} was not in a group" in again and "no group" not in again


# ---- names that differ only in case are one person --------------------------------------------


def test_names_differing_in_case_are_one_person(lib):
    library, db = lib
    first, second = t1_groups(db)[:2]
    ok(db, "name", str(first), "bald GUY")
    merged = ok(db, "name", str(second), "bald guy")
    assert f"Merged group {second} into" in merged.stdout
    named = [p for p in people(db) if p["name"] is not None]
    assert [(p["id"], p["name"], p["faces"]) for p in named] == [(first, "bald GUY", 12)]  # the first spelling stays
    assert json.loads(ok(db, "show", "BALD guy", "--json").stdout)["id"] == first


def test_xmp_names_are_cleaned_and_matched_in_any_case(lib):
    """Names another app wrote into XMP go through clean_name and join a person of the same name in any case."""
    library, db = lib
    first, second = t1_groups(db)[:2]
    astro = astronaut_group(db)
    ok(db, "name", str(first), "bald guy")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE faces SET xmp_name = ? WHERE person_id = ?", ["BALD  Guy", second])
        conn.execute("UPDATE faces SET xmp_name = ? WHERE person_id = ?", [EVIL, astro])
    ok(db, "group", "-q")
    names = {p["name"]: p for p in people(db) if p["name"] is not None}
    assert list(names) == ["bald guy"] and names["bald guy"]["faces"] == 12


def test_store_matches_names_in_any_case(store):
    store.db.execute("INSERT INTO models (name, fingerprint, dim, licence, first_used) VALUES ('sface', 'x', 128, 'MIT', '')")
    elise = store.name_person_new("sface", "Élise")
    assert store.person_named("sface", "éLISE").id == elise
    assert store.person_named("sface", "E\u0301lise").id == elise  # decomposed form
    assert [p.id for p in store.find_people("ÉLISE")] == [elise]
    assert store.find_people("99999999999999999999999") == [] and store.find_people("\udcff") == []


# ---- info -------------------------------------------------------------------------------------


def test_info_says_where_the_database_is_and_what_it_holds(lib):
    library, db = lib
    ok(db, "name", str(astronaut_group(db)), "Eileen")
    result = ok(db, "info")
    fields = dict(line.split("\t", 1) for line in result.stdout.splitlines())
    assert fields["database"] == str(db.resolve())
    assert fields["photos"] == "12 read, 0 failed"
    assert fields["faces"] == "42 (0 in no group)"
    assert fields["people"] == "1 named, 6 unnamed groups, 0 ignored"
    assert fields["schema"].startswith("m0") and "migrations applied" in fields["schema"]
    assert fields["model pack"].startswith("sface: 42 faces, 128-d embeddings")
    data = json.loads(ok(db, "info", "--json").stdout)
    assert data["faces"] == 42 and data["bytes"] >= db.stat().st_size and data["packs"][0]["name"] == "sface"


def test_info_without_a_database_says_where_it_would_be(tmp_path):
    db = tmp_path / "faces.db"
    result = ok(db, "info")
    assert str(db) in result.stdout and "not created yet" in result.stdout
    assert not db.exists()


def test_info_store_method_on_an_empty_database(tmp_path):
    info = Store(tmp_path / "x.db").info()
    assert (info.photos, info.faces, info.named, info.packs) == (0, 0, 0, [])
    assert info.schema is not None and info.migrations >= 3
