"""Acceptance checks on the labelled photos in ../shared/facedata (skipped where absent)."""

import shutil
import sqlite3
import time

import pytest
from click.testing import CliRunner

from facecluster.cli import cli

pytestmark = [pytest.mark.facedata, pytest.mark.slow]


def scan(db, folder, *extra):
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["--db", str(db), "scan", "-q", *extra, str(folder)])
    assert result.exit_code == 0, result.output
    return result, time.perf_counter() - start


def test_celeb5_faces_found_rescan_fast_and_moves_keep_faces(facedata, tmp_path):
    folder = tmp_path / "celeb5"
    shutil.copytree(facedata / "celeb5_opencv_course", folder)
    db = tmp_path / "celeb5.db"
    first, first_s = scan(db, folder)
    with sqlite3.connect(db) as conn:
        photos = conn.execute("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()[0]
        with_faces = conn.execute("SELECT count(DISTINCT photo_id) FROM faces").fetchone()[0]
    assert photos == 117
    assert with_faces >= 115

    again, again_s = scan(db, folder)
    assert "0 new, 0 changed, 0 moved, 117 unchanged" in again.stderr
    assert again_s < first_s / 5, (first_s, again_s)

    query = "SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE ? ORDER BY f.id"
    with sqlite3.connect(db) as conn:
        before = conn.execute(query, ["%/Madonna/train_1.jpg"]).fetchall()
    (folder / "Moved").mkdir()
    shutil.move(folder / "Madonna" / "train_1.jpg", folder / "Moved" / "madonna.jpg")
    moved, _ = scan(db, folder)
    assert "1 moved" in moved.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute(query, ["%/Moved/madonna.jpg"]).fetchall() == before != []
