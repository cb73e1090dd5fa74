"""facecluster review: the web page's security, its actions (the CLI's own functions), undo, and a real browser.

The library is made from pictures inside installed packages (scikit-image's
astronaut, insightface's t1.jpg, cropped, mirrored and re-lit), so these tests
run without ../shared: 19 photos, 34 faces, 4 groups with --min-faces 3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from facecluster import people
from facecluster.store import Store
from facecluster.suggestions import nearest
from tests.conftest import cli_ok as ok
from tests.conftest import default_sigint

TOKEN = "test-token"
HOSTILE = "<script>alert(1)</script> & Co"
FRIENDS = {"b": (462, 266, 114, 151), "c": (271, 147, 99, 130), "d": (1132, 274, 95, 124)}  # faces in t1.jpg


def build_library(folder: Path, astronaut: np.ndarray, t1_path: Path) -> Path:
    """Six photos of the astronaut, t1.jpg (six friends) and four more photos each of three friends."""
    folder.mkdir(parents=True, exist_ok=True)
    portrait = Image.fromarray(astronaut)
    for i in range(6):
        img = portrait.crop((i * 8, i * 5, 512 - i * 6, 512 - i * 4))
        img = ImageEnhance.Brightness(img).enhance(0.8 + 0.08 * i)
        if i % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(folder / f"astronaut_{i}.jpg", quality=90)
    shutil.copy(t1_path, folder / "friends.jpg")
    friends = Image.open(t1_path).convert("RGB")
    for who, (x, y, w, h) in FRIENDS.items():
        for i in range(4):
            m = 1.2 + 0.25 * i
            box = (max(0, int(x - m * w)), max(0, int(y - m * h)),
                   min(friends.width, int(x + w + m * w)), min(friends.height, int(y + h + m * h)))
            img = ImageEnhance.Contrast(friends.crop(box)).enhance(0.85 + 0.1 * i)
            if i % 2:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            img.save(folder / f"friend_{who}_{i}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def library(tmp_path_factory, astronaut, t1_path):
    root = tmp_path_factory.mktemp("review")
    photos = build_library(root / "photos", astronaut, t1_path)
    db = root / "library.db"
    ok(db, "scan", "-q", str(photos))
    ok(db, "group", "-q", "--min-faces", "3")
    return db


@pytest.fixture
def db(library, tmp_path):
    """A copy of the scanned library's database for one test to change."""
    target = tmp_path / "library.db"
    shutil.copy(library, target)
    return target


def people_json(db, *args):
    return json.loads(ok(db, "people", "--json", "--all", *args).stdout)


def show_json(db, target):
    return json.loads(ok(db, "show", "--json", str(target)).stdout)


def astronaut_group(db) -> dict:
    """The group holding the astronaut's photos."""
    for person in people_json(db):
        if any("astronaut_" in f["photo"] for f in show_json(db, person["id"])["faces"]):
            return person
    raise AssertionError("no astronaut group")


def leave_in_no_group(db, faces: list[int]) -> None:
    """Put faces in no group, as grouping leaves a face it is unsure of: what makes a face suggestion."""
    store = Store(db)
    try:
        with store.writer("test"), store.transaction():
            store.assign_faces([(None, None, f) for f in faces])
    finally:
        store.close()


def state(db) -> dict:
    """Everything a correction may change: people, who each face belongs to, rejections."""
    with sqlite3.connect(db) as conn:
        return {
            "people": conn.execute("SELECT id, name, ignored FROM people ORDER BY id").fetchall(),
            "faces": conn.execute("SELECT id, person_id, assigned FROM faces ORDER BY id").fetchall(),
            "rejections": conn.execute("SELECT face_id, person_id FROM face_rejections ORDER BY 1, 2").fetchall(),
        }


# ---- the web layer: a Flask test client -----------------------------------------------------


@pytest.fixture
def client(db, monkeypatch):
    import facecluster.web.app as web_app
    import facecluster.web.context as web_context

    monkeypatch.setattr(web_context, "LOCK_WAIT", 0.2)  # a busy database answers at once
    app = web_app.create_app(db, token=TOKEN)
    c = app.test_client()
    assert c.get(f"/?token={TOKEN}").status_code == 303
    return c


def post(client, url, **form):
    """A POST as the page sends it (with the token), following the redirect; returns (page, messages)."""
    response = client.post(url, data={"token": TOKEN, **form}, follow_redirects=True)
    text = response.get_data(as_text=True)
    return response, re.findall(r'<p class="message (\w+)" role="status">(.*?)</p>', text)


def test_every_request_needs_the_token(db):
    from facecluster.web import create_app

    c = create_app(db, token=TOKEN).test_client()
    for url in ["/", "/person/1", "/thumb/1", "/photo/1", "/face/1", "/history", "/static/review.js"]:
        assert c.get(url).status_code == 403, url
    assert c.get("/?token=wrong").status_code == 403
    c.set_cookie("facecluster-review", "wrong")
    assert c.get("/").status_code == 403
    first = c.get(f"/?token={TOKEN}&show=named")
    assert first.status_code == 303 and first.headers["Location"] == "/?show=named"  # the token leaves the address
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = c.get("/")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert "http://" not in page.get_data(as_text=True).replace("http://www.w3.org", "")  # nothing from another site


def test_changes_need_post_and_the_token_in_the_form(client, db):
    before = state(db)
    target = str(astronaut_group(db)["id"])
    assert client.post("/name", data={"person": target, "name": "Alice"}).status_code == 403  # cookie alone: CSRF
    assert client.post("/name", data={"person": target, "name": "Alice", "token": "wrong"}).status_code == 403
    assert client.get(f"/name?person={target}&name=Alice").status_code == 405  # a link or an <img> cannot change anything
    assert client.post("/undo").status_code == 403
    assert state(db) == before


def test_another_host_name_is_refused(client):
    """A page at evil.example whose DNS points at 127.0.0.1 (DNS rebinding) gets nothing."""
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 403
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200


def test_photos_only_by_face_id_from_the_database(client, db):
    for url in ["/photo?path=/etc/passwd", "/photo/../../etc/passwd", "/photo/%2Fetc%2Fpasswd", "/photo/0",
                "/photo/999999", "/photo/-1", "/thumb/999999999999999999999", "/static/../../../../etc/passwd",
                "/photo/99999999999999999999999"]:
        response = client.get(url)
        assert response.status_code in (404, 400) and b"root:" not in response.data, url
    face = show_json(db, astronaut_group(db)["id"])["faces"][0]
    photo = client.get(f"/photo/{face['face_id']}")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    import io

    assert Image.open(io.BytesIO(photo.data)).size[0] > 100
    thumb = client.get(f"/thumb/{face['face_id']}")
    assert thumb.status_code == 200 and "max-age" in thumb.headers["Cache-Control"] and thumb.headers.get("ETag")
    assert client.get(f"/thumb/{face['face_id']}", headers={"If-None-Match": thumb.headers["ETag"]}).status_code == 304
    page = client.get(f"/face/{face['face_id']}").get_data(as_text=True)
    assert "Date unknown" in page or "date" in page.lower()


def test_every_user_string_is_escaped(client, db):
    target = astronaut_group(db)["id"]
    _, messages = post(client, "/name", person=str(target), name=HOSTILE)
    assert messages and messages[0][0] == "done"
    for url in ["/", f"/person/{target}", "/history", f"/person/{target}/suggestions"]:
        text = client.get(url).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in text and "<script>alert" not in text, url
    assert people_json(db)[0]["name"] == HOSTILE


def test_a_busy_database_gives_a_message_not_a_hang(client, db):
    target = astronaut_group(db)["id"]
    store = Store(db)
    try:
        with store.writer("scan"):  # as a scan in another terminal holds it
            response, messages = post(client, "/name", person=str(target), name="Alice", next=f"/person/{target}")
            assert client.get("/").status_code == 200 and client.get(f"/person/{target}").status_code == 200  # reads go on
    finally:
        store.close()
    assert response.status_code == 200
    assert messages and messages[0][0] == "error" and "in use by facecluster scan" in messages[0][1]
    assert all(p["name"] is None for p in people_json(db))


def test_actions_do_what_the_commands_do(client, db):
    groups = people_json(db)
    alice = astronaut_group(db)["id"]
    others = [p["id"] for p in groups if p["id"] != alice]
    _, messages = post(client, "/name", person=str(alice), name="Alice")
    assert messages == [("done", f"Group {alice} is Alice.")]
    _, messages = post(client, "/name", person=str(others[0]), name="alice")  # a taken name (any case) merges
    assert "Merged group" in messages[0][1]
    assert not [p for p in people_json(db) if p["id"] == others[0]]
    _, messages = post(client, "/merge", person=[str(others[1]), str(others[2])])
    assert messages[0][0] == "done", messages
    assert len([p for p in people_json(db) if p["id"] in others[1:3]]) == 1
    _, messages = post(client, "/merge", person=[str(alice)])
    assert messages[0][0] == "error" and "at least two" in messages[0][1]
    _, messages = post(client, "/name", person=str(alice), name="  ")
    assert messages[0][0] == "error" and "empty" in messages[0][1]
    response, _ = post(client, "/group", min_faces="3")
    assert "Grouped again" in response.get_data(as_text=True)
    _, messages = post(client, "/unset", person=str(alice))
    assert messages == [("done", f"Group {alice} has no name now (was Alice).")]
    assert all(p["name"] is None for p in people_json(db))


def test_no_is_remembered_and_regrouping_respects_it(client, db):
    alice = astronaut_group(db)["id"]
    post(client, "/name", person=str(alice), name="Alice")
    face = show_json(db, alice)["faces"][0]["face_id"]
    _, messages = post(client, "/answer", person=str(alice), face=str(face), answer="no")
    assert messages == [("done", f"Face {face} is not Alice (#{alice}).")]
    ok(db, "group", "-q", "--min-faces", "3")
    assert face not in [f["face_id"] for f in show_json(db, "Alice")["faces"]]
    page = client.get(f"/person/{alice}/suggestions").get_data(as_text=True)
    assert f'data-face="{face}"' not in page  # never offered again
    # Nothing else in this library looks like her: the page says so rather than offer strangers.
    assert "Nothing else looks like Alice" in page and not re.findall(r'data-face="(\d+)"', page)
    # A face of hers that grouping left in no group (as it leaves faces it is unsure of) is offered.
    left_out = show_json(db, "Alice")["faces"][0]["face_id"]
    leave_in_no_group(db, [left_out])
    page = client.get(f"/person/{alice}/suggestions").get_data(as_text=True)
    assert re.findall(r'data-face="(\d+)"', page) == [str(left_out)] and "very likely" in page
    post(client, "/answer", person=str(alice), face=str(left_out), answer="yes")
    assert left_out in [f["face_id"] for f in show_json(db, "Alice")["faces"]]


# ---- undo: exactly the state before -----------------------------------------------------------


def test_undo_restores_exactly_what_each_action_changed(db):
    store = Store(db)
    try:
        alice = astronaut_group(db)["id"]
        others = [p["id"] for p in people_json(db) if p["id"] != alice]
        face = show_json(db, alice)["faces"][0]["face_id"]
        other_face = show_json(db, others[0])["faces"][0]["face_id"]
        steps = [
            lambda: people.name_person(store, str(alice), "Alice"),
            lambda: people.name_person(store, str(others[0]), "ALICE"),  # merges
            lambda: people.merge_people(store, [str(others[1]), str(others[2])], name="Bob"),
            lambda: people.remove_faces(store, [face]),
            lambda: people.ignore_person(store, "Bob"),
            lambda: people.answer_suggestion(store, "Alice", other_face, yes=False),
            lambda: people.answer_suggestion(store, "Bob", face, yes=True),
            lambda: people.name_person(store, "Alice", "Carol"),
            lambda: people.name_person(store, "Carol", None),
        ]
        states = []
        for step in steps:
            states.append(state(db))
            step()
        for expected in reversed(states):
            people.undo_last(store)
            assert state(db) == expected
        with pytest.raises(people.PeopleError, match="nothing to undo"):
            people.undo_last(store)
    finally:
        store.close()


def test_cli_corrections_are_undone_too(client, db):
    before = state(db)
    ok(db, "name", str(astronaut_group(db)["id"]), "Alice")
    _, messages = post(client, "/undo")
    assert messages[0] == ("done", f"Undone: Named group {astronaut_group(db)['id']} Alice.")
    assert state(db) == before


def test_merging_two_named_people_is_refused(db):
    ids = [p["id"] for p in people_json(db)]
    ok(db, "name", str(ids[0]), "Alice")
    ok(db, "name", str(ids[1]), "Bob")
    store = Store(db)
    try:
        with pytest.raises(people.PeopleError, match="different people"):
            people.merge_people(store, [str(ids[0]), str(ids[1])])
    finally:
        store.close()


def test_nearest_ranks_by_the_mean_of_the_closest_faces():
    person = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    candidates = np.array([[0, 1.0, 0], [1.0, 0.05, 0], [0, 0, 1.0]])
    rows, distances = nearest(person, candidates, limit=3, k=2)
    assert rows.tolist() == [1, 2, 0]
    assert distances[0] < distances[1] < distances[2]
    assert nearest(person, candidates[:0], limit=3)[0].size == 0
    assert nearest(person, candidates, limit=3, k=2, block=1)[0].tolist() == rows.tolist()  # blocks change nothing


def test_pages_paginate(db):
    store = Store(db)
    try:
        page = people.people_page(store, 2, per_page=3)
        assert page.number == 2 and page.pages == 2 and len(page.items) == 1 and page.total == 4
        assert people.people_page(store, 99, per_page=3).number == 2
        assert people.paginate([], 1, 10).pages == 1
    finally:
        store.close()


# ---- the server ---------------------------------------------------------------------------


def test_ctrl_c_exits_130_and_leaves_the_database_free(db):
    if os.name != "posix":
        pytest.skip("SIGINT to a child process is POSIX")
    server = subprocess.Popen(
        [sys.executable, "-m", "facecluster", "--db", str(db), "review", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )
    try:
        url = server.stdout.readline().strip()  # printed once the server listens
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}", url), url
        import http.cookiejar
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert b"facecluster review" in opener.open(url, timeout=30).read()  # serving: the cookie took us in
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
    env = {**os.environ, "FACECLUSTER_LOCK_WAIT": "0"}
    done = subprocess.run([sys.executable, "-m", "facecluster", "--db", str(db), "name", "1", "Alice"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_review_needs_an_existing_database(tmp_path):
    from tests.conftest import cli_run

    result = cli_run(tmp_path / "missing.db", "review", "--no-browser")
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "missing.db").exists()


def test_the_server_listens_on_loopback_only(db):
    from facecluster.web.app import review_server

    server, url = review_server(db)
    try:
        assert server.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    finally:
        server.server_close()


# ---- in a real browser ------------------------------------------------------------------------


@pytest.fixture
def live(db):
    from facecluster.web.app import review_server

    server, url = review_server(db)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()


def test_review_in_headless_chromium(db, live, tmp_path):
    from tests.browser import chromium

    groups = people_json(db)
    alice = astronaut_group(db)["id"]
    others = [p["id"] for p in groups if p["id"] != alice]
    alice_faces = [f["face_id"] for f in show_json(db, alice)["faces"]]
    browser = chromium(tmp_path / "profile")
    try:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.expected_conditions import staleness_of
        from selenium.webdriver.support.ui import WebDriverWait

        def submit(button):
            """Click a button that posts, and wait for the page it leads to: the old page's
            message would otherwise still be there to read on a busy machine."""
            old_page = browser.find_element(By.TAG_NAME, "html")
            button.click()
            WebDriverWait(browser, 60).until(staleness_of(old_page))

        def follow(link):
            """Click a link and wait for the page it leads to: a wait for an element could otherwise
            be met by the old page (two pages here both say "nothing"), and the next click lands on it."""
            old_page = browser.find_element(By.TAG_NAME, "html")
            link.click()
            WebDriverWait(browser, 60).until(staleness_of(old_page))

        def message():
            found = WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".message"))
            return found[0].text

        def card(person_id):
            return browser.find_element(By.CSS_SELECTOR, f'.card[data-person="{person_id}"]')

        browser.get(live)
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".card"))
        assert "token=" not in browser.current_url
        # Name a group.
        follow(card(alice).find_element(By.CSS_SELECTOR, "a.name"))
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "name"))
        browser.find_element(By.ID, "name").send_keys(HOSTILE)
        submit(browser.find_element(By.ID, "save-name"))
        assert message() == f"Group {alice} is {HOSTILE}."
        assert browser.find_element(By.ID, "title").text == HOSTILE
        # Take a face out ("not this person").
        removed = alice_faces[0]
        browser.find_element(By.CSS_SELECTOR, f'.face[data-face="{removed}"] input[type=checkbox]').click()
        submit(browser.find_element(By.ID, "remove"))
        assert "Took 1 face out" in message()
        # See a face in its photo.
        follow(browser.find_element(By.CSS_SELECTOR, f'.face[data-face="{alice_faces[1]}"] a'))
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(
            "const i = document.getElementById('photo'); return i && i.complete && i.naturalWidth > 0"))
        assert browser.find_element(By.ID, "taken").text
        # Draw a face the detector missed: drag a box on the photo, add it.
        photo = browser.find_element(By.ID, "photo")
        assert not browser.find_element(By.ID, "draw-save").is_enabled()
        ActionChains(browser).move_to_element_with_offset(photo, -photo.size["width"] // 2 + 12, photo.size["height"] // 2 - 110) \
            .click_and_hold().move_by_offset(90, 90).release().perform()
        assert browser.find_element(By.ID, "drawn-box").is_displayed()
        assert browser.find_element(By.ID, "draw-hint").text.startswith("Box: ")
        submit(browser.find_element(By.ID, "draw-save"))
        assert message().startswith("Added face ") and ", in no group." in message()
        drawn_face = int(re.match(r"Added face (\d+)", message())[1])
        assert browser.current_url.endswith(f"/face/{drawn_face}")
        # Suggestions: nothing is likely in this library, and the page says so.
        browser.get(live.split("?")[0] + f"person/{alice}/suggestions")
        assert WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "nothing"))[0].text.startswith(
            f"Nothing else looks like {HOSTILE}")
        # One of her faces left in no group (as grouping leaves faces it is unsure of) is offered: answer no.
        left_out = alice_faces[2]
        leave_in_no_group(db, [left_out])
        browser.refresh()
        first = WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".suggestion"))[0]
        refused = int(first.get_attribute("data-face"))
        assert refused == left_out and first.find_element(By.CSS_SELECTOR, ".likelihood").text == "very likely"
        browser.find_element(By.ID, "select-all").click()
        assert browser.find_element(By.ID, "give").text == f"Give selected to {HOSTILE} (1)"
        submit(first.find_element(By.CSS_SELECTOR, "button.no"))
        assert message() == f"Face {refused} is not {HOSTILE} (#{alice})."
        # Same person? Nothing to ask here either.
        follow(browser.find_element(By.ID, "nav-suggestions"))
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "nothing"))
        # Merge two groups, ignore one.
        follow(browser.find_element(By.CSS_SELECTOR, "a.home"))
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".card"))
        for person_id in others[:2]:
            card(person_id).find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        assert browser.find_element(By.ID, "merge").text == "Merge selected (2)"
        submit(browser.find_element(By.ID, "merge"))
        assert message().startswith("Merged 2 groups into group ")
        follow(card(others[2]).find_element(By.CSS_SELECTOR, "a.name"))
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "ignore"))
        submit(browser.find_element(By.ID, "ignore"))
        assert message() == f"Group {others[2]} is ignored."
        # Undo the last action (the ignore).
        submit(browser.find_element(By.ID, "undo"))
        assert message() == f"Undone: Ignored group {others[2]}."
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()
    # The command line sees exactly those changes.
    after = {p["id"]: p for p in people_json(db)}
    assert after[alice]["name"] == HOSTILE and not after[alice]["ignored"]
    assert sorted(f["face_id"] for f in show_json(db, alice)["faces"]) == sorted(alice_faces[1:2] + alice_faces[3:])
    merged = [pid for pid in others[:2] if pid in after]
    assert len(merged) == 1
    assert after[merged[0]]["faces"] == sum(p["faces"] for p in groups if p["id"] in others[:2])
    assert not after[others[2]]["ignored"] and after[others[2]]["faces"] == next(p for p in groups if p["id"] == others[2])["faces"]
    assert set(after) == {alice, merged[0], others[2]}
    store = Store(db)
    try:
        assert store.last_action().kind == "merge"  # the ignore was undone
        assert (refused, alice) in store.grouping_inputs("sface").rejections
        drawn = store.face_row(drawn_face)
        assert drawn.person_id is None and drawn.path == store.face_row(alice_faces[1]).path  # on the photo it was drawn on
    finally:
        store.close()
