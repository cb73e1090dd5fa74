"""files.open_regular / read_regular: only regular files, never blocking, never read past a limit."""

import os
import re

import pytest

from facecluster.files import FileTooBig, NotRegularFile, open_regular, read_regular


def test_regular_files_and_symlinks_to_them_are_read(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"12345")
    os.symlink(photo, tmp_path / "link.jpg")
    assert read_regular(tmp_path / "link.jpg", 5) == b"12345"
    with open_regular(photo) as f:
        assert f.read(2) == b"12"


@pytest.mark.parametrize("make,kind", [
    (lambda p: os.mkfifo(p), "a FIFO (named pipe)"),
    (lambda p: os.symlink("/dev/zero", p), "a character device"),
    (lambda p: os.mkdir(p), "a folder"),
])
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path, make, kind):
    path = tmp_path / "odd"
    make(path)
    with pytest.raises(NotRegularFile, match=re.escape(kind)) as raised:
        open_regular(path)
    assert raised.value.strerror == f"{kind}, not a regular file" and isinstance(raised.value, OSError)


def test_symlinks_refused_where_asked(tmp_path):
    (tmp_path / "real").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(OSError):
        read_regular(tmp_path / "link", 10, follow_symlinks=False)


def test_size_limit(tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as f:
        f.truncate(3 << 20)
    with pytest.raises(FileTooBig, match=r"larger than 2 MB \(3 MB\)"):
        read_regular(path, 2 << 20)
    assert len(read_regular(path, 3 << 20)) == 3 << 20


def test_the_review_page_photo_of_a_file_replaced_by_a_fifo_is_an_error_not_a_hang(tmp_path):
    from facecluster.errors import FaceclusterError
    from facecluster.store import ExportFace
    from facecluster.web.photos import photo_with_box
    from tests.conftest import beside_a_fifo

    photo = tmp_path / "a.jpg"
    face = ExportFace(1, None, "sface", str(photo), None, 640, 480, (10.0, 10.0, 50.0, 50.0), 0.9, 50.0, ())

    def show():
        try:
            return photo_with_box(face)
        except FaceclusterError as e:
            return str(e)

    shown, blocked = beside_a_fifo(photo, show)
    assert not blocked  # the request waited for a writer for ever before
    assert shown == f"cannot read {photo}: a FIFO (named pipe), not a regular file"
