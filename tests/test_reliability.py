"""Kills, Ctrl-C, concurrent commands, failing disks, bad commands, no network: nothing is lost."""

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageEnhance

from facecluster.cli import cli
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as cli_run
from tests.conftest import default_sigint
from tests.fakes import write_photo
from facecluster.store import Store


def make_library(folder: Path, astronaut, t1_path, copies: int = 8) -> Path:
    """Two people in `copies` photos each, made from images that ship in installed packages."""
    folder.mkdir(parents=True, exist_ok=True)
    portrait = Image.fromarray(astronaut)
    friends = Image.open(t1_path).convert("RGB")
    for i in range(copies):
        j = i % 12  # framing; light varies with i, so every file is different content
        img = portrait.crop((j * 5, j * 3, 512 - j * 4, 512 - j * 2))
        ImageEnhance.Brightness(img).enhance(0.8 + 0.003 * i).save(folder / f"eileen_{i:03d}.jpg", quality=90)
        face = friends.crop((380 + j * 4, 180 + j * 3, 660 - j * 3, 500 - j * 2))
        ImageEnhance.Contrast(face).enhance(0.85 + 0.003 * i).save(folder / f"david_{i:03d}.jpg", quality=90)
    return folder


def fake_library(folder: Path, copies: int = 8, seed: int = 0) -> Path:
    """make_library's photos for the fake models (tests/fakes.py): Eileen a red square, David a blue one."""
    for i in range(copies):
        write_photo(folder / f"eileen_{i:03d}.jpg", ["red"], seed=seed + i)
        write_photo(folder / f"david_{i:03d}.jpg", ["blue"], seed=seed + 100 + i)
    return folder


def named_library(tmp_path, astronaut, t1_path, copies=8, fake=False):
    """Eileen and David, scanned, grouped and named. `fake`: drawn for the fake models, where the test asks
    for them (the fake_models fixture) because the faces are only the plumbing of what it checks."""
    library = fake_library(tmp_path / "library", copies) if fake else make_library(tmp_path / "library", astronaut, t1_path, copies)
    db = tmp_path / "faces.db"
    ok(db, "scan", "-q", str(library))
    ok(db, "group", "-q", "--min-faces", "4")
    groups = json.loads(ok(db, "export", "--json", "-").stdout)["people"]
    for person in groups:
        who = "Eileen" if "eileen_" in person["faces"][0]["photo"] else "David"
        ok(db, "name", str(person["id"]), who)
    return library, db


def names_of(db):
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    return {p["name"]: sorted(Path(f["photo"]).name for f in p["faces"]) for p in data["people"] if p["name"]}


def spawn(db, *args, **kwargs):
    env = {**os.environ, "FACECLUSTER_DB": str(db), "PYTHONUNBUFFERED": "1"}
    env.update(kwargs.pop("env", {}))
    return subprocess.Popen(
        [sys.executable, "-m", "facecluster", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, preexec_fn=default_sigint, **kwargs,
    )


def check_consistent(db):
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # Faces of a photo match what its scan recorded: nothing duplicated, nothing half-written.
        mismatched = conn.execute(
            "SELECT s.photo_id FROM photo_scans s LEFT JOIN faces f ON f.photo_id = s.photo_id AND f.model = s.model "
            "GROUP BY s.photo_id, s.model HAVING count(f.id) != max(s.faces)"
        ).fetchall()
        assert mismatched == []
        orphans = conn.execute("SELECT count(*) FROM faces f LEFT JOIN photo_scans s ON s.photo_id = f.photo_id "
                               "WHERE s.photo_id IS NULL").fetchone()[0]
        assert orphans == 0


@pytest.mark.slow
def test_kill_9_at_random_points_loses_nothing(tmp_path, astronaut, t1_path):
    library, db = named_library(tmp_path, astronaut, t1_path, copies=6)
    names_before = names_of(db)
    more = make_library(library / "more", astronaut, t1_path, copies=30)
    for i, photo in enumerate(sorted(more.glob("*.jpg"))):  # distinct content from the first batch
        Image.open(photo).rotate(i % 7 - 3).save(photo, quality=88)
    rng = random.Random(7)
    for _ in range(4):
        process = spawn(db, "scan", "-q", "--jobs", "2", str(library))
        time.sleep(rng.uniform(1.0, 3.0))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        check_consistent(db)
    final = spawn(db, "scan", "-q", str(library))
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    check_consistent(db)
    with sqlite3.connect(db) as conn:
        photos = conn.execute("SELECT count(*), count(DISTINCT path) FROM photos").fetchone()
        scanned = conn.execute("SELECT count(*) FROM photo_scans").fetchone()[0]
    assert photos == (72, 72) and scanned == 72  # every photo once, scanned once
    after = names_of(db)
    for name, faces in names_before.items():
        assert set(faces) <= set(after[name])


def wait_for_scanning(process) -> str:
    """Read stderr until the scan says it is scanning: the signal then lands mid-scan, however busy the machine."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("scanning:"):
            return "".join(lines)
    raise AssertionError("the scan ended before it said it was scanning: " + "".join(lines))


def signal_mid_scan(process, send) -> None:
    """`send()` a signal to a scan that has said it is scanning, stopped meanwhile (SIGSTOP), so that the signal
    lands mid-scan however busy the machine is, and a small library is enough."""
    os.kill(process.pid, signal.SIGSTOP)
    send()
    os.kill(process.pid, signal.SIGCONT)


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_exits_130(tmp_path, astronaut, t1_path):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=10)
    db = tmp_path / "faces.db"
    process = spawn(db, "scan", "--jobs", "1", str(library))
    wait_for_scanning(process)  # "scanning: 0/20": 20 photos still to do
    signal_mid_scan(process, lambda: os.killpg(process.pid, signal.SIGINT))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted:" in err and "scanned and saved" in err and "Traceback" not in err
    check_consistent(db)
    saved = int(err.split("interrupted: ")[1].split(" of ")[0])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM photo_scans").fetchone()[0] == saved
    result = ok(db, "scan", "-q", str(library))
    assert f"{saved} unchanged" in result.stderr


def test_sigterm_behaves_like_ctrl_c(tmp_path, astronaut, t1_path):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=10)
    db = tmp_path / "faces.db"
    process = spawn(db, "scan", "--jobs", "1", str(library))
    wait_for_scanning(process)
    signal_mid_scan(process, process.terminate)  # SIGTERM to the scan alone, as `kill PID` or a service manager sends it
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err
    check_consistent(db)


def test_ctrl_c_reaches_children_of_a_run_started_with_sigint_ignored(tmp_path):
    # `nohup pytest &` starts the test run with SIGINT ignored, and children inherit that: the
    # Ctrl-C tests then waited for ever on a child that could not be interrupted.
    db = tmp_path / "faces.db"
    Store(db).close()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = spawn(db, "review", "--no-browser")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert process.stdout.readline().startswith("http://127.0.0.1:")  # serving
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def maps_mention(pid: int, text: str) -> bool:
    try:
        return text in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the process loading its libraries")
def test_ctrl_c_while_starting_up_exits_130(tmp_path, astronaut, t1_path):
    # A library that takes seconds: however late the signal lands, the command is still running.
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=20)
    process = spawn(tmp_path / "x.db", "scan", "--jobs", "1", str(library))
    deadline = time.monotonic() + 60
    # numpy is loaded only by our own imports, inside the entry point's guard: Ctrl-C lands while loading.
    while not maps_mention(process.pid, "numpy") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(next(line for line in (entry / "status").read_text().splitlines()
                                if line.startswith("PPid:")).split()[1])
            except (OSError, StopIteration):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "zombie" not in state


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to find the workers")
def test_workers_die_with_a_killed_scan(tmp_path, astronaut, t1_path):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=40)
    process = spawn(tmp_path / "faces.db", "scan", "--jobs", "2", str(library))
    wait_for_scanning(process)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline:  # both workers started (they spawn at the first tasks)
        workers = {p for p in descendants(process.pid) if maps_mention(p, "onnxruntime")}
        time.sleep(0.05)
    assert len(workers) >= 2, "the workers never started"
    everyone = descendants(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the scan alone, not its process group
    out, err = process.communicate(timeout=60)  # returns only once no worker holds its stdout and stderr open
    deadline = time.monotonic() + 30
    while any(alive(p) for p in everyone) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in everyone if alive(p)]


def test_scan_leaves_nothing_of_onnxruntime_telemetry(tmp_path, astronaut, t1_path):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=2)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "XDG_"))}
    env.update(HOME=str(home), FACECLUSTER_DB=str(tmp_path / "x.db"))
    result = subprocess.run([sys.executable, "-m", "facecluster", "scan", "-q", "--jobs", "2", str(library)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not (home / ".cache" / "Microsoft").exists()


def test_bad_lock_wait_is_one_line(tmp_path):
    process = spawn(tmp_path / "x.db", "scan", "-q", str(tmp_path), env={"FACECLUSTER_LOCK_WAIT": "abc"})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.strip() == "Error: FACECLUSTER_LOCK_WAIT must be a number of seconds (0 or more), not 'abc'"


@pytest.mark.slow
def test_second_writer_is_refused_with_the_first_ones_name(tmp_path, astronaut, t1_path):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=3)
    db = tmp_path / "faces.db"
    Store(db).close()
    first = spawn(db, "scan", "--jobs", "1", str(library))
    wait_for_scanning(first)
    os.kill(first.pid, signal.SIGSTOP)  # mid-scan, holding the lock for as long as the checks take
    try:
        for command in (["scan", "-q", str(library)], ["group", "-q"]):
            second = spawn(db, *command, env={"FACECLUSTER_LOCK_WAIT": "1"})
            out, err = second.communicate(timeout=60)
            assert second.returncode == 1
            assert f"is in use by facecluster scan (pid {first.pid})" in err
            assert len(err.strip().splitlines()) == 1
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    check_consistent(db)


def test_disk_full_leaves_the_database_as_it_was(tmp_path, astronaut, t1_path, monkeypatch, fake_models):
    library, db = named_library(tmp_path, astronaut, t1_path, copies=5, fake=True)
    before = names_of(db)
    fake_library(library / "extra", copies=2, seed=50)

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "save_photo", full)
    result = cli_run(db, "scan", "-q", "-j", "1", str(library))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: database error: database or disk is full"
    monkeypatch.undo()
    check_consistent(db)
    assert names_of(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM photos WHERE path LIKE '%/extra/%'").fetchone()[0] == 0


FULL_DISK = """
import json, os, shutil, sys
from click.testing import CliRunner
from facecluster.cli import cli
db, out = sys.argv[1], sys.argv[2]
fd = os.open(os.path.join(os.path.dirname(db), "filler"), os.O_WRONLY | os.O_CREAT)
for size in (65536, 4096, 512, 1):  # every last byte of the file system
    try:
        while True:
            os.write(fd, b"x" * size)
    except OSError:
        pass
os.close(fd)
results = {"free": os.statvfs(db).f_bavail}
for args in (["people", "--all"], ["people"], ["info", "--json"], ["show", "Eileen", "--json"], ["export", "--json", "-"],
             ["names", "--export", "-"], ["backup", out], ["name", "Eileen", "Bob"]):
    result = CliRunner().invoke(cli, ["--db", db, *args])
    results[" ".join(args)] = [result.exit_code, result.output]
print(json.dumps(results))
"""


def test_read_only_commands_work_on_a_full_disk(tmp_path, astronaut, t1_path, fake_models):
    # Every command once said "cannot open database: disk I/O error" with 0 bytes free:
    # SQLite could not grow the -shm file, so not even `backup` could save the database elsewhere.
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm is not available here (needs user namespaces to mount a small tmpfs)")
    library, named = named_library(tmp_path, astronaut, t1_path, copies=4, fake=True)
    disk = tmp_path / "disk"
    disk.mkdir()
    backup = tmp_path / "elsewhere.db"
    script = (f'mount -t tmpfs -o size=2m tmpfs "{disk}" && cp "{named}" "{disk}/faces.db" && '
              f'exec "{sys.executable}" -c "$0" "{disk}/faces.db" "{backup}"')
    done = subprocess.run([unshare, "-rm", "sh", "-c", script, FULL_DISK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results.pop("free") == 0
    code, output = results.pop("name Eileen Bob")  # a command that writes cannot, and says why
    assert code == 1 and "the disk is full" in output and "disk I/O error" not in output, output
    for command, (code, output) in results.items():
        assert code == 0, (command, output)
    assert "Eileen" in results["people"][1] and "David" in results["people"][1]
    assert json.loads(results["info --json"][1])["named"] == 2
    assert {p["name"] for p in json.loads(results["export --json -"][1])["people"] if p["name"]} == {"Eileen", "David"}
    assert names_of(backup) == names_of(named)


def test_later_exports_remove_what_a_killed_export_left_and_nothing_else(tmp_path, astronaut, t1_path, fake_models):
    # A kill -9 between writing a sidecar's temporary file and renaming it once left `.fc-XXXX.tmp` in
    # the photo folder for ever.
    library, db = named_library(tmp_path, astronaut, t1_path, copies=4, fake=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)  # a process id that ran and ended
    hour_ago = time.time() - 3600
    stale = [f".fc-{dead}-0badf00d.tmp", f".fc-{dead}-0badf00d.tmp-journal", ".fc-1234abcd.tmp"]
    kept = [".fc-1-00c0ffee.tmp",  # pid 1 runs: its file may be in use
            ".fc-ABCDEF01.tmp", ".fc-1234abcd.tmp.bak", "x.fc-1234abcd.tmp", "notes.tmp", ".fc-12345.tmp", ".fc--1-1234abcd.tmp"]
    for name in stale + kept:
        (library / name).write_text("someone's bytes")
        os.utime(library / name, (hour_ago, hour_ago))
    newer = library / f".fc-{dead}-feedbeef.tmp"
    newer.write_text("newer than the export's process: may be another run's, still writing")
    os.utime(newer, (time.time() + 3600, time.time() + 3600))
    kept.append(newer.name)
    (library / f".fc-{dead}-cafebabe.tmp").symlink_to(library / "notes.tmp")  # a link with our name is not ours
    (library / f".fc-{dead}-deadbeef.tmp").mkdir()
    for name in (f".fc-{dead}-cafebabe.tmp", f".fc-{dead}-deadbeef.tmp"):
        os.utime(library / name, (hour_ago, hour_ago), follow_symlinks=False)
        kept.append(name)
    done = subprocess.run([sys.executable, "-m", "facecluster", "--db", str(db), "export", "--xmp"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    left = {p.name for p in library.iterdir() if ".fc-" in p.name or p.name.endswith(".tmp")}
    assert left == set(kept)
    assert (library / "notes.tmp").read_text() == "someone's bytes"
    assert sorted(library.glob("*.xmp"))  # the export itself was written


FULL_BACKUP = """
import json, os, sys
from click.testing import CliRunner
from facecluster.cli import cli
db, disk = sys.argv[1], sys.argv[2]
result = CliRunner().invoke(cli, ["--db", db, "backup", os.path.join(disk, "copy.db")])
print(json.dumps([result.exit_code, result.output, sorted(os.listdir(disk))]))
"""


def test_a_backup_onto_a_disk_that_fills_leaves_nothing(tmp_path, astronaut, t1_path, fake_models):
    # It left `.fc-XXXX.tmp-journal` (SQLite's rollback journal of the temporary copy) once.
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm is not available here (needs user namespaces to mount a small tmpfs)")
    library, db = named_library(tmp_path, astronaut, t1_path, copies=4, fake=True)
    with closing(sqlite3.connect(db)) as conn:  # 6 MB more than SQLite's page cache: the copy spills and journals
        conn.execute("CREATE TABLE padding (x BLOB)")
        conn.executemany("INSERT INTO padding VALUES (randomblob(3000))", [()] * 2000)
        conn.commit()
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f'mount -t tmpfs -o size=3m tmpfs "{disk}" && exec "{sys.executable}" -c "$0" "{db}" "{disk}"'
    done = subprocess.run([unshare, "-rm", "sh", "-c", script, FULL_BACKUP], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    code, output, files = json.loads(done.stdout)
    assert code == 1 and "cannot write backup" in output and len(output.strip().splitlines()) == 1, output
    assert files == []


def test_read_only_database(tmp_path, astronaut, t1_path, monkeypatch, fake_models):
    library, db = named_library(tmp_path, astronaut, t1_path, copies=5, fake=True)
    before = db.read_bytes()

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "set_person", read_only)
    result = cli_run(db, "name", "Eileen", "Someone")
    assert result.exit_code == 1 and "attempt to write a readonly database" in result.output
    assert db.read_bytes() == before


def test_names_survive_a_rebuild(tmp_path, astronaut, t1_path, fake_models):
    library, db = named_library(tmp_path, astronaut, t1_path, fake=True)
    before = names_of(db)
    assert set(before) == {"Eileen", "David"}
    names = tmp_path / "names.json"
    ok(db, "names", "--export", str(names))
    backup = tmp_path / "backup.db"
    ok(db, "backup", str(backup))
    assert names_of(backup) == before
    db.unlink()
    ok(db, "scan", "-q", str(library))
    result = ok(db, "names", "--import", str(names))
    assert "Imported 2 names" in result.output and "0 not in this database" in result.output
    assert names_of(db) == before
    ok(db, "group", "-q")
    assert names_of(db) == before


def test_prune_that_would_drop_names_asks_for_yes(tmp_path, astronaut, t1_path, fake_models):
    library, db = named_library(tmp_path, astronaut, t1_path, fake=True)
    gone = sorted(library.glob("eileen_*.jpg"))[:2]
    for photo in gone:
        photo.unlink()
    result = cli_run(db, "scan", "-q", "--prune", str(library))
    assert result.exit_code == 1  # asked to prune, and nothing was pruned
    assert "Not pruned: the 2 photos gone from disk hold 2 named faces (Eileen: 2)" in result.stderr
    assert len(names_of(db)["Eileen"]) == 8
    result = ok(db, "scan", "-q", "--prune", "--yes", str(library))
    assert "removed from the database with 2 named faces (Eileen: 2)" in result.stderr
    assert len(names_of(db)["Eileen"]) == 6


def test_prune_keeps_ignored_people_and_rejections_without_yes(tmp_path, fake_models):
    # Only names were once protected: an ignored group's faces were pruned silently and
    # came back, when their folder did, as a new group nobody had ignored.
    library = fake_library(tmp_path / "library", copies=4)
    db = tmp_path / "faces.db"
    ok(db, "scan", "-q", str(library))
    ok(db, "group", "-q", "--min-faces", "3")
    groups = json.loads(ok(db, "export", "--json", "-").stdout)["people"]
    david = next(p for p in groups if "david_" in p["faces"][0]["photo"])
    eileen = next(p for p in groups if "eileen_" in p["faces"][0]["photo"])
    ok(db, "ignore", str(david["id"]))
    taken_out = eileen["faces"][0]
    ok(db, "remove", str(taken_out["face_id"]))  # "not this person"
    away = tmp_path / "away"
    away.mkdir()
    for photo in [*library.glob("david_*.jpg"), Path(taken_out["photo"])]:
        photo.rename(away / photo.name)
    before = db_state(db)
    result = cli_run(db, "scan", "-q", "--prune", str(library))
    assert result.exit_code == 1, result.output
    assert ('Not pruned: the 5 photos gone from disk hold 4 faces of ignored people and 1 face you marked '
            '"not this person". If they are really gone, run again with --prune --yes') in result.stderr
    assert db_state(db) == before  # nothing pruned
    for photo in away.iterdir():  # the folder comes back: everything as it was, David still ignored
        photo.rename(library / photo.name)
    ok(db, "scan", "-q", str(library))
    assert db_state(db) == before
    for photo in [*library.glob("david_*.jpg"), Path(taken_out["photo"])]:
        photo.unlink()
    result = ok(db, "scan", "-q", "--prune", "--yes", str(library))
    assert ('5 photos are gone from disk, removed from the database with 4 faces of ignored people and 1 face '
            'you marked "not this person"') in result.stderr  # the summary goes to stderr


def db_state(db):
    with closing(sqlite3.connect(db)) as conn:
        return (conn.execute("SELECT id, name, ignored FROM people ORDER BY id").fetchall(),
                conn.execute("SELECT id, person_id, assigned FROM faces ORDER BY id").fetchall(),
                conn.execute("SELECT face_id, person_id FROM face_rejections ORDER BY 1, 2").fetchall())


def test_scan_opens_no_network_connection(tmp_path, astronaut, t1_path, monkeypatch):
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=2)
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    db = tmp_path / "offline.db"
    ok(db, "scan", "-q", "--jobs", "1", str(library))
    ok(db, "group", "-q", "--min-faces", "2")
    ok(db, "export", "--html", str(tmp_path / "site"), "--json", str(tmp_path / "all.json"))
    assert attempts == []


def test_scan_in_a_network_namespace_without_network(tmp_path, astronaut, t1_path):
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rn is not available here (needs user namespaces)")
    library = make_library(tmp_path / "library", astronaut, t1_path, copies=2)
    result = subprocess.run(
        [unshare, "-rn", sys.executable, "-m", "facecluster", "--db", str(tmp_path / "x.db"), "scan", "-q", str(library)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "4 new" in result.stderr


# ---- every command, fed nonsense --------------------------------------------------------


@pytest.fixture(scope="module")
def small_db(tmp_path_factory, astronaut, t1_path):
    tmp = tmp_path_factory.mktemp("bad")
    library, db = named_library(tmp, astronaut, t1_path, copies=5)
    (tmp / "a_file").write_text("x")
    (tmp / "not.json").write_text("{nope")
    return tmp, library, db


BAD_COMMANDS = [
    (["scan", "{tmp}/missing"], 2, "folder not found"),
    (["scan", "{tmp}/a_file"], 2, "not a folder"),
    (["scan", "--jobs", "0", "{library}"], 2, "--jobs must be a positive number"),
    (["scan", "--jobs", "-3", "{library}"], 2, "--jobs must be a positive number"),
    (["scan", "--det-size", "0", "{library}"], 2, "--det-size must be a positive number"),
    (["scan", "--det-threshold", "1.5", "{library}"], 2, "--det-threshold must be between 0 and 1"),
    (["scan", "--model", "nope", "{library}"], 1, "unknown model pack 'nope'"),
    (["group", "--min-faces", "0"], 2, "--min-faces must be at least 2"),
    (["group", "--min-samples", "-1"], 2, "--min-samples must be a positive number"),
    (["group", "--join-distance", "0"], 2, "--join-distance must be between 0 and 2"),
    (["group", "--method", "agglomerative", "--threshold", "-1"], 2, "--threshold must be between 0 and 2"),
    (["group", "--threshold", "0.8"], 2, "--threshold applies to --method agglomerative"),
    (["group", "--model", "buffalo_l"], 1, "no faces of model pack 'buffalo_l'"),
    (["name", "999", "Bob"], 1, "no group 999"),
    (["name", "Nobody", "Bob"], 1, "no person named 'Nobody'"),
    (["name", "Eileen", ""], 1, "a name cannot be empty"),
    (["name", "Eileen", "   "], 1, "a name cannot be empty"),
    (["name", "Eileen", "42"], 1, "looks like a group number"),
    (["name", "   ", "Bob"], 1, "give a group number or a person's name"),
    (["show", "999"], 1, "no group 999"),
    (["show", "Nobody"], 1, "no person named 'Nobody'"),
    (["ignore", "999"], 1, "no group 999"),
    (["ignore", "Nobody", "--undo"], 1, "no person named 'Nobody'"),
    (["remove", "999999"], 1, "no face with id 999999"),
    (["remove", "-5"], 2, "'-5' is not a face id"),
    (["remove", "abc"], 2, "'abc' is not a face id"),
    (["export", "--json", "{tmp}/a_file/out.json"], 2, "not a folder"),
    (["export", "--csv", "{tmp}/missing/out.csv"], 2, "folder not found"),
    (["export", "--html", "{tmp}/a_file/site"], 2, "not a folder"),
    (["export"], 2, "choose at least one of"),
    (["backup", "{tmp}/a_file"], 1, "exists already"),
    (["backup", "{tmp}/missing/copy.db"], 2, "folder not found"),
    (["names", "--import", "{tmp}/missing.json"], 2, "not found"),
    (["names", "--import", "{tmp}/not.json"], 1, "not a facecluster name file"),
    (["names", "--export", "{tmp}/a_file/names.json"], 2, "not a folder"),
    (["names"], 2, "choose one of --export FILE or --import FILE"),
]


@pytest.mark.parametrize("args,code,message", BAD_COMMANDS, ids=[" ".join(a) for a, _, _ in BAD_COMMANDS])
def test_bad_commands_say_one_line(small_db, args, code, message):
    tmp, library, db = small_db
    args = [a.format(tmp=tmp, library=library) for a in args]
    result = cli_run(db, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) <= 3 if code == 2 else len(lines) == 1, result.output  # click's usage errors add a usage line


@pytest.mark.parametrize(
    "db_kind,code,message", [("folder", 2, "is a directory"), ("text", 1, "not a facecluster database")]
)
def test_bad_database_paths(tmp_path, db_kind, code, message):
    path = tmp_path / "db"
    if db_kind == "folder":
        path.mkdir()
    else:
        path.write_text("hello " * 200)
    result = CliRunner().invoke(cli, ["--db", str(path), "people"])
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output
