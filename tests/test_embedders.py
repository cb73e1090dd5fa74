"""Embeddings per (face, embedder), the model registry, and `scan --embedder` re-embedding in place."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlite_utils import Database

from facecluster.align import align_faces
from facecluster.cli import cli
from facecluster.grouping import GroupOptions, group
from facecluster.identify import identify
from facecluster.migrations import migrations
from facecluster.models import load_embedder, load_pack, registry
from facecluster.people import answer_same, answer_suggestion, list_people, name_person, undo_last
from facecluster.records import Face, PhotoFacts
from facecluster.reembed import embed_stored_faces
from facecluster.faces import detect_faces
from facecluster.store import Store, blob_to_embedding
from tests.conftest import FACEDATA
from tests.mediagen import encode_video
from benchmarks.reembed import user_rows  # every row a user owns, compared whole before and after

def run(db: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def three_people(store: Store) -> None:
    """18 photos, one face each: three people of six tight faces (random unit vectors, 128-d)."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 128))
    store.register_model("sface", "fp", 128, "test")
    with store.transaction():
        for i in range(18):
            v = centres[i % 3] + rng.normal(scale=0.08, size=128)
            face = Face(box=(10, 10, 80, 80), landmarks=(30, 40, 60, 40, 45, 55, 35, 70, 55, 70), score=0.9, size=80,
                        embedding=(v / np.linalg.norm(v)).astype(np.float32), thumb=b"", quality=0.9)
            facts = PhotoFacts(path=f"/photos/p{i:02}.jpg", size=100 + i, mtime_ns=i, sha256=f"{i:064x}", width=100, height=100)
            store.save_photo(facts, [face], "sface", None)


def as_m009(db: Path) -> None:
    """Turn a database of today's schema back into one of m009 (before embeddings): what an older
    facecluster left, with its real history rows and undo snapshots."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP TRIGGER faces_scan_vector")
        conn.execute("DROP TRIGGER faces_drop_vectors")
        conn.execute("DROP TABLE embeddings")
        conn.execute("ALTER TABLE models DROP COLUMN embedder")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_embeddings'")
    conn.close()


def test_an_m009_database_is_what_the_migration_list_builds(tmp_path):
    """The downgrade used below leaves exactly the schema the migrations up to m009 build."""
    old, today = tmp_path / "old.db", tmp_path / "today.db"
    migrations.apply(Database(old), stop_before="m010_embeddings")
    Store(today).close()
    as_m009(today)

    def schema(path):
        with closing(sqlite3.connect(path)) as conn:
            return sorted((t, [c[1] for c in conn.execute(f"PRAGMA table_info({t})")])
                          for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))

    assert schema(old) == schema(today)


def test_migration_keeps_every_row_and_undo_still_restores(tmp_path):
    db = tmp_path / "lib.db"
    store = Store(db)
    three_people(store)
    group(store)
    groups = sorted(list_people(store), key=lambda p: p.id)
    name_person(store, str(groups[0].id), "Alice")
    answer_same(store, str(groups[1].id), str(groups[2].id), yes=False)
    loose = store.db.execute("SELECT id FROM faces WHERE person_id = ? LIMIT 1", [groups[1].id]).fetchone()[0]
    answer_suggestion(store, "Alice", loose, yes=False)
    name_person(store, str(groups[1].id), "Bob")  # the action undone after the migration
    store.close()
    as_m009(db)
    before = user_rows(db)
    with closing(sqlite3.connect(db)) as conn:
        scan_vectors = dict(conn.execute("SELECT id, embedding FROM faces").fetchall())

    store = Store(db)
    assert user_rows(db) == before
    assert {r[0]: r[1] for r in store.db.execute("SELECT face_id, vector FROM embeddings WHERE embedder = 'sface'")} == scan_vectors
    assert store.vector_counts() == {"sface": 18}
    assert store.active_embedder("sface") == "sface"
    assert "Bob" in undo_last(store)  # a snapshot taken before the migration restores after it
    assert [p.name for p in list_people(store) if p.name] == ["Alice"]
    assert len(store.cannot_links()) == 1
    store.close()


def test_vectors_go_with_their_face_even_with_foreign_keys_off(tmp_path):
    db = tmp_path / "lib.db"
    store = Store(db)
    three_people(store)
    store.close()
    with closing(sqlite3.connect(db)) as conn, conn:  # a plain connection: foreign keys off
        conn.execute("DELETE FROM faces WHERE id = (SELECT max(id) FROM faces)")
        orphans = conn.execute("SELECT count(*) FROM embeddings WHERE face_id NOT IN (SELECT id FROM faces)").fetchone()[0]
    assert orphans == 0


def test_group_without_vectors_of_the_active_embedder_says_so_in_one_line(tmp_path):
    db = tmp_path / "lib.db"
    store = Store(db)
    three_people(store)
    with store.transaction():
        store.set_active_embedder("sface", "sface-flip")
    store.close()
    result = run(db, "group")
    assert result.exit_code == 1
    assert "18 of 18 faces of pack 'sface' have no 'sface-flip' vector yet" in result.output
    assert "scan --embedder sface-flip" in result.output
    assert "Traceback" not in result.output


def test_group_uses_the_active_embedder_vectors_and_distances(tmp_path):
    db = tmp_path / "lib.db"
    store = Store(db)
    three_people(store)
    ids = [r[0] for r in store.db.execute("SELECT id FROM faces ORDER BY id")]
    rng = np.random.default_rng(1)
    other = {i: (v / np.linalg.norm(v)).astype(np.float32) for i, v in zip(ids, rng.normal(size=(len(ids), 128)))}
    with store.transaction():
        store.save_vectors("sface-flip", other.items())
        store.set_active_embedder("sface", "sface-flip")
    data = store.grouping_inputs("sface")
    np.testing.assert_array_equal(data.embeddings, np.stack([other[i] for i in ids]))
    said = []
    summary = group(store, GroupOptions(), progress=said.append)
    assert "grouping 18 faces with the sface-flip embedder" in said
    assert summary.groups == 0  # random vectors: no group, where the scan's vectors make three
    store.close()


def test_registry_is_data_and_load_pack_reads_it():
    assert registry.embedder("sface").distances == registry.SFACE_DISTANCES
    assert registry.embedder("sface-flip").flip and registry.embedder("sface-flip").dim == 128
    assert registry.distances("dir:/some/folder") == registry.SFACE_DISTANCES  # an unknown model: SFace's
    for name, spec in registry.PACKS.items():
        assert spec.detector in registry.DETECTORS and spec.embedder in registry.EMBEDDERS, name
    pack = load_pack("sface")
    assert pack.name == "sface" and pack.fingerprint.startswith(registry.YUNET_FILE.sha256[:16])


def test_unknown_embedder_is_one_line(tmp_path):
    result = run(tmp_path / "lib.db", "scan", str(tmp_path), "--embedder", "nope", "-q")
    assert result.exit_code == 1
    assert "unknown embedder 'nope'" in result.output and "Traceback" not in result.output


def test_flip_embedder_is_the_mean_of_a_crop_and_its_mirror(astronaut):
    crops = align_faces(astronaut, detect_faces(astronaut, load_pack("sface")).landmarks)
    plain, flip = load_embedder("sface"), load_embedder("sface-flip")
    both = plain.predict(crops) + plain.predict(np.ascontiguousarray(crops[:, :, ::-1]))
    expected = both / np.linalg.norm(both, axis=1, keepdims=True)
    got = flip.predict(crops)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert 0.9 < float(got[0] @ plain.predict(crops)[0]) < 0.9999  # close to SFace's own, not the same


@pytest.fixture(scope="module")
def bbt(tmp_path_factory):
    source = FACEDATA / "bbt_faceapi"
    if not source.is_dir():
        pytest.skip(f"needs the labelled photos at {source}")
    root = tmp_path_factory.mktemp("bbt") / "lib"
    shutil.copytree(source, root)
    return root


def test_reembedding_with_a_second_real_embedder_keeps_every_user_row(tmp_path, bbt):
    db = tmp_path / "lib.db"
    assert run(db, "scan", str(bbt), "-q", "-j", "1").exit_code == 0
    assert run(db, "group").exit_code == 0
    store = Store(db)
    groups = sorted(list_people(store), key=lambda p: -p.faces)
    name_person(store, str(groups[0].id), "Alice")
    name_person(store, str(groups[1].id), "Bob")
    answer_same(store, str(groups[2].id), str(groups[3].id), yes=False)
    loose = store.db.execute("SELECT id FROM faces WHERE person_id IS NULL ORDER BY id LIMIT 2").fetchall()
    for (face_id,) in loose:
        answer_suggestion(store, "Alice", face_id, yes=False)
    store.close()
    before = user_rows(db)

    result = run(db, "scan", str(bbt), "--embedder", "sface-flip", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "sface-flip is now the embedder of pack sface" in result.output
    assert user_rows(db) == before  # the same face ids, people, names, answers and history

    store = Store(db)
    faces = store.db.execute("SELECT count(*) FROM faces").fetchone()[0]
    assert store.vector_counts() == {"sface": faces, "sface-flip": faces}
    # Described from the stored landmarks: close to the scan's SFace vectors, and not the same.
    scan_vectors = {i: blob_to_embedding(b) for i, b in store.db.execute("SELECT id, embedding FROM faces")}
    flip = store.vectors_of(scan_vectors, "sface-flip")
    cosines = np.array([float(scan_vectors[i] @ flip[i]) for i in scan_vectors])
    assert cosines.min() > 0.8 and cosines.max() < 0.99999
    data = store.grouping_inputs("sface")
    np.testing.assert_array_equal(data.embeddings, np.stack([flip[i] for i in data.face_ids.tolist()]))
    # `identify` describes a new photo's faces with the embedder in use too: Alice's photo is Alice.
    alice = store.db.execute("SELECT p.path FROM faces f JOIN photos p ON p.id = f.photo_id JOIN people pe "
                             "ON pe.id = f.person_id WHERE pe.name = 'Alice' ORDER BY f.id LIMIT 1").fetchone()[0]
    found = identify(store, [alice])[0].faces
    assert [f.best.name for f in found if f.wording == "very likely"] == ["Alice"]
    store.close()

    result = run(db, "group")
    assert result.exit_code == 0, result.output
    assert "with the sface-flip embedder" in result.output
    after = user_rows(db)
    assert [r for r in after["people"] if r[2]] == [r for r in before["people"] if r[2]]  # names stay
    assert after["face_rejections"] == before["face_rejections"] and after["cannot_links"] == before["cannot_links"]
    assert after["actions"] == before["actions"]
    assert [r[0] for r in after["faces"]] == [r[0] for r in before["faces"]]


def test_a_plain_scan_gives_new_faces_vectors_of_the_embedder_in_use(tmp_path, bbt):
    db = tmp_path / "lib.db"
    first = tmp_path / "first"
    shutil.copytree(bbt / "Amy", first / "Amy")
    assert run(db, "scan", str(first), "--embedder", "sface-flip", "-q", "-j", "1").exit_code == 0
    shutil.copytree(bbt / "Raj", first / "Raj")
    result = run(db, "scan", str(first), "-q", "-j", "1")
    assert result.exit_code == 0, result.output
    store = Store(db)
    assert store.active_embedder("sface") == "sface-flip"
    assert store.missing_vectors("sface", "sface-flip") == 0
    store.close()


def test_a_video_face_is_described_again_from_its_frame(tmp_path):
    """Re-embedding finds a video face's keyframe by its stored time, upright and at the scan's size:
    with the pack's own embedder it gives the scan's vector back."""
    photo = FACEDATA / "celeb5_opencv_course" / "Madonna" / "train_1.jpg"
    if not photo.is_file():
        pytest.skip(f"needs the labelled photos at {photo}")
    lib = tmp_path / "lib"
    lib.mkdir()
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    encode_video(lib / "VID_1.mp4", [(0, 4, rgb)], size=(720, 1280), seconds=4, fps=5, rotation=-90)
    db = tmp_path / "lib.db"
    assert run(db, "scan", str(lib), "-q", "-j", "1").exit_code == 0
    store = Store(db)
    faces = store.faces_to_embed("sface", "sface-flip", [str(lib)])
    assert faces and all(f.frame_ms is not None for f in faces)
    again = dict(embed_stored_faces(str(lib / "VID_1.mp4"), faces, load_embedder("sface")))
    scanned = store.vectors_of(again, "sface")
    assert min(float(again[i] @ scanned[i]) for i in again) > 0.999
    store.close()
