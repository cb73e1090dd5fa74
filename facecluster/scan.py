"""The scan pipeline: crawl -> decode -> detect -> align -> embed -> store.

Files become frames through the sources (facecluster/sources/: photos, RAW,
videos); a frame's analysis (find_faces) does not care where it came from.

The main process crawls, decides what needs work, and is the only writer to
the database. Worker processes (one per core, each model session on one
thread) read, hash, decode, detect, align and embed one file at a time and
send back plain records. Results are committed in batches, so an interrupted
scan keeps everything up to its last batch and the next scan carries on.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from facecluster import config
from facecluster.align import align_faces
from facecluster.crawl import CrawlEntry, CrawlWarning, check_roots, crawl
from facecluster.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, DecodeError
from facecluster.distributed import analyse_on_dask, check_installed, chunk_size, in_chunks
from facecluster.errors import FaceclusterError, ModelError, UsageProblem
from facecluster.files import NotRegularFile, open_regular
from facecluster.models import DEFAULT_PACK, ModelPack, load_pack
from facecluster.models.base import Detections
from facecluster.quality import thumb_quality
from facecluster.records import Face, FileResult, PhotoFacts
from facecluster.sources import kind_of, pairs
from facecluster.sources import photo as photo_source
from facecluster.sources import raw as raw_source
from facecluster.sources import video as video_source
from facecluster.store import Decisions, Failure, PhotoRow, Store
from facecluster.xmp import match_regions, read_regions


@dataclass(frozen=True)
class ScanOptions:
    model: str = DEFAULT_PACK
    jobs: int = field(default_factory=config.default_jobs)
    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    prune: bool = False
    yes: bool = False  # --prune may remove named faces
    det_size: int = config.DETECTION_SIZE
    det_threshold: float = config.DETECTION_THRESHOLD
    max_side: int = DEFAULT_MAX_SIDE
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch: int = config.BATCH_PHOTOS
    dask: str | None = None  # a Dask scheduler's address: analyse on its workers, not in local processes
    no_video: bool = False  # --no-video: videos are not read (Live Photo videos never are)

    def check(self) -> None:
        for name in ("jobs", "det_size", "max_side", "max_pixels", "batch"):
            if getattr(self, name) < 1:
                raise UsageProblem(f"--{name.replace('_', '-')} must be a positive number")
        if self.jobs > max_jobs():
            raise UsageProblem(
                f"--jobs must be at most {max_jobs()} on this machine ({config.JOBS_PER_CORE_MAX} per core; "
                "each worker holds its own models, about 300 MB)"
            )
        low, high = config.DETECTION_SIZE_RANGE
        if not low <= self.det_size <= high:
            raise UsageProblem(f"--det-size must be between {low} and {high} pixels")
        if not (math.isfinite(self.det_threshold) and 0 < self.det_threshold < 1):
            raise UsageProblem("--det-threshold must be between 0 and 1")
        if self.dask is not None:
            check_installed()

    @property
    def settings(self) -> tuple[int, float]:
        """The detection settings recorded with each photo scanned (a change re-detects it)."""
        return self.det_size, round(float(self.det_threshold), 4)


def max_jobs() -> int:
    """The most worker processes `--jobs` may ask for here."""
    return config.JOBS_PER_CORE_MAX * config.default_jobs()


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


@dataclass
class ScanSummary:
    roots: list[str]
    model: str
    seen: int = 0  # candidate files found on disk
    new: int = 0
    changed: int = 0
    moved: int = 0
    unchanged: int = 0  # skipped: same path, size and mtime
    failed: int = 0  # failed this run
    faces: int = 0  # faces found (or carried over) this run
    seconds: float = 0.0
    redetected: int = 0  # unchanged files detected again because --det-size/--det-threshold changed
    missing: list[str] = field(default_factory=list)  # in the database, really gone from disk
    kept_unseen: int = 0  # in the database, not crawled (excluded, hidden, unreadable folder) but on disk: kept
    pruned: int = 0
    pruned_decisions: Decisions = field(default_factory=Decisions)  # what --prune --yes removed with the photos
    prune_refused: int = 0  # faces holding a decision that --prune would have removed without --yes
    prune_refused_decisions: Decisions = field(default_factory=Decisions)
    failures: list[Failure] = field(default_factory=list)  # every failing file under the roots
    warnings: list[CrawlWarning] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # files read this run, by kind (photo, motion, raw, video)
    companions: dict[str, int] = field(default_factory=dict)  # files not scanned as part of another's shot, by kind
    skipped: dict[str, int] = field(default_factory=dict)  # files not read, by reason ("unknown type", "sidecar", ...)

    @property
    def photos_per_second(self) -> float:
        worked = self.new + self.changed + self.moved + self.redetected + self.failed
        return worked / self.seconds if self.seconds > 0 else 0.0


class ScanInterrupted(FaceclusterError):
    """Ctrl-C: what was done is committed; the CLI exits 130."""


ProgressCallback = Callable[[ScanProgress], None]


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
    given, pack = pack, pack or load_pack(options.model, options.det_size, options.det_threshold)
    report = progress or (lambda p: None)
    summary = ScanSummary(roots=roots, model=pack.name)
    state = ScanProgress()

    with store.writer("scan"):
        changed_weights = store.register_model(pack.name, pack.fingerprint, _dim_of(pack), pack.licence)
        if changed_weights:
            raise ModelError(
                f"the files of model pack {pack.name!r} differ from the ones this database was built with; "
                "embeddings of different weights cannot be compared (use a new database)"
            )
        index = store.photo_index()
        scanned = store.scan_settings(pack.name)

        def skipped(path: str, reason: str) -> None:
            summary.skipped[reason] = summary.skipped.get(reason, 0) + 1

        todo: list[CrawlEntry] = []
        seen: set[str] = set()
        entries, companions = pairs.pair(list(crawl(roots, options.include_hidden, options.exclude,
                                                    summary.warnings.append, skipped)))
        for companion in companions:
            seen.add(companion.entry.path)
            summary.companions[companion.kind] = summary.companions.get(companion.kind, 0) + 1
        for entry in entries:
            seen.add(entry.path)
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
                todo.append(entry)
            state.seen += 1
            if state.seen % 500 == 0:
                report(state)
        summary.seen = state.seen

        writer = _ResultWriter(store, pack.name, index, summary, options.batch, options.settings)
        try:
            state.phase, state.total = "scanning", len(todo)
            report(state)  # inside the try: Ctrl-C while this line prints is still a clean interruption
            known = store.scanned_hashes_by_size(pack.name, options.settings)
            for result in _analyse_all(todo, pack, options, known, ship=given is not None):
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

        under = [r.rstrip(os.sep) + os.sep for r in roots]
        unseen = [row for path, row in index.items() if path not in seen and any(path.startswith(r) for r in under)]
        unseen = [row for row in unseen if row.id not in writer.moved_ids]
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
        summary.failures = store.failures_under(roots)

    state.phase = "done"
    report(state)
    summary.seconds = state.elapsed
    return summary


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


class _ResultWriter:
    """Turns worker results into store calls, committed `batch` photos at a time."""

    def __init__(self, store: Store, model: str, index: dict[str, PhotoRow], summary: ScanSummary, batch: int,
                 settings: tuple[int, float] = (config.DETECTION_SIZE, config.DETECTION_THRESHOLD)):
        self.store, self.model, self.index, self.summary, self.batch = store, model, index, summary, batch
        self.settings = settings
        self.pending: list[FileResult] = []
        self.moved_ids: set[int] = set()

    def add(self, result: FileResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with self.store.transaction():
            for result in self.pending:
                try:
                    with self.store.transaction():  # a savepoint: one file's failure undoes only that file
                        self._save(result)
                except (OverflowError, ValueError, TypeError) as e:
                    # A value SQLite cannot hold: that file fails, the rest of the batch is saved.
                    self._save_failure(result, f"cannot be stored: {type(e).__name__}: {str(e)[:200]}")
        self.pending = []

    def _save_failure(self, result: FileResult, reason: str) -> None:
        existing = self.index.get(result.facts.path)
        facts = PhotoFacts(path=result.facts.path, size=result.facts.size, mtime_ns=result.facts.mtime_ns, error=reason)
        try:
            with self.store.transaction():
                self.store.save_failure(facts, existing.id if existing else None)
        except (OverflowError, ValueError, TypeError):
            self.summary.warnings.append(CrawlWarning(facts.path, reason))
        self.summary.failed += 1

    def _save(self, result: FileResult) -> None:
        facts, store, s = result.facts, self.store, self.summary
        existing = self.index.get(facts.path)
        existing_id = existing.id if existing else None
        if result.note:
            s.warnings.append(CrawlWarning(facts.path, result.note))
        if facts.error is not None:
            store.save_failure(facts, existing_id)
            s.failed += 1
            return
        kind = facts.kind or "photo"
        s.kinds[kind] = s.kinds.get(kind, 0) + 1
        if result.reused:
            if existing is not None and existing.sha256 == facts.sha256:
                store.touch_photo(existing.id, facts)  # same content, new mtime
                s.unchanged += 1
                return
            twins = store.photos_with_hash(facts.sha256, self.model, self.settings)
            gone = [t for t in twins if t.path != facts.path and not os.path.exists(t.path)]
            if gone and existing is None:
                store.move_photo(gone[0].id, facts)
                self.moved_ids.add(gone[0].id)
                self.index[facts.path] = gone[0]
                s.moved += 1
                return
            if twins:
                store.copy_photo(twins[0].id, facts, self.model, existing_id, self.settings)
                s.changed += existing is not None
                s.new += existing is None
                return
            # The twin was deleted between the worker's look and now: nothing to
            # copy from, so record the file for the next scan to redo.
            store.save_failure(replace(facts, error="its twin vanished during the scan; scan again"), existing_id)
            s.failed += 1
            return
        same_content = existing is not None and existing.sha256 == facts.sha256 and existing.status == "ok"
        store.save_photo(facts, result.faces, self.model, existing_id, self.settings, keep_people=same_content)
        s.faces += len(result.faces)
        if existing is None:
            s.new += 1
        elif not same_content:
            s.changed += 1


# ---- workers ------------------------------------------------------------------------

READ_CHUNK = 1 << 20  # files are hashed a chunk at a time, never read whole into memory
# Files up to this size are kept in memory after hashing (decode, EXIF and XMP
# read from there); bigger ones are decoded from the open file, and their XMP
# is looked for in this much of their start.
IN_MEMORY_BYTES = 64 << 20
_worker_pack: ModelPack | None = None
_worker_options: ScanOptions | None = None


def _init_worker(options: ScanOptions, parent_pid: int, pack: ModelPack | None = None) -> None:
    global _worker_pack, _worker_options
    # Ctrl-C and SIGTERM go to the whole process group: the main process alone
    # decides what to commit, so workers ignore both and are killed by it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)
    _worker_options = options
    _worker_pack = pack or load_pack(options.model, options.det_size, options.det_threshold)


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` dies, even by kill -9.

    Without it, workers of a killed scan lived on (about 270 MB each) and held
    the caller's stdout open, so a script reading the pipe hung. Linux: the
    kernel sends SIGKILL (PR_SET_PDEATHSIG); elsewhere a thread polls.

    Example:
        die_with_parent(os.getppid())
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_analyse_chunk(items: list[tuple[CrawlEntry, frozenset[str]]]) -> list[FileResult]:
    assert _worker_pack is not None and _worker_options is not None
    return list(analyse_stream(items, _worker_pack, _worker_options))


def _analyse_all(todo: list[CrawlEntry], pack: ModelPack, options: ScanOptions, known: dict[int, set[str]], ship: bool = False):
    """Results for every entry, in any order: in this process for one job, else worker processes
    (or a Dask cluster's workers, with `options.dask`).

    `known` maps a file size to the content hashes already scanned at that size.
    It stays in this process: each task carries only the few hashes a file of its
    size could have, so workers' memory does not grow with the library.
    """
    if not todo:
        return

    def candidates(entry: CrawlEntry) -> frozenset[str]:
        return frozenset(known.get(entry.size, ()))

    items = ((entry, candidates(entry)) for entry in todo)
    if options.dask:
        yield from analyse_on_dask(options.dask, items, len(todo), options, analyse_stream)
        return
    jobs = min(options.jobs, len(todo))
    if jobs == 1:
        yield from analyse_stream(items, pack, options)
        return
    # spawn, not fork: the parent holds SQLite state that must not be copied.
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (out of
    # memory, say) breaks the executor with an error instead of hanging forever.
    executor = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, os.getpid(), pack if ship else None),  # ship: a pack given to scan(), else loaded by name
    )
    # A task of several files lets a worker decode the next while it detects in this
    # one, which pays only where a core is free for it: with a worker on every
    # core, runs of 4 or 8 files were 5 % slower than single files on the
    # 196-photo mix (uneven ends), so there each task is one file.
    chunks = in_chunks(items, chunk_size(len(todo), jobs) if jobs < config.default_jobs() else 1)
    in_flight: set = set()
    try:
        while True:
            # A few tasks queued per worker keeps them busy without reading ahead the whole library.
            while len(in_flight) < jobs * 4:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                in_flight.add(executor.submit(_worker_analyse_chunk, chunk))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    yield from future.result()
                except BrokenProcessPool:
                    raise FaceclusterError(
                        "a worker process died while reading photos (killed, or out of memory); "
                        "run the scan again, with --jobs 1 to find the file"
                    ) from None
    finally:
        # SIGKILL, not terminate(): workers ignore SIGTERM (see _init_worker).
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Prepared:
    """A file read, hashed and decoded, waiting for the models."""

    entry: CrawlEntry
    facts: PhotoFacts
    photo: object  # decode.Decoded
    data: bytes  # the file (its first IN_MEMORY_BYTES for bigger ones): XMP face names are read from it
    detector_input: object = None  # Detector.prepare(photo.rgb), made ahead where the detector has that step
    note: str | None = None  # from the source (a .CR2 that is really a JPEG)
    max_side: int = DEFAULT_MAX_SIDE  # a video's frames are decoded in _finish, at most this big
    det_size: int = config.DETECTION_SIZE  # ... and detected in at the detector's size


class _Prefetch:
    """Reads, hashes and decodes the next file in a thread while this one is detected and embedded.

    Pillow and hashlib release the GIL, so on a machine with a core to spare
    the decode costs no wall time. Depth one: at most one decoded photo waits
    (at most max_side^2 pixels, 12 MB at 2048, plus its file bytes), so a
    worker's memory stays what decode.py budgets plus that one photo.

    The decode thread also makes the detector's input (resized, padded: about
    5 MB more while a photo waits), the Python part of detection, unless the
    stream is already waiting for that photo: where decoding is the slower half
    (big camera photos) the stream's thread makes it instead.

    A second thread (`faces`) makes the current photo's face thumbnails and
    their quality while the stream's own thread aligns and embeds its faces
    (see find_faces), and loads the embedder while the first photo is detected.
    """

    def __init__(self, items, options: ScanOptions, prepare: Callable | None = None) -> None:
        self.items, self.options, self.prepare = iter(items), options, prepare
        self._waited_for = threading.Event()  # the stream is blocked on the photo being prepared
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facecluster-decode")
        self.faces = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facecluster-faces")
        self.pending = None
        self._submit_next()

    def _submit_next(self) -> None:
        item = next(self.items, None)
        prepare = None if self.prepare is None else self._prepare_unless_waited_for
        self.pending = None if item is None else (item, self.pool.submit(_prepare_file, item[0], self.options, item[1], prepare))

    def _prepare_unless_waited_for(self, rgb):
        return None if self._waited_for.is_set() else self.prepare(rgb)

    def upcoming(self) -> tuple[CrawlEntry, frozenset[str]] | None:
        return None if self.pending is None else self.pending[0]

    def take(self, entry: CrawlEntry):
        """This entry's prepared file (and the next one started), or None if it was not the one prefetched."""
        if self.pending is None or self.pending[0][0] is not entry:
            return None
        future = self.pending[1]
        if not future.done():
            self._waited_for.set()
        try:
            return future.result()
        finally:
            self._waited_for.clear()
            self._submit_next()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.faces.shutdown(wait=True, cancel_futures=True)


# The prefetch of the stream running in this thread (a Dask worker may run streams in several threads).
_ahead = threading.local()


def _load_quietly(model) -> None:
    try:
        model.load()
    except Exception:  # shows again, as a fatal result, at the model's first use
        pass


def analyse_stream(items, pack: ModelPack, options: ScanOptions):
    """Results for (entry, known hashes) pairs, in order, decoding each next file while this one is analysed.

    Example:
        for result in analyse_stream([(entry, frozenset())], load_pack("sface"), ScanOptions()): ...
    """
    ahead = _Prefetch(items, options, pack.detector.prepare)
    _ahead.prefetch = ahead
    try:
        # The models load while the first photo decodes; the embedder (the slow one
        # to load) in the faces thread, started first, so that the first photo is detected meanwhile.
        ahead.faces.submit(_load_quietly, pack.embedder)
        _load_quietly(pack.detector)
        while (item := ahead.upcoming()) is not None:
            yield analyse_file(item[0], pack, options, item[1])
            if ahead.upcoming() is item:
                ahead.take(item[0])  # analyse_file was replaced (a test's spy): move on all the same
    finally:
        _ahead.prefetch = None
        ahead.close()


def analyse_file(entry: CrawlEntry, pack: ModelPack, options: ScanOptions, known_hashes: frozenset[str]) -> FileResult:
    """One file -> its facts and faces. Never raises for a bad file: the reason is recorded.

    Example:
        result = analyse_file(CrawlEntry("/p/a.jpg", 5120, 0), load_pack("sface"), ScanOptions(), frozenset())
    """
    facts = PhotoFacts(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns)
    try:
        ahead = getattr(_ahead, "prefetch", None)
        ready = ahead.take(entry) if ahead is not None else None
        if ready is None:
            ready = _prepare(entry, options, known_hashes, facts)
        if isinstance(ready, FileResult):
            return ready
        return _finish(ready, pack, ahead.faces if ahead is not None else None)
    except MemoryError:
        return FileResult(_failed(facts, "out of memory while reading this photo"))
    except Exception as e:  # one odd file is one recorded failure, never the end of the scan
        return FileResult(_failed(facts, f"unexpected error: {type(e).__name__}: {str(e)[:200]}"))


def _prepare_file(entry: CrawlEntry, options: ScanOptions, known_hashes: frozenset[str],
                  prepare: Callable | None = None) -> FileResult | _Prepared:
    """Read, hash and decode one file, and make the detector's input with `prepare` (the part the prefetch thread runs)."""
    ready = _prepare(entry, options, known_hashes, PhotoFacts(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns))
    if (prepare is not None and isinstance(ready, _Prepared) and ready.photo is not None
            and _may_hold_faces(ready.photo.rgb, ready.photo.scale)):
        try:
            ready.detector_input = prepare(ready.photo.rgb)
        except Exception:  # made again at detection, where a failure is recorded for the photo
            pass
    return ready


def _prepare(entry: CrawlEntry, options: ScanOptions, known_hashes: frozenset[str],
             facts: PhotoFacts) -> FileResult | _Prepared:
    try:
        f = open_regular(entry.path)
    except NotRegularFile as e:
        return FileResult(_failed(facts, f"skipped: {e.strerror}"))
    except OSError as e:
        return FileResult(_failed(facts, f"cannot read file: {e.strerror or e}"))
    kind = kind_of(entry.path) or "photo"
    facts = replace(facts, kind=kind)
    keep = 0 if kind == "video" else IN_MEMORY_BYTES  # a video is decoded from its path, a frame at a time
    with f:
        digest, size, kept, head = hashlib.sha256(), 0, 0, []
        try:
            while chunk := f.read(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if kept < keep:
                    head.append(chunk[: keep - kept])
                    kept += len(head[-1])
        except OSError as e:
            return FileResult(_failed(facts, f"cannot read file: {e.strerror or e}"))
        facts = replace(facts, size=size, sha256=digest.hexdigest())
        if facts.sha256 in known_hashes:
            return FileResult(facts, reused=True)
        if kind == "video":
            return _Prepared(entry, facts, None, b"", max_side=options.max_side, det_size=options.det_size)
        whole = size <= IN_MEMORY_BYTES
        data = b"".join(head)  # one copy at most: a file of one chunk is the chunk itself
        del head
        if not whole:
            f.seek(0)
        try:
            if kind == "raw":
                still = raw_source.read(data if whole else f, entry.mtime_ns / 1e9, options.det_size,
                                        options.max_side, options.max_pixels)
            else:
                still = photo_source.read(data if whole else f, data, entry.mtime_ns / 1e9, options.max_side, options.max_pixels)
        except DecodeError as e:
            return FileResult(_failed(facts, str(e)))
    photo, info = still.photo, still.info
    facts = replace(facts, width=photo.width, height=photo.height, taken=info.taken,
                    taken_source=info.taken_source, camera=info.camera, kind=still.kind)
    return _Prepared(entry, facts, photo, data, note=still.note)


def _finish(ready: _Prepared, pack: ModelPack, pool: Executor | None = None) -> FileResult:
    """Detect, align and embed the faces of a prepared file, and match its XMP face names."""
    entry, facts, photo, data = ready.entry, ready.facts, ready.photo, ready.data
    if photo is None:
        return _finish_video(ready, pack, pool)
    try:
        faces = find_faces(photo.rgb, pack, photo.scale, pool, ready.detector_input)
    except ModelError as e:
        return FileResult(facts, fatal=str(e))
    except Exception as e:  # a model choking on one odd image must not end the scan
        return FileResult(_failed(facts, f"face detection failed: {type(e).__name__}: {e}"))
    note = None
    if faces:
        try:
            regions, note = read_regions(entry.path, data, photo.width, photo.height)
        except Exception as e:  # a sidecar we cannot read costs its names, not the photo
            regions, note = [], f"XMP face names not read: {type(e).__name__}: {str(e)[:200]}"
        if regions:
            names = match_regions(regions, [f.box for f in faces])
            faces = [replace(f, label=name) for f, name in zip(faces, names)]
    notes = [n for n in (ready.note, note) if n]  # the source's (a .CR2 that is a JPEG), then the sidecar's
    return FileResult(facts, faces, note="; ".join(notes) or None)


def _finish_video(ready: _Prepared, pack: ModelPack, pool: Executor | None = None) -> FileResult:
    """Sample a video's keyframes, find the faces in each, keep the best of each person (sources/video.py)."""
    facts = ready.facts
    try:
        result = video_source.analyse(
            ready.entry.path,
            lambda rgb, scale: detect_faces(rgb, pack, scale),
            lambda rgb, found, scale: faces_from_detections(rgb, found, pack, scale, pool),
            ready.max_side, ready.det_size,
        )
    except DecodeError as e:
        return FileResult(_failed(facts, str(e)))
    except ModelError as e:
        return FileResult(facts, fatal=str(e))
    if result.frames == 0:
        reason = "no frame could be decoded" + (f" ({result.notes[-1]})" if result.notes else "")
        return FileResult(_failed(facts, reason))
    taken, source = result.taken, "exif"
    if taken is None:
        taken, source = _file_date(ready.entry.mtime_ns)
    facts = replace(facts, width=result.width or None, height=result.height or None, taken=taken,
                    taken_source=source if taken else None, camera=result.camera)
    return FileResult(facts, result.faces, note="; ".join(result.notes) or None)


def _file_date(mtime_ns: int) -> tuple[str | None, str | None]:
    try:
        return datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds"), "mtime"
    except (ValueError, OverflowError, OSError):  # outside what datetime (or the C library) can hold
        return None, None


def _failed(facts: PhotoFacts, reason: str) -> PhotoFacts:
    return replace(facts, error=reason)


def _may_hold_faces(rgb: np.ndarray, scale: float) -> bool:
    return min(rgb.shape[:2]) / scale >= config.MIN_FACE_PIXELS


def find_faces(rgb: np.ndarray, pack: ModelPack, scale: float = 1.0, pool: Executor | None = None,
               prepared: object | None = None) -> list[Face]:
    """Detect, align and embed every face of one decoded image.

    `scale` is the decoded image's size over the photo's full size; stored
    boxes and landmarks are in full-size (displayed) pixels. With a `pool` (one
    thread), the thumbnails and their quality are made there while this thread
    aligns and embeds: Pillow and OpenCV release the GIL, and so does onnxruntime.
    `prepared` is the detector's input for `rgb` where it was made ahead.

    Example:
        faces = find_faces(decode(data).rgb, load_pack("sface"))
    """
    return faces_from_detections(rgb, detect_faces(rgb, pack, scale, prepared), pack, scale, pool)


def detect_faces(rgb: np.ndarray, pack: ModelPack, scale: float = 1.0, prepared: object | None = None) -> Detections:
    """The faces of one decoded image big enough to keep, in `rgb`'s pixels (the first half of find_faces).

    A video detects in every sampled frame but describes (embeds) only the faces
    it may keep (sources/video.py).

    Example:
        found = detect_faces(rgb, load_pack("sface"))
    """
    if not _may_hold_faces(rgb, scale):
        return Detections.empty()  # too small to hold a face we would keep: do not enlarge 1x1 icons to 640 px
    found = pack.detector.predict(rgb, prepared)
    if len(found):
        sides = np.minimum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1]) / scale
        keep = sides >= config.MIN_FACE_PIXELS
        found = type(found)(found.boxes[keep], found.scores[keep], found.landmarks[keep])
    return found


def faces_from_detections(rgb: np.ndarray, found, pack: ModelPack, scale: float = 1.0,
                          pool: Executor | None = None) -> list[Face]:
    """Align, embed, thumbnail and rate faces already found in `rgb` (boxes and landmarks in rgb's pixels):
    the second half of `find_faces`, shared with faces a user draws (drawn.py).

    `scale` is rgb's size over the photo's full size; with a `pool` (one thread) the thumbnails and
    their quality are made there while this thread aligns and embeds.

    Example:
        faces = faces_from_detections(rgb, pack.detector.predict(rgb), pack)
    """
    if not len(found):
        return []
    # In float64, as Python floats always were (float32 / a Python float stays float32 in NumPy 2).
    boxes = (found.boxes.astype(np.float64) / scale).tolist()
    landmarks = (found.landmarks.reshape(len(found), -1).astype(np.float64) / scale).tolist()
    scores = found.scores.tolist()
    sizes = [round(min(x2 - x1, y2 - y1), 1) for x1, y1, x2, y2 in boxes]
    extras = None if pool is None else pool.submit(_thumbs_and_quality, rgb, found.boxes, landmarks, sizes, scores)
    vectors = pack.embedder.predict(align_faces(rgb, found.landmarks))
    thumbs, qualities = _thumbs_and_quality(rgb, found.boxes, landmarks, sizes, scores) if extras is None else extras.result()
    return [
        Face(
            box=(round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)),
            landmarks=tuple(marks),
            score=score,
            size=size,
            embedding=vector,
            thumb=thumb,
            quality=quality,
        )
        for (x1, y1, x2, y2), marks, score, size, vector, thumb, quality
        in zip(boxes, landmarks, scores, sizes, vectors, thumbs, qualities)
    ]


def _thumbs_and_quality(rgb: np.ndarray, boxes: np.ndarray, landmarks: list[list[float]], sizes: list[float],
                        scores: list[float]) -> tuple[list[bytes], list[float]]:
    """Each face's thumbnail (from the decoded image's own box) and its quality.

    The quality is computed from what the database keeps (the thumbnail, landmarks
    as stored, size, score), so that filling an older database gives the very same number.
    """
    thumbs = [face_thumbnail(rgb, box) for box in boxes]
    qualities = [thumb_quality(thumb, [round(v, 2) for v in marks], size, score)
                 for thumb, marks, size, score in zip(thumbs, landmarks, sizes, scores)]
    return thumbs, qualities


def face_thumbnail(rgb: np.ndarray, box: np.ndarray, size: int = config.THUMB_SIZE) -> bytes:
    """A square JPEG around the face, with some margin, about `size` pixels a side."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * 1.4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = rgb.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    # A contiguous copy first: Pillow turns a strided view into bytes through numpy's
    # element-by-element copy, 1.2 ms for a 331 px crop where this takes 0.05 ms.
    crop = Image.fromarray(np.ascontiguousarray(rgb[top:max(bottom, top + 1), left:max(right, left + 1)]))
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
