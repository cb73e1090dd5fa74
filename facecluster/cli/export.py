"""Everything written out of the database: export (HTML, JSON, CSV, XMP, links), backup, and the review page."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape
from rich.text import Text

from facecluster.atomic import atomic_open, check_new_file
from facecluster.cli.command import EXIT_INTERRUPTED, command, open_store
from facecluster.cli.output import _printable, err, out
from facecluster.export.html import HtmlSummary, check_site_folder, export_html
from facecluster.export.links import LinksSummary, claim_links_folder, export_links
from facecluster.export.tables import export_csv, export_json
from facecluster.export.xmp import XmpSummary, export_xmp
from facecluster.names import backup
from facecluster.naming_rules import plural


@command("export")
@click.option("--html", "html_dir", is_flag=False, flag_value="facecluster-html", default=None, metavar="[OUT_DIR]",
              help="Write a static review site (default folder: ./facecluster-html).")
@click.option("--json", "json_file", metavar="FILE", help="Write every person and face as JSON ('-' for stdout).")
@click.option("--csv", "csv_file", metavar="FILE", help="Write one CSV row per face ('-' for stdout).")
@click.option("--xmp", is_flag=True, help="Write named people as XMP face regions into sidecars beside the photos.")
@click.option("--dry-run", is_flag=True, help="With --xmp: list the sidecars that would change, write nothing.")
@click.option("--links", "links_dir", metavar="DIR", help="A folder per named person in DIR, holding links to their photos.")
@click.option("--groups", is_flag=True, help="With --links: also a folder per unnamed group ('Group 12').")
@click.option("--hardlinks", is_flag=True, help="With --links: hard links instead of relative symlinks, where the file system allows.")
@click.option("--include-ignored", is_flag=True, help="Include ignored groups (HTML, JSON, CSV).")
@click.option("--force", is_flag=True,
              help="Replace an existing --json/--csv FILE; write --html or --links into a folder that holds other files.")
@click.pass_context
def export_command(ctx, html_dir, json_file, csv_file, xmp, dry_run, links_dir, groups, hardlinks, include_ignored, force):
    """Export the people found: an offline HTML review, JSON/CSV, XMP sidecars, a folder of links per person.

    Results (JSON or CSV to '-', the sidecars written) go to stdout; summaries
    and warnings to stderr. An existing file is never replaced without --force.

    Example:

    \b
        facecluster export --html
        facecluster export --json - | jq '.people[0]'
        facecluster export --xmp --dry-run
        facecluster export --links ~/People
    """
    if not (html_dir or json_file or csv_file or xmp or links_dir):
        raise click.UsageError("choose at least one of --html, --json, --csv, --xmp, --links")
    if (groups or hardlinks) and not links_dir:
        raise click.UsageError("--groups and --hardlinks go with --links DIR")
    if dry_run and not xmp:
        raise click.UsageError("--dry-run goes with --xmp")
    if json_file == "-" and csv_file == "-":
        raise click.UsageError("only one of --json and --csv can go to stdout ('-')")
    for name in (json_file, csv_file):
        if name and name != "-":
            check_new_file(Path(name), force, ctx.find_root().obj)  # before anything is written: all or nothing
    if html_dir:
        check_site_folder(Path(html_dir), force)
    if links_dir:
        claim_links_folder(Path(links_dir), force, dry_run=True)
    store = open_store(ctx, write=False)  # reads only: never creates a database
    if json_file:
        with _output(json_file, force) as stream:
            count = export_json(store, stream, include_ignored)
        if json_file != "-":
            err.print(f"Wrote {plural(count, 'face')} to {escape(_printable(json_file))}.")
    if csv_file:
        with _output(csv_file, force, newline="") as stream:
            count = export_csv(store, stream, include_ignored)
        if csv_file != "-":
            err.print(f"Wrote {plural(count, 'face')} to {escape(_printable(csv_file))}.")
    if html_dir:
        render_html(export_html(store, Path(html_dir), include_ignored, force=force))
    if links_dir:
        render_links(export_links(store, Path(links_dir), groups=groups, hardlinks=hardlinks, force=force))
    if xmp:
        render_xmp(export_xmp(store, dry_run=dry_run), dry_run)


def render_html(summary: HtmlSummary) -> None:
    """The static site's summary, on stderr: its result is the folder."""
    err.print(
        f"Wrote {plural(summary.pages, 'page')} for {plural(summary.people, 'person', 'people')} to "
        f"{escape(_printable(str(summary.folder)))}/index.html ({summary.thumbs_written} thumbnails written, "
        f"{summary.thumbs_reused} reused" + (f", {summary.removed} old files removed)." if summary.removed else ").")
    )


def render_xmp(result: XmpSummary, dry_run: bool) -> None:
    """The sidecars written (or that would be) on stdout, the rest on stderr; exit 1 if any could not be."""
    verb = "would write" if dry_run else "wrote"
    for change in result.changes:
        action = "create" if change.created else "update"
        out.print(f"{verb} ({action}) {escape(_printable(change.sidecar))}: "
                  f"{escape(_printable(', '.join(change.names)))}")
    for skipped in result.skipped:
        err.print(f"not written: {escape(_printable(skipped.path))}: {escape(_printable(skipped.reason))}")
    err.print(
        f"XMP: {plural(len(result.changes), 'sidecar')} {'to change' if dry_run else 'changed'}, "
        f"{result.unchanged} already up to date, {len(result.skipped)} left untouched."
    )
    if result.skipped:
        raise click.ClickException(
            f"{plural(len(result.skipped), 'sidecar or name', 'sidecars or names')} could not be written (listed above); "
            "every other sidecar was"
        )


def render_links(s: LinksSummary) -> None:
    for name, reason in s.left_alone:
        err.print(f"left alone: {escape(_printable(name))}: {escape(reason)}")
    parts = [f"{s.added} added", f"{s.removed} removed"]
    if s.folders_removed:
        parts.append(f"{plural(s.folders_removed, 'empty folder')} removed")
    if s.symlinked_instead:
        parts.append(f"{s.symlinked_instead} symlinked (another file system: no hard link possible)")
    if s.missing:
        parts.append(f"{plural(s.missing, 'photo')} gone from disk, not linked")
    err.print(f"Links: {plural(s.links, 'photo link')} in {plural(s.people, 'folder')} under "
              f"{escape(_printable(str(s.folder)))} ({', '.join(parts)})" + ("; nothing changed." if not s.changed else "."))


@contextmanager
def _output(name: str, force: bool, newline: str | None = None):
    if name == "-":
        yield sys.stdout
        return
    with atomic_open(name, overwrite=force, newline=newline) as stream:
        yield stream


@command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_context
def backup_command(ctx, file, force):
    """Copy the whole database to FILE, consistently, even while a scan runs.

    FILE must not exist yet, unless --force. The copy is written to a
    temporary file beside FILE and renamed, so FILE is never half written.

    Example:

    \b
        facecluster backup ~/facecluster-2026-11-23.db
    """
    check_new_file(file, force, ctx.find_root().obj)
    store = open_store(ctx, write=False)  # reads only, so a full disk can still be backed up elsewhere
    target = backup(store, file, force=force)
    err.print(f"Backed up {escape(_printable(str(store.path)))} to {escape(_printable(str(target)))}.")


@command("review")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 to listen on; 0 takes a free one.")
@click.option("--no-browser", is_flag=True, help="Print the address but do not open a browser.")
@click.pass_context
def review_command(ctx, port, no_browser):
    """Name, merge and correct people by clicking, in a local web page.

    Serves the review page from the database on 127.0.0.1 only, behind a
    key made up for this run (in the address printed). Every click calls the
    same code as the commands (name, remove, ignore, group). Ctrl-C stops it
    (exit status 130).

    Example:

    \b
        facecluster review
    """
    from facecluster.web import serve  # flask loads only for this command

    def ready(url: str) -> None:
        out.print(Text(url))
        err.print("Review page ready at the address above (it holds this run's key); Ctrl-C stops it.")

    try:
        serve(ctx.find_root().obj, port=port, open_browser=not no_browser, ready=ready)
    except KeyboardInterrupt:
        err.print("Stopped the review server.")
        ctx.exit(EXIT_INTERRUPTED)
