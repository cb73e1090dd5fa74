"""`scan --dask`: the analysis on a real dask.distributed LocalCluster of separate worker processes."""

import importlib.util
import socket
import sqlite3

import numpy as np
import pytest

import facecluster.distributed as distributed_module
from facecluster.errors import UsageProblem
from facecluster.scan import ScanInterrupted, ScanOptions, scan
from facecluster.store import Store
from tests.conftest import cli_run as run

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="Dask distributed is not installed (pip install 'facecluster[dask]', part of the test extra)",
)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    # Two worker processes with one thread each: what `--jobs 2` is locally.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(2)
            yield local.scheduler_address, client


def embeddings(db):
    query = ("SELECT p.path, f.x, f.y, f.embedding FROM faces f JOIN photos p ON p.id = f.photo_id "
             "ORDER BY p.path, f.x, f.y")
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def worker_packs(client):
    """For each worker process: its pid and the ids of the model packs it has built."""
    def packs():
        import os

        from facecluster import distributed

        return os.getpid(), sorted(id(p) for p in distributed._packs.values())

    return list(client.run(packs).values())


@needs_dask
def test_dask_scan_matches_the_local_scan_and_runs_on_the_workers(tmp_path, photo_folder, cluster):
    address, client = cluster
    local = run(tmp_path / "local.db", "scan", "-j", "1", str(photo_folder))
    on_dask = run(tmp_path / "dask.db", "scan", "--dask", address, str(photo_folder))
    assert on_dask.exit_code == 0, on_dask.output
    for text in ("2 new", "3 failed", "7 faces found"):
        assert text in local.stderr and text in on_dask.stderr
    a, b = embeddings(tmp_path / "local.db"), embeddings(tmp_path / "dask.db")
    assert len(a) == len(b) == 7
    for ra, rb in zip(a, b):
        assert ra[:3] == rb[:3]
        assert float(np.frombuffer(ra[3], "<f4") @ np.frombuffer(rb[3], "<f4")) > 0.9999
    # The analysis ran in the worker processes, which built their models once and keep them.
    before = worker_packs(client)
    assert any(ids for _, ids in before)
    again = run(tmp_path / "again.db", "scan", "--dask", address, str(photo_folder))
    assert "7 faces found" in again.stderr
    after = dict(worker_packs(client))
    for pid, ids in before:
        assert set(ids) <= set(after[pid])  # the same pack objects: not loaded again
        assert len(after[pid]) <= 1


@needs_dask
def test_dask_scan_interrupted_keeps_what_was_saved_and_carries_on(tmp_path, photo_folder, cluster):
    address, client = cluster
    db = tmp_path / "lib.db"
    options = ScanOptions(dask=address, batch=1)

    def ctrl_c_after_two(progress):
        if progress.phase == "scanning" and progress.done == 2:
            raise KeyboardInterrupt

    store = Store(db)
    try:
        with pytest.raises(ScanInterrupted, match="interrupted: 2 of 5 files scanned and saved"):
            scan(store, [str(photo_folder)], options, progress=ctrl_c_after_two)
        summary = scan(store, [str(photo_folder)], options)
    finally:
        store.close()
    assert summary.unchanged == 2 and summary.new + summary.failed == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 7
    # The cancelled tasks left the cluster usable.
    assert client.submit(sum, [1, 2], pure=False).result() == 3


@needs_dask
def test_unreachable_scheduler_is_one_line(tmp_path, photo_folder, monkeypatch):
    monkeypatch.setattr(distributed_module, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(tmp_path / "lib.db", "scan", "--dask", f"tcp://127.0.0.1:{port}", str(photo_folder))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "Error" in line]  # besides the progress line
    assert len(errors) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in result.output


def test_without_dask_installed_the_option_is_one_usage_line(tmp_path, photo_folder, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # as if not installed
    with pytest.raises(UsageProblem, match="pip install 'facecluster\\[dask\\]'"):
        ScanOptions(dask="tcp://scheduler:8786").check()
    result = run(tmp_path / "lib.db", "scan", "--dask", "tcp://scheduler:8786", str(photo_folder))
    assert result.exit_code == 2
    assert "--dask needs Dask distributed, which is not installed" in result.output
    assert "Traceback" not in result.output
