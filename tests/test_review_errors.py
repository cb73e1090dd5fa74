"""The review page under bad requests and odd files: never a 500, never a traceback, never another site.

Uses test_review.py's library (19 photos, 4 groups) and Flask's test client.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading

import pytest

from facecluster.store import Store
from tests.conftest import cli_ok as ok
from tests import test_review
from tests.test_review import TOKEN, astronaut_group, people_json, post, show_json, state

# test_review.py's fixtures, used here under the same names: the scanned library, a copy of its database, a client.
library, db, client = test_review.library, test_review.db, test_review.client

FRIENDLY = "Back to the people"


def page_text(response) -> str:
    return response.get_data(as_text=True)


def assert_friendly(response, what) -> None:
    text = page_text(response)
    assert response.status_code != 500, (what, text[:300])
    assert "Traceback" not in text and 'File "' not in text, what
    assert TOKEN not in text or response.status_code < 400, what  # an error page never shows the key
    if response.status_code >= 400:
        assert FRIENDLY in text and "facecluster review" in text, (what, text[:300])


def scanned_copy(db, library, folder, name: bytes) -> int:
    """A copy of one library photo under `folder` with the file name `name` (bytes), scanned into `db`:
    the id of one of its faces."""
    folder.mkdir()
    target = os.path.join(os.fsencode(folder), name)
    shutil.copy(library.parent / "photos" / "astronaut_0.jpg", target)
    ok(db, "scan", "-q", str(folder))
    store = Store(db, readonly=True)
    try:
        faces = [f for f in store.person_face_rows(None, 0, 1000) if os.fsencode(f.path) == target]
    finally:
        store.close()
    assert faces, "the copy's face was not found"
    return faces[0].face_id


# ---- odd files -------------------------------------------------------------------------------


def test_a_photo_name_that_is_not_utf8_is_shown_escaped(client, db, library, tmp_path):
    face = scanned_copy(db, library, tmp_path / "odd", b"caf\xe9 \xff.jpg")
    for url in [f"/face/{face}", "/unclustered", f"/photo/{face}"]:
        response = client.get(url)
        assert response.status_code == 200, (url, page_text(response)[:300])
    assert "caf\\xe9 \\xff.jpg" in page_text(client.get(f"/face/{face}"))
    alice = astronaut_group(db)["id"]
    _, messages = post(client, "/answer", person=str(alice), face=str(face), answer="yes")
    assert messages and messages[0][0] == "done", messages
    response = client.get(f"/person/{alice}")
    assert response.status_code == 200 and "caf\\xe9 \\xff.jpg" in page_text(response)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_photo_replaced_by_a_fifo_does_not_hang_its_request(client, db, library, tmp_path):
    face = scanned_copy(db, library, tmp_path / "fifo", b"photo.jpg")
    path = tmp_path / "fifo" / "photo.jpg"
    path.unlink()
    os.mkfifo(path)
    answers = []
    request = threading.Thread(target=lambda: answers.append(client.get(f"/photo/{face}")), daemon=True)
    request.start()
    request.join(timeout=60)
    if request.is_alive():  # today's code blocks in open(): a writer lets it go, and the test fails
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        request.join(timeout=60)
        pytest.fail("the request hung on a FIFO")
    assert answers[0].status_code == 404 and "not a regular file" in page_text(answers[0])
    assert_friendly(answers[0], "fifo")


# ---- the key and where a change returns to -----------------------------------------------------


def test_a_key_that_is_not_ascii_is_refused_cleanly(db, caplog):
    from facecluster.web import create_app

    c = create_app(db, token=TOKEN).test_client()
    for url in ["/?token=%C3%A9", "/?token=%FF", "/?token=t%C3%A9st-token", "/?token=%00"]:
        response = c.get(url)
        assert response.status_code == 403, url
        assert_friendly(response, url)
    for cookie in ["é", "test-tokén", "\udce9"]:
        c.set_cookie("facecluster-review", cookie.encode("utf-8", "surrogatepass").decode("latin-1"))
        response = c.get("/")
        assert response.status_code == 403, cookie
        assert_friendly(response, cookie)
    c.set_cookie("facecluster-review", TOKEN)
    assert c.get("/").status_code == 200
    for token in ["é", "tést-token", "\u202e"]:
        response = c.post("/undo", data={"token": token})
        assert response.status_code == 403, token
        assert_friendly(response, token)
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\\evil.example", "/\\/evil.example",
    "//evil.example", "/ /evil.example", "/\x0b/evil.example", "/\x00/evil.example", "/\u3000/evil.example",
    "http://evil.example/", "https:evil.example", " /evil.example", "/%09/evil.example\t",
])
def test_a_change_never_returns_to_another_site(client, target):
    response = client.post("/undo", data={"token": TOKEN, "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/", (target, response.headers["Location"])


def test_a_change_returns_to_the_page_it_was_made_on(client):
    response = client.post("/undo", data={"token": TOKEN, "next": "/person/3?page=2&show=named"})
    assert response.headers["Location"] == "/person/3?page=2&show=named"


# ---- undo, merge ---------------------------------------------------------------------------------


def test_undo_after_names_import_gave_the_name_again(client, db, tmp_path):
    alice = astronaut_group(db)["id"]
    faces = sorted(f["face_id"] for f in show_json(db, alice)["faces"])
    ok(db, "name", str(alice), "Alice")
    before_unset = state(db)
    ok(db, "names", "--export", str(tmp_path / "names.json"))
    ok(db, "name", str(alice), "--unset")
    ok(db, "names", "--import", str(tmp_path / "names.json"))  # Alice again: the import is one undoable action
    listed = people_json(db)
    assert [p["name"] for p in listed].count("Alice") == 1
    assert all(p["faces"] for p in listed), "an emptied group is listed"
    response, messages = post(client, "/undo")  # the import first: no Alice, no empty group left behind
    assert response.status_code == 200 and messages and messages[0][0] == "done", messages
    assert all(p["name"] is None for p in people_json(db)) and all(p["faces"] for p in people_json(db))
    response, messages = post(client, "/undo")  # then the --unset: Alice is the group she was, no clash of names
    assert response.status_code == 200 and messages and messages[0][0] == "done", messages
    assert "Took the name Alice off" in messages[0][1]
    after = people_json(db)
    assert [(p["id"], p["name"]) for p in after if p["name"]] == [(alice, "Alice")]  # one Alice, the one that was
    assert sorted(f["face_id"] for f in show_json(db, "Alice")["faces"]) == faces
    assert all(p["faces"] for p in after)
    assert state(db)["people"] == before_unset["people"]
    _, messages = post(client, "/undo")  # and the naming itself
    assert messages[0][0] == "done" and all(p["name"] is None for p in people_json(db))


def test_merging_two_named_people_with_a_typed_name_is_refused(client, db):
    ids = [p["id"] for p in people_json(db)]
    ok(db, "name", str(ids[0]), "Alice")
    ok(db, "name", str(ids[1]), "Bob")
    before = state(db)
    for form in [dict(person=[str(ids[0]), str(ids[1])], name="Alice"),
                 dict(person=[str(ids[0]), str(ids[1])], name="Carol"),
                 dict(person=[str(ids[0]), str(ids[2])], name="Bob"),  # Alice would join Bob through the typed name
                 dict(person=[str(ids[0]), str(ids[1])])]:
        _, messages = post(client, "/merge", **form)
        assert messages and messages[0][0] == "error" and "are different people" in messages[0][1], (form, messages)
        assert state(db) == before, form
    _, messages = post(client, "/merge", person=[str(ids[2]), str(ids[3])], name="bob")  # unnamed groups join Bob
    assert messages[0][0] == "done", messages
    assert {p["id"] for p in people_json(db)} == {ids[0], ids[1]}


# ---- the friendly error page --------------------------------------------------------------------


def test_no_bad_request_gets_a_500_or_a_traceback(client, db, caplog):
    face = show_json(db, astronaut_group(db)["id"])["faces"][0]["face_id"]
    gets = [
        "/nowhere", "/person/abc", "/person/0", "/person/999999", "/person/99999999999999999999999", "/face/0",
        "/face/99999999999999999999", "/photo/-1", "/thumb/abc", "/static/../app.py", "/static/nothing.css",
        "/?page=abc", "/?page=-1", "/?page=%00", "/?page=99999999999999999999999999", "/?page=%C2%B2", "/?show=evil",
        "/?show=%FF", "/person/1?page=x", "/unclustered?page=%F0%9F%98%80", "/history?x=%00", f"/face/{face}?page=2",
        "/person/1/suggestions?page=a", "/%FF", "/person/%C3%A9", "/" + "a" * 5000,
    ]
    for url in gets:
        assert_friendly(client.get(url), url)
    posts = [
        ("/name", {}), ("/name", {"person": "abc"}), ("/name", {"person": "999999", "name": "A"}),
        ("/name", {"person": "1", "name": "\x00"}), ("/name", {"person": "1", "name": "é" * 300}),
        ("/unset", {"person": "-3"}), ("/merge", {}), ("/merge", {"person": ["1", "x"]}),
        ("/merge", {"person": ["1", "2"], "name": "12"}), ("/remove", {}), ("/remove", {"face": "99999999"}),
        ("/remove", {"face": "abc"}), ("/ignore", {"person": "1", "undo": "1"}), ("/answer", {"person": "1"}),
        ("/answer", {"person": "1", "face": str(face), "answer": "maybe"}), ("/answer", {"person": "1", "face": "999999", "answer": "no"}),
        ("/group", {"min_faces": "abc"}), ("/group", {"min_faces": "0"}), ("/group", {"model": "no-such-pack"}),
        ("/undo", {}), ("/undo", {}), ("/", {}), ("/person/1", {}), ("/history", {}),
    ]
    for url, form in posts:
        response = client.post(url, data={"token": TOKEN, **form})
        assert_friendly(response, (url, form))
        if response.status_code == 303:
            assert_friendly(client.get(response.headers["Location"]), (url, form, "after"))
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"]:
        assert_friendly(client.open("/name", method=method), method)
    assert_friendly(client.post("/name", data={"token": TOKEN, "name": "x" * (2 * 1024 * 1024)}), "too big")
    assert_friendly(client.post("/name", data="{not a form", content_type="application/json"), "json")
    assert_friendly(client.get("/", headers={"Host": "evil.example"}), "host")
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("failure", [RuntimeError("the secret internals"), sqlite3.OperationalError("disk I/O error")])
def test_an_unexpected_error_gets_a_friendly_page_and_the_details_go_to_the_log(client, monkeypatch, caplog, failure):
    import facecluster.web.routes as routes

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(routes, "people_page", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/?show=named")
    text = page_text(response)
    assert response.status_code == 500 and FRIENDLY in text
    assert "Traceback" not in text and "the secret internals" not in text and TOKEN not in text
    assert "Traceback" in caplog.text and str(failure) in caplog.text and "GET /" in caplog.text
    assert "token" not in caplog.text.lower()


def test_a_click_that_changes_nothing_is_not_history(client, db):
    alice = astronaut_group(db)["id"]
    other = next(p["id"] for p in people_json(db) if p["id"] != alice)
    face = show_json(db, other)["faces"][0]["face_id"]
    post(client, "/name", person=str(alice), name="Alice")
    no = dict(person=str(alice), face=str(face), answer="no")
    for form, said in [(no, None), (no, f"Face {face} is not Alice (#{alice}) already: nothing to do."),
                       (dict(person=str(other), undo="1"), f"Group {other} is not ignored: nothing to do.")]:
        url = "/ignore" if "undo" in form else "/answer"
        _, messages = post(client, url, **form)
        assert messages[0][0] == "done" and (said is None or messages[0][1] == said), messages
    _, messages = post(client, "/remove", face=str(face), next=f"/person/{alice}")  # the face is in `other`: it leaves
    _, messages = post(client, "/remove", face=str(face))
    assert messages == [("done", "Those faces are in no group: nothing to do.")]
    with sqlite3.connect(db) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM actions ORDER BY id")]
    assert kinds == ["name", "no", "remove"]
