"""export: JSON, CSV, HTML (also in a real browser) and XMP sidecars read back by exiftool."""

import csv
import hashlib
import io
import json
import shutil
import re
import subprocess
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

import facecluster.export.html as html_module
from facecluster.cli import cli
from tests.conftest import cli_ok as ok

PEOPLE = ["Ben_Affleck", "Elton_John", "Jerry_Seinfeld", "Madonna", "Mindy_Kaling"]
HOSTILE = "<script>alert(1)</script> & Co"


def group_of(db, identity):
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    return max(data["people"], key=lambda p: sum(f"/{identity}/" in f["photo"] for f in p["faces"]))


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


def test_json_lists_people_and_faces(library):
    photos, db = library
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    named = [p for p in data["people"] if p["name"] == HOSTILE]
    assert len(named) == 1 and data["people"][0]["name"] == HOSTILE  # named people first
    faces = named[0]["faces"]
    assert len(faces) >= 15 and all(len(f["bbox"]) == 4 and f["photo"].endswith(".jpg") for f in faces)
    assert sum("/Madonna/" in f["photo"] for f in faces) == len(faces)
    assert set(faces[0]) == {"face_id", "photo", "bbox", "score", "taken"}
    assert isinstance(data["unclustered"], list)


def test_csv_one_row_per_face(library, tmp_path):
    photos, db = library
    out = tmp_path / "faces.csv"
    ok(db, "export", "--csv", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    assert len(rows) == sum(len(p["faces"]) for p in data["people"]) + len(data["unclustered"])
    assert {r["name"] for r in rows if r["name"]} >= {HOSTILE}


def test_html_site_escapes_paginates_and_reuses_thumbnails(library, tmp_path, monkeypatch):
    photos, db = library
    site = tmp_path / "site"
    first = ok(db, "export", "--html", str(site))
    assert "thumbnails written" in first.stdout
    index = (site / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in index and "<script>alert" not in index
    assert index.count('class="card') == 5
    assert "http://" not in index and "https://" not in index
    unnamed = [p for p in site.glob("person-*.html") if "Unnamed #" in p.read_text()]
    assert unnamed and 'facecluster name ' in unnamed[0].read_text() and "Copy</button>" in unnamed[0].read_text()
    page = (site / f"person-{group_of(db, 'Madonna')['id']}.html").read_text()
    links = re.findall(r'<a class="face" href="([^"]+)"', page)
    assert links and all(not link.startswith("/") for link in links)  # relative links to the originals
    assert all((site / unquote(link)).resolve().is_file() for link in links)
    again = ok(db, "export", "--html", str(site))
    assert "(0 thumbnails written" in again.stdout
    monkeypatch.setattr(html_module, "CARDS_PER_PAGE", 2)
    monkeypatch.setattr(html_module, "FACES_PER_PAGE", 5)
    ok(db, "export", "--html", str(tmp_path / "paged"))
    assert (tmp_path / "paged" / "index-3.html").exists()
    assert 'href="index-2.html"' in (tmp_path / "paged" / "index.html").read_text()


def test_export_needs_a_format(library):
    photos, db = library
    result = CliRunner().invoke(cli, ["--db", str(db), "export"])
    assert result.exit_code == 2 and "choose at least one of" in result.output


def test_unwritable_output_is_one_line(library, tmp_path):
    photos, db = library
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(cli, ["--db", str(db), "export", "--json", str(tmp_path / "file" / "out.json")])
    assert result.exit_code == 1 and "cannot write" in result.output and "Traceback" not in result.output


# ---- XMP ---------------------------------------------------------------------------


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


def test_xmp_sidecars_read_back_by_exiftool(library):
    photos, db = library
    before = digests(photos)
    dry = ok(db, "export", "--xmp", "--dry-run")
    assert "would write (create)" in dry.stdout and not list(photos.rglob("*.xmp"))
    ok(db, "export", "--xmp")
    assert digests(photos) == before  # originals untouched
    named = [p for p in json.loads(ok(db, "export", "--json", "-").stdout)["people"] if p["name"] == HOSTILE][0]
    face = named["faces"][0]
    sidecar = face["photo"] + ".xmp"
    tags = exif_json(sidecar)
    regions = tags["RegionInfo"]["RegionList"]
    assert [r["Name"] for r in regions] == [HOSTILE] and regions[0]["Type"] == "Face"
    width, height = tags["RegionInfo"]["AppliedToDimensions"]["W"], tags["RegionInfo"]["AppliedToDimensions"]["H"]
    x, y, w, h = face["bbox"]
    area = regions[0]["Area"]
    assert area["X"] == pytest.approx((x + w / 2) / width, abs=1e-3)
    assert area["Y"] == pytest.approx((y + h / 2) / height, abs=1e-3)
    assert area["W"] == pytest.approx(w / width, abs=1e-3)
    mp = tags["RegionInfoMP"]["Regions"]
    assert mp[0]["PersonDisplayName"] == HOSTILE
    assert HOSTILE in (tags["Subject"] if isinstance(tags["Subject"], list) else [tags["Subject"]])
    again = ok(db, "export", "--xmp")
    assert "0 sidecars changed" in again.stdout


def test_xmp_merges_into_an_existing_sidecar(library, tmp_path):
    photos, db = library
    named = [p for p in json.loads(ok(db, "export", "--json", "-").stdout)["people"] if p["name"] == HOSTILE][0]
    photo = named["faces"][1]["photo"]
    lightroom = photo[: -len(".jpg")] + ".xmp"
    for stale in (photo + ".xmp",):
        subprocess.run(["rm", "-f", stale])
    subprocess.run(
        [exiftool(), "-q", "-o", lightroom, "-XMP-xmp:Rating=4", "-XMP-dc:Subject=Holiday",
         "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=100,H=100,Unit=pixel},"
         "RegionList=[{Name=Bob,Type=Face,Area={X=0.9,Y=0.9,W=0.1,H=0.1,Unit=normalized}}]}", photo],
        check=True,
    )
    ok(db, "export", "--xmp")
    tags = exif_json(lightroom)
    assert tags["Rating"] == 4
    assert set(tags["Subject"]) == {"Holiday", HOSTILE}
    assert sorted(r["Name"] for r in tags["RegionInfo"]["RegionList"]) == sorted(["Bob", HOSTILE])
    assert not (photos / (photo + ".xmp")).exists()


# ---- XMP import --------------------------------------------------------------------


def test_scan_reads_names_from_our_sidecars_and_exiftools(library, tmp_path):
    photos, db = library
    ok(db, "export", "--xmp")
    copy = shutil.copytree(photos, tmp_path / "copy")
    # One more sidecar written by exiftool alone, for a Jerry Seinfeld photo, in the Microsoft dialect.
    jerry = sorted((copy / "Jerry_Seinfeld").glob("*.jpg"))
    fresh = tmp_path / "fresh.db"
    ok(fresh, "scan", "-q", str(copy / "Jerry_Seinfeld"))
    face = json.loads(ok(fresh, "export", "--json", "-").stdout)["unclustered"]
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
    people = {p["name"]: p for p in json.loads(ok(fresh, "export", "--json", "-").stdout)["people"] if p["name"]}
    assert HOSTILE in people and "Jerry" in people
    assert all("/Madonna/" in f["photo"] for f in people[HOSTILE]["faces"])
    assert str(jerry[0]) in [f["photo"] for f in people["Jerry"]["faces"]]
    assert len(people["Jerry"]["faces"]) > 5, result.stdout  # the other Jerry faces joined by the vote


# ---- in a real browser ---------------------------------------------------------------


ALL_IMAGES_LOADED = """
const images = Array.from(document.images);
return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
"""


def test_html_in_headless_chromium(library, tmp_path):
    from tests.browser import chromium

    photos, db = library
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    browser = chromium(tmp_path / "profile")
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        browser.get((site / "index.html").as_uri())
        cards = browser.find_elements(By.CSS_SELECTOR, "a.card")
        assert len(cards) == 5
        assert HOSTILE in [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards]
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        WebDriverWait(browser, 10).until(lambda b: b.execute_script(ALL_IMAGES_LOADED))
        cards[-1].click()
        WebDriverWait(browser, 10).until(lambda b: "person-" in b.current_url)
        assert browser.find_elements(By.CSS_SELECTOR, "a.face")
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        WebDriverWait(browser, 10).until(lambda b: b.execute_script(ALL_IMAGES_LOADED))
        if browser.find_elements(By.CSS_SELECTOR, "button.copy"):
            assert 'facecluster name ' in browser.find_element(By.ID, "cmd").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()
