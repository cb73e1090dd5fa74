"""`scan --dask ADDRESS`: the per-photo analysis as tasks on a Dask cluster's workers.

The scanning process still crawls, decides what needs work and is the only
writer to the database (scan.py); only the read -> decode -> detect -> embed
part moves. Each task is a run of files (chunk_size, below), analysed with the
same prefetching stream as a local worker; each Dask worker process builds the
models once and keeps them for every later task. Results stream back as tasks
finish (as_completed) into the same batched writer, so progress, resumability
and Ctrl-C behave as in a local scan.

It also says how a run of files is cut into tasks (chunk_size, in_chunks), for
the local worker processes as for Dask's. It sits below scan.py: the task is
given the analysis function (scan_file.analyse_stream) by the scan, which Dask sends
to the workers by name, so this module never imports the scan.

Every worker must see the photos at the same paths as the scanning machine
(shared storage mounted alike) and have facecluster installed.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterable, Iterator

from facecluster.crawl import CrawlEntry
from facecluster.errors import FaceclusterError, UsageProblem, short_reason
from facecluster.models import load_pack
from facecluster.records import FileResult

# How long to wait for the scheduler to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10
MISSING = "--dask needs Dask distributed, which is not installed: pip install 'facecluster[dask]'"
# Tasks queued per worker thread: enough to keep each busy while results travel
# back, few enough that the scheduler does not hold the whole library.
TASKS_PER_THREAD = 2
# Most files per worker task. A task is a run of files a worker decodes one
# ahead of the one it analyses (see scan_file._Prefetch); results come back a task at a time.
# On a 2-worker Dask LocalCluster, the 196-photo mix: runs of 4 files 7.49-7.81 s,
# of 8 7.56-7.99 s, of 2 7.98-9.13 s (uneven ends against per-task overhead).
CHUNK_FILES = 4

# The per-file analysis a task runs: (items, models, options) -> results in order (scan_file.analyse_stream).
Analyse = Callable[..., Iterable[FileResult]]

# On a Dask worker: the model packs built so far, by settings, shared by the worker's threads.
_packs: dict = {}
_packs_lock = threading.Lock()


def _worker_pack(options):
    """This worker process's models for these options, built at its first task and kept."""
    key = (options.model, options.det_size, options.det_threshold)
    with _packs_lock:
        pack = _packs.get(key)
        if pack is None:
            pack = _packs[key] = load_pack(*key)
    return pack


def analyse_chunk(items: list[tuple[CrawlEntry, frozenset[str]]], options, analyse: Analyse) -> list[FileResult]:
    """The Dask task: results for a run of files, in order, by `analyse` (scan_file.analyse_stream) with
    this worker's cached models.

    Example:
        client.submit(analyse_chunk, [(entry, frozenset())], ScanOptions(), analyse_stream, pure=False)
    """
    return list(analyse(items, _worker_pack(options), options))


def chunk_size(files: int, workers: int) -> int:
    """Files per task: enough for a worker to decode the next while it detects in this one,
    few enough that every worker gets several tasks (the last ones finish together).

    Example:
        chunk_size(1000, 2)  # 4
    """
    return max(1, min(CHUNK_FILES, files // (workers * 4)))


def in_chunks(items, size: int, weight=None, fill: int = 0, most: int = 64):
    """Lists of `size` items (the last one shorter).

    With `weight` (an item's size in bytes) and `fill`, a list of small items
    keeps growing until their weights add up to `fill`, up to `most` items: a
    task per tiny file costs more in passing it to a worker than reading it.

    Example:
        list(in_chunks(range(5), 2))  # [[0, 1], [2, 3], [4]]
    """
    chunk, total = [], 0
    for item in items:
        chunk.append(item)
        total += weight(item) if weight else 0
        if len(chunk) >= most or (len(chunk) >= size and total >= fill):
            yield chunk
            chunk, total = [], 0
    if chunk:
        yield chunk


def check_installed() -> None:
    """A usage error, before any work, where Dask distributed is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise UsageProblem(MISSING)


def connect(address: str):
    """A Dask client for the scheduler at `address`, or one clear error.

    Example:
        client = connect("tcp://scheduler:8786")
    """
    try:
        # Dask is optional (the `dask` extra): loaded only for scan --dask
        from distributed import Client
    except ImportError:
        raise UsageProblem(MISSING) from None
    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise FaceclusterError(f"cannot reach the Dask scheduler at {address}: {short_reason(e)}") from None


def analyse_on_dask(address: str, items: Iterable[tuple[CrawlEntry, frozenset[str]]], files: int,
                    options, analyse: Analyse) -> Iterator[FileResult]:
    """Results for every (entry, known hashes) pair, in any order, computed on the cluster at `address`.

    At most TASKS_PER_THREAD tasks per worker thread are in flight; a finished
    one makes room for the next. Leaving early (Ctrl-C, an error) cancels what
    is still queued and closes the connection; the workers keep their models.

    Example:
        for result in analyse_on_dask("tcp://scheduler:8786", items, len(todo), ScanOptions(), analyse_stream): ...
    """
    client = connect(address)
    queued: list = []
    try:
        # Dask is optional (the `dask` extra): loaded only for scan --dask
        from distributed import as_completed

        threads = sum(client.nthreads().values())
        if threads == 0:
            raise FaceclusterError(f"the Dask cluster at {address} has no workers; start some with dask worker {address}")
        size = chunk_size(files, threads)
        chunks = in_chunks(items, size)
        pending = as_completed(loop=client.loop)

        def submit(n: int) -> None:
            for _ in range(n):
                chunk = next(chunks, None)
                if chunk is None:
                    return
                future = client.submit(analyse_chunk, chunk, options, analyse, pure=False)
                queued.append(future)
                pending.add(future)

        submit(threads * TASKS_PER_THREAD)
        for future in pending:
            queued.remove(future)
            try:
                results = future.result()
            except Exception as e:  # a worker that died (KilledWorker), or lost its connection
                raise FaceclusterError(
                    f"a Dask worker failed while reading photos ({type(e).__name__}: {str(e)[:200]}); "
                    "run the scan again to carry on"
                ) from None
            future.release()
            submit(1)
            yield from results
    finally:
        for future in queued:
            future.cancel()
        client.close()

