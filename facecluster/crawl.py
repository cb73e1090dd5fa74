"""Roots -> the candidate files below them: every photo, RAW and video a source reads (facecluster.sources).

Recursive, extensions matched case-insensitively (the content is checked
later, when the file is decoded), hidden files and folders skipped unless
asked for, `--exclude` globs, and symlinked folders followed at most once
(a symlink loop is never walked twice). FIFOs, devices and sockets with a
photo's name are reported as skipped, never opened. Other regular files are
counted, by reason, through `on_skipped` (the scan summary says what it left out).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from facecluster.errors import UsageProblem
from facecluster.files import special_kind
from facecluster.sources import EXTENSIONS, SIDECAR_EXTENSIONS
from facecluster.sources.photo import EXTENSIONS as PHOTO_EXTENSIONS  # noqa: F401 (the name callers knew)


@dataclass(frozen=True)
class CrawlEntry:
    path: str  # absolute, as reached (symlinks in it are kept, not resolved)
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CrawlWarning:
    path: str
    reason: str


def check_roots(roots: Sequence[str]) -> list[str]:
    """Absolute roots; a missing root or a file given as a root is a usage problem."""
    if not roots:
        raise UsageProblem("name at least one folder to scan")
    checked = []
    for root in roots:
        if not root.strip():
            # abspath("") is the current folder: an empty argument (an unset shell
            # variable, say) must not quietly scan wherever the command was run.
            raise UsageProblem("an empty folder name was given; name the folder to scan")
        path = os.path.abspath(os.path.expanduser(root))
        if not os.path.exists(path):
            raise UsageProblem(f"folder not found: {root}")
        if not os.path.isdir(path):
            raise UsageProblem(f"not a folder: {root}")
        checked.append(path)
    return checked


def crawl(
    roots: Sequence[str],
    include_hidden: bool = False,
    exclude: Sequence[str] = (),
    on_warning: Callable[[CrawlWarning], None] | None = None,
    on_skipped: Callable[[str, str], None] | None = None,
) -> Iterator[CrawlEntry]:
    """Yield every candidate file under `roots` (photos, RAW, videos), each path once.

    on_skipped(path, reason) hears of every other regular file: reason "sidecar"
    (.xmp, .aae, ...) or "unknown type".

    Example:
        for entry in crawl(["/home/me/Pictures"], exclude=["*/Trash/*"]): ...
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    warn = on_warning or (lambda w: None)
    for root in roots:
        stack = [root]
        while stack:
            entries = _listing(stack.pop(), seen_dirs, warn)
            if entries is None:
                continue
            subfolders = []
            for entry in entries:
                if not include_hidden and entry.name.startswith("."):
                    continue
                if _excluded(entry.path, entry.name, exclude):
                    continue
                try:
                    st = entry.stat()  # follows symlinks
                except OSError as e:
                    warn(CrawlWarning(entry.path, f"cannot read: {e.strerror}"))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subfolders.append(entry.path)
                elif (ext := os.path.splitext(entry.name)[1].lower()) not in EXTENSIONS or entry.path in seen_files:
                    if on_skipped is not None and entry.path not in seen_files and stat.S_ISREG(st.st_mode):
                        on_skipped(entry.path, "sidecar" if ext in SIDECAR_EXTENSIONS else "unknown type")
                    continue
                elif stat.S_ISREG(st.st_mode):
                    seen_files.add(entry.path)
                    yield CrawlEntry(entry.path, st.st_size, clamp_ns(st.st_mtime_ns))
                else:
                    # Opening a FIFO blocks until someone writes to it; a device can be endless.
                    warn(CrawlWarning(entry.path, f"skipped: {special_kind(st.st_mode)}, not a regular file"))
            # Depth-first, in name order: reversed so the stack pops a..z.
            stack.extend(reversed(subfolders))


def _listing(folder: str, seen_dirs: set[tuple[int, int]], warn: Callable[[CrawlWarning], None]) -> list[os.DirEntry] | None:
    """A folder's entries in name order; None for a folder seen already (a symlink loop) or unreadable (warned)."""
    try:
        st = os.stat(folder)
    except OSError as e:
        warn(CrawlWarning(folder, f"cannot open folder: {e.strerror}"))
        return None
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        return None  # a symlink loop, or a folder reached twice
    seen_dirs.add(key)
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        warn(CrawlWarning(folder, f"cannot list folder: {e.strerror}"))
        return None


def clamp_ns(ns: int) -> int:
    """A file time in nanoseconds, held within SQLite's 64-bit integers.

    ext4 keeps times up to the year 2446: 1.5e19 ns, beyond 2**63. Unclamped,
    such a file made the whole batch around it fail to save, on every rescan.

    Example:
        clamp_ns(15032385535 * 10**9)  # 9223372036854775807
    """
    return max(-(2**63), min(2**63 - 1, ns))


def _excluded(path: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns)
