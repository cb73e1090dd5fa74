"""`facecluster scan` end to end: real SQLite file; real models and faces where what is checked depends on
them, the fake models (fake_models, fake_folder: tests/fakes.py) where they are only the plumbing."""

import os
import shutil
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import facecluster.scan_file as scan_file
import facecluster.sources.photo as photo_source
from facecluster.cli import cli
from tests.conftest import cli_run as run
from tests.conftest import jpeg_bytes, set_mtime
from tests.fakes import write_photo


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
    assert "2 new" in result.stderr and "3 failed" in result.stderr and "7 faces found" in result.stderr
    assert "3 files could not be read" in result.stderr
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


def test_rescan_skips_unchanged_and_handles_changes(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    before = faces_by_path(db_path)

    again = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "0 new, 0 changed, 0 moved, 5 unchanged, 0 failed" in again.stderr
    assert faces_by_path(db_path) == before

    # Touched but not changed: no new faces, same ids.
    set_mtime(photo_folder / "astronaut.jpg", 1_600_000_000)
    # Moved to another folder: same face ids.
    (photo_folder / "elsewhere").mkdir()
    shutil.move(photo_folder / "trip" / "group.jpg", photo_folder / "elsewhere" / "renamed.jpg")
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 moved" in result.stderr and "0 new" in result.stderr
    after = faces_by_path(db_path)
    assert after["astronaut.jpg"] == before["astronaut.jpg"]
    assert after["renamed.jpg"] == before["group.jpg"]

    # Rewritten with other content: old faces replaced.
    write_photo(photo_folder / "astronaut.jpg", ["red"], seed=9)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 changed" in result.stderr
    replaced = faces_by_path(db_path)["astronaut.jpg"]
    assert len(replaced) == 1 and replaced != before["astronaut.jpg"]


def test_copy_of_a_scanned_photo_reuses_its_faces(db_path, fake_folder, monkeypatch, fake_models):
    photo_folder = fake_folder
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    shutil.copy(photo_folder / "astronaut.jpg", photo_folder / "copy.jpg")
    calls = []
    real = scan_file.find_faces
    monkeypatch.setattr(scan_file, "find_faces", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 new" in result.stderr and calls == []
    assert len(faces_by_path(db_path)["copy.jpg"]) == 1


def test_missing_files_reported_then_pruned(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    run(db_path, "scan", "-j", "1", str(photo_folder))
    (photo_folder / "astronaut.jpg").unlink()
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 photo is gone from disk, still in the database (use --prune" in result.stderr
    assert "astronaut.jpg" in faces_by_path(db_path)
    result = run(db_path, "scan", "-j", "1", "--prune", str(photo_folder))
    assert "removed from the database" in result.stderr
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


def test_ctrl_c_commits_what_was_done_and_exits_130(db_path, fake_folder, monkeypatch, fake_models):
    photo_folder = fake_folder
    real = scan_file.analyse_file
    calls = []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_file, "analyse_file", interrupt_third)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 130
    assert "interrupted: 2 of 5 files scanned and saved" in result.output
    monkeypatch.setattr(scan_file, "analyse_file", real)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 0
    assert "2 unchanged" in result.stderr and "3 new" not in result.stderr


def test_db_from_environment_and_quiet(tmp_path, fake_folder, fake_models):
    photo_folder = fake_folder
    db = tmp_path / "env.db"
    result = CliRunner().invoke(cli, ["scan", "-q", "-j", "1", str(photo_folder)], env={"FACECLUSTER_DB": str(db)})
    assert result.exit_code == 0 and db.exists()
    assert "scanning:" not in result.stderr and "crawling" not in result.stderr  # no progress; the summary stays
    assert result.stderr.startswith("Scanned 5 files")


def test_plain_progress_when_not_a_terminal(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
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


def test_newer_database_one_line(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    run(db_path, "scan", "-j", "1", str(photo_folder))
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('facecluster', 'm999_x', 'x')")
    result = run(db_path, "scan", str(photo_folder))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: database") and "newer facecluster" in result.output


# ---- what is gone, bounds, odd files, output a script can read -------------------


def name_first_face(db_path, photo_name, name):
    """Give the face of one photo a person with a name, as `name` would (no grouping needed)."""
    with sqlite3.connect(db_path) as conn:
        model = conn.execute("SELECT name FROM models").fetchone()[0]
        cur = conn.execute("INSERT INTO people (model, name, ignored, created_at, updated_at) VALUES (?, ?, 0, 'x', 'x')",
                           [model, name])
        face = conn.execute("SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE ?",
                            [f"%/{photo_name}"]).fetchone()[0]
        conn.execute("UPDATE faces SET person_id = ?, assigned = 'user' WHERE id = ?", [cur.lastrowid, face])
        return face


def person_of(db_path, photo_name):
    with sqlite3.connect(db_path) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pe.name FROM faces f JOIN photos p ON p.id = f.photo_id LEFT JOIN people pe ON pe.id = f.person_id "
            "WHERE p.path LIKE ?", [f"%/{photo_name}"])]


def test_excluded_and_hidden_photos_are_never_gone_nor_pruned(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    write_photo(photo_folder / ".hidden" / "again.jpg", ["blue"], seed=5)
    assert run(db_path, "scan", "-j", "1", "--include-hidden", str(photo_folder)).exit_code == 0
    name_first_face(db_path, "astronaut.jpg", "Eileen")
    result = run(db_path, "scan", "-j", "1", "--exclude", "*/astronaut.jpg", "--prune", "--yes", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "gone from disk" not in result.output and "removed" not in result.output
    assert "2 photos in the database were not looked at this time" in result.stderr
    assert person_of(db_path, "astronaut.jpg") == ["Eileen"]
    assert len(faces_by_path(db_path)["again.jpg"]) == 1


def test_photos_in_an_unreadable_folder_are_not_gone(db_path, fake_folder, monkeypatch, fake_models):
    photo_folder = fake_folder
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    trip = str(photo_folder / "trip")
    real = os.scandir

    def locked(path="."):
        if str(path) == trip:  # as a folder without read permission does (root reads every folder, so simulate)
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", locked)
    result = run(db_path, "scan", "-j", "1", "--prune", "--yes", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "gone from disk" not in result.output and "cannot list folder" in result.stderr
    assert len(faces_by_path(db_path)["group.jpg"]) == 6


@pytest.mark.parametrize(
    "args,message",
    [
        (["--jobs", "10000"], "--jobs must be at most"),
        (["--det-size", "20000"], "--det-size must be between 160 and 2048"),
        (["--det-size", "100"], "--det-size must be between 160 and 2048"),
        (["--det-threshold", "nan"], "--det-threshold must be between 0 and 1"),
    ],
)
def test_unbounded_scan_options_are_refused(db_path, photo_folder, args, message):
    result = run(db_path, "scan", *args, str(photo_folder))
    assert result.exit_code == 2 and message in result.output


def test_empty_root_is_refused(db_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(db_path, "scan", "")
    assert result.exit_code == 2 and "an empty folder name" in result.output
    assert not db_path.exists() or "photos" not in result.output


def test_failures_one_per_line_with_whole_paths_when_piped(db_path, tmp_path):
    deep = tmp_path / ("a_rather_long_folder_name_" * 4) / "and_deeper"
    deep.mkdir(parents=True)
    (deep / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (deep / "notes.jpg").write_text("not a photo")
    result = CliRunner().invoke(cli, ["--db", str(db_path), "scan", "-q", "-j", "1", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "truncated.jpg" in line]
    assert lines == [f"{deep / 'truncated.jpg'}\tbroken image data: " + lines[0].split("broken image data: ")[1]]
    again = run(db_path, "scan", "-q", "-j", "1", str(tmp_path))
    assert "0 failed" in again.stderr
    assert "2 files could not be read (0 this time; 2 failed in an earlier scan and are unchanged since" in again.stderr


def test_new_detection_settings_detect_again_and_keep_names(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    name_first_face(db_path, "astronaut.jpg", "Eileen")
    same = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "5 unchanged" in same.stderr
    result = run(db_path, "scan", "-j", "1", "--det-size", "800", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "2 detected again (other --det-size or --det-threshold)" in result.stderr
    assert person_of(db_path, "astronaut.jpg") == ["Eileen"]
    with sqlite3.connect(db_path) as conn:
        assert set(conn.execute("SELECT det_size FROM photo_scans").fetchall()) == {(800,)}
    assert "5 unchanged" in run(db_path, "scan", "-j", "1", "--det-size", "800", str(photo_folder)).stderr


def test_a_fifo_is_skipped_with_a_reason_not_opened(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    os.mkfifo(photo_folder / "pipe.jpg")
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 0
    assert "pipe.jpg: skipped: a FIFO (named pipe), not a regular file" in result.stderr


def test_a_file_replaced_by_a_fifo_after_the_crawl_does_not_hang(tmp_path):
    import threading

    from facecluster.crawl import CrawlEntry
    from facecluster.scan_file import analyse_file
    from facecluster.scan_options import ScanOptions

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    got = []
    worker = threading.Thread(target=lambda: got.append(analyse_file(CrawlEntry(str(fifo), 10, 0), None, ScanOptions(), frozenset())),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)  # before the fix, open() blocked here forever
    assert not worker.is_alive()
    assert got[0].facts.error == "skipped: a FIFO (named pipe), not a regular file"


def test_a_file_time_beyond_what_sqlite_holds_is_one_file_not_a_lost_batch(db_path, fake_folder, fake_models):
    photo_folder = fake_folder
    set_mtime(photo_folder / "astronaut.jpg", 3e11)  # ext4 keeps it as the year 2446: 1.5e19 ns, past 2**63
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "2 new" in result.stderr and "7 faces found" in result.stderr
    assert "5 unchanged" in run(db_path, "scan", "-j", "1", str(photo_folder)).stderr


def test_out_of_memory_on_one_photo_is_a_failed_photo(db_path, photo_folder, monkeypatch):
    # The photo source (facecluster/sources/photo.py) reads the date, after the decode.
    real = photo_source.photo_info

    def exhausted(source, mtime):
        if isinstance(source, bytes) and source[:2] == b"\xff\xd8" and len(source) > 100_000:
            raise MemoryError
        return real(source, mtime)

    monkeypatch.setattr(photo_source, "photo_info", exhausted)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert result.exit_code == 0, result.output
    assert "out of memory while reading this photo" in result.stdout


def test_workers_get_only_the_hashes_a_file_of_its_size_could_have(db_path, fake_folder, monkeypatch, fake_models):
    photo_folder = fake_folder
    assert run(db_path, "scan", "-j", "1", str(photo_folder)).exit_code == 0
    shutil.copy(photo_folder / "astronaut.jpg", photo_folder / "copy.jpg")
    given = []
    real = scan_file.analyse_file

    def spy(entry, pack, options, known):
        given.append(known)
        return real(entry, pack, options, known)

    monkeypatch.setattr(scan_file, "analyse_file", spy)
    result = run(db_path, "scan", "-j", "1", str(photo_folder))
    assert "1 new" in result.stderr
    with sqlite3.connect(db_path) as conn:
        sha = conn.execute("SELECT sha256 FROM photos WHERE path LIKE '%/astronaut.jpg'").fetchone()[0]
    assert given == [frozenset({sha})]  # not every hash in the library
