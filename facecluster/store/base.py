"""Opening the database, its migrations, the writer lock and transactions; the model packs."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from facecluster import config
from facecluster.errors import StoreBusy, StoreError
from facecluster.migrations import migrations
from facecluster.store.rows import (
    _disk_full,
    _no_room_for_shm,
    _unusable_shm,
    _writable,
    now,
)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite's own locking still protects the file
    fcntl = None  # type: ignore[assignment]


class StoreBase:
    """A part of `Store`, on its connection `self.db`: see the module's docstring."""

    # How long `writer` waits when its caller gives no wait: None reads $FACECLUSTER_LOCK_WAIT. The
    # review server sets a short one, so a click while a scan runs gets a message, not a hang.
    lock_wait: float | None = None


    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        """Open (or, unless `readonly`, create) the database at `path`.

        readonly: for commands that only read. Never creates the file or its
        folder (a missing or empty database is a StoreError), opens in SQLite's
        read-only mode where the file or its folder cannot be written, and
        still reads when the disk is full.

        Nothing here opens the database file (or its -wal and -shm) except
        SQLite: closing any descriptor of the file would drop every POSIX lock
        this process's connections hold on it (docs/reliability.md).
        """
        self.path = Path(path)
        self.readonly = False  # True when opened in SQLite's read-only mode
        if self.path.is_dir():
            raise StoreError(f"database path {self.path} is a folder")
        exists = self.path.exists()
        if readonly and not exists:
            raise StoreError(f"no database at {self.path} (`facecluster scan FOLDER` creates one)")
        if not exists and not self.path.parent.exists():
            self._make_folder()
        if not readonly:
            self._check_writable()
        try:
            self.db = Database(self._connect(readonly))
            if readonly and not self.db.table_names():  # an empty file: a read must not write a schema into it
                self.db.close()
                raise StoreError(f"{self.path} is empty, not a facecluster database yet (`facecluster scan FOLDER` makes one)")
            self.db.execute("PRAGMA foreign_keys = ON")
            if migrations.pending(self.db):
                if self.readonly:
                    self._check_version()
                    raise StoreError(
                        f"{self.path} was made by an older facecluster and needs upgrading, "
                        "but it is read-only here; run any command that writes (such as scan) where it is writable"
                    )
                # Under the writer lock: three processes opening a fresh database at
                # once used to build the schema twice, or read it half-built.
                with self.writer("open (upgrading the database)"):
                    self._check_version()
                    if migrations.pending(self.db):
                        self.db.enable_wal()
                        migrations.apply(self.db)
            else:
                self._check_version()
            if not self.readonly:
                self.db.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commit
        except sqlite3.DatabaseError as e:
            raise StoreError(self._explain(e)) from None

    def _make_folder(self) -> None:
        """Only the default data folder is made for the database: any other missing folder is
        more likely a typo in --db than a wish, and a new empty database there would hide it."""
        folder = self.path.parent
        if folder.absolute() != config.data_dir().absolute():
            raise StoreError(f"folder {folder} does not exist: create it first (mkdir -p {folder}), or check --db")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {folder}: {e.strerror}") from None

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        """A connection that has read the file's header (SQLite says here if the file is not a database).

        A command that only reads still reads when the disk is full: SQLite cannot grow
        the -shm file then ("disk I/O error"), so the read goes again in exclusive
        locking mode, which keeps the WAL index in this process's memory and needs
        no -shm; the exclusive lock keeps every other process out while it reads.
        """
        if readonly and not _writable(self.path):
            conn = sqlite3.connect(self._readonly_uri(), uri=True, timeout=30.0)
            self.readonly = True
        else:
            conn = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as e:
            conn.close()
            if not (readonly and not self.readonly and _no_room_for_shm(e)):
                raise
        conn = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # before the first read: then no -shm is ever used
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _check_writable(self) -> None:
        """Say what stops a command that writes, before SQLite says something vaguer later."""
        folder, shm = self.path.parent, Path(f"{self.path}-shm")
        if _unusable_shm(shm):
            raise StoreError(f"cannot open database {self.path}: cannot use {shm.name} beside it (it is not a file we can write)")
        if not os.access(folder, os.W_OK):
            raise StoreError(f"cannot write database {self.path}: its folder {folder} is read-only, and SQLite needs to "
                             f"create {self.path.name}-wal and {self.path.name}-shm beside it")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"cannot write database {self.path}: the file is read-only")

    def _readonly_uri(self) -> str:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        side = [Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        if not os.access(self.path.parent, os.W_OK) and not all(p.exists() for p in side):
            # SQLite cannot create the -shm file in a read-only folder; with no
            # -wal there either, nobody can be writing: read the file as it is.
            uri += "&immutable=1"
        return uri

    def _explain(self, e: sqlite3.DatabaseError) -> str:
        """What really failed, in words (not "not a database" for a full disk or a read-only folder)."""
        text = str(e)
        folder = self.path.parent
        shm = Path(f"{self.path}-shm")
        if "full" in text:
            return f"cannot open database {self.path}: the disk is full ({text})"
        if _no_room_for_shm(e) and _disk_full(folder):
            return f"cannot open database {self.path}: the disk is full (no room for {shm.name} beside it)"
        if getattr(e, "sqlite_errorname", "") == "SQLITE_NOTADB" or "file is not a database" in text:
            return f"{self.path} is not a facecluster database (not SQLite)"
        if _unusable_shm(shm):
            return f"cannot open database {self.path}: cannot use {shm.name} beside it (it is not a file we can write)"
        if not os.access(folder, os.W_OK) and ("readonly" in text or "unable to open" in text or "I/O" in text):
            return (f"cannot open database {self.path}: its folder {folder} is read-only, and SQLite needs to create "
                    f"{self.path.name}-wal and {self.path.name}-shm beside it")
        if "readonly" in text:
            return f"cannot write database {self.path}: the file is read-only ({text})"
        return f"cannot open database {self.path}: {text}"

    def _check_version(self) -> None:
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(self.db)}
        newer = sorted(applied - known)
        if newer:
            raise StoreError(
                f"database {self.path} was written by a newer facecluster (schema {newer[-1]}); upgrade facecluster to use it"
            )
        if not applied and self.db.table_names() and "photos" not in self.db.table_names():
            raise StoreError(f"{self.path} is an SQLite database of something else, not facecluster")

    def close(self) -> None:
        self.db.close()

    # ---- locking -----------------------------------------------------------------

    @contextmanager
    def writer(self, command: str, wait: float | None = None) -> Iterator[None]:
        """Hold the database's writer lock for one command (scan, group, ...)."""
        if wait is None:
            wait = config.lock_wait_seconds() if self.lock_wait is None else self.lock_wait
        if fcntl is None:
            yield
            return
        lock_path = Path(str(self.path) + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                        raise StoreBusy(
                            f"{self.path} is in use by {holder}; wait for it to finish and try again"
                        ) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"facecluster {command} (pid {os.getpid()})".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    # ---- models --------------------------------------------------------------------

    def register_model(self, name: str, fingerprint: str, dim: int, licence: str) -> str | None:
        """Record a pack the first time it is used. Returns the fingerprint stored
        earlier under this name when it differs (the weights changed), else None."""
        row = self.db.execute("SELECT fingerprint FROM models WHERE name = ?", [name]).fetchone()
        if row is None:
            with self.db.atomic():
                self.db.execute(
                    "INSERT INTO models (name, fingerprint, dim, licence, first_used) VALUES (?, ?, ?, ?, ?)",
                    [name, fingerprint, dim, licence, now()],
                )
            return None
        return row[0] if row[0] != fingerprint else None
