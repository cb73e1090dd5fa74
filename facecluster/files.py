"""Opening the user's files for reading: only regular files, never blocking, never read without a limit.

Every file facecluster reads from the library or the command line (photos,
sidecars, name files, photos the review page shows) is opened here. The open
uses `O_NONBLOCK`, so a FIFO put where a photo was returns at once instead of
waiting for a writer that never comes; `fstat` of the open descriptor then
checks what was really opened: a symlink is followed, but only to a regular
file (a symlink to /dev/zero is refused, it is not read until memory runs out).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder (itself, or at the end of its symlinks)."""

    def __init__(self, path: str | os.PathLike, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", os.fspath(path))
        self.kind = kind


class FileTooBig(OSError):
    """A file that is read whole is larger than the caller's limit."""

    def __init__(self, path: str | os.PathLike, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {_size(limit)} ({_size(size)})", os.fspath(path))
        self.size = size
        self.limit = limit


def special_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words.

    Example:
        special_kind(os.stat("/dev/null").st_mode)  # "a character device"
    """
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "a special file"


def open_regular(path: str | os.PathLike, max_bytes: int | None = None, follow_symlinks: bool = True) -> BinaryIO:
    """Open a regular file for reading, without ever blocking on a FIFO or device put in its place.

    Raises `NotRegularFile` (an OSError) for anything but a regular file,
    `FileTooBig` where the file is over `max_bytes`, and OSError as `open` does.
    With `follow_symlinks=False` a symlink itself is refused (ELOOP).

    Example:
        with open_regular("/photos/a.jpg") as f: f.read(10)
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, special_kind(st.st_mode))
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileTooBig(path, st.st_size, max_bytes)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The whole content of a regular file of at most `max_bytes` (checked before and while reading:
    a file that grows past the limit is refused too).

    Example:
        data = read_regular("names.json", 512 * 2**20)
    """
    with open_regular(path, max_bytes, follow_symlinks) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooBig(path, len(data), max_bytes)
    return data


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"
