"""The fake models (tests/fakes.py), and scan's and group's bookkeeping run on them: fast, no model files.

What depends on real faces is tested with the real models elsewhere (test_cli_scan, test_grouping, ...);
here the faces are coloured squares, one colour per person.
"""

from __future__ import annotations

import io
import pickle
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster.align import align_faces
from facecluster.errors import UsageProblem
from facecluster.grouping import GroupOptions, group
from facecluster.people import list_people, name_person
from facecluster.scan import ScanOptions, ScanProgress, scan
from facecluster.store import Store
from tests.conftest import FACEDATA, in_facedata
from tests.fakes import COLOURS, fake_pack, paint_photo, write_photo

PEOPLE = ["red", "green", "blue", "purple"]


def jpeg_round_trip(rgb: np.ndarray) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=95)
    return np.asarray(Image.open(out))


def faces_left_to_right(pack, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes, embeddings) of the fake faces in `rgb`, ordered by their left edge."""
    found = pack.detector.predict(rgb)
    order = np.argsort(found.boxes[:, 0])
    return found.boxes[order], pack.embedder.predict(align_faces(rgb, found.landmarks))[order]


def test_the_detector_finds_each_square_and_the_embedder_tells_colours_apart():
    pack = fake_pack()
    found = pack.detector.predict(jpeg_round_trip(paint_photo(PEOPLE, seed=2, size=(240, 400))))
    assert len(found) == 4 and np.allclose(found.scores, 0.95)
    boxes, vectors = faces_left_to_right(pack, jpeg_round_trip(paint_photo(PEOPLE, seed=2, size=(240, 400))))
    sides = boxes[:, 2:] - boxes[:, :2]
    assert np.all((sides >= 62) & (sides <= 70))  # the 64-pixel squares, give or take JPEG's blur
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    _, again = faces_left_to_right(pack, jpeg_round_trip(paint_photo(PEOPLE, seed=7, size=(240, 400))))
    cosine = vectors @ again.T
    assert np.all(np.diag(cosine) > 0.99)  # the same colour in another photo: the same "person"
    assert np.all(cosine[~np.eye(4, dtype=bool)] < 0.05)  # other colours: other people
    assert pack.detector.calls == 3 and pack.embedder.calls == 8


def test_a_grey_photo_has_no_faces_and_the_palette_is_far_apart():
    pack = fake_pack()
    assert len(pack.detector.predict(np.full((100, 100, 3), 128, np.uint8))) == 0
    colours = list(COLOURS)
    vectors = np.concatenate([faces_left_to_right(pack, jpeg_round_trip(paint_photo(half, size=(240, 400))))[1]
                              for half in (colours[:4], colours[4:])])
    cosine = vectors @ vectors.T
    assert np.all(cosine[~np.eye(len(COLOURS), dtype=bool)] < 0.05)


def test_the_pack_pickles_for_worker_processes():
    pack = pickle.loads(pickle.dumps(fake_pack()))
    assert len(pack.detector.predict(paint_photo(["red"]))) == 1


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Eight photos of four fake people, two to a photo, and one file that is no photo."""
    folder = tmp_path / "library"
    for i in range(8):
        write_photo(folder / ("trip" if i % 2 else "home") / f"p{i}.jpg", [PEOPLE[i % 4], PEOPLE[(i + 1) % 4]], seed=i)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return folder


def test_scan_reads_each_file_once_and_follows_moves(tmp_path, library):
    store, pack = Store(tmp_path / "t.db"), fake_pack()
    seen: list[ScanProgress] = []
    first = scan(store, [str(library)], ScanOptions(jobs=1), progress=lambda p: seen.append((p.phase, p.done, p.total)), pack=pack)
    assert (first.new, first.failed, first.faces) == (8, 1, 16)
    assert seen[-1] == ("done", 9, 9) and ("scanning", 0, 9) in seen
    assert [f.path for f in first.failures] == [str(library / "broken.jpg")]
    assert pack.detector.calls == 8
    faces = store.counts()["faces"]

    again = scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    assert (again.new, again.unchanged, again.failed) == (0, 9, 0) and len(again.failures) == 1
    assert pack.detector.calls == 8  # nothing read again, not even the broken file

    shutil.move(library / "home" / "p0.jpg", library / "trip" / "moved.jpg")
    write_photo(library / "home" / "p2.jpg", ["blue"], seed=40)  # new content: one face instead of two
    moved = scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    assert (moved.moved, moved.changed, moved.new, moved.unchanged) == (1, 1, 0, 7)
    assert pack.detector.calls == 9  # only the changed file: a move is known by its content
    assert store.counts()["faces"] == faces - 1


def person_of_first_face(db: Path, photo: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE ? "
                            "ORDER BY f.x LIMIT 1", [f"%/{photo}"]).fetchone()[0]


def test_scan_prunes_only_when_asked_and_named_faces_only_with_yes(tmp_path, library):
    store, pack = Store(tmp_path / "t.db"), fake_pack()
    scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    group(store, GroupOptions(min_faces=3))
    name_person(store, f"#{person_of_first_face(tmp_path / 't.db', 'p0.jpg')}", "Red")
    gone = library / "home" / "p0.jpg"
    gone.unlink()
    kept = scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    assert kept.missing == [str(gone)] and not kept.pruned and store.counts()["photos"] == 8
    refused = scan(store, [str(library)], ScanOptions(jobs=1, prune=True), pack=pack)
    assert refused.prune_refused == 1 and refused.prune_refused_decisions.named == {"Red": 1}
    assert not refused.pruned and store.counts()["photos"] == 8
    done = scan(store, [str(library)], ScanOptions(jobs=1, prune=True, yes=True), pack=pack)
    assert done.pruned and done.pruned_decisions.named == {"Red": 1} and store.counts()["photos"] == 7
    assert pack.detector.calls == 8  # pruning reads no photo


def test_scan_ships_the_given_pack_to_worker_processes(tmp_path, library):
    store = Store(tmp_path / "t.db")
    summary = scan(store, [str(library)], ScanOptions(jobs=2), pack=fake_pack())
    assert (summary.new, summary.faces) == (8, 16)
    assert [(p.fingerprint, p.dim) for p in store.info().packs] == [(fake_pack().fingerprint, 16)]  # not SFace's


def test_a_pack_object_cannot_go_to_dask(tmp_path, library):
    with pytest.raises(UsageProblem, match="local processes only"):
        scan(Store(tmp_path / "t.db"), [str(library)], ScanOptions(jobs=1, dask="tcp://127.0.0.1:1"), pack=fake_pack())


def test_group_makes_one_person_per_colour_and_keeps_numbers_and_names(tmp_path, library):
    store, pack = Store(tmp_path / "t.db"), fake_pack()
    scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    first = group(store, GroupOptions(min_faces=3))
    assert (first.faces, first.groups, first.new_groups, first.noise, first.below_quality) == (16, 4, 4, 0, 0)
    people = {p.id: p for p in list_people(store)}
    assert sorted(p.faces for p in people.values()) == [4, 4, 4, 4]
    some = min(people)
    name_person(store, f"#{some}", "Someone")
    write_photo(library / "more" / "new.jpg", PEOPLE, seed=50, size=(240, 400))
    scan(store, [str(library)], ScanOptions(jobs=1), pack=pack)
    again = group(store, GroupOptions(min_faces=3))
    assert again.joined == {"Someone": 1} and again.new_groups == 0
    after = {p.id: p for p in list_people(store)}
    assert set(after) == set(people) and after[some].name == "Someone"
    assert sorted(p.faces for p in after.values()) == [5, 5, 5, 5]


def test_in_facedata_skips_naming_the_path_it_looked_for():
    with pytest.raises(pytest.skip.Exception, match=str(FACEDATA / "no" / "such.jpg")):
        in_facedata("no/such.jpg")
