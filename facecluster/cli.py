"""The command line: parse options, open the store, call one core function, render.

No SQL and no numpy here; nothing else in the package imports click or rich.
Results go to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from facecluster import __version__, config
from facecluster.errors import FaceclusterError, UsageProblem
from facecluster.models import PACK_NAMES
from facecluster.scan import ScanInterrupted, ScanOptions, ScanProgress, ScanSummary, scan
from facecluster.store import Store

EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class FaceclusterGroup(click.Group):
    """Turns the core's exceptions into one-line messages and exit statuses."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScanInterrupted as e:
            err.print(escape(str(e)))
            ctx.exit(EXIT_INTERRUPTED)
        except UsageProblem as e:
            raise click.UsageError(str(e), ctx) from None
        except FaceclusterError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            ctx.exit(EXIT_INTERRUPTED)


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

        facecluster scan ~/Pictures
    """
    ctx.obj = db or config.default_db_path()


def open_store(ctx: click.Context) -> Store:
    return Store(ctx.find_root().obj)


@cli.command(name="scan")
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--model", default="sface", show_default=True, help=f"Model pack: {', '.join(PACK_NAMES)}, or a folder of ONNX files.")
@click.option("--jobs", "-j", type=int, default=config.default_jobs(), show_default=True, help="Worker processes.")
@click.option("--include-hidden", is_flag=True, help="Also scan hidden files and folders (names starting with '.').")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths or names matching GLOB (repeatable).")
@click.option("--prune", is_flag=True, help="Remove photos that are gone from disk from the database.")
@click.option("--det-size", type=int, default=config.DETECTION_SIZE, show_default=True, help="Detector input size, pixels.")
@click.option("--det-threshold", type=float, default=config.DETECTION_THRESHOLD, show_default=True, help="Detector score threshold.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def scan_command(ctx, roots, model, jobs, include_hidden, exclude, prune, det_size, det_threshold, quiet):
    """Find, align and embed every face under ROOTS and cache it all.

    Unchanged files are skipped; moved files keep their faces; files that
    cannot be read are listed with the reason, never fatal.

    Example:

        facecluster scan ~/Pictures /mnt/photos --exclude '*/Trash/*'
    """
    options = ScanOptions(
        model=model, jobs=jobs, include_hidden=include_hidden, exclude=tuple(exclude), prune=prune,
        det_size=det_size, det_threshold=det_threshold,
    )
    store = open_store(ctx)
    with ProgressView(quiet) as view:
        summary = scan(store, roots, options, progress=view.update)
    render_scan(summary)


class ProgressView:
    """A rich progress bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = not quiet and err.is_terminal
        self.bar: Progress | None = None
        self.last_line = 0.0

    def __enter__(self) -> "ProgressView":
        if self.live:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[faces]} faces"),
                TextColumn("{task.fields[rate]} photos/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err,
            )
            self.bar.start()
            self.task = self.bar.add_task("crawling", total=None, faces=0, rate="-")
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, p: ScanProgress) -> None:
        if self.quiet:
            return
        rate = p.done / p.elapsed if p.elapsed > 0 and p.phase != "crawling" else 0.0
        if self.bar is not None:
            if p.phase == "crawling":
                self.bar.update(self.task, description=f"crawling ({p.seen} files)")
            else:
                self.bar.update(self.task, description="scanning", total=p.total, completed=p.done,
                                faces=p.faces, rate=f"{rate:.1f}")
            return
        now = time.monotonic()
        if p.phase == "scanning" and (now - self.last_line >= 5 or p.done == p.total) and p.total:
            self.last_line = now
            err.print(f"scanning: {p.done}/{p.total} files, {p.faces} faces, {rate:.1f} photos/s")


def render_scan(s: ScanSummary) -> None:
    worked = s.new + s.changed + s.moved + s.failed
    out.print(
        f"Scanned {s.seen} files in {s.seconds:.1f} s ({s.photos_per_second:.1f} photos/s): "
        f"{s.new} new, {s.changed} changed, {s.moved} moved, {s.unchanged} unchanged, {s.failed} failed; "
        f"{s.faces} faces found in {worked - s.failed} photos read."
    )
    if s.failures:
        table = Table(title=f"{len(s.failures)} files could not be read", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for f in s.failures:
            table.add_row(escape(_printable(f.path)), escape(f.reason))
        out.print(table)
    for w in s.warnings:
        err.print(f"warning: {escape(_printable(w.path))}: {escape(w.reason)}")
    if s.missing:
        verb = "removed from the database" if s.pruned else "still in the database (use --prune to remove them)"
        out.print(f"{len(s.missing)} photos are gone from disk, {verb}:")
        for path in s.missing[:20]:
            out.print(f"  {escape(_printable(path))}")
        if len(s.missing) > 20:
            out.print(f"  … and {len(s.missing) - 20} more")


def _printable(path: str) -> str:
    """Paths with undecodable bytes or newlines, shown safely on one line."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8").replace("\n", "\\n")


def main() -> None:
    cli(prog_name="facecluster")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
