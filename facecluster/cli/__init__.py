"""The command line: parse options, open the store, call one core function, render.

No SQL and no numpy here; nothing else in the package imports click or rich.
Results go to stdout, progress and messages to stderr.

The group `cli` and `main` live here; the commands live in modules by what they work on
(scan.py: scan and group; people.py: the people and their corrections; queries.py: photos,
identify, info, names; export.py: export, backup, review), each made with command.command so
that the core's errors become one line and an exit status (command.py). No module here imports
this one: the commands are added below.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from facecluster import __version__, config
from facecluster.cli.command import EXIT_INTERRUPTED, FaceclusterGroup
from facecluster.cli.export import backup_command, export_command, review_command
from facecluster.cli.output import err
from facecluster.cli.people import (
    add_face_command,
    different_command,
    give_command,
    ignore_command,
    merge_command,
    name_command,
    not_a_person_command,
    people_command,
    remove_command,
    show_command,
    suggest_command,
    undo_command,
)
from facecluster.cli.queries import identify_command, info_command, names_command, photos_command
from facecluster.cli.scan import group_command, scan_command


@click.group(cls=FaceclusterGroup)
@click.version_option(__version__, prog_name="facecluster")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=config.DB_ENV,
    default=None,
    help=f"Database file. Default: ${config.DB_ENV}, else {config.DB_FILENAME} in your data folder.",
)
@click.pass_context
def cli(ctx: click.Context, db: Path | None) -> None:
    """Find the people in your photos, on your own machine.

    Example:

    \b
        facecluster scan ~/Pictures
    """
    ctx.obj = db or config.default_db_path()


# In the order they were written; `facecluster --help` lists them sorted.
for _command in (scan_command, group_command, people_command, name_command, show_command, ignore_command, remove_command,
                 suggest_command, merge_command, different_command, give_command, not_a_person_command, add_face_command,
                 undo_command, info_command, export_command, backup_command, names_command, review_command, photos_command,
                 identify_command):
    cli.add_command(_command)
cli.add_command(people_command, name="list")


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill PID, a service stopping) ends a command as Ctrl-C does


def main() -> None:
    """The `facecluster` command. Ctrl-C or SIGTERM at any point: one line, exit 130, no traceback."""
    try:
        signal.signal(signal.SIGTERM, _terminated)
        cli(prog_name="facecluster")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
