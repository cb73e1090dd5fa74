"""The per-face quality score: pure functions, and the value scan stores and `group` fills in."""

import io
import json
import math
import sqlite3

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facecluster.grouping import fill_face_quality
from facecluster.quality import face_quality, ramp, sharpness, thumb_quality, thumb_sharpness, yaw_ratio
from facecluster.store import Store
from tests.conftest import cli_ok

FRONTAL = [30, 40, 70, 40, 50, 60, 35, 80, 65, 80]  # eyes level, nose between them, mouth below


def jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=82)
    return out.getvalue()


def test_ramp_clips_and_handles_reversed_and_nan():
    assert ramp(0.75, 0.6, 0.9) == pytest.approx(0.5)
    assert ramp(0.1, 0.6, 0.9) == 0.0 and ramp(5, 0.6, 0.9) == 1.0
    assert ramp(0.8, 1.0, 0.6) == pytest.approx(0.5)  # high below low: falling ramp
    assert ramp(math.nan, 0, 1) == 0.0


def test_sharpness_flat_is_zero_and_blur_lowers_it(astronaut):
    assert sharpness(np.full((128, 128), 120.0)) == pytest.approx(0.0, abs=1e-6)
    face = np.asarray(Image.fromarray(astronaut).crop((150, 40, 290, 180)).convert("L"), np.float32)
    blurred = np.asarray(Image.fromarray(face.astype(np.uint8)).filter(ImageFilter.GaussianBlur(3)), np.float32)
    assert sharpness(face) > 5 * sharpness(blurred) > 0


def test_thumb_sharpness_of_nothing_or_garbage_is_zero():
    assert thumb_sharpness(None) == 0.0
    assert thumb_sharpness(b"not a jpeg") == 0.0


def test_yaw_ratio_frontal_turned_and_degenerate():
    assert yaw_ratio(FRONTAL) == pytest.approx(0.0)
    turned = list(FRONTAL)
    turned[4] = 66  # nose tip moved towards one eye: a head turned aside
    assert yaw_ratio(turned) == pytest.approx(0.4)
    assert yaw_ratio([10, 10, 10, 10, 5, 5, 0, 0, 0, 0]) == math.inf


def test_face_quality_combines_the_four_aspects():
    good = dict(sharp=500, size=100, score=0.95, yaw=0.05)
    assert face_quality(**good) == 1.0
    for worst in (dict(sharp=10), dict(size=15), dict(score=0.55), dict(yaw=1.2), dict(sharp=0), dict(yaw=math.inf)):
        assert face_quality(**{**good, **worst}) == 0.0, worst
    half = face_quality(**{**good, "score": 0.75})  # one aspect at 0.5: geometric mean of 0.5, 1, 1, 1
    assert half == pytest.approx(0.5 ** 0.25, abs=1e-4)
    assert 0 < face_quality(**{**good, "sharp": 60}) < face_quality(**{**good, "sharp": 150}) < 1


def test_thumb_quality_real_face_beats_its_blurred_copy(astronaut):
    face = np.asarray(Image.fromarray(astronaut).crop((150, 20, 330, 200)).resize((128, 128)))
    blurred = np.asarray(Image.fromarray(face).filter(ImageFilter.GaussianBlur(4)))
    sharp_q = thumb_quality(jpeg(face), FRONTAL, 120.0, 0.92)
    assert sharp_q > 0.9
    assert thumb_quality(jpeg(blurred), FRONTAL, 120.0, 0.92) < 0.5 < sharp_q


def stored_faces(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, thumb, landmarks, size, score, quality FROM faces ORDER BY id").fetchall()


def test_scan_stores_the_quality_and_filling_an_old_database_gives_the_same(tmp_path, fake_folder, fake_models):
    photo_folder = fake_folder  # the rules are checked on what is stored, whatever the faces: the fake models
    db = tmp_path / "q.db"
    cli_ok(db, "scan", "-q", str(photo_folder))
    rows = stored_faces(db)
    assert rows and all(r[5] is not None for r in rows)
    for _, thumb, landmarks, size, score, stored in rows:
        assert stored == thumb_quality(thumb, json.loads(landmarks), size, score)
    # A database scanned before the column existed: NULL everywhere, filled from what is stored.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE faces SET quality = NULL")
    store = Store(db)
    with store.writer("test"):
        assert fill_face_quality(store, "sface") == len(rows)
        assert fill_face_quality(store, "sface") == 0
    store.close()
    assert [r[5] for r in stored_faces(db)] == [r[5] for r in rows]


def test_group_fills_missing_quality_first(tmp_path, fake_folder, fake_models):
    photo_folder = fake_folder
    db = tmp_path / "q.db"
    cli_ok(db, "scan", "-q", str(photo_folder))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE faces SET quality = NULL")
    cli_ok(db, "group", "-q")
    assert all(r[5] is not None for r in stored_faces(db))
