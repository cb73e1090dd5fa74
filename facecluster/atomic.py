"""Every file facecluster writes goes through here: all of it, or nothing.

The bytes go to a temporary file in the target's own folder (same file
system, so the rename is atomic), are flushed and fsynced, and the temporary
file is then renamed over the target. A full disk, a kill or a crash leaves
either the old file or the new one, never half of one. The temporary name is
short (`.fc-4242-1a2b3c4d.tmp`: the writer's process id and a random part), so a
target whose own name is near the 255-byte limit can still be written.

A kill -9 between writing and renaming leaves the temporary file behind. The
first write into a folder sweeps that folder for temporary files of ours left
by a process that is gone: a regular file whose name is exactly our pattern
(with `-journal`, which SQLite adds beside a backup's temporary file), written
before this process started, by a process id that no longer runs. Nothing
else is ever removed.

`overwrite=False` refuses an existing target without a race: the finished
temporary file is hard-linked to the target name, which fails if the name is
taken, and only then is the temporary name removed.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from facecluster.errors import FaceclusterError, UsageProblem


class TargetExists(FaceclusterError):
    """The target exists and the caller did not allow replacing it."""


def check_new_file(target: str | os.PathLike, overwrite: bool, database: str | os.PathLike | None = None) -> None:
    """The one rule for files a command writes: the folder must exist, an existing file needs --force,
    and the database in use (or its -wal, -shm, -journal or .lock) is never a target, --force or not:
    replacing it under the connections that have it open would lose or corrupt it.

    Example:
        check_new_file(Path("names.json"), overwrite=False, database=Path("library.db"))
    """
    target = Path(target)
    folder = target.parent
    try:
        if not folder.is_dir():
            raise UsageProblem(f"{'not a folder' if folder.exists() else 'folder not found'}: {folder}")
        if target.is_dir():
            raise UsageProblem(f"{target} is a folder; give a file name")
        exists = target.is_symlink() or target.exists()
        if exists and database is not None and _is_database_file(target, Path(database)):
            raise UsageProblem(f"{target} is the database in use (or one of its files); choose another file")
    except OSError as e:  # a name too long for the file system, a folder we may not look into
        raise FaceclusterError(f"cannot write {target}: {e.strerror or e}") from None
    if exists and not overwrite:
        raise TargetExists(f"{target} exists already; choose a new name, or --force to replace it")


def _is_database_file(target: Path, database: Path) -> bool:
    """Is `target` the database or one of the files SQLite and the writer lock keep beside it?
    Compared by device and inode (`stat`, never `open`), so a link or another spelling of the path counts."""
    try:
        seen = os.stat(target)
    except OSError:
        return False
    for end in ("", "-wal", "-shm", "-journal", ".lock"):
        try:
            own = os.stat(f"{database}{end}")
        except OSError:
            continue
        if (own.st_dev, own.st_ino) == (seen.st_dev, seen.st_ino):
            return True
    return False


# Our temporary names: `.fc-PID-8hex.tmp`, and `.fc-8hex.tmp` from before the process id was in it;
# `-journal` is what SQLite adds for a backup written to one of them.
_TEMPORARY = re.compile(r"\.fc-(?:([1-9][0-9]{0,9})-)?[0-9a-f]{8}\.tmp(?:-journal)?")
_STARTED = time.time()  # only files older than this process can be another, finished process's leftovers
_swept: set[str] = set()


def claim_output_folder(folder: Path, marker: str, what: str, force: bool, force_means: str) -> bool:
    """May an export write `what` into `folder`? A new folder (its parent must exist: never a chain of
    folders), an empty one, or one holding our `marker` from an earlier run may; any other folder only
    with `force` (`force_means` says what that would do). Returns True when the marker is there.

    Example:
        claim_output_folder(Path("site"), ".facecluster-site", "the site", False, "write the site into it")
    """
    if folder.exists() and not folder.is_dir():
        raise FaceclusterError(f"cannot write the {what} to {folder}: it is a file, not a folder")
    if not folder.exists() and not folder.parent.is_dir():
        raise UsageProblem(f"{'not a folder' if folder.parent.exists() else 'folder not found'}: {folder.parent}")
    if not folder.is_dir():
        return False
    try:
        entries = sorted(os.listdir(folder))
    except OSError as e:
        raise FaceclusterError(f"cannot write to {folder}: {e.strerror or e}") from None
    if marker in entries:
        return True
    if entries and not force:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise FaceclusterError(
            f"{folder} is not empty ({shown}) and holds no earlier facecluster {what}; choose a new or empty "
            f"folder, or add --force to {force_means}"
        )
    return False


def temporary_name(folder: Path) -> Path:
    """A fresh, short, hidden name in `folder` (whose stale temporary files of ours are removed first).

    Example:
        temporary_name(Path("/photos/2024"))  # /photos/2024/.fc-4242-1a2b3c4d.tmp
    """
    sweep_leftovers(folder)
    return folder / f".fc-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def sweep_leftovers(folder: Path) -> int:
    """Remove the temporary files a killed facecluster left in `folder` (once per folder and process);
    returns how many. Only regular files named exactly as ours, older than this process, whose
    writer is gone (or, for old names without a process id, older than this process) go.

    Example:
        sweep_leftovers(Path("/photos/2024"))
    """
    key = os.path.abspath(folder)
    if key in _swept:
        return 0
    _swept.add(key)
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not there yet, or not ours to list: the write itself will say
        return 0
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= _STARTED:
            continue  # a symlink or folder with our name is not ours; a newer file may be another run's, still writing
        if match.group(1) is not None and _running(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _running(pid: int) -> bool:
    """Is a process with this id running? Where that cannot be asked safely, say yes (keep the file)."""
    if os.name != "posix" or pid == os.getpid():
        return True  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


@contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = True, what: str = "") -> Iterator[Path]:
    """A temporary path beside `target`; when the block ends without error, it becomes `target`.

    The caller (SQLite's backup, for one) writes the file at the yielded path.
    On any error the temporary file is removed and `target` is left as it was.

    Example:
        with atomic_path("backup.db", overwrite=False) as temporary:
            store.backup_to(temporary)
    """
    target = Path(target)
    label = what or str(target)
    if not overwrite and os.path.lexists(target):
        raise TargetExists(f"{label} exists already; choose a new name, or --force to replace it")
    temporary = temporary_name(target.parent)
    # What SQLite may leave beside a database written at `temporary` (a backup) when it fails
    # (a full disk once left `.fc-XXXX.tmp-journal` behind): our names, so ours to remove.
    companions = [Path(f"{temporary}{end}") for end in ("-journal", "-wal", "-shm")]
    try:
        yield temporary
        _fsync_file(temporary)
        _finish(temporary, target, overwrite, label)
    except OSError as e:
        for path in (temporary, *companions):
            _remove(path)
        raise FaceclusterError(f"cannot write {label}: {e.strerror or e}") from None
    except BaseException:
        for path in (temporary, *companions):
            _remove(path)
        raise
    _fsync_folder(target.parent)


@contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", *, overwrite: bool = True, encoding: str | None = "utf-8",
                newline: str | None = None, what: str = "") -> Iterator[IO]:
    """An open file whose content replaces `target` only once the block has finished.

    Example:
        with atomic_open("faces.csv", newline="") as stream:
            stream.write("a,b\\n")
    """
    binary = "b" in mode
    with atomic_path(target, overwrite=overwrite, what=what) as temporary:
        # O_EXCL: never follow or reuse a name someone else made; the umask sets the permissions as for any new file.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding, "newline": newline})) as stream:
            yield stream


def write_atomic(target: str | os.PathLike, data: bytes | str, *, overwrite: bool = True, what: str = "") -> None:
    """Write `data` (str is written as UTF-8) to `target` atomically.

    Example:
        write_atomic("names.json", '{"format": "facecluster-names"}\\n', overwrite=False)
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_open(target, "wb", overwrite=overwrite, what=what) as stream:
        stream.write(payload)


class AtomicBatch:
    """Many files written atomically with one flush to disk, not one per file.

    Each file goes to its temporary name; every `size` files (and at the end)
    the file system is flushed once (`syncfs`, else `sync`), and only then are
    the temporary files renamed over their targets. An fsync per file costs
    about 3 ms on ext4; 10,000 thumbnails took 80 s that way, against 3 s in
    batches. On an error the temporary files not yet renamed are removed.

    Example:
        with AtomicBatch() as batch:
            batch.write(Path("site/thumbs/1.jpg"), jpeg)
    """

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self.pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> AtomicBatch:
        return self

    def write(self, target: str | os.PathLike, data: bytes | str) -> None:
        target = Path(target)
        temporary = temporary_name(target.parent)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as e:
            _remove(temporary)
            self.abandon()
            raise FaceclusterError(f"cannot write {target}: {e.strerror or e}") from None
        self.pending.append((temporary, target))
        if len(self.pending) >= self.size:
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        folders = {target.parent for _, target in self.pending}
        try:
            _flush_file_systems(folders, [temporary for temporary, _ in self.pending])
            while self.pending:
                temporary, target = self.pending[0]
                os.replace(temporary, target)
                self.pending.pop(0)
        except OSError as e:
            self.abandon()
            raise FaceclusterError(f"cannot write {target}: {e.strerror or e}") from None
        for folder in folders:
            _fsync_folder(folder)

    def abandon(self) -> None:
        for temporary, _ in self.pending:
            _remove(temporary)
        self.pending.clear()

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abandon()


def _flush_file_systems(folders: set[Path], files: list[Path]) -> None:
    """Everything written so far on the file systems of `folders`, on the disk."""
    try:
        # ctypes only for this one Linux call
        import ctypes

        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ImportError):  # not Linux
        syncfs = None
    if syncfs is not None:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            try:
                if syncfs(fd) != 0:
                    number = ctypes.get_errno()
                    raise OSError(number, os.strerror(number))
            finally:
                os.close(fd)
        return
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in files:  # no way to flush a whole file system: one file at a time
        _fsync_file(path)


def _finish(temporary: Path, target: Path, overwrite: bool, label: str) -> None:
    if overwrite:
        try:  # a replaced file keeps its permissions (a sidecar the user made read-only for others stays so);
            # only a regular file's: a symlink's target (/dev/zero is 0666) is not the file replaced
            st = os.stat(target, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                os.chmod(temporary, st.st_mode & 0o7777)
        except OSError:
            pass
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise TargetExists(f"{label} exists already; choose a new name, or --force to replace it") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        # A file system without hard links (FAT, some network mounts): check, then rename.
        if os.path.lexists(target):
            raise TargetExists(f"{label} exists already; choose a new name, or --force to replace it") from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform or file system can, and then the rename still stands."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
