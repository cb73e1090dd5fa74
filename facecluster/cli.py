"""The command line: parse options, open the store, call one core function, render.

No SQL and no numpy here; nothing else in the package imports click or rich.
Results go to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.cells import cell_len
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from facecluster import __version__, config
from facecluster.drawn import DrawError, add_face, parse_box
from facecluster.errors import FaceclusterError, UsageProblem
from facecluster.models import PACK_NAMES
from facecluster.models.registry import REEMBEDDERS
from facecluster.atomic import atomic_open, check_new_file
from facecluster.export.html import check_site_folder, export_html
from facecluster.export.links import LinksSummary, claim_links_folder, export_links
from facecluster.export.tables import export_csv, export_json
from facecluster.export.xmp import export_xmp
from facecluster.imports import FORMATS, import_any
from facecluster.names import backup, export_names, portable_path
from facecluster.grouping import GroupOptions, GroupSummary, group
from facecluster.identify import identify
from facecluster.queries import PhotoQuery, find_photos
from facecluster.reembed import after_scan, summary_lines
from facecluster.naming_rules import parse_id, plural
from facecluster.people import (
    NothingToDo,
    answer_same,
    give_faces,
    ignore_person,
    merge_people,
    not_a_person,
    undo_last,
    list_people,
    name_person,
    remove_faces,
    resolve,
    show_person,
    unclustered,
)
from facecluster.sources.video import clock
from facecluster.scan import ScanInterrupted, ScanOptions, ScanProgress, ScanSummary, scan
from facecluster.store import Store
from facecluster.suggestions import same_person_pairs, suggest

EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def open_store(ctx: click.Context, write: bool = True) -> Store:
    """The database, for a command that writes (created where missing) or only reads (never created)."""
    store = Store(ctx.find_root().obj, readonly=not write)
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
@click.option("--dask", metavar="ADDRESS", help="Analyse on a Dask cluster (tcp://scheduler:8786) instead of --jobs local processes.")
@click.option("--no-video", is_flag=True, help="Do not read videos (photos and RAW files only).")
@click.option("--embedder", metavar="NAME", help=f"Describe the stored faces under ROOTS again with this embedder "
              f"({', '.join(REEMBEDDERS)}) and use it from now on; faces, people, names and history stay.")
@click.pass_context
def scan_command(ctx, roots, model, jobs, include_hidden, exclude, prune, yes, det_size, det_threshold, quiet, dask, no_video,
                 embedder):
    """Find, align and embed every face under ROOTS and cache it all.

    Unchanged files are skipped; moved files keep their faces; files that
    cannot be read are listed with the reason, never fatal.

    Example:

    \b
        facecluster scan ~/Pictures /mnt/photos --exclude '*/Trash/*'
    """
    options = ScanOptions(
        model=model, jobs=jobs, include_hidden=include_hidden, exclude=tuple(exclude), prune=prune, yes=yes,
        det_size=det_size, det_threshold=det_threshold, dask=dask, no_video=no_video,
    )
    store = open_store(ctx)
    with ProgressView(quiet) as view:
        summary = scan(store, roots, options, progress=view.update)
    render_scan(summary)
    described = after_scan(store, roots, model, embedder, progress=None if quiet else err.print)
    for line in summary_lines(described) if described else []:
        err.print(escape(line))
    if summary.prune_refused:
        ctx.exit(1)  # asked to prune and did not: a script must not take that for done (docs/commands.md)


def _decisions(d) -> str:
    """'2 named faces (Eileen: 2), 3 faces of ignored people and 1 face you marked "not this person"'."""
    parts = []
    if d.named:
        names = ", ".join(f"{_printable(name)}: {count}" for name, count in sorted(d.named.items()))
        parts.append(f"{plural(sum(d.named.values()), 'named face')} ({names})")
    if d.ignored:
        parts.append(f"{plural(d.ignored, 'face')} of ignored people")
    if d.rejected:
        parts.append(f'{plural(d.rejected, "face")} you marked "not this person"')
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


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
    """The scan's one result, the files that could not be read, on stdout (one record a line, to grep);
    the summary, the photos gone from disk and the warnings on stderr (docs/commands.md)."""
    read = s.new + s.changed + s.moved + s.redetected
    parts = [f"{s.new} new", f"{s.changed} changed", f"{s.moved} moved"]
    if s.redetected:
        parts.append(f"{s.redetected} detected again (other --det-size or --det-threshold)")
    parts += [f"{s.unchanged} unchanged", f"{s.failed} failed"]
    err.print(
        f"Scanned {plural(s.seen, 'file')} in {s.seconds:.1f} s ({s.photos_per_second:.1f} photos/s): "
        f"{', '.join(parts)}; {plural(s.faces, 'face')} found in {plural(read, 'photo')} read."
    )
    media = media_line(s)
    if media:
        err.print(escape(media))  # with the summary, on stderr
    if s.failures:
        earlier = len(s.failures) - s.failed
        title = f"{plural(len(s.failures), 'file')} could not be read"
        if earlier > 0:
            title += (f" ({s.failed} this time; {earlier} failed in an earlier scan and"
                      f" {'is' if earlier == 1 else 'are'} unchanged since, so not read again)")
        err.print(escape(title) + ":")
        # One record per line, the path whole: `facecluster scan lib | grep truncated.jpg` finds its line.
        _records(["file", "reason"], [[_printable(f.path), _printable(f.reason)] for f in s.failures])
    for w in s.warnings:
        err.print(f"warning: {escape(_printable(w.path))}: {escape(_printable(w.reason))}")
    if s.prune_refused:
        err.print(escape(
            f"Not pruned: the {plural(len(s.missing), 'photo')} gone from disk hold {_decisions(s.prune_refused_decisions)}. "
            "If they are really gone, run again with --prune --yes to remove them with those faces."
        ))
    elif s.missing:
        if s.pruned:
            verb = "removed from the database"
            if s.pruned_decisions.faces:
                verb += f" with {_decisions(s.pruned_decisions)}"
        else:
            verb = "still in the database (use --prune to remove them)"
        err.print(escape(f"{plural(len(s.missing), 'photo')} {'is' if len(s.missing) == 1 else 'are'} gone from disk, {verb}:"))
        for path in s.missing[:20]:
            err.print(f"  {escape(_printable(path))}")
        if len(s.missing) > 20:
            err.print(f"  … and {len(s.missing) - 20} more")
    if s.kept_unseen:
        err.print(
            f"{plural(s.kept_unseen, 'photo')} in the database {'was' if s.kept_unseen == 1 else 'were'} not looked at "
            "this time (excluded, hidden, or in a folder that cannot be read) and stay as they are."
        )


# What the summary calls files of each kind, and files kept with another's shot.
_KIND_WORDS = {"photo": ("photo", "photos"), "motion": ("Motion Photo (its still)", "Motion Photos (their stills)"),
               "raw": ("RAW", "RAW"), "video": ("video", "videos")}
_COMPANION_WORDS = {"raw": ("RAW file beside its JPEG", "RAW files beside their JPEGs"),
                    "live": ("Live Photo video", "Live Photo videos")}
_SKIPPED_WORDS = {"unknown type": ("file of unknown type", "files of unknown type"),
                  "sidecar": ("sidecar file", "sidecar files"),
                  "video (--no-video)": ("video (--no-video)", "videos (--no-video)")}


def media_line(s: ScanSummary) -> str:
    """What the scan read by kind, what it kept with another file's shot, and what it skipped, by reason.

    Example:
        media_line(summary)  # "Read 2 videos, 14 RAW, 380 photos; skipped 3 files of unknown type."
    """
    def count(n: int, words: tuple[str, str]) -> str:
        return f"{n} {words[0] if n == 1 else words[1]}"

    parts = []
    order = list(_KIND_WORDS)[::-1]  # videos first: the kinds a reader may not expect
    read = [count(n, _KIND_WORDS.get(k, (k, k))) for k, n in sorted(s.kinds.items(), key=lambda kv: (
        order.index(kv[0]) if kv[0] in order else len(order), kv[0])) if n]
    if read and set(s.kinds) - {"photo"}:
        parts.append("Read " + ", ".join(read))
    companions = [count(n, _COMPANION_WORDS.get(k, (k, k))) for k, n in sorted(s.companions.items()) if n]
    if companions:
        parts.append(", ".join(companions) + " not scanned (one shot with their photo)")
    skipped = [count(n, _SKIPPED_WORDS.get(reason, (f"file ({reason})", f"files ({reason})")))
               for reason, n in sorted(s.skipped.items()) if n]
    if skipped:
        parts.append("skipped " + ", ".join(skipped))
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


@cli.command(name="group")
@click.option("--model", default="sface", show_default=True, help="Which pack's faces to group.")
@click.option("--method", type=click.Choice(["hdbscan", "agglomerative"]), default="hdbscan", show_default=True)
@click.option("--min-faces", type=int, default=config.MIN_GROUP_FACES, show_default=True,
              help="Smallest group. Below 5, groups under 5 come only from a strict pass (close faces, different photos).")
@click.option("--min-samples", type=int, default=config.HDBSCAN_MIN_SAMPLES, show_default=True, help="HDBSCAN min_samples.")
@click.option("--threshold", type=float, default=config.AGGLOMERATIVE_THRESHOLD, show_default=True,
              help="Agglomerative: average-linkage distance cut.")
@click.option("--min-size", type=float, default=config.MIN_CLUSTER_FACE_PIXELS, show_default=True,
              help="Quality gate: faces smaller than this (pixels) stay unclustered.")
@click.option("--min-score", type=float, default=config.MIN_CLUSTER_SCORE, show_default=True,
              help="Quality gate: faces with a lower detection score stay unclustered.")
@click.option("--min-quality", type=float, default=config.MIN_CLUSTER_QUALITY, show_default=True,
              help="Quality gate: faces with a lower quality score (0-1: sharpness, size, score, pose) never start "
                   "a group; they may still join one.")
@click.option("--join-distance", type=float, default=None, show_default="the embedder's: 1.0 for sface",
              help="New faces this close to a named person's faces join that person.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def group_command(ctx, model, method, min_faces, min_samples, threshold, min_size, min_score, min_quality, join_distance,
                  quiet):
    """Cluster the scanned faces into people.

    Named and ignored people keep their faces; new faces that look like a
    named person join that person; other groups keep their numbers where
    their members mostly stayed the same.

    Example:

    \b
        facecluster group
    """
    if method == "hdbscan" and ctx.get_parameter_source("threshold") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--threshold applies to --method agglomerative (HDBSCAN chooses its own cut)", ctx)
    options = GroupOptions(
        model=model, method=method, min_faces=min_faces, min_samples=min_samples, threshold=threshold,
        min_face_size=min_size, min_score=min_score, min_quality=min_quality, join_distance=join_distance,
    )
    store = open_store(ctx)
    summary = group(store, options, progress=None if quiet else (lambda message: err.print(message)))
    render_group(summary)


def render_group(s: GroupSummary) -> None:
    """The grouping's summary, on stderr: `group` has no result to print but the database."""
    err.print(
        f"Grouped {plural(s.faces, 'face')} in {s.seconds:.1f} s: {plural(s.groups, 'group')} ({s.new_groups} new, "
        f"{s.kept_groups} kept {'its number' if s.kept_groups == 1 else 'their numbers'}), "
        f"{plural(s.named, 'named person', 'named people')}."
    )
    for name, count in sorted(s.joined.items(), key=lambda kv: -kv[1]):
        err.print(f"  {plural(count, 'new face')} joined {escape(name)}")
    if s.attached:
        err.print(f"  {plural(s.attached, 'face')} left out by the clustering joined a group by its nearest faces' vote")
    err.print(
        f"{plural(s.below_quality + s.noise, 'face')} unclustered: {s.below_quality} below the quality gate, "
        f"{s.noise} fit no group."
    )


@cli.command(name="people")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of lines.")
@click.option("--all", "include_ignored", is_flag=True, help="Include ignored groups.")
@click.pass_context
def people_command(ctx, as_json, include_ignored):
    """List the people and groups found.

    Named people first, then unnamed groups by size. Ignored groups are
    hidden unless --all. Piped, it prints one tab-separated line per person.

    Example:

    \b
        facecluster people --json
    """
    store = open_store(ctx, write=False)
    rows = list_people(store, include_ignored=include_ignored)
    if as_json:
        click.echo(json.dumps([
            {"id": p.id, "name": p.name, "faces": p.faces, "photos": p.photos, "ignored": p.ignored,
             "first": p.first_taken, "last": p.last_taken}
            for p in rows
        ], ensure_ascii=False, indent=2))
        return
    err.print(Text(plural(len(rows), "person or group", "people and groups")))
    records = []
    for p in rows:
        label = _printable(p.name) if p.name else "(unnamed)"
        records.append([
            str(p.id), label + (" (ignored)" if p.ignored else ""), str(p.faces), str(p.photos),
            (p.first_taken or "")[:10], (p.last_taken or "")[:10], _printable(p.sample_path or ""),
        ])
    _records(["id", "name", "faces", "photos", "first", "last", "sample"], records, right=("id", "faces", "photos"))
    err.print(Text(f"{plural(unclustered(store), 'face is', 'faces are')} not in any group."))


cli.add_command(people_command, name="list")


@cli.command(name="name")
@click.argument("target")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove the name: the person becomes an unnamed group again.")
@click.pass_context
def name_command(ctx, target, name, unset):
    """Name group TARGET (a number, or a person's current name).

    Naming a second group with a name already taken (in any case) merges it
    into that person. Renaming a person renames it everywhere.

    Example:

    \b
        facecluster name 12 "Alice"
    """
    if unset and name is not None:
        raise click.UsageError(f"NAME ('{_printable(name)}') and --unset conflict: give one of them")
    if not unset and name is None:
        raise click.UsageError("give a NAME, or --unset to remove the name")
    store = open_store(ctx)
    result = name_person(store, target, None if unset else name)
    if result.merged_from is not None:
        out.print(Text(f"Merged group {result.merged_from} into {_printable(result.name)} (#{result.person_id}): "
                       f"{plural(result.faces_moved, 'face')} moved."))
    elif result.name is None:
        out.print(Text(f"Group {result.person_id} has no name now (was {_printable(result.previous_name or '-')})."))
    elif result.previous_name and result.previous_name != result.name:
        out.print(Text(f"Renamed {_printable(result.previous_name)} to {_printable(result.name)} (#{result.person_id})."))
    else:
        out.print(Text(f"Group {result.person_id} is {_printable(result.name)}."))


@cli.command(name="show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def show_command(ctx, target, as_json):
    """Show the photos of one person or group: face id, date, face box and path.

    Piped, it prints one tab-separated line per face.

    Example:

    \b
        facecluster show Alice
    """
    store = open_store(ctx, write=False)
    person, faces = show_person(store, target)
    if as_json:
        click.echo(json.dumps({
            "id": person.id, "name": person.name, "ignored": person.ignored,
            "faces": [{"face_id": f.face_id, "photo": portable_path(f.path), "taken": f.taken,
                       "bbox": [round(v, 1) for v in f.box],
                       **({"frame_time": f.frame_ms / 1000} if f.frame_ms is not None else {})} for f in faces],
        }, ensure_ascii=False, indent=2))
        return
    who = _printable(person.name) if person.name else "Unnamed group"
    err.print(Text(f"{who} (#{person.id}){' (ignored)' if person.ignored else ''}: {plural(len(faces), 'face')}"))
    _records(
        ["face", "taken", "box (x, y, w, h)", "photo"],
        [[str(f.face_id), (f.taken or "")[:19], ", ".join(f"{v:.0f}" for v in f.box),
          _printable(f.path) + (f" @ {clock(f.frame_ms / 1000)}" if f.frame_ms is not None else "")] for f in faces],
        right=("face",),
    )


@cli.command(name="ignore")
@click.argument("target")
@click.option("--undo", is_flag=True, help="Bring an ignored group back.")
@click.pass_context
def ignore_command(ctx, target, undo):
    """Hide group TARGET (strangers): its faces are never offered again.

    Example:

    \b
        facecluster ignore 7
    """
    store = open_store(ctx)
    person = ignore_person(store, target, undo=undo)
    out.print(Text(f"{_who(person.id, person.name, start=True)} is {'ignored' if person.ignored else 'shown again'}."))


class FaceId(click.ParamType):
    """A face id as `show` prints it: a positive whole number SQLite can hold."""

    name = "face_id"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        face_id = parse_id(text)
        if face_id is not None:
            return face_id
        self.fail(f"'{_printable(text)}' is not a face id (face ids are the numbers facecluster show lists)", param, ctx)


@cli.command(name="remove")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.pass_context
def remove_command(ctx, face_ids):
    """Take faces out of their person: "this face is not this person".

    A removed face never rejoins that person by itself. Face ids are shown
    by `facecluster show`.

    Example:

    \b
        facecluster remove 1234 1240
    """
    store = open_store(ctx)
    done = remove_faces(store, list(face_ids))
    names: dict[int, str | None] = {}
    for face_id, person in done:
        if person is None:
            out.print(Text(f"Face {face_id} was not in a group: nothing to remove it from."))
            continue
        if person not in names:
            names[person] = resolve(store, f"#{person}").name
        out.print(Text(f"Face {face_id} removed from {_who(person, names[person])}."))


@cli.command(name="suggest")
@click.option("--for", "target", metavar="TARGET", help="Suggestions for one person or group: groups and faces that may be them.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many suggestions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def suggest_command(ctx, target, limit, as_json):
    """Questions worth answering, most likely first, with how likely each is.

    Without --for: "same person?" pairs of people or groups (answer with
    `merge` or `different`). With --for: the unnamed groups and the faces in
    no group that may be that person (answer with `merge`, `give` or
    `different`). Nothing less likely than "possible" is listed.

    \b
    Example:
        facecluster suggest
        facecluster suggest --for Alice
    """
    store = open_store(ctx, write=False)
    if target is None:
        pairs = same_person_pairs(store, limit)
        if as_json:
            click.echo(json.dumps([dataclasses.asdict(p) for p in pairs], indent=2))
            return
        if not pairs:
            err.print("Nothing likely to ask: no two groups look alike.")
            return
        err.print(f"{plural(len(pairs), 'question')} worth asking")
        _records(["likelihood", "same person?", "distance"],
                 [[p.likelihood, f"{_pair_label(store, p.a)} and {_pair_label(store, p.b)}", f"{p.distance:.2f}"] for p in pairs])
        return
    found = suggest(store, target, limit)
    if as_json:
        click.echo(json.dumps({"id": found.person.id, "name": found.person.name,
                               "groups": [{"group": g.b, "distance": g.distance, "likelihood": g.likelihood} for g in found.groups],
                               "faces": [{"face_id": f.face_id, "distance": f.distance, "likelihood": f.likelihood}
                                         for f in found.faces]}, ensure_ascii=False, indent=2))
        return
    who = _who(found.person.id, found.person.name)
    if not found.groups and not found.faces:
        err.print(Text(f"Nothing looks likely to be {who}."))
        return
    _records(["likelihood", "candidate", "distance"],
             [[g.likelihood, f"group {g.b}", f"{g.distance:.2f}"] for g in found.groups]
             + [[f.likelihood, f"face {f.face_id}", f"{f.distance:.2f}"] for f in found.faces])


def _pair_label(store: Store, person_id: int) -> str:
    person = resolve(store, f"#{person_id}")
    return _printable(person.name) if person.name else f"group {person_id}"


@cli.command(name="merge")
@click.argument("targets", nargs=-1, required=True)
@click.option("--name", help="Name the merged person.")
@click.pass_context
def merge_command(ctx, targets, name):
    """Merge groups (numbers or names) into one person: "yes, the same person".

    The faces go to the named one among them (or to NAME), else to the largest
    group. Two differently named people are never merged.

    \b
    Example:
        facecluster merge 12 31 --name Alice
    """
    result = merge_people(open_store(ctx), list(targets), name)
    out.print(Text(f"Merged into {_who(result.person_id, result.name)}: {plural(result.faces_moved, 'face')} moved."))


@cli.command(name="different")
@click.argument("first")
@click.argument("second")
@click.pass_context
def different_command(ctx, first, second):
    """Say two people or groups are not the same person; grouping and suggestions remember it.

    \b
    Example:
        facecluster different Alice 12
    """
    out.print(Text(answer_same(open_store(ctx), first, second, yes=False) + "."))


@cli.command(name="give")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.option("--to", "target", required=True, metavar="TARGET", help="A group number, a name, or a new name for a new person.")
@click.pass_context
def give_command(ctx, face_ids, target):
    """Put faces with a person for good (a new name makes a new person of them).

    \b
    Example:
        facecluster give 1234 1240 --to Alice
    """
    result = give_faces(open_store(ctx), list(face_ids), target)
    out.print(Text(f"{plural(result.faces_moved, 'face')} now with {_who(result.person_id, result.name)}."))


@cli.command(name="not-a-person")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.pass_context
def not_a_person_command(ctx, face_ids):
    """Mark faces as no person at all (a cartoon, a statue, a poster): never grouped again.

    \b
    Example:
        facecluster not-a-person 1234
    """
    out.print(Text(not_a_person(open_store(ctx), list(face_ids)) + "."))


class Box(click.ParamType):
    """A face's box as x,y,w,h in the photo's pixels."""

    name = "box"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return parse_box(value)
        except DrawError as e:
            self.fail(_printable(str(e)), param, ctx)


@cli.command(name="add-face")
@click.argument("photo")
@click.option("--box", required=True, type=Box(), metavar="X,Y,W,H",
              help="The face's box in the photo's pixels, upright and full size: left, top, width, height (20 or more).")
@click.option("--name", metavar="TARGET", help="Give the face to this person: a name, a new name (a new person), or a group number.")
@click.option("--model", help="Model pack (default: the pack of the photo's other faces, else sface).")
@click.pass_context
def add_face_command(ctx, photo, box, name, model):
    """Add a face the detector missed: a box on a scanned photo becomes a face like any other.

    PHOTO is a photo's path as scanned, or the id of a face on that photo. The
    detector looks again inside the box (else the face is aligned from the box
    alone); the face is embedded, saved with the photo (removed with it,
    exported in XMP) and, with --name, given to that person.

    \b
    Example:
        facecluster add-face ~/Pictures/party.jpg --box 812,240,96,110 --name Alice
    """
    face = add_face(open_store(ctx), photo, box, name, model)
    how = "found again by the detector in the box" if face.detected else "aligned from the box alone: the detector found no face in it"
    given = f", given to {_who(face.person_id, face.name)}" if face.person_id is not None else ", in no group"
    out.print(Text(f"Face {face.face_id} added to {_printable(face.photo)} ({how}){given}."))


@cli.command(name="undo")
@click.pass_context
def undo_command(ctx):
    """Undo the last correction (from the command line or the review page).

    \b
    Example:
        facecluster undo
    """
    out.print(Text(f"Undone: {undo_last(open_store(ctx))}."))


@cli.command(name="info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def info_command(ctx, as_json):
    """Show where the database is, its size, what it holds and its schema version.

    Example:

    \b
        facecluster info
    """
    path = Path(ctx.find_root().obj)
    if not path.exists():  # say where it would be; a read-only command never creates it
        if as_json:
            click.echo(json.dumps({"path": str(path.absolute()), "exists": False}, indent=2))
        else:
            where = f"{_printable(str(path.absolute()))} (not created yet: facecluster scan creates it)"
            _records(["what", "value"], [["database", where]], header=False)
        return
    info = open_store(ctx, write=False).info()
    if as_json:
        click.echo(json.dumps({"exists": True, **dataclasses.asdict(info), "path": portable_path(info.path)},
                              ensure_ascii=False, indent=2))
        return
    lines = [
        ("database", _printable(info.path)),
        ("size", f"{_size(info.bytes)} ({info.bytes} bytes, with the write-ahead log)"),
        ("schema", f"{info.schema or '-'} ({plural(info.migrations, 'migration')} applied; SQLite {info.sqlite})"),
        ("photos", f"{info.photos} read, {info.failed} failed"),
        ("faces", f"{info.faces} ({info.unclustered} in no group)"),
        ("people", f"{info.named} named, {plural(info.groups, 'unnamed group')}, {info.ignored} ignored"),
    ]
    for pack in info.packs:
        lines.append(("model pack", f"{pack.name}: {plural(pack.faces, 'face')}, {pack.dim}-d embeddings, "
                                    f"licence {pack.licence}, first used {pack.first_used[:10]}, "
                                    f"sha256 {pack.fingerprint[:12]}, embedder in use {pack.embedder}"))
    if not info.packs:
        lines.append(("model pack", "none yet (facecluster scan records the pack it uses)"))
    _records(["what", "value"], [list(line) for line in lines], header=False)


def _who(person_id: int, name: str | None, start: bool = False) -> str:
    """ "Alice (#3)", or "group 3" ("Group 3" to `start` a sentence)."""
    return f"{_printable(name)} (#{person_id})" if name else f"{'Group' if start else 'group'} {person_id}"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"  # pragma: no cover


def _records(columns: list[str], rows: list[list[str]], right: tuple[str, ...] = (), header: bool = True) -> None:
    """Print one record per line on stdout, the last column (a path) never cut or wrapped.

    Piped or redirected: the cells joined by tabs, after a header line, so
    `grep`, `cut -f` and `sort` work (cells hold no tab or newline: they went
    through _printable). On a terminal: aligned columns under a bold header;
    the last column runs to the end of the line, so a long path stays whole
    however narrow the terminal.
    """
    if not out.is_terminal:
        for row in [columns] * header + rows:
            click.echo("\t".join(row))  # not through rich, which would turn the tabs into spaces
        return
    widths = [max(cell_len(row[i]) for row in [columns, *rows]) for i in range(len(columns) - 1)]

    def line(row: list[str], style: str = "") -> Text:
        cells = []
        for i, cell in enumerate(row[:-1]):
            pad = " " * (widths[i] - cell_len(cell))
            cells.append(pad + cell if columns[i] in right else cell + pad)
        return Text("  ".join([*cells, row[-1]]), style=style)

    if header:
        out.print(line(columns, "bold"))
    for row in rows:
        out.print(line(row))


@cli.command(name="export")
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
        summary = export_html(store, Path(html_dir), include_ignored, force=force)
        err.print(
            f"Wrote {plural(summary.pages, 'page')} for {plural(summary.people, 'person', 'people')} to "
            f"{escape(_printable(str(summary.folder)))}/index.html ({summary.thumbs_written} thumbnails written, "
            f"{summary.thumbs_reused} reused" + (f", {summary.removed} old files removed)." if summary.removed else ").")
        )
    if links_dir:
        render_links(export_links(store, Path(links_dir), groups=groups, hardlinks=hardlinks, force=force))
    if xmp:
        result = export_xmp(store, dry_run=dry_run)
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


@cli.command(name="backup")
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


@cli.command(name="names")
@click.option("--export", "export_file", metavar="FILE", help="Write every name and its faces' keys to FILE ('-' for stdout).")
@click.option("--import", "import_file", metavar="FILE", type=click.Path(path_type=Path),
              help="Give faces names from FILE: a name file, a Picasa .picasa.ini, a Google Takeout sidecar, "
                   "or a folder of either.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="With --import: what FILE is (auto: tell from its name and content).")
@click.option("--contacts", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="With --import of Picasa files: Picasa's contacts.xml, for the names of its contact ids.")
@click.option("--force", is_flag=True, help="With --export: replace FILE if it exists.")
@click.pass_context
def names_command(ctx, export_file, import_file, fmt, contacts, force):
    """Save names in a file that survives a rebuild or a model change, and load them back (or from Picasa, Google Takeout).

    Faces are keyed by their photo's content hash and their box, so the
    names find their faces again after the database is rebuilt from scratch
    or the photos are scanned with another model pack. An existing FILE is
    never replaced without --force.

    Example:

    \b
        facecluster names --export names.json
        facecluster --db new.db names --import names.json
        facecluster names --import ~/Takeout
    """
    if bool(export_file) == bool(import_file):
        raise click.UsageError("choose one of --export FILE or --import FILE")
    if force and import_file:
        raise click.UsageError("--force goes with --export")
    if export_file and (contacts or ctx.get_parameter_source("fmt") is click.core.ParameterSource.COMMANDLINE):
        raise click.UsageError("--format and --contacts go with --import")
    if export_file and export_file != "-":
        check_new_file(Path(export_file), force, ctx.find_root().obj)
    store = open_store(ctx, write=import_file is not None)
    if export_file:
        document = export_names(store, None if export_file == "-" else Path(export_file), force=force)
        if export_file == "-":
            click.echo(json.dumps(document, ensure_ascii=False, indent=1))
        else:
            faces = sum(len(p["faces"]) for p in document["people"])
            err.print(f"Wrote {plural(len(document['people']), 'name')} ({plural(faces, 'face')}) "
                      f"to {escape(_printable(export_file))}.")
        return
    summary = import_any(store, import_file, fmt, contacts)
    for reason, count in sorted(summary.left_out.items()):
        err.print(f"left out: {count} {escape(reason)}")
    for name, reason in sorted(summary.refused.items()):
        err.print(f"not imported: {escape(_printable(name))}: {escape(reason)}")
    for name, count in sorted(summary.named.items()):
        err.print(f"  {escape(_printable(name))}: {plural(count, 'face')}")
    err.print(
        f"Imported {plural(len(summary.named), 'name')} for {plural(sum(summary.named.values()), 'face')}; "
        f"{summary.unchanged} had that name already, {summary.not_found} not in this database, "
        f"{summary.conflicts} already named otherwise."
    )


@cli.command(name="review")
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


@cli.command(name="photos")
@click.option("--with", "with_all", multiple=True, metavar="NAME", help="Photos with this person (repeatable: with all of them).")
@click.option("--any", "with_any", multiple=True, metavar="NAME", help="Photos with at least one of these people (repeatable).")
@click.option("--without", multiple=True, metavar="NAME", help="Leave out photos with this person (repeatable).")
@click.option("--only", is_flag=True, help="Nobody else recognisable in the photo: no other named person or group.")
@click.option("--from", "taken_from", metavar="DATE", help="Taken on or after DATE (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--to", "taken_to", metavar="DATE", help="Taken on or before DATE (the whole year, month or day).")
@click.option("--under", metavar="FOLDER", help="Only photos under FOLDER.")
@click.option("--videos/--no-videos", "videos", default=None, help="Only videos, or leave videos out (default: both).")
@click.option("-0", "--null", "null", is_flag=True, help="End each path with a NUL byte instead of a newline (for xargs -0).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each photo with its faces, boxes and people.")
@click.pass_context
def photos_command(ctx, with_all, with_any, without, only, taken_from, taken_to, under, videos, null, as_json):
    """List the photos that match a question about who is in them.

    Paths go to stdout, one per line (whole, never cut), and the count to
    stderr. Names are matched ignoring case; a group number works too.

    Example:

    \b
        facecluster photos --with Alice --with Bob --from 2019
        facecluster photos --with Alice --only -0 | xargs -0 open
    """
    if null and as_json:
        raise click.UsageError("choose one of -0 and --json")
    store = open_store(ctx, write=False)
    query = PhotoQuery(tuple(with_all), tuple(with_any), tuple(without), only, taken_from, taken_to, under, videos)
    results = find_photos(store, query, with_faces=as_json)
    if as_json:
        click.echo(json.dumps([{
            "photo_id": r.photo.id, "path": portable_path(r.photo.path), "taken": r.photo.taken,
            "taken_source": r.photo.taken_source,
            "faces": [{"face_id": f.face_id, "person_id": f.person_id, "name": f.name, "ignored": f.ignored,
                       "model": f.model, "bbox": [round(v, 1) for v in f.box], "score": round(f.score, 4)} for f in r.faces],
        } for r in results], ensure_ascii=False, indent=1))
    else:
        _paths([r.photo.path for r in results], null)
    err.print(plural(len(results), "photo"))


@cli.command(name="identify")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--model", default="sface", show_default=True, help="Which pack's named people to match against.")
@click.option("--add", is_flag=True, help="Also add the photos to the library (as scan would).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def identify_command(ctx, photos, model, add, as_json):
    """Say who is in PHOTOS, by the named people, without adding them to the library.

    Each face gets its box, the nearest named person and how sure that is:
    "very likely", "possible" or "unknown". Works on photos anywhere, not
    only in the scanned folders. With --add the photos are stored too, and
    the next `group` lets their faces join the people they match.

    Example:

    \b
        facecluster identify ~/Downloads/party.jpg
        facecluster identify --json new/*.jpg | jq '.[].faces[].name'
    """
    store = open_store(ctx, write=add)
    found = identify(store, list(photos), model=model, add=add)
    if as_json:
        click.echo(json.dumps([{
            "path": portable_path(p.path), "error": p.error, "added": p.added,
            "faces": [{
                "bbox": [round(v, 1) for v in f.box], "score": round(f.score, 4), "likelihood": f.wording,
                "person_id": f.best.person_id if f.best and f.wording != "unknown" else None,
                "name": f.best.name if f.best and f.wording != "unknown" else None,
                "nearest": None if f.best is None else {
                    "person_id": f.best.person_id, "name": f.best.name, "distance": round(f.best.distance, 3)},
                "runner_up": None if f.runner_up is None else {
                    "person_id": f.runner_up.person_id, "name": f.runner_up.name, "distance": round(f.runner_up.distance, 3)},
            } for f in p.faces],
        } for p in found], ensure_ascii=False, indent=1))
    else:
        rows = []
        for p in found:
            if p.error:
                continue
            for i, f in enumerate(p.faces, 1):
                who = _printable(f.best.name) if f.best and f.wording != "unknown" else "-"
                distance = f"{f.best.distance:.2f}" if f.best else "-"
                if f.wording == "unknown" and f.best:
                    distance += f" (nearest: {_printable(f.best.name)})"
                rows.append([str(i), ", ".join(f"{v:.0f}" for v in f.box), who, f.wording, distance, _printable(p.path)])
        _records(["face", "box (x, y, w, h)", "who", "likelihood", "distance", "photo"], rows, right=("face",))
    failed = [p for p in found if p.error]
    for p in failed:
        err.print(f"not read: {escape(_printable(p.path))}: {escape(_printable(p.error or ''))}")
    faces = sum(len(p.faces) for p in found)
    summary = f"{plural(faces, 'face')} in {plural(len(found) - len(failed), 'photo')}"
    if add:
        added, known = sum(p.added for p in found), sum(p.known for p in found)
        summary += f"; {added} added to the library, {known} already there"
        if added:
            summary += "; run facecluster group to let the new faces join their people"
    err.print(summary + ".")
    if failed:
        raise click.ClickException(f"{plural(len(failed), 'photo')} could not be read (listed above)")


def _paths(paths: list[str], null: bool) -> None:
    """Paths as they are on disk: their own bytes, so `xargs` opens the very files.

    On a terminal they are shown escaped instead (a name could hold escape sequences); a path
    holding a newline cannot be one line: it is escaped, with a hint to use -0.
    """
    if not null and out.is_terminal:
        for path in paths:
            out.print(Text(_printable(path)))
        return
    sys.stdout.flush()
    stream = sys.stdout.buffer
    broken = 0
    for path in paths:
        if not null and "\n" in path:
            broken += 1
            stream.write(_printable(path).encode("utf-8") + b"\n")
            continue
        stream.write(os.fsencode(path) + (b"\0" if null else b"\n"))
    stream.flush()
    if broken:
        err.print(f"{plural(broken, 'path holds', 'paths hold')} a newline and {'is' if broken == 1 else 'are'} shown "
                  "escaped; use -0 to get every path exactly")


# Kept as they are: the joiners that emoji and Indic scripts need.
_SHOWN_AS_IS = frozenset("\u200c\u200d")


def _printable(text: str) -> str:
    """A name, path or message shown safely on one terminal line.

    Control characters (ESC starts escape sequences that recolour, retitle
    or rewrite a terminal; BEL, NUL, newline, tab), invisible format
    characters (bidi overrides, zero-width spaces) and bytes that are not
    UTF-8 are shown as escapes: \\x1b, \\u202e, \\xff.

    Example:
        _printable("a\\x1b[31mb.jpg") == "a\\\\x1b[31mb.jpg"
    """
    if text.isprintable():
        return text
    shown = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs" and 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            shown.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif category in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in _SHOWN_AS_IS:
            shown.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or
                         (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"))
        else:
            shown.append(ch)
    return "".join(shown)


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


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
