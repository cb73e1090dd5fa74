"""The command line's rough edges: which stream says what, corrections that change nothing, a negative
target, --help's examples, the order of names.

Uses test_review.py's library (19 photos, 4 groups) where people are needed.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from click.testing import CliRunner

from facecluster.cli import cli
from facecluster.naming_rules import name_order
from tests import test_review
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run
from tests.test_review import astronaut_group, people_json, show_json

library, db = test_review.library, test_review.db  # the scanned library and a copy of its database, as in test_review.py


def actions(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT summary FROM actions ORDER BY id")]


# ---- --help ----------------------------------------------------------------------------------


def example_lines(help_text: str) -> list[str]:
    """The command lines under "Example:" in a command's docstring."""
    after = help_text.split("Example:", 1)[1]
    return [line.strip() for line in after.splitlines() if line.strip().startswith("facecluster")]


@pytest.mark.parametrize("name", [None, *sorted(cli.commands)])
def test_help_keeps_each_example_on_its_own_line(name):
    command = cli if name is None else cli.commands[name]
    examples = example_lines(command.help)
    assert examples, f"{name}: no example"
    result = CliRunner().invoke(cli, ([name] if name else []) + ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    shown = [line.strip() for line in result.output.splitlines()]
    for example in examples:
        assert example in shown, f"{name}: {example!r} is not a line of --help:\n{result.output}"
    assert "\b" not in result.output


# ---- streams -------------------------------------------------------------------------------------


def test_results_go_to_stdout_and_summaries_to_stderr(tmp_path, fake_folder, fake_models):  # streams: the fake models do
    db = tmp_path / "x.db"
    scanned = run(db, "scan", "-q", "-j", "1", str(fake_folder))
    assert scanned.exit_code == 0, scanned.output
    # The scan's result is the list of files it could not read, one record a line, and nothing else.
    records = scanned.stdout.splitlines()
    assert records[0] == "file\treason" and len(records) == 4, scanned.stdout
    assert all(line.count("\t") == 1 for line in records)
    assert "Scanned 5 files" in scanned.stderr and "3 files could not be read" in scanned.stderr
    grouped = ok(db, "group", "-q", "--min-faces", "2")
    assert grouped.stdout == "" and "Grouped" in grouped.stderr and "unclustered" in grouped.stderr


# ---- corrections that change nothing ------------------------------------------------------------


def test_a_correction_that_changes_nothing_says_so_and_is_not_history(db):
    groups = [p["id"] for p in people_json(db)]
    face = show_json(db, groups[0])["faces"][0]["face_id"]
    for args, said in [
        (["ignore", str(groups[1]), "--undo"], f"Group {groups[1]} is not ignored: nothing to do."),
        (["name", str(groups[1]), "--unset"], f"Group {groups[1]} has no name: nothing to do."),
    ]:
        result = ok(db, *args)
        assert result.stdout.strip() == said and actions(db) == [], args
    assert "removed from group" in ok(db, "remove", str(face)).stdout
    again = ok(db, "remove", str(face))
    assert f"Face {face} was not in a group: nothing to remove it from." in again.stdout
    ok(db, "ignore", str(groups[2]))
    assert "already ignored: nothing to do" in ok(db, "ignore", str(groups[2])).stdout
    ok(db, "name", str(groups[3]), "Alice")
    assert "is Alice already: nothing to do" in ok(db, "name", "alice", "Alice").stdout
    assert len(actions(db)) == 3, actions(db)  # one remove, one ignore, one name


# ---- a negative number is a target ----------------------------------------------------------------


@pytest.mark.parametrize("args, status, said", [
    (["show", "-1"], 1, "no group -1"),
    (["show", "-1", "--json"], 1, "no group -1"),
    (["show", "--json", "-4"], 1, "no group -4"),
    (["ignore", "-2", "--undo"], 1, "no group -2"),
    (["name", "-3", "Bob"], 1, "no group -3"),
    (["name", "1", "-3"], 1, "looks like a group number"),
    (["remove", "4", "-5"], 2, "'-5' is not a face id"),
    (["show", "--jsn", "3"], 2, "No such option '--jsn'"),  # a mistyped option stays one
])
def test_a_negative_number_is_a_target_not_an_option(db, args, status, said):
    result = run(db, *args)
    assert result.exit_code == status, result.output
    assert said in result.output and not re.search(r"No such option '-\d", result.output)


# ---- names in order ------------------------------------------------------------------------------


def test_names_sort_ignoring_accents_and_case_whatever_the_locale():
    names = ["Sheldon", "Élton", "eli", "Zoë", "Émile", "adam", "Øyvind", "Ångström", "ellen", "Eli"]
    assert sorted(names, key=name_order) == ["adam", "Ångström", "Eli", "eli", "ellen", "Élton", "Émile", "Øyvind", "Sheldon", "Zoë"]


def test_people_lists_elton_before_sheldon(db, tmp_path):
    groups = [p["id"] for p in people_json(db)]
    for group, name in zip(groups, ["Sheldon", "Zoë", "Élton", "adam"]):
        ok(db, "name", str(group), name)
    expected = ["adam", "Élton", "Sheldon", "Zoë"]
    assert [p["name"] for p in people_json(db)] == expected
    assert [line.split("\t")[1] for line in ok(db, "people").stdout.splitlines()[1:]] == expected
    exported = json.loads(ok(db, "export", "--json", "-").stdout)
    assert [p["name"] for p in exported["people"]] == expected
    assert astronaut_group(db)["name"] in expected
