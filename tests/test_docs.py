"""The docs keep up with the code: every command, table and column is described."""

import re
import sqlite3
import subprocess
from pathlib import Path

from facecluster.cli import cli
from facecluster.store import Store

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_command_is_documented():
    """Each command has a section, and each of its options is described in that section
    (an alias such as `list` in the section of the command it stands for)."""
    text = (DOCS / "commands.md").read_text()
    for name, command in cli.commands.items():
        assert re.search(rf"^## {name}$", text, re.M), f"docs/commands.md has no section for `{name}`"
        section = re.split(rf"^## {command.name}$", text, flags=re.M)[1].split("\n## ", 1)[0]
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in section, f"docs/commands.md does not mention {opt} in the section of `{command.name}`"
        assert "Example:" in (command.help or ""), f"`{name}` has no Example: in its help"


def test_every_table_and_column_is_documented(tmp_path):
    Store(tmp_path / "x.db").close()
    text = (DOCS / "schema.md").read_text()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%'"
        )]
        for table in tables:
            assert f"## {table}" in text, f"docs/schema.md has no section for table {table}"
            section = text.split(f"## {table}", 1)[1].split("\n## ", 1)[0]
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]:
                assert re.search(rf"^\| {column} \|", section, re.M), f"docs/schema.md: {table}.{column} undocumented"


def test_ci_runs_the_readme_test_command():
    awk = "/<!-- test-command -->/{found=1; next} found && !/^```/ && NF {print; exit}"
    command = subprocess.run(["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True).stdout.strip()
    assert "pip install" in command and "pytest" in command
    assert awk in (ROOT / ".ci" / "run").read_text()


def test_licences_are_stated():
    models = (DOCS / "models.md").read_text()
    assert "non-commercial research only" in models
    assert "MIT" in models and "Apache-2.0" in models
