"""One file -> its facts and faces (a FileResult): what a scan worker does, one file at a time.

read and hash (files.open_regular) -> decode (sources/: photo, RAW, video) ->
find the faces (faces.py) -> match the names of its XMP face regions (xmp.py).
A stream of files (`analyse_stream`) decodes the next one in a thread while
this one is in the models. Nothing here writes to the database: results go
back to the scan's one writer (scan_writer.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from facecluster import config
from facecluster.crawl import CrawlEntry
from facecluster.decode import DEFAULT_MAX_SIDE, DecodeError
from facecluster.errors import ModelError
from facecluster.faces import detect_faces, faces_from_detections, find_faces, may_hold_faces
from facecluster.files import NotRegularFile, open_regular
from facecluster.models import ModelPack
from facecluster.records import FileResult, PhotoFacts
from facecluster.scan_options import ScanOptions
from facecluster.sources import kind_of
from facecluster.sources import photo as photo_source
from facecluster.sources import raw as raw_source
from facecluster.sources import video as video_source
from facecluster.xmp import match_regions, read_regions

READ_CHUNK = 1 << 20  # files are hashed a chunk at a time, never read whole into memory
# Files up to this size are kept in memory after hashing (decode, EXIF and XMP
# read from there); bigger ones are decoded from the open file, and their XMP
# is looked for in this much of their start.
IN_MEMORY_BYTES = 64 << 20


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
            and may_hold_faces(ready.photo.rgb, ready.photo.scale)):
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

