"""Hostile files mixed into good ones: the scan runs to the end, exit 0, each bad file explained."""

import io
import os
import sqlite3
import stat

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import facecluster.scan_file as scan_file
from facecluster.decode import decode
from facecluster.errors import DecodeError
from tests.conftest import claimed_size, cli_run, jpeg_bytes


def encode(img, fmt, **kwargs):
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def scan(db, folder, *extra):
    return cli_run(db, "scan", "-q", *extra, str(folder))


def photos(db):
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT p.path, p.status, p.error, count(f.id), min(f.x), min(f.y), min(f.w), min(f.h) "
            "FROM photos p LEFT JOIN faces f ON f.photo_id = p.id GROUP BY p.id"
        ).fetchall()
    return {os.fsdecode(r[0]) if isinstance(r[0], bytes) else r[0]: r[1:] for r in rows}


ORIENTATION_STORED_AS = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.fixture
def hostile(tmp_path, astronaut, t1_path):
    folder = tmp_path / "library"
    folder.mkdir()
    portrait = Image.fromarray(astronaut)
    good = jpeg_bytes(astronaut)
    files = {
        "good.jpg": good,
        "group.jpg": t1_path.read_bytes(),
        "zero.jpg": b"",
        "truncated.jpg": good[: len(good) // 2],
        "random.jpg": np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes(),
        "png_named.jpg": encode(portrait, "PNG"),
        "jpeg_named.png": jpeg_bytes(np.ascontiguousarray(astronaut[:, ::-1])),
        "tiny.png": encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
        "huge.png": claimed_size("PNG", 20000, 20000, "1"),
        "bomb.gif": claimed_size("GIF", 30000, 30000, "P"),
        "cmyk.jpg": encode(portrait.convert("CMYK"), "JPEG"),
        "grey.jpg": encode(portrait.convert("L"), "JPEG"),
        "sixteen.png": encode(Image.fromarray(np.asarray(portrait.convert("L"), np.uint16) * 257), "PNG"),
        "palette.png": encode(portrait.convert("P"), "PNG", transparency=0),
        "animated.gif": encode(portrait.convert("P"), "GIF", save_all=True, append_images=[Image.new("P", (512, 512))]),
        "animated.webp": encode(portrait, "WEBP", save_all=True, append_images=[Image.new("RGB", (512, 512))]),
        "with space.jpg": encode(portrait, "JPEG", quality=81),
        "ünïcødé 写真.jpg": encode(portrait, "JPEG", quality=82),
        "new\nline.jpg": encode(portrait, "JPEG", quality=83),
    }
    exif = Image.Exif()
    exif[0x0112] = 6
    corrupt = bytearray(encode(portrait, "JPEG", quality=84, exif=exif.tobytes()))
    start = corrupt.find(b"Exif\x00\x00")
    corrupt[start + 8 : start + 30] = b"\xff" * 22
    files["corrupt_exif.jpg"] = bytes(corrupt)
    for orientation, transpose in ORIENTATION_STORED_AS.items():
        stored = portrait if transpose is None else portrait.transpose(transpose)
        tag = Image.Exif()
        tag[0x0112] = orientation
        files[f"orientation_{orientation}.jpg"] = encode(stored, "JPEG", quality=85 + orientation % 3, exif=tag.tobytes())
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / os.fsdecode(b"bytes\xff\xfe.jpg")).write_bytes(encode(portrait, "JPEG", quality=79))
    locked = folder / "locked.jpg"
    locked.write_bytes(encode(portrait, "JPEG", quality=78))
    locked.chmod(0)
    (folder / "loop").mkdir()
    os.symlink(folder, folder / "loop" / "back")
    os.mkfifo(folder / "fifo.jpg")  # a worker that opened it would block for ever
    far = folder / "far_future.jpg"
    far.write_bytes(encode(portrait, "JPEG", quality=77))
    os.utime(far, (3e11, 3e11))  # past what SQLite's integers hold, in nanoseconds
    return folder


@pytest.mark.slow
def test_hostile_library_scans_to_the_end(hostile, tmp_path):
    db = tmp_path / "hostile.db"
    result = scan(db, hostile, "--jobs", "2")
    assert result.exit_code == 0, result.output
    got = {os.path.basename(p): v for p, v in photos(db).items()}

    def ok(name, faces=1):
        status, error, count = got[name][:3]
        assert status == "ok", (name, error)
        assert count >= faces if faces else count == 0, name

    def failed(name, reason):
        status, error = got[name][:2]
        assert status == "failed" and reason in error, (name, error)

    failed("zero.jpg", "empty file")
    failed("truncated.jpg", "broken image data")
    failed("random.jpg", "not an image")
    failed("huge.png", "20000x20000 (400 MP), over the 200 MP limit")
    failed("bomb.gif", "30000x30000 (900 MP)")
    for name in ["good.jpg", "png_named.jpg", "jpeg_named.png", "cmyk.jpg", "grey.jpg", "sixteen.png",
                 "palette.png", "animated.gif", "animated.webp", "with space.jpg", "ünïcødé 写真.jpg",
                 "new\nline.jpg", "corrupt_exif.jpg", os.fsdecode(b"bytes\xff\xfe.jpg")]:
        ok(name)
    ok("group.jpg", 6)
    ok("tiny.png", 0)
    if os.geteuid() == 0:
        ok("locked.jpg")  # root reads it anyway
    else:
        failed("locked.jpg", "cannot read file")
    # Every orientation: the face is found, and its box is in displayed coordinates.
    upright = np.array(got["orientation_1.jpg"][3:], float)
    for orientation in range(2, 9):
        ok(f"orientation_{orientation}.jpg")
        box = np.array(got[f"orientation_{orientation}.jpg"][3:], float)
        assert np.abs(box - upright).max() < 8, (orientation, box, upright)
    ok("far_future.jpg")
    assert "fifo.jpg" not in got
    assert "fifo.jpg: skipped: a FIFO (named pipe), not a regular file" in result.stderr
    listed = result.stdout
    assert "zero.jpg" in listed and "huge.png" in listed and "bomb.gif" in listed


def test_heic_photo(tmp_path, astronaut):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    folder = tmp_path / "heic"
    folder.mkdir()
    try:
        (folder / "IMG_0001.HEIC").write_bytes(encode(Image.fromarray(astronaut), "HEIF"))
    except Exception as e:
        pytest.skip(f"this pillow-heif cannot write HEIC: {e}")
    db = tmp_path / "heic.db"
    assert scan(db, folder, "-j", "1").exit_code == 0
    assert list(photos(db).values())[0][:3] == ("ok", None, 1)


def test_files_deleted_or_rewritten_during_the_scan(tmp_path, astronaut, monkeypatch):
    folder = tmp_path / "moving"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.jpg").write_bytes(encode(Image.fromarray(astronaut), "JPEG", quality=80 + i))
    real = scan_file.analyse_file
    calls = []

    def meddle(entry, *args, **kwargs):
        calls.append(entry.path)
        if len(calls) == 1:
            (folder / "2.jpg").unlink()
            (folder / "3.jpg").write_bytes(b"rewritten, no longer a photo")
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(scan_file, "analyse_file", meddle)
    db = tmp_path / "moving.db"
    result = scan(db, folder, "-j", "1")
    assert result.exit_code == 0
    got = {os.path.basename(p): v for p, v in photos(db).items()}
    assert got["0.jpg"][0] == got["1.jpg"][0] == "ok"
    assert got["2.jpg"][0] == "failed" and "cannot read file" in got["2.jpg"][1]
    assert got["3.jpg"][0] == "failed" and "not an image" in got["3.jpg"][1]
    monkeypatch.setattr(scan_file, "analyse_file", real)
    again = scan(db, folder, "-j", "1", "--prune")
    assert "1 photo is gone from disk, removed" in again.stderr


@pytest.mark.slow
def test_ten_thousand_files(tmp_path, fake_models):  # too small to hold faces: the fake models
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10_000):
        Image.new("RGB", (8, 8), (i % 256, (i // 256) % 256, 7)).save(folder / f"{i:05d}.png")
    db = tmp_path / "many.db"
    result = scan(db, folder, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "10000 new" in result.stderr
    again = scan(db, folder)
    assert "10000 unchanged" in again.stderr


# ---- property-based: decode only ever returns an image or raises DecodeError -----------


def _decode_or_error(data: bytes) -> None:
    try:
        photo = decode(data)
    except DecodeError:
        return
    assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and photo.rgb.dtype == np.uint8


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_decode(data):
    _decode_or_error(data)


SMALL_JPEG = jpeg_bytes(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8))
SMALL_PNG = encode(Image.new("RGBA", (40, 30), (1, 2, 3, 4)), "PNG")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([SMALL_JPEG, SMALL_PNG]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
    st.integers(0, 10_000),
)
def test_mutated_photos_never_crash_decode(original, flips, cut):
    data = bytearray(original)
    for position, value in flips:
        data[position % len(data)] = value
    _decode_or_error(bytes(data[: max(1, len(data) - cut % len(data))]))


def test_a_scan_never_runs_another_program_on_a_document(tmp_path, astronaut, monkeypatch):
    from tests.test_decode import DOCUMENTS

    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes(astronaut))
    for name, (data, _) in DOCUMENTS.items():
        (folder / name).write_bytes(data)
    (folder / "loop.heic").write_bytes(DOCUMENTS["postscript_loop.jpg"][0])
    # A `gs` first on the PATH that only says it ran: the workers (spawned, so they inherit
    # the PATH) would find it as Pillow's EPS plugin finds Ghostscript.
    bin_dir, ran = tmp_path / "bin", tmp_path / "programs-run.txt"
    bin_dir.mkdir()
    for program in ("gs", "gswin64c", "pdftoppm", "convert", "magick"):
        (bin_dir / program).write_text(f'#!/bin/sh\necho "{program} $*" >> "{ran}"\nexit 1\n')
        (bin_dir / program).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    db = tmp_path / "docs.db"
    result = scan(db, folder, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert not ran.exists(), ran.read_text()
    got = {os.path.basename(p): v for p, v in photos(db).items()}
    assert got["good.jpg"][0] == "ok"
    for name, (_, kind) in [*DOCUMENTS.items(), ("loop.heic", (None, "a PostScript document"))]:
        status, error = got[name][:2]
        assert status == "failed" and f"not an image: {kind}, not opened" in error, (name, error)
        assert name in result.stdout


def test_sidecars_that_cannot_be_read_are_warnings_at_scan(tmp_path, astronaut):
    folder = tmp_path / "library"
    folder.mkdir()
    for i, name in enumerate(["fifo", "zero", "dangling", "huge", "broken", "plain"]):
        (folder / f"{name}.jpg").write_bytes(encode(Image.fromarray(astronaut), "JPEG", quality=80 + i))
    os.mkfifo(folder / "fifo.jpg.xmp")
    os.symlink("/dev/zero", folder / "zero.jpg.xmp")
    os.symlink(folder / "gone.xmp", folder / "dangling.xmp")
    with open(folder / "huge.xmp", "wb") as f:
        f.truncate(17 << 20)
    (folder / "broken.jpg.xmp").write_bytes(b"<x:xmpmeta><rdf:RDF>& not xml")
    db = tmp_path / "sidecars.db"
    result = scan(db, folder, "--jobs", "2")
    assert result.exit_code == 0, result.output
    got = {os.path.basename(p): v for p, v in photos(db).items()}
    assert all(status == "ok" and faces == 1 for status, _, faces, *_ in got.values()), got
    for photo, sidecar, reason in [
        ("fifo.jpg", "fifo.jpg.xmp", "a FIFO (named pipe), not a regular file"),
        ("zero.jpg", "zero.jpg.xmp", "a character device, not a regular file"),
        ("dangling.jpg", "dangling.xmp", "cannot read it: No such file or directory"),
        ("huge.jpg", "huge.xmp", "larger than 16 MB (17 MB)"),
        ("broken.jpg", "broken.jpg.xmp", "not well-formed XML"),
    ]:
        assert f"{photo}: face names in its sidecar {sidecar} not read: {reason}" in result.stderr, result.stderr
    assert "plain.jpg" not in result.stderr
    assert stat.S_ISFIFO(os.lstat(folder / "fifo.jpg.xmp").st_mode) and os.path.islink(folder / "zero.jpg.xmp")
