"""The scan pipeline: crawl -> decode -> detect -> align -> embed -> store.

The modules, in the order the data flows:
- scan_options.py: what the user asked (ScanOptions);
- this module, the driver: crawls (crawl.py, sources/pairs.py), decides which
  files need work, and afterwards settles companions and missing files;
- scan_workers.py: runs the analysis in this process, in worker processes
  (one per core, each model session on one thread) or on a Dask cluster;
- scan_file.py: one file -> its facts and faces (read, hash, decode through
  sources/, then faces.py: detect, align, embed; then XMP face names);
- scan_writer.py: the one writer to the database, committing results in
  batches, so an interrupted scan keeps everything up to its last batch and
  the next scan carries on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from facecluster.crawl import CrawlEntry, check_roots, crawl
from facecluster.errors import FaceclusterError, ModelError, UsageProblem
from facecluster.models import ModelPack, load_pack
from facecluster.scan_options import ScanOptions, max_jobs
from facecluster.scan_workers import analyse_all
from facecluster.scan_writer import ResultWriter, ScanSummary
from facecluster.sources import kind_of, pairs
from facecluster.sources.pairs import Companion
from facecluster.store import PhotoRow, Store

__all__ = ["ProgressCallback", "ScanInterrupted", "ScanOptions", "ScanProgress", "ScanSummary", "max_jobs", "really_missing", "scan"]


@dataclass
class ScanProgress:
    """What the progress callback sees; the same object, updated in place."""

    phase: str = "crawling"  # crawling -> scanning -> done
    total: int = 0  # files that need work this run
    done: int = 0
    faces: int = 0
    seen: int = 0  # candidate files found so far
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class ScanInterrupted(FaceclusterError):
    """Ctrl-C: what was done is committed; the CLI exits 130."""


ProgressCallback = Callable[[ScanProgress], None]


@dataclass
class _Plan:
    """What the crawl found: the files that need work, every path seen, and the companions of shots."""

    todo: list[CrawlEntry] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    companions: list[Companion] = field(default_factory=list)


def scan(store: Store, roots: Sequence[str], options: ScanOptions | None = None,
         progress: ProgressCallback | None = None, pack: ModelPack | None = None) -> ScanSummary:
    """Scan `roots` into `store` and return what happened.

    `pack` replaces the pack `options.model` names (the tests' fake models, tests/fakes.py); it must
    pickle where `options.jobs` > 1, and cannot go to a Dask cluster, whose workers load packs by name.

    Example:
        summary = scan(Store("library.db"), ["~/Pictures"])
    """
    options = options or ScanOptions()
    options.check()
    roots = check_roots(roots)
    if pack is not None and options.dask:
        raise UsageProblem("a model pack given as an object runs in local processes only, not with --dask")
    ship = pack is not None  # a pack given as an object goes to the workers; else each loads it by name
    pack = pack or load_pack(options.model, options.det_size, options.det_threshold)
    report = progress or (lambda p: None)
    summary = ScanSummary(roots=roots, model=pack.name)
    state = ScanProgress()

    with store.writer("scan"):
        _register(store, pack)
        index = store.photo_index()
        plan = _plan(store, index, roots, options, pack.name, summary, state, report)
        writer = ResultWriter(store, pack.name, index, summary, options.batch, options.settings)
        _analyse_and_save(store, plan.todo, pack, options, writer, state, report, ship)
        _settle_companions(store, index, plan.companions, roots)
        _settle_unseen(store, index, plan.seen, writer.moved_ids, roots, options, summary)
        summary.failures = store.failures_under(roots)

    state.phase = "done"
    report(state)
    summary.seconds = state.elapsed
    return summary


def _register(store: Store, pack: ModelPack) -> None:
    changed_weights = store.register_model(pack.name, pack.fingerprint, _dim_of(pack), pack.licence)
    if changed_weights:
        raise ModelError(
            f"the files of model pack {pack.name!r} differ from the ones this database was built with; "
            "embeddings of different weights cannot be compared (use a new database)"
        )


def _plan(store: Store, index: dict[str, PhotoRow], roots: list[str], options: ScanOptions, model: str,
          summary: ScanSummary, state: ScanProgress, report: ProgressCallback) -> _Plan:
    """Crawl the roots and decide which files need work: new, changed, or scanned with other detection settings."""
    scanned = store.scan_settings(model)
    plan = _Plan()

    def skipped(path: str, reason: str) -> None:
        summary.skipped[reason] = summary.skipped.get(reason, 0) + 1

    entries, plan.companions = pairs.pair(list(crawl(roots, options.include_hidden, options.exclude,
                                                     summary.warnings.append, skipped)))
    for companion in plan.companions:
        plan.seen.add(companion.entry.path)
        summary.companions[companion.kind] = summary.companions.get(companion.kind, 0) + 1
    for entry in entries:
        plan.seen.add(entry.path)
        if options.no_video and kind_of(entry.path) == "video":
            skipped(entry.path, "video (--no-video)")
            continue
        row = index.get(entry.path)
        unchanged = row is not None and row.size == entry.size and row.mtime_ns == entry.mtime_ns
        if unchanged and row.status == "failed":
            summary.unchanged += 1  # failed before and not changed since: listed again, not read again
        elif unchanged and row.id in scanned and scanned[row.id] == options.settings:
            summary.unchanged += 1
        else:
            if unchanged and row.id in scanned:
                summary.redetected += 1  # same file, other detection settings: find its faces again
            plan.todo.append(entry)
        state.seen += 1
        if state.seen % 500 == 0:
            report(state)
    summary.seen = state.seen
    return plan


def _analyse_and_save(store: Store, todo: list[CrawlEntry], pack: ModelPack, options: ScanOptions, writer: ResultWriter,
                      state: ScanProgress, report: ProgressCallback, ship: bool = False) -> None:
    """Analyse the files that need work and save each result; Ctrl-C saves what is done and stops."""
    try:
        state.phase, state.total = "scanning", len(todo)
        report(state)  # inside the try: Ctrl-C while this line prints is still a clean interruption
        known = store.scanned_hashes_by_size(pack.name, options.settings)
        for result in analyse_all(todo, pack, options, known, ship=ship):
            if result.fatal:
                raise ModelError(result.fatal)
            writer.add(result)
            state.done += 1
            state.faces += len(result.faces)
            report(state)
    except KeyboardInterrupt:
        writer.flush()
        raise ScanInterrupted(
            f"interrupted: {state.done} of {state.total} files scanned and saved; "
            "run the same command again to carry on"
        ) from None
    writer.flush()


def _settle_companions(store: Store, index: dict[str, PhotoRow], companions: list[Companion], roots: list[str]) -> None:
    with store.transaction():
        # A file scanned on its own before its pair appeared (a RAW, then its JPEG exported beside it)
        # is now part of the pair's shot: its own faces would count the person twice. Kept where
        # a decision hangs on one of them (a name, an ignored person, "not this person": the one
        # thing a rescan cannot bring back).
        for c in companions:
            row = index.get(c.entry.path)
            if row is not None and not store.decisions_on([row.id]).faces:
                store.delete_photos([row.id])
        store.save_companions(((c.entry.path, c.photo, c.kind, c.entry.size, c.entry.mtime_ns) for c in companions), roots)


def _settle_unseen(store: Store, index: dict[str, PhotoRow], seen: set[str], moved_ids: set[int], roots: list[str],
                   options: ScanOptions, summary: ScanSummary) -> None:
    """Photos under the roots the crawl did not see: kept where still on disk, listed (or pruned) where gone."""
    under = [r.rstrip(os.sep) + os.sep for r in roots]
    unseen = [row for path, row in index.items() if path not in seen and any(path.startswith(r) for r in under)]
    unseen = [row for row in unseen if row.id not in moved_ids]
    # Not crawled is not gone: excluded, hidden and unreadable-folder photos are
    # still on disk. Only a file the OS says does not exist is gone.
    gone = [row for row in unseen if really_missing(row.path)]
    summary.kept_unseen = len(unseen) - len(gone)
    summary.missing = sorted(row.path for row in gone)
    if options.prune and gone:
        # The user's decisions (names, ignored people, "not this person") are the one thing a
        # rescan cannot bring back: a folder that returns would come back as new, unnamed groups.
        decisions = store.decisions_on(row.id for row in gone)
        if decisions.faces and not options.yes:
            summary.prune_refused, summary.prune_refused_decisions = decisions.faces, decisions
        else:
            summary.pruned, summary.pruned_decisions = store.delete_photos(row.id for row in gone), decisions


def really_missing(path: str) -> bool:
    """True only when the OS says the file does not exist (not for "permission denied" or an I/O error).

    Example:
        really_missing("/photos/deleted.jpg")  # True
    """
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):  # EACCES, EIO, a name the OS refuses: we cannot tell, so it stays
        return False
    return False


def _dim_of(pack: ModelPack) -> int:
    return int(getattr(pack.embedder, "dim", 0))
