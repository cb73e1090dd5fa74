"""`scan` and `group`: fill the database from the photos, then cluster its faces into people."""

from __future__ import annotations

import time

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from facecluster import config
from facecluster.cli.command import command, open_store
from facecluster.cli.output import _printable, _records, err
from facecluster.grouping import GroupOptions, GroupSummary, group
from facecluster.models import PACK_NAMES
from facecluster.models.registry import REEMBEDDERS
from facecluster.naming_rules import plural
from facecluster.reembed import after_scan, summary_lines
from facecluster.scan import ScanOptions, ScanProgress, ScanSummary, scan


@command("scan")
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


@command("group")
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
