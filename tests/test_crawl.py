import os
from pathlib import Path

import pytest

from facecluster.crawl import check_roots, crawl
from facecluster.errors import UsageProblem


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(entries, root):
    return sorted(os.path.relpath(e.path, root) for e in entries)


def test_extensions_any_case_and_recursion(tmp_path):
    for name in ["a.jpg", "b.JPEG", "sub/c.Png", "sub/deeper/d.heic", "e.webp", "f.TIFF", "g.bmp", "h.HEIF", "notes.txt",
                 "raw.cr2", "i.NEF", "clip.MOV", "v.mp4", "a.xmp", "IMG_1.AAE"]:
        touch(tmp_path / name)
    skipped = []
    assert names(crawl([str(tmp_path)], on_skipped=lambda path, why: skipped.append((os.path.basename(path), why))), tmp_path) == [
        "a.jpg", "b.JPEG", "clip.MOV", "e.webp", "f.TIFF", "g.bmp", "h.HEIF", "i.NEF", "raw.cr2",
        "sub/c.Png", "sub/deeper/d.heic", "v.mp4",
    ]
    # Every other regular file is heard of, with why it is not read: the scan summary counts them.
    assert sorted(skipped) == [("IMG_1.AAE", "sidecar"), ("a.xmp", "sidecar"), ("notes.txt", "unknown type")]


def test_hidden_skipped_unless_asked(tmp_path):
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / ".thumbnails" / "x.jpg")
    touch(tmp_path / "seen.jpg")
    assert names(crawl([str(tmp_path)]), tmp_path) == ["seen.jpg"]
    assert names(crawl([str(tmp_path)], include_hidden=True), tmp_path) == [".hidden.jpg", ".thumbnails/x.jpg", "seen.jpg"]


def test_exclude_globs(tmp_path):
    touch(tmp_path / "Trash" / "a.jpg")
    touch(tmp_path / "keep" / "b.jpg")
    touch(tmp_path / "keep" / "b.tmp.jpg")
    got = names(crawl([str(tmp_path)], exclude=["*/Trash", "*.tmp.jpg"]), tmp_path)
    assert got == ["keep/b.jpg"]


def test_symlink_loop_walked_once(tmp_path):
    touch(tmp_path / "a" / "photo.jpg")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "up")
    assert names(crawl([str(tmp_path)]), tmp_path) == ["a/photo.jpg"]


def test_overlapping_roots_yield_each_file_once(tmp_path):
    touch(tmp_path / "sub" / "photo.jpg")
    assert len(list(crawl([str(tmp_path), str(tmp_path / "sub")]))) == 1


def test_unreadable_folder_is_a_warning(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder, so permissions cannot be tested")
    locked = tmp_path / "locked"
    touch(locked / "a.jpg")
    locked.chmod(0)
    warnings = []
    try:
        assert list(crawl([str(tmp_path)], on_warning=warnings.append)) == []
    finally:
        locked.chmod(0o755)
    assert warnings and "cannot" in warnings[0].reason


def test_roots_checked(tmp_path):
    touch(tmp_path / "file.jpg")
    with pytest.raises(UsageProblem, match="folder not found"):
        check_roots([str(tmp_path / "nope")])
    with pytest.raises(UsageProblem, match="not a folder"):
        check_roots([str(tmp_path / "file.jpg")])
    assert check_roots([str(tmp_path)]) == [str(tmp_path)]


def test_fifo_named_like_a_photo_is_a_warning_not_a_candidate(tmp_path):
    touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    os.mkfifo(tmp_path / "other_pipe")  # not a photo's name: not worth a word
    warnings = []
    assert names(crawl([str(tmp_path)], on_warning=warnings.append), tmp_path) == ["a.jpg"]
    assert [(os.path.basename(w.path), w.reason) for w in warnings] == [
        ("pipe.jpg", "skipped: a FIFO (named pipe), not a regular file")
    ]


def test_empty_root_is_refused_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageProblem, match="an empty folder name was given"):
        check_roots([""])


def test_file_times_are_held_within_64_bits(tmp_path):
    photo = touch(tmp_path / "late.jpg")
    os.utime(photo, (3e11, 3e11))
    (entry,) = crawl([str(tmp_path)])
    assert -(2**63) <= entry.mtime_ns <= 2**63 - 1
