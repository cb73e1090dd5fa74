"""What every command shares: the core's errors as one line and an exit status, and the opened store.

A sub-command is a FaceclusterCommand (made with `command("name")`), so that a usage problem the
core finds shows that command's usage line, not the top-level one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.markup import escape
from rich.text import Text

from facecluster.cli.output import _printable, err, out
from facecluster.errors import FaceclusterError, UsageProblem
from facecluster.people import NothingToDo
from facecluster.scan import ScanInterrupted
from facecluster.store import Store


EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


@contextmanager
def _user_errors(ctx: click.Context) -> Iterator[None]:
    """The core's exceptions as one line for the user (never a traceback) and an exit status.

    Used by every command with its own context, so that a usage problem the
    core finds shows that command's usage line, not the top-level one.
    """
    try:
        yield
    except click.UsageError as e:
        if e.ctx is None:  # raised by a command's own checks: show that command's usage line
            e.ctx, e.cmd = ctx, ctx.command
        raise
    except ScanInterrupted as e:
        err.print(escape(_printable(str(e))))
        ctx.exit(EXIT_INTERRUPTED)
    except UsageProblem as e:
        raise click.UsageError(_printable(str(e)), ctx) from None
    except NothingToDo as e:  # what the user asked is already so: said, not an error (docs/commands.md)
        out.print(Text(_printable(str(e))))
    except FaceclusterError as e:
        raise click.ClickException(_printable(str(e))) from None
    except sqlite3.Error as e:  # disk full, read-only file, I/O error: the database is left as it was
        raise click.ClickException(_printable(f"database error: {e}")) from None
    except BrokenPipeError:
        raise  # `facecluster show 3 | head`: click's main ends quietly, as other tools do
    except OSError as e:
        message = f"{e.strerror or e}: {e.filename}" if e.filename else str(e)
        raise click.ClickException(_printable(message)) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        ctx.exit(EXIT_INTERRUPTED)


GLOBAL_OPTIONS = ("--db", "--version")


class FaceclusterCommand(click.Command):
    """Every sub-command: the core's errors against this command's usage line."""

    def invoke(self, ctx: click.Context):
        with _user_errors(ctx):
            return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._numbers_as_arguments(ctx, args))
        except click.NoSuchOption as e:
            if e.option_name in GLOBAL_OPTIONS:  # `facecluster people --db x.db`: a common slip
                raise click.NoSuchOption(
                    e.option_name,
                    f"No such option {e.option_name!r} for {ctx.info_name}: global options go before the command, "
                    f"as in: facecluster {e.option_name} ... {ctx.info_name}",
                    ctx=ctx,
                ) from None
            raise


    def _numbers_as_arguments(self, ctx: click.Context, args: list[str]) -> list[str]:
        """`show -1`, `name -3 Bob`, `remove -5`: a negative number is a (wrong) TARGET or face id, for the
        command to refuse in its own words ("no group -1"), not an unknown option "-1".

        Only for commands whose options are all flags: there every word that is no option is an
        argument, so the arguments, in their order, can follow the options after "--".
        """
        if not any(_NEGATIVE.match(a) for a in args) or any(
            isinstance(p, click.Option) and not p.is_flag for p in self.get_params(ctx)
        ):
            return args
        options, arguments = [], []
        for i, arg in enumerate(args):
            if arg == "--":
                arguments += args[i + 1:]
                break
            (options if arg.startswith("-") and not _NEGATIVE.match(arg) else arguments).append(arg)
        return [*options, "--", *arguments]


_NEGATIVE = re.compile(r"-#?\d")  # "-1", "-#1", "-12abc": what no option of ours looks like


class FaceclusterGroup(click.Group):
    """The top-level command; its sub-commands are FaceclusterCommands."""

    command_class = FaceclusterCommand

    def invoke(self, ctx: click.Context):
        with _user_errors(ctx):
            return super().invoke(ctx)


def command(name: str):
    """The decorator for one sub-command, `@command("scan")`: a FaceclusterCommand of that name.

    Example:
        @command("undo")
        @click.pass_context
        def undo_command(ctx): ...
    """
    return click.command(name=name, cls=FaceclusterCommand)


def open_store(ctx: click.Context, write: bool = True) -> Store:
    """The database, for a command that writes (created where missing) or only reads (never created)."""
    store = Store(ctx.find_root().obj, readonly=not write)
    ctx.call_on_close(store.close)  # the last connection out checkpoints the WAL
    return store
