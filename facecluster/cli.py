"""The command line: parse options, open the store, call one core function, render.

No SQL and no numpy here; nothing else in the package imports click or rich.
Results go to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from facecluster import __version__, config
from facecluster.errors import FaceclusterError, UsageProblem
from facecluster.models import PACK_NAMES
from facecluster.export.html import export_html
from facecluster.export.tables import export_csv, export_json
from facecluster.export.xmp import export_xmp
from facecluster.names import backup, export_names, import_names
from facecluster.grouping import GroupOptions, GroupSummary, group
from facecluster.people import (
    ignore_person,
    list_people,
    name_person,
    remove_faces,
    show_person,
    unclustered,
)
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
        except sqlite3.Error as e:  # disk full, read-only file, I/O error: the database is left as it was
            raise click.ClickException(f"database error: {e}") from None
        except OSError as e:
            raise click.ClickException(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)) from None
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
    store = Store(ctx.find_root().obj)
    ctx.call_on_close(store.close)  # the last connection out checkpoints the WAL
    return store


@cli.command(name="scan")
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--model", default="sface", show_default=True, help=f"Model pack: {', '.join(PACK_NAMES)}, or a folder of ONNX files.")
@click.option("--jobs", "-j", type=int, default=config.default_jobs(), show_default=True, help="Worker processes.")
@click.option("--include-hidden", is_flag=True, help="Also scan hidden files and folders (names starting with '.').")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths or names matching GLOB (repeatable).")
@click.option("--prune", is_flag=True, help="Remove photos that are gone from disk from the database.")
@click.option("--yes", is_flag=True, help="With --prune: also remove gone photos that hold named faces.")
@click.option("--det-size", type=int, default=config.DETECTION_SIZE, show_default=True, help="Detector input size, pixels.")
@click.option("--det-threshold", type=float, default=config.DETECTION_THRESHOLD, show_default=True, help="Detector score threshold.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def scan_command(ctx, roots, model, jobs, include_hidden, exclude, prune, yes, det_size, det_threshold, quiet):
    """Find, align and embed every face under ROOTS and cache it all.

    Unchanged files are skipped; moved files keep their faces; files that
    cannot be read are listed with the reason, never fatal.

    Example:

        facecluster scan ~/Pictures /mnt/photos --exclude '*/Trash/*'
    """
    options = ScanOptions(
        model=model, jobs=jobs, include_hidden=include_hidden, exclude=tuple(exclude), prune=prune, yes=yes,
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

    def __enter__(self) -> ProgressView:
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
    if s.prune_refused:
        out.print(
            f"Not pruned: the {len(s.missing)} photos gone from disk hold {s.prune_refused} named faces. "
            "If they are really gone, run again with --prune --yes to remove them and those names' faces."
        )
    elif s.missing:
        verb = "removed from the database" if s.pruned else "still in the database (use --prune to remove them)"
        out.print(f"{len(s.missing)} photos are gone from disk, {verb}:")
        for path in s.missing[:20]:
            out.print(f"  {escape(_printable(path))}")
        if len(s.missing) > 20:
            out.print(f"  … and {len(s.missing) - 20} more")


@cli.command(name="group")
@click.option("--model", default="sface", show_default=True, help="Which pack's faces to group.")
@click.option("--method", type=click.Choice(["hdbscan", "agglomerative"]), default="hdbscan", show_default=True)
@click.option("--min-faces", type=int, default=config.MIN_GROUP_FACES, show_default=True, help="Smallest group.")
@click.option("--min-samples", type=int, default=config.HDBSCAN_MIN_SAMPLES, show_default=True, help="HDBSCAN min_samples.")
@click.option("--threshold", type=float, default=config.AGGLOMERATIVE_THRESHOLD, show_default=True,
              help="Agglomerative: average-linkage distance cut.")
@click.option("--min-size", type=float, default=config.MIN_CLUSTER_FACE_PIXELS, show_default=True,
              help="Quality gate: faces smaller than this (pixels) stay unclustered.")
@click.option("--min-score", type=float, default=config.MIN_CLUSTER_SCORE, show_default=True,
              help="Quality gate: faces with a lower detection score stay unclustered.")
@click.option("--join-distance", type=float, default=config.JOIN_DISTANCE, show_default=True,
              help="New faces this close to a named person's faces join that person.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def group_command(ctx, model, method, min_faces, min_samples, threshold, min_size, min_score, join_distance, quiet):
    """Cluster the scanned faces into people.

    Named and ignored people keep their faces; new faces that look like a
    named person join that person; other groups keep their numbers where
    their members mostly stayed the same.

    Example:

        facecluster group
    """
    options = GroupOptions(
        model=model, method=method, min_faces=min_faces, min_samples=min_samples, threshold=threshold,
        min_face_size=min_size, min_score=min_score, join_distance=join_distance,
    )
    store = open_store(ctx)
    summary = group(store, options, progress=None if quiet else (lambda message: err.print(message)))
    render_group(summary)


def render_group(s: GroupSummary) -> None:
    out.print(
        f"Grouped {s.faces} faces in {s.seconds:.1f} s: {s.groups} groups ({s.new_groups} new, "
        f"{s.kept_groups} kept their numbers), {s.named} named people."
    )
    for name, count in sorted(s.joined.items(), key=lambda kv: -kv[1]):
        out.print(f"  {count} new faces joined {escape(name)}")
    out.print(
        f"{s.below_quality + s.noise} faces unclustered: {s.below_quality} below the quality gate, "
        f"{s.noise} fit no group."
    )


@cli.command(name="people")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--all", "include_ignored", is_flag=True, help="Include ignored groups.")
@click.pass_context
def people_command(ctx, as_json, include_ignored):
    """List the people and groups found.

    Named people first, then unnamed groups by size. Ignored groups are
    hidden unless --all.

    Example:

        facecluster people --json
    """
    store = open_store(ctx)
    rows = list_people(store, include_ignored=include_ignored)
    if as_json:
        click.echo(json.dumps([
            {"id": p.id, "name": p.name, "faces": p.faces, "photos": p.photos, "ignored": p.ignored,
             "first": p.first_taken, "last": p.last_taken}
            for p in rows
        ], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} people and groups", title_justify="left")
    for column in ("id", "name", "faces", "photos", "first", "last", "sample"):
        table.add_column(column, overflow="fold", justify="right" if column in ("id", "faces", "photos") else "left")
    for p in rows:
        label = escape(p.name) if p.name else "[dim](unnamed)[/dim]"
        if p.ignored:
            label += " [dim](ignored)[/dim]"
        table.add_row(
            str(p.id), label, str(p.faces), str(p.photos), (p.first_taken or "")[:10], (p.last_taken or "")[:10],
            escape(_printable(p.sample_path or "")),
        )
    out.print(table)
    out.print(f"{unclustered(store)} faces are not in any group.")


cli.add_command(people_command, name="list")


@cli.command(name="name")
@click.argument("target")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove the name: the person becomes an unnamed group again.")
@click.pass_context
def name_command(ctx, target, name, unset):
    """Name group TARGET (a number, or a person's current name).

    Naming a second group with a name already taken merges it into that
    person. Renaming a person renames it everywhere.

    Example:

        facecluster name 12 "Alice"
    """
    if unset == (name is not None):
        raise click.UsageError("give a NAME, or --unset to remove the name")
    store = open_store(ctx)
    result = name_person(store, target, None if unset else name)
    if result.merged_from is not None:
        out.print(f"Merged group {result.merged_from} into {escape(result.name)} (#{result.person_id}): "
                  f"{result.faces_moved} faces moved.")
    elif result.name is None:
        out.print(f"Group {result.person_id} has no name now (was {escape(result.previous_name or '-')}).")
    elif result.previous_name and result.previous_name != result.name:
        out.print(f"Renamed {escape(result.previous_name)} to {escape(result.name)} (#{result.person_id}).")
    else:
        out.print(f"Group {result.person_id} is {escape(result.name)}.")


@cli.command(name="show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def show_command(ctx, target, as_json):
    """Show the photos of one person or group: path, date and face box.

    Example:

        facecluster show Alice
    """
    store = open_store(ctx)
    person, faces = show_person(store, target)
    if as_json:
        click.echo(json.dumps({
            "id": person.id, "name": person.name, "ignored": person.ignored,
            "faces": [{"face_id": f.face_id, "photo": f.path, "taken": f.taken, "bbox": [round(v, 1) for v in f.box]}
                      for f in faces],
        }, ensure_ascii=False, indent=2))
        return
    title = f"{escape(person.name) if person.name else 'Unnamed group'} (#{person.id}): {len(faces)} faces"
    table = Table(title=title, title_justify="left")
    for column in ("face", "photo", "taken", "box (x, y, w, h)"):
        table.add_column(column, overflow="fold")
    for f in faces:
        table.add_row(str(f.face_id), escape(_printable(f.path)), (f.taken or "")[:19],
                      ", ".join(f"{v:.0f}" for v in f.box))
    out.print(table)


@cli.command(name="ignore")
@click.argument("target")
@click.option("--undo", is_flag=True, help="Bring an ignored group back.")
@click.pass_context
def ignore_command(ctx, target, undo):
    """Hide group TARGET (strangers): its faces are never offered again.

    Example:

        facecluster ignore 7
    """
    store = open_store(ctx)
    person = ignore_person(store, target, undo=undo)
    out.print(f"Group {person.id} is {'ignored' if person.ignored else 'shown again'}.")


@cli.command(name="remove")
@click.argument("face_ids", nargs=-1, required=True, type=int)
@click.pass_context
def remove_command(ctx, face_ids):
    """Take faces out of their person: "this face is not this person".

    A removed face never rejoins that person by itself. Face ids are shown
    by `facecluster show`.

    Example:

        facecluster remove 1234 1240
    """
    store = open_store(ctx)
    done = remove_faces(store, list(face_ids))
    for face_id, person in done:
        out.print(f"Face {face_id} removed from {'#' + str(person) if person is not None else 'no group'}.")


@cli.command(name="export")
@click.option("--html", "html_dir", is_flag=False, flag_value="facecluster-html", default=None, metavar="[OUT_DIR]",
              help="Write a static review site (default folder: ./facecluster-html).")
@click.option("--json", "json_file", metavar="FILE", help="Write every person and face as JSON ('-' for stdout).")
@click.option("--csv", "csv_file", metavar="FILE", help="Write one CSV row per face ('-' for stdout).")
@click.option("--xmp", is_flag=True, help="Write named people as XMP face regions into sidecars beside the photos.")
@click.option("--dry-run", is_flag=True, help="With --xmp: list the sidecars that would change, write nothing.")
@click.option("--include-ignored", is_flag=True, help="Include ignored groups (HTML, JSON, CSV).")
@click.pass_context
def export_command(ctx, html_dir, json_file, csv_file, xmp, dry_run, include_ignored):
    """Export the people found: an offline HTML review, JSON/CSV, XMP sidecars.

    Example:

        facecluster export --html
        facecluster export --json - | jq '.people[0]'
        facecluster export --xmp --dry-run
    """
    if not (html_dir or json_file or csv_file or xmp):
        raise click.UsageError("choose at least one of --html, --json, --csv, --xmp")
    if dry_run and not xmp:
        raise click.UsageError("--dry-run goes with --xmp")
    store = open_store(ctx)
    if json_file:
        with _output(json_file) as stream:
            count = export_json(store, stream, include_ignored)
        if json_file != "-":
            err.print(f"Wrote {count} faces to {escape(json_file)}")
    if csv_file:
        with _output(csv_file, newline="") as stream:
            count = export_csv(store, stream, include_ignored)
        if csv_file != "-":
            err.print(f"Wrote {count} faces to {escape(csv_file)}")
    if html_dir:
        summary = export_html(store, Path(html_dir), include_ignored)
        out.print(
            f"Wrote {summary.pages} pages for {summary.people} people to {escape(str(summary.folder))}/index.html "
            f"({summary.thumbs_written} thumbnails written, {summary.thumbs_reused} reused)."
        )
    if xmp:
        changes, unchanged = export_xmp(store, dry_run=dry_run)
        verb = "would write" if dry_run else "wrote"
        for change in changes:
            action = "create" if change.created else "update"
            out.print(f"{verb} ({action}) {escape(_printable(change.sidecar))}: {escape(', '.join(change.names))}")
        out.print(f"XMP: {len(changes)} sidecars {'to change' if dry_run else 'changed'}, {unchanged} already up to date.")


@contextmanager
def _output(name: str, newline: str | None = None):
    if name == "-":
        yield sys.stdout
        return
    try:
        stream = open(name, "w", encoding="utf-8", newline=newline)
    except OSError as e:
        raise click.ClickException(f"cannot write {name}: {e.strerror}") from None
    with stream:
        yield stream


@cli.command(name="backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup_command(ctx, file):
    """Copy the whole database to FILE, consistently, even while a scan runs.

    Example:

        facecluster backup ~/facecluster-2026-11-23.db
    """
    store = open_store(ctx)
    target = backup(store, file)
    out.print(f"Backed up {escape(str(store.path))} to {escape(str(target))}.")


@cli.command(name="names")
@click.option("--export", "export_file", metavar="FILE", help="Write every name and its faces' keys to FILE ('-' for stdout).")
@click.option("--import", "import_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Give faces their names back from FILE.")
@click.pass_context
def names_command(ctx, export_file, import_file):
    """Save names in a file that survives a rebuild or a model change, and load them back.

    Faces are keyed by their photo's content hash and their box, so the
    names find their faces again after the database is rebuilt from scratch
    or the photos are scanned with another model pack.

    Example:

        facecluster names --export names.json
        facecluster --db new.db names --import names.json
    """
    if bool(export_file) == bool(import_file):
        raise click.UsageError("choose one of --export FILE or --import FILE")
    store = open_store(ctx)
    if export_file:
        document = export_names(store, None if export_file == "-" else Path(export_file))
        if export_file == "-":
            click.echo(json.dumps(document, ensure_ascii=False, indent=1))
        else:
            faces = sum(len(p["faces"]) for p in document["people"])
            out.print(f"Wrote {len(document['people'])} names ({faces} faces) to {escape(export_file)}.")
        return
    summary = import_names(store, import_file)
    for name, count in sorted(summary.named.items()):
        out.print(f"  {escape(name)}: {count} faces")
    out.print(
        f"Imported {len(summary.named)} names for {sum(summary.named.values())} faces; "
        f"{summary.not_found} faces not in this database, {summary.conflicts} already named otherwise."
    )


def _printable(path: str) -> str:
    """Paths with undecodable bytes or newlines, shown safely on one line."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8").replace("\n", "\\n")


def main() -> None:
    cli(prog_name="facecluster")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
