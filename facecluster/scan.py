"""The scan pipeline: crawl -> decode -> detect -> align -> embed -> store.

The main process crawls, decides what needs work, and is the only writer to
the database. Worker processes (one per core, each model session on one
thread) read, hash, decode, detect, align and embed one file at a time and
send back plain records. Results are committed in batches, so an interrupted
scan keeps everything up to its last batch and the next scan carries on.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from facecluster import config
from facecluster.align import align_faces
from facecluster.crawl import CrawlEntry, CrawlWarning, check_roots, crawl
from facecluster.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, DecodeError, decode, photo_info
from facecluster.errors import FaceclusterError, ModelError, UsageProblem
from facecluster.models import DEFAULT_PACK, ModelPack, load_pack
from facecluster.records import Face, FileResult, PhotoFacts
from facecluster.store import Failure, PhotoRow, Store
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

    def check(self) -> None:
        for name in ("jobs", "det_size", "max_side", "max_pixels", "batch"):
            if getattr(self, name) < 1:
                raise UsageProblem(f"--{name.replace('_', '-')} must be a positive number")
        if not 0 < self.det_threshold < 1:
            raise UsageProblem("--det-threshold must be between 0 and 1")


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
    missing: list[str] = field(default_factory=list)
    pruned: int = 0
    prune_refused: int = 0  # named faces that --prune would have removed without --yes
    failures: list[Failure] = field(default_factory=list)  # every failing file under the roots
    warnings: list[CrawlWarning] = field(default_factory=list)

    @property
    def photos_per_second(self) -> float:
        worked = self.new + self.changed + self.moved + self.failed
        return worked / self.seconds if self.seconds > 0 else 0.0


class ScanInterrupted(FaceclusterError):
    """Ctrl-C: what was done is committed; the CLI exits 130."""


ProgressCallback = Callable[[ScanProgress], None]


def scan(store: Store, roots: Sequence[str], options: ScanOptions | None = None,
         progress: ProgressCallback | None = None) -> ScanSummary:
    """Scan `roots` into `store` and return what happened.

    Example:
        summary = scan(Store("library.db"), ["~/Pictures"])
    """
    options = options or ScanOptions()
    options.check()
    roots = check_roots(roots)
    pack = load_pack(options.model, options.det_size, options.det_threshold)
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
        scanned = store.scanned_photo_ids(pack.name)

        todo: list[CrawlEntry] = []
        seen: set[str] = set()
        for entry in crawl(roots, options.include_hidden, options.exclude, summary.warnings.append):
            seen.add(entry.path)
            row = index.get(entry.path)
            unchanged = row is not None and row.size == entry.size and row.mtime_ns == entry.mtime_ns
            if unchanged and (row.status == "failed" or row.id in scanned):
                summary.unchanged += 1
            else:
                todo.append(entry)
            state.seen += 1
            if state.seen % 500 == 0:
                report(state)
        summary.seen = state.seen

        state.phase, state.total = "scanning", len(todo)
        report(state)
        writer = _ResultWriter(store, pack.name, index, summary, options.batch)
        try:
            for result in _analyse_all(todo, pack, options, store.scanned_hashes(pack.name)):
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

        under = [r.rstrip(os.sep) + os.sep for r in roots]
        gone = [row for path, row in index.items() if path not in seen and any(path.startswith(r) for r in under)]
        gone = [row for row in gone if row.id not in writer.moved_ids]
        summary.missing = sorted(row.path for row in gone)
        if options.prune and gone:
            named = store.named_faces_under(row.id for row in gone)
            if named and not options.yes:
                summary.prune_refused = named  # names are the one thing a rescan cannot bring back
            else:
                summary.pruned = store.delete_photos(row.id for row in gone)
        summary.failures = store.failures_under(roots)

    state.phase = "done"
    report(state)
    summary.seconds = state.elapsed
    return summary


def _dim_of(pack: ModelPack) -> int:
    return int(getattr(pack.embedder, "dim", 0))


class _ResultWriter:
    """Turns worker results into store calls, committed `batch` photos at a time."""

    def __init__(self, store: Store, model: str, index: dict[str, PhotoRow], summary: ScanSummary, batch: int):
        self.store, self.model, self.index, self.summary, self.batch = store, model, index, summary, batch
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
                self._save(result)
        self.pending = []

    def _save(self, result: FileResult) -> None:
        facts, store, s = result.facts, self.store, self.summary
        existing = self.index.get(facts.path)
        existing_id = existing.id if existing else None
        if facts.error is not None:
            store.save_failure(facts, existing_id)
            s.failed += 1
            return
        if result.reused:
            if existing is not None and existing.sha256 == facts.sha256:
                store.touch_photo(existing.id, facts)  # same content, new mtime
                s.unchanged += 1
                return
            twins = store.photos_with_hash(facts.sha256, self.model)
            gone = [t for t in twins if t.path != facts.path and not os.path.exists(t.path)]
            if gone and existing is None:
                store.move_photo(gone[0].id, facts)
                self.moved_ids.add(gone[0].id)
                self.index[facts.path] = gone[0]
                s.moved += 1
                return
            if twins:
                store.copy_photo(twins[0].id, facts, self.model, existing_id)
                s.changed += existing is not None
                s.new += existing is None
                return
            # The twin was deleted between the worker's look and now: nothing to
            # copy from, so record the file for the next scan to redo.
            store.save_failure(replace(facts, error="its twin vanished during the scan; scan again"), existing_id)
            s.failed += 1
            return
        store.save_photo(facts, result.faces, self.model, existing_id)
        s.faces += len(result.faces)
        if existing is None:
            s.new += 1
        else:
            s.changed += 1


# ---- workers ------------------------------------------------------------------------

_worker_pack: ModelPack | None = None
_worker_known: frozenset[str] = frozenset()
_worker_options: ScanOptions | None = None


def _init_worker(options: ScanOptions, known_hashes: frozenset[str]) -> None:
    global _worker_pack, _worker_known, _worker_options
    # Ctrl-C goes to the whole process group: the main process alone decides
    # what to commit, so workers ignore it and are terminated by the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_options = options
    _worker_known = known_hashes
    _worker_pack = load_pack(options.model, options.det_size, options.det_threshold)


def _worker_analyse(entry: CrawlEntry) -> FileResult:
    assert _worker_pack is not None and _worker_options is not None
    return analyse_file(entry, _worker_pack, _worker_options, _worker_known)


def _analyse_all(todo: list[CrawlEntry], pack: ModelPack, options: ScanOptions, known: set[str]):
    """Results for every entry, in any order: in this process for one job, else worker processes."""
    if not todo:
        return
    known_hashes = frozenset(known)
    if options.jobs == 1 or len(todo) == 1:
        for entry in todo:
            yield analyse_file(entry, pack, options, known_hashes)
        return
    # spawn, not fork: the parent holds SQLite state that must not be copied.
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (out of
    # memory, say) breaks the executor with an error instead of hanging forever.
    executor = ProcessPoolExecutor(
        max_workers=min(options.jobs, len(todo)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, known_hashes),
    )
    entries = iter(todo)
    in_flight: set = set()
    try:
        while True:
            # A few tasks queued per worker keeps them busy without reading ahead the whole library.
            while len(in_flight) < options.jobs * 4:
                entry = next(entries, None)
                if entry is None:
                    break
                in_flight.add(executor.submit(_worker_analyse, entry))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    yield future.result()
                except BrokenProcessPool:
                    raise FaceclusterError(
                        "a worker process died while reading photos (out of memory?); "
                        "run the scan again, with --jobs 1 to find the file"
                    ) from None
    finally:
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)


def analyse_file(entry: CrawlEntry, pack: ModelPack, options: ScanOptions, known_hashes: frozenset[str]) -> FileResult:
    """One file -> its facts and faces. Never raises for a bad file: the reason is recorded."""
    facts = PhotoFacts(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns)
    try:
        with open(entry.path, "rb") as f:
            data = f.read()
    except OSError as e:
        return FileResult(_failed(facts, f"cannot read file: {e.strerror or e}"))
    facts = replace(facts, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if facts.sha256 in known_hashes:
        return FileResult(facts, reused=True)
    try:
        photo = decode(data, options.max_side, options.max_pixels)
    except DecodeError as e:
        return FileResult(_failed(facts, str(e)))
    info = photo_info(data, entry.mtime_ns / 1e9)
    facts = replace(facts, width=photo.width, height=photo.height, taken=info.taken,
                    taken_source=info.taken_source, camera=info.camera)
    try:
        faces = find_faces(photo.rgb, pack, photo.scale)
    except ModelError as e:
        return FileResult(facts, fatal=str(e))
    except Exception as e:  # a model choking on one odd image must not end the scan
        return FileResult(_failed(facts, f"face detection failed: {type(e).__name__}: {e}"))
    regions = read_regions(entry.path, data, photo.width, photo.height) if faces else []
    if regions:
        names = match_regions(regions, [f.box for f in faces])
        faces = [replace(f, label=name) for f, name in zip(faces, names)]
    return FileResult(facts, faces)


def _failed(facts: PhotoFacts, reason: str) -> PhotoFacts:
    return replace(facts, error=reason)


def find_faces(rgb: np.ndarray, pack: ModelPack, scale: float = 1.0) -> list[Face]:
    """Detect, align and embed every face of one decoded image.

    `scale` is the decoded image's size over the photo's full size; stored
    boxes and landmarks are in full-size (displayed) pixels.
    """
    if min(rgb.shape[:2]) / scale < config.MIN_FACE_PIXELS:
        return []  # too small to hold a face we would keep: do not enlarge 1x1 icons to 640 px
    found = pack.detector.predict(rgb)
    if len(found):
        sides = np.minimum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1]) / scale
        keep = sides >= config.MIN_FACE_PIXELS
        found = type(found)(found.boxes[keep], found.scores[keep], found.landmarks[keep])
    if not len(found):
        return []
    vectors = pack.embedder.predict(align_faces(rgb, found.landmarks))
    faces = []
    for box, score, marks, vector in zip(found.boxes, found.scores, found.landmarks, vectors):
        x1, y1, x2, y2 = (float(v) / scale for v in box)
        w, h = x2 - x1, y2 - y1
        faces.append(
            Face(
                box=(round(x1, 1), round(y1, 1), round(w, 1), round(h, 1)),
                landmarks=tuple(float(v) / scale for v in marks.reshape(-1)),
                score=float(score),
                size=round(min(w, h), 1),
                embedding=vector,
                thumb=face_thumbnail(rgb, box),
            )
        )
    return faces


def face_thumbnail(rgb: np.ndarray, box: np.ndarray, size: int = config.THUMB_SIZE) -> bytes:
    """A square JPEG around the face, with some margin, about `size` pixels a side."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * 1.4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = rgb.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = Image.fromarray(rgb[top:max(bottom, top + 1), left:max(right, left + 1)])
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
