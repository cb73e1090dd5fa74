"""`facecluster scan` end to end: real models, real SQLite file, real faces."""

import os
import shutil
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import facecluster.scan as scan_module
from facecluster.cli import cli
from tests.conftest import cli_run as run
from tests.conftest import jpeg_bytes, set_mtime


def faces_by_path(db_path):
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT p.path, f.id FROM faces f JOIN photos p ON p.id = f.photo_id ORDER BY f.id"
        ).fetchall()
    out = {}
    for path, face_id in rows:
        out.setdefault(os.path.basename(path), []).append(face_id)
    return out


def test_scan_stores_good_photos_and_lists_bad_ones(db_path, photo_folder):
    result = run(db_path, "scan", "--jobs", "1", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "2 new" in result.stdout and "3 failed" in result.stdout and "7 faces found" in result.stdout
    assert "3 files could not be read" in result.stdout
    for name, reason in [("zero.jpg", "empty file"), ("truncated.jpg", "broken image data"), ("notes.jpg", "not an image")]:
        line = next(row for row in result.stdout.splitlines() if name in row)
        assert reason in line
    faces = faces_by_path(db_path)
    assert len(faces["astronaut.jpg"]) == 1 and len(faces["group.jpg"]) == 6
    with sqlite3.connect(db_path) as conn:
        emb, thumb, model, landmarks = conn.execute("SELECT embedding, thumb, model, landmarks FROM faces LIMIT 1").fetchone()
        assert len(emb) == 128 * 4 and model == "sface"
        assert np.linalg.norm(np.frombuffer(emb, "<f4")) == pytest.approx(1.0, abs=1e-5)
        assert thumb[:2] == b"\xff\xd8" and len(landmarks.split(",")) == 10
        status = dict(conn.execute("SELECT status, count(*) FROM photos GROUP BY status").fetchall())
        assert status == {"ok": 2, "failed": 3}


def test_rescan_skips_unchanged_and_handles_changes(db_path, photo_folder, astronaut):
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    before = faces_by_path(db_path)

    again = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "0 new, 0 changed, 0 moved, 5 unchanged, 0 failed" in again.stdout
    assert faces_by_path(db_path) == before

    # Touched but not changed: no new faces, same ids.
    set_mtime(photo_folder / "astronaut.jpg", 1_600_000_000)
    # Moved to another folder: same face ids.
    (photo_folder / "elsewhere").mkdir()
    shutil.move(photo_folder / "trip" / "group.jpg", photo_folder / "elsewhere" / "renamed.jpg")
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 moved" in result.stdout and "0 new" in result.stdout
    after = faces_by_path(db_path)
    assert after["astronaut.jpg"] == before["astronaut.jpg"]
    assert after["renamed.jpg"] == before["group.jpg"]

    # Rewritten with other content: old faces replaced.
    (photo_folder / "astronaut.jpg").write_bytes(jpeg_bytes(astronaut[:, ::-1].copy()))
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 changed" in result.stdout
    replaced = faces_by_path(db_path)["astronaut.jpg"]
    assert len(replaced) == 1 and replaced != before["astronaut.jpg"]


def test_copy_of_a_scanned_photo_reuses_its_faces(db_path, photo_folder, monkeypatch):
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    shutil.copy(photo_folder / "astronaut.jpg", photo_folder / "copy.jpg")
    calls = []
    real = scan_module.find_faces
    monkeypatch.setattr(scan_module, "find_faces", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 new" in result.stdout and calls == []
    assert len(faces_by_path(db_path)["copy.jpg"]) == 1


def test_missing_files_reported_then_pruned(db_path, photo_folder):
    run(db_path, "scan", "-j", "1", str(photo_folder))
    (photo_folder / "astronaut.jpg").unlink()
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 photos are gone from disk, still in the database (use --prune" in result.stdout
    assert "astronaut.jpg" in faces_by_path(db_path)
    result = run(db_path, "scan", "-j", "1", "--prune", str(photo_folder))
    assert "removed from the database" in result.stdout
    assert "astronaut.jpg" not in faces_by_path(db_path)


def test_rotated_phone_photo_face_found_in_displayed_coordinates(db_path, tmp_path, astronaut):
    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "upright.jpg").write_bytes(jpeg_bytes(astronaut))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; display turns it 90 degrees clockwise
    stored = np.ascontiguousarray(np.rot90(astronaut, 1))
    (folder / "sideways.jpg").write_bytes(jpeg_bytes(stored, exif=exif.tobytes()))
    assert run(db_path, "scan", "-j", "1", str(folder)).exit_code == 0
    with sqlite3.connect(db_path) as conn:
        rows = {os.path.basename(p): (x, y, w, h) for p, x, y, w, h in conn.execute(
            "SELECT p.path, f.x, f.y, f.w, f.h FROM faces f JOIN photos p ON p.id = f.photo_id")}
        sizes = set(conn.execute("SELECT width, height FROM photos").fetchall())
    assert sizes == {(512, 512)}
    assert set(rows) == {"upright.jpg", "sideways.jpg"}
    assert np.abs(np.array(rows["sideways.jpg"]) - np.array(rows["upright.jpg"])).max() < 6


def test_parallel_workers_give_the_same_faces(tmp_path, photo_folder):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    assert run(one, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    assert run(two, "scan", "-j", "2", str(photo_folder)).exit_code == 0
    query = "SELECT p.path, f.x, f.y, f.embedding FROM faces f JOIN photos p ON p.id = f.photo_id ORDER BY p.path, f.x"
    with sqlite3.connect(one) as a, sqlite3.connect(two) as b:
        rows_a, rows_b = a.execute(query).fetchall(), b.execute(query).fetchall()
    assert len(rows_a) == len(rows_b) == 7
    for ra, rb in zip(rows_a, rows_b):
        assert ra[:3] == rb[:3]
        assert float(np.frombuffer(ra[3], "<f4") @ np.frombuffer(rb[3], "<f4")) > 0.9999


def test_ctrl_c_commits_what_was_done_and_exits_130(db_path, photo_folder, monkeypatch):
    real = scan_module.analyse_file
    calls = []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_module, "analyse_file", interrupt_third)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 130
    assert "interrupted: 2 of 5 files scanned and saved" in result.output
    monkeypatch.setattr(scan_module, "analyse_file", real)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 0
    assert "2 unchanged" in result.stdout and "3 new" not in result.stdout


def test_db_from_environment_and_quiet(tmp_path, photo_folder):
    db = tmp_path / "env.db"
    result = CliRunner().invoke(cli, ["scan", "-q", "-j", "1", str(photo_folder)], env={"FACECLUSTER_DB": str(db)})
    assert result.exit_code == 0 and db.exists()
    assert result.stderr == ""


def test_plain_progress_when_not_a_terminal(db_path, photo_folder):
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "scanning: 5/5 files, 7 faces" in result.stderr


@pytest.mark.parametrize(
    "args,message,code",
    [
        (["scan", "/no/such/folder"], "folder not found: /no/such/folder", 2),
        (["scan", "--jobs", "0", "."], "--jobs must be a positive number", 2),
        (["scan", "--model", "nope", "."], "unknown model pack 'nope'", 1),
    ],
)
def test_bad_commands_one_line(db_path, args, message, code):
    result = run(db_path, *args)
    assert result.exit_code == code
    assert message in result.output


def test_file_given_as_root(db_path, photo_folder):
    result = run(db_path, "scan", str(photo_folder / "astronaut.jpg"))
    assert result.exit_code == 2 and "not a folder" in result.output


def test_newer_database_one_line(db_path, photo_folder):
    run(db_path, "scan", "-j", "1", str(photo_folder))
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('facecluster', 'm999_x', 'x')")
    result = run(db_path, "scan", str(photo_folder))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: database") and "newer facecluster" in result.output
