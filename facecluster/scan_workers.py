"""Many files -> their results, in parallel: in this process for one job, else local worker
processes (one per core, each model session on one thread) or a Dask cluster's workers.

Workers only analyse (scan_file.py); results come back to the scan's one writer.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from facecluster import config
from facecluster.crawl import CrawlEntry
from facecluster.distributed import analyse_on_dask, chunk_size, in_chunks
from facecluster.errors import FaceclusterError
from facecluster.models import ModelPack, load_pack
from facecluster.records import FileResult
from facecluster.scan_file import analyse_stream
from facecluster.scan_options import ScanOptions

# A task of files holds at least this many bytes (or 64 files): see _in_processes.
TASK_BYTES = 64 * 1024

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
            # ctypes only for this one Linux call
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


def analyse_all(todo: list[CrawlEntry], pack: ModelPack, options: ScanOptions, known: dict[int, set[str]], ship: bool = False):
    """Results for every entry, in any order: in this process for one job, else worker processes
    (or a Dask cluster's workers, with `options.dask`).

    `known` maps a file size to the content hashes already scanned at that size.
    It stays in this process: each task carries only the few hashes a file of its
    size could have, so workers' memory does not grow with the library.

    Example:
        for result in analyse_all(entries, load_pack("sface"), ScanOptions(), {}): ...
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
    yield from _in_processes(items, len(todo), jobs, options, pack if ship else None)


def _in_processes(items, count: int, jobs: int, options: ScanOptions, shipped: ModelPack | None = None):
    """Results for `count` (entry, known hashes) items from `jobs` local worker processes, as they finish."""
    # spawn, not fork: the parent holds SQLite state that must not be copied.
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (out of
    # memory, say) breaks the executor with an error instead of hanging forever.
    executor = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, os.getpid(), shipped),  # a pack given to scan() goes along; else each worker loads it by name
    )
    # A task of several files lets a worker decode the next while it detects in this
    # one, which pays only where a core is free for it: with a worker on every
    # core, runs of 4 or 8 files were 5 % slower than single files on the
    # 196-photo mix (uneven ends), so there each task is one file.
    # Tiny files are the exception: one task each, passing them to a worker cost more than reading
    # them (10,000 8x8 PNGs: 7.2 s with two workers against 3.1 s in one process), so a task
    # takes files until they hold TASK_BYTES (docs/benchmarks.md, "Tasks of tiny files").
    size = chunk_size(count, jobs) if jobs < config.default_jobs() else 1
    chunks = in_chunks(items, size, weight=lambda item: item[0].size, fill=TASK_BYTES)
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

