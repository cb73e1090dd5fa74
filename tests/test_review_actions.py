"""The review page's answers to suggestions and its actions on faces: "same person?",
"is this Alice?", giving faces, "not a person", and drawing a face the detector missed.

The library is test_review's (pictures inside installed packages: 19 photos, 34 faces, 4 groups). In it
no two groups look alike and no face in no group looks like anyone, so the empty states show by
themselves; where a test needs a likely question, it makes the situation grouping makes on a real
library (one person split into two groups, a face of a person left in no group) through the store.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from facecluster import drawn
from facecluster.models import Detections
from facecluster.store import Store, blob_to_embedding
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run
from tests.test_review import TOKEN, astronaut_group, client, db, library, people_json, post, show_json  # noqa: F401

assert client and db and library  # fixtures, used by name below


def faces_of(db_path, person_id) -> list[int]:
    return sorted(f["face_id"] for f in show_json(db_path, person_id)["faces"])


def face_rows(db_path) -> dict[int, tuple]:
    """face id -> (person, assigned, photo id, score)."""
    with sqlite3.connect(db_path) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT id, person_id, assigned, photo_id, score FROM faces")}


def split(db_path, faces: list[int]) -> int:
    """Put `faces` in a new unnamed group, as grouping does when it splits one person in two. Returns its id."""
    store = Store(db_path)
    try:
        with store.writer("test"), store.transaction():
            new = store.create_people("sface", 1)[0]
            store.assign_faces([(new, "cluster", f) for f in faces])
        return new
    finally:
        store.close()


def leave_out(db_path, faces: list[int]) -> None:
    """Put `faces` in no group, as grouping leaves a face it is unsure of."""
    store = Store(db_path)
    try:
        with store.writer("test"), store.transaction():
            store.assign_faces([(None, None, f) for f in faces])
    finally:
        store.close()


def embedding_of(db_path, face_id: int) -> np.ndarray:
    with sqlite3.connect(db_path) as conn:
        return blob_to_embedding(conn.execute("SELECT embedding FROM faces WHERE id = ?", [face_id]).fetchone()[0])


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


# ---- "same person?" -------------------------------------------------------------------------------


def test_same_person_page_says_so_when_nothing_is_likely(client):
    text = page(client, "/suggestions")
    assert 'id="nothing"' in text and "Nothing to ask" in text and 'class="pair"' not in text
    assert 'href="/suggestions"' in page(client, "/")  # linked from every page's bar


def test_same_person_yes_merges_and_no_is_remembered(client, db):
    alice = astronaut_group(db)["id"]
    faces = faces_of(db, alice)
    other = split(db, faces[:3])
    text = page(client, "/suggestions")
    pair = re.search(r'<div class="pair" data-a="(\d+)" data-b="(\d+)">', text)
    assert pair and {int(pair[1]), int(pair[2])} == {alice, other}
    assert "Very likely the same person" in text
    for person_id in (alice, other):  # both sides: a link to the group and some of its faces
        assert f'href="/person/{person_id}"' in text
    assert sum(f'src="/thumb/{f}"' in text for f in faces) >= 4

    _, messages = post(client, "/same", a=pair[1], b=pair[2], answer="no", next="/suggestions")
    assert messages[0][0] == "done" and "are different people" in messages[0][1]
    store = Store(db)
    try:
        assert (min(alice, other), max(alice, other)) in store.cannot_links()
    finally:
        store.close()
    assert 'id="nothing"' in page(client, "/suggestions")  # never asked again

    _, messages = post(client, "/undo")
    assert messages[0][0] == "done" and 'class="pair"' in page(client, "/suggestions")
    _, messages = post(client, "/same", a=pair[1], b=pair[2], answer="yes", next="/suggestions")
    assert messages[0][0] == "done" and messages[0][1].startswith("Merged into group")
    holders = [pid for pid in (alice, other) if pid in {p["id"] for p in people_json(db)}]
    assert len(holders) == 1 and faces_of(db, holders[0]) == faces
    assert 'id="nothing"' in page(client, "/suggestions")


# ---- "is this Alice?" ------------------------------------------------------------------------------


def test_person_suggestions_say_so_when_nothing_is_likely(client, db):
    alice = astronaut_group(db)["id"]
    post(client, "/name", person=str(alice), name="Alice")
    text = page(client, f"/person/{alice}/suggestions")
    assert "Nothing else looks like Alice" in text
    assert 'class="face suggestion"' not in text and "candidate-group" not in text  # never strangers


def test_person_suggestions_offer_groups_and_faces_with_their_likelihood(client, db):
    alice = astronaut_group(db)["id"]
    faces = faces_of(db, alice)
    post(client, "/name", person=str(alice), name="Alice")
    group = split(db, faces[:2])
    left_out = faces[2:4]
    leave_out(db, left_out)
    text = page(client, f"/person/{alice}/suggestions")
    assert f'data-group="{group}"' in text
    offered = [int(f) for f in re.findall(r'class="face suggestion" data-face="(\d+)"', text)]
    assert sorted(offered) == sorted(left_out)
    assert text.count('class="likelihood very-likely"') == 3  # the group and both faces: very likely
    assert 'id="select-all"' in text and 'form="give-form"' in text

    # No for the group: remembered, and its faces are refused for Alice.
    _, messages = post(client, "/same", a=str(alice), b=str(group), answer="no", next=f"/person/{alice}/suggestions")
    assert messages[0] == ("done", f"Alice (#{alice}) and group {group} are different people.")
    assert f'data-group="{group}"' not in page(client, f"/person/{alice}/suggestions")
    post(client, "/undo")
    # Yes for the group: its faces are Alice's.
    _, messages = post(client, "/same", a=str(alice), b=str(group), answer="yes")
    assert messages[0] == ("done", f"Merged into Alice (#{alice}).")
    assert set(faces[:2]) <= set(faces_of(db, alice))
    # The faces: give both at once (what "Select all" then "Give selected" sends).
    _, messages = post(client, "/give", face=[str(f) for f in left_out], to=str(alice))
    assert messages[0] == ("done", f"Gave 2 faces to Alice (#{alice}).")
    rows = face_rows(db)
    assert all(rows[f][:2] == (alice, "user") for f in left_out)
    assert "Nothing else looks like Alice" in page(client, f"/person/{alice}/suggestions")


def test_one_face_answered_no_is_not_offered_again(client, db):
    alice = astronaut_group(db)["id"]
    faces = faces_of(db, alice)
    post(client, "/name", person=str(alice), name="Alice")
    leave_out(db, faces[:2])
    _, messages = post(client, "/answer", person=str(alice), face=str(faces[0]), answer="no")
    assert messages == [("done", f"Face {faces[0]} is not Alice (#{alice}).")]
    text = page(client, f"/person/{alice}/suggestions")
    assert f'data-face="{faces[0]}"' not in text and f'data-face="{faces[1]}"' in text
    _, messages = post(client, "/answer", person=str(alice), face=str(faces[1]), answer="yes")
    assert face_rows(db)[faces[1]][:2] == (alice, "user")


# ---- faces in no group, "not a person" --------------------------------------------------------------


def test_faces_in_no_group_can_be_given_or_marked_not_a_person(client, db):
    ok(db, "name", str(astronaut_group(db)["id"]), "Alice")
    text = page(client, "/unclustered")
    loose = [int(f) for f in re.findall(r'<div class="face" data-face="(\d+)"', text)]
    assert len(loose) >= 4
    assert f'name="face" value="{loose[0]}"' in text and 'id="give-to"' in text and '<option value="Alice">' in text
    assert 'id="not-a-person"' in text and 'id="remove"' not in text  # nothing to take them out of

    _, messages = post(client, "/give", face=[str(loose[0]), str(loose[1])], to="Zed", next="/unclustered")
    zed = next(p for p in people_json(db) if p["name"] == "Zed")
    assert messages == [("done", f"Gave 2 faces to Zed (#{zed['id']}).")]
    assert faces_of(db, zed["id"]) == sorted(loose[:2]) and all(face_rows(db)[f][1] == "user" for f in loose[:2])

    _, messages = post(client, "/not-a-person", face=[str(loose[2])], next="/unclustered")
    assert messages[0][0] == "done" and "not a person" in messages[0][1]
    assert face_rows(db)[loose[2]][:2] == (None, "notperson")
    text = page(client, "/unclustered")
    assert f'data-face="{loose[2]}"' not in text and f'data-face="{loose[3]}"' in text  # done with: not listed
    ok(db, "group", "-q", "--min-faces", "2")
    assert face_rows(db)[loose[2]][:2] == (None, "notperson")  # never grouped again
    _, messages = post(client, "/undo")
    assert messages[0][0] == "done" and face_rows(db)[loose[2]][1] != "notperson"


def test_not_a_person_and_give_on_a_persons_page(client, db):
    group = astronaut_group(db)["id"]
    faces = faces_of(db, group)
    text = page(client, f"/person/{group}")
    assert 'id="not-a-person"' in text and 'id="give"' in text and 'id="remove"' in text
    _, messages = post(client, "/not-a-person", face=[str(faces[0])], next=f"/person/{group}")
    assert messages[0][0] == "done" and faces[0] not in faces_of(db, group)
    _, messages = post(client, "/give", face=[str(faces[1])], to="Bob", next=f"/person/{group}")
    assert messages[0][0] == "done" and faces_of(db, "Bob") == [faces[1]]


def test_selection_mistakes_are_messages_bad_ids_are_400_or_404(client, db):
    before = face_rows(db)
    for url, form, expected in [
        ("/give", {"to": "Zed"}, "select some faces first"),
        ("/give", {"face": "999999", "to": "Zed"}, "no face with id 999999"),
        ("/give", {"face": "1", "to": ""}, "a name cannot be empty"),
        ("/give", {"face": "1", "to": "999999"}, "no group 999999"),
        ("/not-a-person", {}, "select some faces first"),
        ("/not-a-person", {"face": "999999"}, "no face with id 999999"),
        ("/same", {"a": "1", "b": "999999", "answer": "no"}, "no group 999999"),
        ("/same", {"a": "1", "b": "1", "answer": "no"}, "one person"),
    ]:
        _, messages = post(client, url, **form)
        assert messages and messages[0][0] == "error" and expected in messages[0][1], (url, form, messages)
    for url, form in [("/give", {"face": "abc", "to": "Zed"}), ("/not-a-person", {"face": "-3"}),
                      ("/same", {"a": "x", "b": "1", "answer": "yes"}), ("/same", {"a": "1", "b": "2", "answer": "maybe"}),
                      ("/same", {"a": "1", "answer": "yes"}), ("/draw", {"face": "1", "x": "a", "y": "0", "w": "30", "h": "30"}),
                      ("/draw", {"face": "1", "x": "nan", "y": "0", "w": "30", "h": "30"}),
                      ("/draw", {"x": "0", "y": "0", "w": "30", "h": "30"})]:
        assert client.post(url, data={"token": TOKEN, **form}).status_code == 400, (url, form)
    for url in ["/person/999999/suggestions", "/person/abc/suggestions", "/person/0/suggestions"]:
        assert client.get(url).status_code == 404, url
    assert face_rows(db) == before


# ---- drawing a face the detector missed -------------------------------------------------------------


def test_drawing_a_face_on_the_photo_page(client, db):
    alice = astronaut_group(db)["id"]
    ok(db, "name", str(alice), "Alice")
    shown = show_json(db, alice)["faces"][0]
    face, photo, (x, y, w, h) = shown["face_id"], shown["photo"], shown["bbox"]
    text = page(client, f"/face/{face}")
    assert 'id="draw-form"' in text and re.search(r'data-width="\d+" data-height="\d+"', text)
    before = face_rows(db)

    # Over the face that is there already: refused, nothing added.
    _, messages = post(client, "/draw", face=str(face), x=str(x), y=str(y), w=str(w), h=str(h))
    assert messages[0] == ("error", f"face {face} already covers this box")
    # Too small, or outside the photo: refused.
    _, messages = post(client, "/draw", face=str(face), x="5", y="5", w="12", h="40")
    assert messages[0][0] == "error" and "at least 20 pixels" in messages[0][1]
    _, messages = post(client, "/draw", face=str(face), x="480", y="5", w="100", h="100")
    assert messages[0][0] == "error" and "outside the photo" in messages[0][1]
    _, messages = post(client, "/draw", face="999999", x="5", y="5", w="30", h="30", next="/")
    assert messages[0][0] == "error" and "no face with id 999999" in messages[0][1]
    assert face_rows(db) == before

    # A box where the detector sees no face (the lower left of the photo): aligned from the box alone.
    response, messages = post(client, "/draw", face=str(face), x="10", y="360", w="90", h="90", name="Alice")
    added = sorted(set(face_rows(db)) - set(before))
    assert len(added) == 1
    new = added[0]
    assert messages == [("done", f"Added face {new}, aligned from your box alone (the detector saw no face in it), given to Alice.")]
    assert response.request.path == f"/face/{new}"  # the new face's own page
    person, assigned, photo_id, score = face_rows(db)[new]
    assert (person, assigned, score) == (alice, "user", 0.0) and photo_id == before[face][2]
    assert client.get(f"/thumb/{new}").status_code == 200
    assert any(f["face_id"] == new and f["photo"] == photo for f in show_json(db, "Alice")["faces"])


# ---- the core function, on real faces ---------------------------------------------------------------


@pytest.fixture
def missed(tmp_path, facedata) -> tuple[Path, Path, list]:
    """A real group photo scanned with a detector threshold so strict that it misses every face, and the
    faces a normal scan finds in it (box, embedding)."""
    from facecluster.decode import decode
    from facecluster.models import load_pack
    from facecluster.faces import find_faces

    source = facedata / "groups" / "faceapi_bbt2.jpg"
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "bbt.jpg"
    photo.write_bytes(source.read_bytes())
    db_path = tmp_path / "library.db"
    ok(db_path, "scan", "-q", "--det-threshold", "0.99", str(photos))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0  # the detector missed them all
    decoded = decode(photo.read_bytes())
    found = find_faces(decoded.rgb, load_pack("sface"), decoded.scale)
    assert len(found) == 3
    return db_path, photo, found


def test_a_drawn_face_is_the_face_a_scan_finds(missed):
    db_path, photo, found = missed
    store = Store(db_path)
    try:
        rng = np.random.default_rng(1)
        for i, face in enumerate(found):
            x, y, w, h = face.box
            # A person's box: a little off and a little loose.
            box = (max(0.0, x - 0.1 * w * rng.random()), max(0.0, y - 0.1 * h * rng.random()), 1.15 * w, 1.15 * h)
            added = drawn.add_face(store, str(photo), box, name="Leonard" if i == 0 else None)
            assert added.detected and added.score >= drawn.DRAWN_THRESHOLD
            row = store.face_row(added.face_id)
            assert row.path == str(photo) and row.model == "sface"
            if i == 0:
                assert (added.person_id, added.name, row.person_id) == (row.person_id, "Leonard", added.person_id)
            else:
                assert added.person_id is None and row.person_id is None
            vector = embedding_of(db_path, added.face_id)
            assert float(np.linalg.norm(vector - face.embedding)) < 0.8
            assert store.thumb(added.face_id)
        # Drawn over one of them again: refused.
        with pytest.raises(drawn.DrawError, match="already covers this box"):
            drawn.add_face(store, str(photo), found[1].box)
        # By face id, with the photo's own pack.
        assert drawn.add_face(store, 1, (5.0, 330.0, 60.0, 60.0)).face_id == 4
    finally:
        store.close()
    # Like any other face: named ones go to XMP, and all go with the photo.
    assert "would write (create)" in ok(db_path, "export", "--xmp", "--dry-run").stdout
    photo.unlink()
    ok(db_path, "scan", "-q", "--det-threshold", "0.99", "--prune", "--yes", str(photo.parent))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0


def test_without_a_detection_the_box_alone_aligns_the_face():
    class Blind:
        def predict(self, rgb, prepared=None):
            return Detections.empty()

    class Pack:
        detector = Blind()

    rgb = np.zeros((400, 300, 3), np.uint8)
    found = drawn.find_in_box(rgb, np.array([100.0, 50.0, 200.0, 170.0]), Pack())
    assert len(found) == 1 and found.scores[0] == 0
    assert found.boxes[0].tolist() == [100.0, 50.0, 200.0, 170.0]
    marks = found.landmarks[0]
    assert marks[0, 0] < marks[2, 0] < marks[1, 0] and marks[0, 1] < marks[2, 1] < marks[3, 1]  # eyes, nose, mouth
    assert np.allclose(marks[2], [150.0, 50.0 + 0.589 * 120], atol=0.01)


def test_boxes_are_checked():
    with pytest.raises(drawn.DrawError, match="four numbers"):
        drawn.parse_box("1,2,3")
    with pytest.raises(drawn.DrawError, match="four numbers"):
        drawn.parse_box("1,2,inf,4")
    assert drawn.parse_box(" 1, 2.5 ,30,40") == (1.0, 2.5, 30.0, 40.0)
    drawn.check_box((0, 0, 20, 20), 20, 20)
    for box in [(0, 0, 19, 40), (-1, 0, 30, 30), (0, 0, 30, 30.5)]:
        with pytest.raises(drawn.DrawError):
            drawn.check_box(box, 30, 30)


def test_add_face_command(missed):
    db_path, photo, found = missed
    x, y, w, h = found[2].box
    result = cli_run(db_path, "add-face", str(photo), "--box", f"{x},{y},{w},{h}", "--name", "Penny")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"Face 1 added to {re.escape(str(photo))} \(found again by the detector in the box\), given to Penny \(#1\)\.\n",
                        result.stdout)
    assert cli_run(db_path, "add-face", str(photo), "--box", "1,2,3").exit_code == 2
    outside = cli_run(db_path, "add-face", str(photo), "--box", "600,400,100,120")
    assert outside.exit_code == 1 and "reaches outside the photo (675 x 469 pixels)" in outside.output
    missing = cli_run(db_path, "add-face", "nope.jpg", "--box", "1,2,30,30")
    assert missing.exit_code == 1 and "not a photo in the database" in missing.output
