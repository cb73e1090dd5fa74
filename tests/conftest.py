"""Shared fixtures: a real database file, real faces, generated bad files."""

from __future__ import annotations

import functools
import io
import os
import shutil
import signal
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import facecluster.cli.scan as cli_scan
from facecluster.models import ModelPack
from facecluster.scan import scan
from facecluster.store import Store
from tests.fakes import fake_pack, write_photo

FACEDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def store(db_path: Path) -> Store:
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real portrait (Eileen Collins) that ships inside scikit-image: one face."""
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def t1_path() -> Path:
    """insightface's t1.jpg, six faces, shipped inside the insightface wheel."""
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("insightface is not installed, so its t1.jpg sample is absent")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "t1.jpg"
    if not path.is_file():
        pytest.skip(f"insightface's sample photo {path} is absent")
    return path


@pytest.fixture(scope="session")
def t1(t1_path: Path) -> np.ndarray:
    return np.asarray(Image.open(t1_path, formats=["JPEG"]).convert("RGB"))


def jpeg_bytes(rgb: np.ndarray, exif: bytes | None = None, **kwargs) -> bytes:
    out = io.BytesIO()
    img = Image.fromarray(rgb)
    if exif is not None:
        kwargs["exif"] = exif
    img.save(out, "JPEG", quality=92, **kwargs)
    return out.getvalue()


def claimed_size(fmt: str, width: int, height: int, mode: str = "L") -> bytes:
    """A one-pixel PNG or GIF whose header claims `width` x `height`: all a size check reads, made in a
    moment where a real image that size takes seconds to encode. A decoder that skipped the check and
    decoded it would fail on the missing pixels with another message, so a test on it still fails then.

    Example:
        decode(claimed_size("PNG", 20000, 20000))  # DecodeError: ... 400 MP, over the 200 MP limit
    """
    out = io.BytesIO()
    Image.new(mode, (1, 1)).save(out, fmt)
    data = bytearray(out.getvalue())
    if fmt == "PNG":  # IHDR: length, type, width, height (big-endian), ..., its CRC
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "GIF":  # the logical screen's width and height (little-endian), after "GIF89a"
        data[6:10] = struct.pack("<HH", width, height)
    else:
        raise ValueError(f"claimed_size makes PNG or GIF, not {fmt}")
    return bytes(data)


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut: np.ndarray, t1_path: Path) -> Path:
    """Two real photos (7 faces) and three bad files."""
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    (folder / "astronaut.jpg").write_bytes(jpeg_bytes(astronaut))
    (folder / "trip" / "group.jpg").write_bytes(t1_path.read_bytes())
    good = (folder / "astronaut.jpg").read_bytes()
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "notes.jpg").write_text("this is not a photo\n")
    return folder


def in_facedata(relative: str = "") -> Path:
    """FACEDATA / relative, or a skip whose reason names the path looked for.

    Example:
        photo = in_facedata("groups/compreface_000_5.jpg")
    """
    path = FACEDATA / relative
    if not path.exists():
        pytest.skip(f"labelled photos not found at {path} (../shared/facedata beside the checkout)")
    return path


def _variants(img):
    """Six photos of the same faces: as taken, mirrored, smaller, darker, tilted, more contrast."""
    w, h = img.size
    yield img
    yield img.transpose(Image.FLIP_LEFT_RIGHT)
    yield img.resize((int(w * 0.8), int(h * 0.8)))
    yield ImageEnhance.Brightness(img).enhance(0.8)
    yield img.rotate(4, resample=Image.BILINEAR, fillcolor=(128, 128, 128))
    yield ImageEnhance.Contrast(img).enhance(1.3)


@pytest.fixture(scope="session")
def package_library(astronaut, t1_path, tmp_path_factory):
    """Six photos each of the astronaut and of t1's six people, scanned and grouped once: 7 groups of 6.

    Each test copies the database (plib). Here, not in test_cli_people.py, so that every module shares the one
    session's library: a session fixture imported into another test module is built again there.
    """
    root = tmp_path_factory.mktemp("package")
    library = root / "library"
    for label, img in [("astronaut", Image.fromarray(astronaut)), ("t1", Image.open(t1_path).convert("RGB"))]:
        (library / label).mkdir(parents=True)
        for i, variant in enumerate(_variants(img)):
            variant.save(library / label / f"{label}_{i}.jpg", quality=90)
    db = root / "template.db"
    cli_ok(db, "scan", "-q", str(library))
    cli_ok(db, "group", "-q")
    return library, db


@pytest.fixture
def plib(package_library, tmp_path):
    library, template = package_library
    db = tmp_path / "faces.db"
    shutil.copy(template, db)
    return library, db


@pytest.fixture
def fake_models(monkeypatch) -> ModelPack:
    """`facecluster scan` in this process runs the fake models of tests/fakes.py, not the real ones: for tests
    of what scan does around the models (the pack is returned, to count its calls)."""
    pack = fake_pack()
    monkeypatch.setattr(cli_scan, "scan", functools.partial(scan, pack=pack))
    return pack


@pytest.fixture
def fake_folder(tmp_path: Path) -> Path:
    """photo_folder's layout for the fake models: two photos (1 and 6 coloured-square faces) and three bad files."""
    folder = tmp_path / "photos"
    write_photo(folder / "astronaut.jpg", ["red"])
    write_photo(folder / "trip" / "group.jpg", ["orange", "yellow", "green", "cyan", "blue", "purple"], seed=1, size=(240, 560))
    good = (folder / "astronaut.jpg").read_bytes()
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "notes.jpg").write_text("this is not a photo\n")
    return folder


@pytest.fixture(scope="session")
def facedata() -> Path:
    """The labelled photos (../shared/facedata): every test that uses them gets the `facedata` mark."""
    return in_facedata()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that reaches the labelled photos through the fixture is a facedata test, marked or not,
    # so that `-m "not facedata"` leaves out every one of them.
    for item in items:
        if "facedata" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.facedata)


def default_sigint() -> None:
    """preexec_fn for children a test interrupts with SIGINT: a test run started with SIGINT ignored
    (`nohup pytest &`, some CI runners) passes the ignoring on to its children, and Python then never
    raises KeyboardInterrupt in them, so the Ctrl-C tests hung."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))

# Rich wraps at 80 columns when output is not a terminal; test output should not wrap.
os.environ.setdefault("COLUMNS", "200")


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Graphs built from the shipped weights go to a throwaway cache, not the user's
    (scan workers inherit the variable); built once for the whole test run."""
    folder = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECLUSTER_MODEL_CACHE", str(folder))
        yield folder


def cli_run(db, *args, env=None):
    """`facecluster --db DB ARGS...` in-process; never a traceback."""
    from click.testing import CliRunner

    from facecluster.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(db), *args], env=env)
    assert "Traceback" not in result.output, result.output
    return result


def cli_ok(db, *args):
    """Like cli_run, and it must succeed."""
    result = cli_run(db, *args)
    assert result.exit_code == 0, result.output
    return result


def beside_a_fifo(fifo: Path, call: Callable[[], object], deadline: float = 60.0) -> tuple[object, bool]:
    """`call()` run with a FIFO at `fifo` that nobody writes to: (what it returned, whether it blocked).

    Code that opens the FIFO for reading waits there for ever. Past `deadline`
    seconds (a correct `call` returns long before), the call is taken to be
    blocked: the FIFO is given a writer that closes at once, so the reader sees
    the end of the file, the call returns, and the test fails instead of hanging.
    """
    os.mkfifo(fifo)
    returned: list[object] = []
    worker = threading.Thread(target=lambda: returned.append(call()), daemon=True)
    worker.start()
    worker.join(deadline)
    blocked = worker.is_alive()
    while worker.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # fails (ENXIO) while no reader is waiting
        except OSError:
            pass
        worker.join(1)
    return (returned[0] if returned else None), blocked
