"""Using the people: `photos` queries, `export --links`, `identify`, on real faces.

One library is scanned and grouped once per session from ../shared/facedata: the eight Big Bang
Theory characters' portraits (bbt_faceapi; Sheldon's re-saved as JPEGs with EXIF dates, one year
each, and sheldon5 held out for `identify`) and the five cast photos (groups/faceapi_bbt*.jpg).
Grouping finds one group per character; each is named after the folder most of its portraits
come from. Each test gets its own copy of that database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from facecluster.people import undo_last
from facecluster.web import create_app
from facecluster.store import Store
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run

pytestmark = pytest.mark.facedata

CAST = ["Amy", "Bernadette", "Howard", "Leonard", "Penny", "Raj", "Sheldon", "Stuart"]
SHELDON_YEARS = {"sheldon1": 2015, "sheldon2": 2016, "sheldon3": 2017, "sheldon4": 2018}


def with_exif_date(source: Path, target: Path, year: int) -> None:
    image = Image.open(source).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = f"{year}:06:01 12:00:00"  # DateTimeOriginal
    image.save(target, "JPEG", quality=95, exif=exif)


@pytest.fixture(scope="session")
def bbt(facedata, tmp_path_factory):
    """(library folder, the grouped and named database, the held-out sheldon5.png)."""
    root = tmp_path_factory.mktemp("bbt")
    library = root / "library"
    for person in CAST:
        (library / "people" / person).mkdir(parents=True)
        for photo in sorted((facedata / "bbt_faceapi" / person).iterdir()):
            if photo.stem == "sheldon5":
                continue
            if photo.stem in SHELDON_YEARS:
                with_exif_date(photo, library / "people" / person / f"{photo.stem}.jpg", SHELDON_YEARS[photo.stem])
            else:
                shutil.copy(photo, library / "people" / person / photo.name)
    (library / "groups").mkdir()
    for i in range(1, 6):
        shutil.copy(facedata / "groups" / f"faceapi_bbt{i}.jpg", library / "groups")
    held_out = root / "elsewhere" / "sheldon5.png"
    held_out.parent.mkdir()
    shutil.copy(facedata / "bbt_faceapi" / "Sheldon" / "sheldon5.png", held_out)
    db = root / "bbt.db"
    ok(db, "scan", "-q", "-j", "1", str(library))
    ok(db, "group", "-q")
    for person in json.loads(ok(db, "export", "--json", "-").stdout)["people"]:
        folders = Counter(Path(f["photo"]).parent.name for f in person["faces"] if "/people/" in f["photo"])
        if folders:
            name, count = folders.most_common(1)[0]
            if count >= 3:
                ok(db, "name", str(person["id"]), name)
    return library, db, held_out


@pytest.fixture
def lib(bbt, tmp_path):
    """(library folder, a copy of the session's database for this test alone)."""
    library, db, _ = bbt
    copy = tmp_path / "lib.db"
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return library, copy


def names(paths: list[str]) -> set[str]:
    return {os.path.basename(p) for p in paths}


def lines(result) -> list[str]:
    return [line for line in result.stdout.split("\n") if line]


# ---- photos --------------------------------------------------------------------------------


def test_the_fixture_named_every_character(lib):
    _, db = lib
    people = {p["name"] for p in json.loads(ok(db, "people", "--json").stdout) if p["name"]}
    assert people == set(CAST)


def test_two_and_three_people_together(lib):
    _, db = lib
    both = ok(db, "photos", "--with", "Sheldon", "--with", "leonard")
    assert names(lines(both)) == {f"faceapi_bbt{i}.jpg" for i in range(1, 6)}
    assert both.stderr.strip() == "5 photos"
    three = ok(db, "photos", "--with", "Sheldon", "--with", "Leonard", "--with", "Raj")
    assert names(lines(three)) == {"faceapi_bbt1.jpg", "faceapi_bbt3.jpg", "faceapi_bbt4.jpg", "faceapi_bbt5.jpg"}


def test_any_and_without(lib):
    _, db = lib
    either = names(lines(ok(db, "photos", "--any", "Amy", "--any", "Bernadette")))
    assert {f"amy{i}.png" for i in range(1, 6)} <= either and "faceapi_bbt4.jpg" in either
    assert all(n.startswith(("amy", "bernadette")) or n == "faceapi_bbt4.jpg" for n in either)
    sheldon_not_raj = names(lines(ok(db, "photos", "--with", "Sheldon", "--without", "Raj")))
    assert sheldon_not_raj == {f"sheldon{i}.jpg" for i in range(1, 5)} | {"faceapi_bbt2.jpg"}


def test_only_leaves_out_photos_with_anyone_else_recognisable(lib):
    _, db = lib
    # Every cast photo holds others; the portraits hold Sheldon alone.
    alone = names(lines(ok(db, "photos", "--with", "Sheldon", "--only")))
    assert alone == {f"sheldon{i}.jpg" for i in range(1, 5)}
    # faceapi_bbt2 holds Sheldon, Leonard and a face in no group (a stranger): it counts as only them.
    pair = names(lines(ok(db, "photos", "--with", "Sheldon", "--with", "Leonard", "--only")))
    assert pair == {"faceapi_bbt2.jpg"}


def test_the_query_agrees_with_the_faces_themselves(lib):
    """Every combination of two people, checked against the faces the JSON export lists."""
    _, db = lib
    data = json.loads(ok(db, "export", "--json", "-").stdout)
    who: dict[str, set[str]] = {}
    for person in data["people"]:
        for face in person["faces"]:
            who.setdefault(face["photo"], set()).add(person["name"])
    for a in ["Sheldon", "Penny", "Howard"]:
        for b in ["Leonard", "Raj", "Amy"]:
            expected = {p for p, people in who.items() if a in people and b not in people}
            assert set(lines(ok(db, "photos", "--with", a, "--without", b))) == expected, (a, b)


def test_dates_taken_and_folders(lib):
    library, db = lib
    found = names(lines(ok(db, "photos", "--with", "Sheldon", "--from", "2016", "--to", "2017-06")))
    assert found == {"sheldon2.jpg", "sheldon3.jpg"}
    assert names(lines(ok(db, "photos", "--with", "Sheldon", "--to", "2015-06-01"))) == {"sheldon1.jpg"}
    # A file's own date is not a date taken: the PNG portraits (no EXIF) never match a date.
    assert lines(ok(db, "photos", "--with", "Amy", "--from", "1900")) == []
    under = ok(db, "photos", "--with", "Leonard", "--under", str(library / "groups"))
    assert names(lines(under)) == {f"faceapi_bbt{i}.jpg" for i in range(1, 6)}
    assert all(p.startswith(str(library / "groups") + os.sep) for p in lines(under))
    # A folder whose name merely starts like another is not under it.
    assert lines(ok(db, "photos", "--under", str(library / "group"))) == []


def test_bad_dates_and_options(lib):
    _, db = lib
    for bad in ("2019-13", "yesterday", "2019/01/01"):
        result = run(db, "photos", "--with", "Amy", "--from", bad)
        assert result.exit_code == 2 and "is not a date" in result.output
    result = run(db, "photos", "--from", "2019", "--to", "2018")
    assert result.exit_code == 2 and "is after" in result.output
    result = run(db, "photos", "--only")
    assert result.exit_code == 2 and "--only goes with --with or --any" in result.output
    result = run(db, "photos", "--with", "Amy", "--without", "amy")
    assert result.exit_code == 2


def test_unknown_name_is_one_line_with_a_suggestion(lib):
    _, db = lib
    result = run(db, "photos", "--with", "Sheldn")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: no person named 'Sheldn'; did you mean 'Sheldon'?"]
    far = run(db, "photos", "--with", "Zebedee")
    assert far.exit_code == 1 and "see facecluster people" in far.output


def test_nul_separated_and_json(lib):
    _, db = lib
    result = ok(db, "photos", "--with", "Stuart", "-0")
    paths = result.stdout_bytes.split(b"\0")
    assert paths[-1] == b"" and len(paths) - 1 == 4 and b"\n" not in result.stdout_bytes
    assert all(os.path.isfile(p) for p in paths[:-1])
    data = json.loads(ok(db, "photos", "--with", "Sheldon", "--with", "Leonard", "--json").stdout)
    assert len(data) == 5
    for photo in data:
        named = {f["name"] for f in photo["faces"]}
        assert {"Sheldon", "Leonard"} <= named
        assert all(len(f["bbox"]) == 4 and f["bbox"][2] > 0 for f in photo["faces"])


def test_paths_that_are_not_utf8_come_out_as_their_own_bytes(lib, tmp_path):
    library, db = lib
    odd = os.fsdecode(b"caf\xe9.jpg")
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(library / "people" / "Stuart" / "stuart1.png", os.path.join(folder, odd))
    ok(db, "scan", "-q", "-j", "1", str(folder))
    ok(db, "group", "-q")
    result = ok(db, "photos", "--with", "Stuart", "-0", "--under", str(folder))
    assert result.stdout_bytes == os.fsencode(os.path.join(folder, odd)) + b"\0"


# ---- export --links ------------------------------------------------------------------------------


def tree(folder: Path) -> dict[str, str]:
    """'Person/link' -> the link's text, for every entry below the person folders."""
    out = {}
    for person in sorted(os.listdir(folder)):
        if person.startswith("."):
            continue
        for entry in sorted(os.listdir(folder / person)):
            path = folder / person / entry
            out[f"{person}/{entry}"] = os.readlink(path) if path.is_symlink() else "(file)"
    return out


def test_links_make_a_folder_per_person(lib, tmp_path):
    library, db = lib
    links = tmp_path / "People"
    result = ok(db, "export", "--links", str(links))
    assert "added" in result.stderr
    made = tree(links)
    assert {k.split("/")[0] for k in made} == set(CAST)
    sheldon = [k for k in made if k.startswith("Sheldon/")]
    assert len(sheldon) == 9  # 4 portraits and 5 cast photos
    for name, text in made.items():
        assert not os.path.isabs(text)
        assert os.path.isfile(links / name)  # the relative link reaches the photo
        assert os.path.realpath(links / name).startswith(str(library.resolve()))
    # The photos themselves are untouched.
    assert all(p.is_file() and not p.is_symlink() for p in library.rglob("*.png"))


def test_a_rerun_with_nothing_changed_writes_nothing(lib, tmp_path):
    _, db = lib
    links = tmp_path / "People"
    ok(db, "export", "--links", str(links))
    before = {p: os.lstat(p).st_mtime_ns for p in [links, links / ".facecluster-links", *links.rglob("*")]}
    again = ok(db, "export", "--links", str(links))
    assert "nothing changed" in again.stderr and "0 added, 0 removed" in again.stderr
    after = {p: os.lstat(p).st_mtime_ns for p in [links, links / ".facecluster-links", *links.rglob("*")]}
    assert after == before


def face_of(db, person: str, photo: str) -> int:
    data = json.loads(ok(db, "show", person, "--json").stdout)
    return next(f["face_id"] for f in data["faces"] if f["photo"].endswith(photo))


def test_links_follow_a_removal_a_regroup_and_a_new_name(lib, tmp_path):
    _, db = lib
    links = tmp_path / "People"
    ok(db, "export", "--links", str(links), "--groups")
    first = tree(links)
    ok(db, "remove", str(face_of(db, "Sheldon", "faceapi_bbt2.jpg")))
    ok(db, "group", "-q")
    ok(db, "name", "Stuart", "Stuart Bloom")
    result = ok(db, "export", "--links", str(links), "--groups")
    second = tree(links)
    gone = set(first) - set(second)
    assert {k for k in gone if k.startswith("Sheldon/")} == {k for k in first if k.startswith("Sheldon/faceapi_bbt2")}
    assert not (links / "Stuart").exists() and len([k for k in second if k.startswith("Stuart Bloom/")]) == 4
    assert "removed" in result.stderr
    assert {k: v for k, v in first.items() if k.startswith("Leonard/")} == {k: v for k, v in second.items() if k.startswith("Leonard/")}


def test_links_never_remove_what_they_did_not_make(lib, tmp_path):
    _, db = lib
    links = tmp_path / "People"
    ok(db, "export", "--links", str(links))
    mine = links / "Amy" / "my notes.txt"
    mine.write_text("mine")
    # A link of ours that the user replaced with a file of their own.
    replaced = next((links / "Sheldon").glob("faceapi_bbt2-*"))
    replaced.unlink()
    replaced.write_text("my own file now")
    ok(db, "remove", str(face_of(db, "Sheldon", "faceapi_bbt2.jpg")))
    ok(db, "remove", *[str(f["face_id"]) for f in json.loads(ok(db, "show", "Amy", "--json").stdout)["faces"]])
    result = ok(db, "export", "--links", str(links))
    assert mine.read_text() == "mine" and replaced.read_text() == "my own file now"
    assert "left alone" in result.stderr
    assert os.listdir(links / "Amy") == ["my notes.txt"]  # our links gone, the folder kept for the user's file


def test_links_refuse_a_folder_that_is_not_theirs(lib, tmp_path):
    _, db = lib
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"x")
    result = run(db, "export", "--links", str(folder))
    assert result.exit_code == 1 and "not empty" in result.output
    assert os.listdir(folder) == ["holiday.jpg"]
    ok(db, "export", "--links", str(folder), "--force")
    assert (folder / "holiday.jpg").read_bytes() == b"x" and (folder / "Sheldon").is_dir()


def test_same_file_names_never_collide_and_hardlinks(lib, tmp_path):
    library, db = lib
    twin = tmp_path / "other" / "sheldon1.jpg"  # the same name in another folder, other content
    twin.parent.mkdir()
    shutil.copy(library / "groups" / "faceapi_bbt2.jpg", twin)
    ok(db, "scan", "-q", "-j", "1", str(twin.parent))
    ok(db, "group", "-q")
    links = tmp_path / "Hard"
    result = ok(db, "export", "--links", str(links), "--hardlinks")
    sheldon = sorted(os.listdir(links / "Sheldon"))
    assert len([n for n in sheldon if n.startswith("sheldon1-")]) == 2
    for name in sheldon:
        path = links / "Sheldon" / name
        assert not path.is_symlink() and path.stat().st_nlink >= 2
    assert "added" in result.stderr
    again = ok(db, "export", "--links", str(links), "--hardlinks")
    assert "nothing changed" in again.stderr


def test_links_options_need_links(lib):
    _, db = lib
    result = run(db, "export", "--groups")
    assert result.exit_code == 2 and "--links" in result.output


# ---- identify --------------------------------------------------------------------------------


def test_identify_a_photo_outside_the_library(bbt, lib):
    _, db = lib
    held_out = bbt[2]
    result = ok(db, "identify", "--json", str(held_out))
    [photo] = json.loads(result.stdout)
    [face] = photo["faces"]
    assert face["name"] == "Sheldon" and face["likelihood"] == "very likely"
    assert photo["added"] is False
    assert lines(ok(db, "photos", "--under", str(held_out.parent))) == []  # nothing was added


def test_identify_says_unknown_for_someone_never_named(facedata, lib, tmp_path):
    _, db = lib
    stranger = tmp_path / "madonna.jpg"
    shutil.copy(next(iter(sorted((facedata / "celeb5_opencv_course" / "Madonna").iterdir()))), stranger)
    result = ok(db, "identify", str(stranger))
    assert "unknown" in result.stdout and "very likely" not in result.stdout


def test_identify_a_cast_photo_in_lines(bbt, lib):
    library, db = lib
    result = ok(db, "identify", str(library / "groups" / "faceapi_bbt1.jpg"))
    rows = [line.split("\t") for line in lines(result)]
    assert rows[0] == ["face", "box (x, y, w, h)", "who", "likelihood", "distance", "photo"]
    said = {r[2] for r in rows[1:] if r[3] == "very likely"}
    assert {"Sheldon", "Leonard"} <= said


def test_identify_add_stores_the_photo(bbt, lib):
    _, db = lib
    held_out = bbt[2]
    result = ok(db, "identify", "--add", str(held_out))
    assert "1 added to the library" in result.stderr
    ok(db, "group", "-q")
    assert names(lines(ok(db, "photos", "--with", "Sheldon", "--under", str(held_out.parent)))) == {"sheldon5.png"}
    again = ok(db, "identify", "--add", str(held_out))
    assert "0 added to the library, 1 already there" in again.stderr


def test_identify_a_file_that_is_not_a_photo(lib, tmp_path):
    _, db = lib
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = run(db, "identify", str(bad), str(tmp_path / "missing.jpg"))
    assert result.exit_code == 1
    assert "not read:" in result.output and "could not be read" in result.output


# ---- names from Picasa and Google Takeout ---------------------------------------------------------


def rect64(box, width, height) -> str:
    x, y, w, h = box
    parts = [int(x / width * 65536), int(y / height * 65536), int((x + w) / width * 65536), int((y + h) / height * 65536)]
    return "".join(f"{min(v, 65535):04x}" for v in parts)


def box_in(db, person: str, photo: str) -> list[float]:
    data = json.loads(ok(db, "show", person, "--json").stdout)
    return next(f["bbox"] for f in data["faces"] if f["photo"].endswith("/" + photo))


def test_picasa_ini_and_contacts_name_the_faces_they_box(lib, tmp_path):
    library, db = lib
    sheldon, leonard = box_in(db, "Sheldon", "faceapi_bbt1.jpg"), box_in(db, "Leonard", "faceapi_bbt1.jpg")
    ok(db, "name", "Sheldon", "--unset")
    folder = tmp_path / "picasa"
    folder.mkdir()
    shutil.copy(library / "groups" / "faceapi_bbt1.jpg", folder)
    ok(db, "scan", "-q", "-j", "1", str(folder))  # the same content at a new path: its faces, in no group
    width, height = Image.open(folder / "faceapi_bbt1.jpg").size
    (folder / ".picasa.ini").write_text(
        "[Contacts2]\na1b2c3d4e5f60718=Sheldon Cooper;;\n"
        "[faceapi_bbt1.jpg]\n"
        f"faces=rect64({rect64(sheldon, width, height)}),a1b2c3d4e5f60718;"
        f"rect64({rect64(leonard, width, height)}),0123456789abcdef;"
        "rect64(0000000010001000),ffffffffffffffff\n"
        "backuphash=4660\n"
    )
    contacts = tmp_path / "contacts.xml"
    contacts.write_text('<?xml version="1.0" encoding="utf-8"?>\n<contacts>\n'
                        ' <contact id="0123456789abcdef" name="Leonard Hofstadter" display="Leonard"/>\n</contacts>\n')
    result = ok(db, "names", "--import", str(folder), "--contacts", str(contacts))
    assert "Imported 2 names for 2 faces" in result.stderr
    assert "left out: 1 faces Picasa found but nobody named" in result.stderr
    assert lines(ok(db, "photos", "--with", "Sheldon Cooper")) == [str(folder / "faceapi_bbt1.jpg")]
    assert lines(ok(db, "photos", "--with", "Leonard Hofstadter")) == [str(folder / "faceapi_bbt1.jpg")]


def test_a_broken_picasa_ini_imports_nothing(lib, tmp_path):
    library, db = lib
    folder = tmp_path / "picasa"
    folder.mkdir()
    (folder / "good").mkdir()
    (folder / "good" / ".picasa.ini").write_text("[Contacts2]\n1=Ann;;\n[a.jpg]\nfaces=rect64(0000000010001000),1\n")
    (folder / ".picasa.ini").write_text("[a.jpg]\nfaces=rect64(zz),1\n")
    before = ok(db, "people", "--json").stdout
    result = run(db, "names", "--import", str(folder))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {folder / '.picasa.ini'}: line 2: 'rect64(zz),1' is not rect64(HEX),CONTACT_ID; nothing was imported"]
    assert ok(db, "people", "--json").stdout == before


def sidecar(path: Path, people: list[str], title: str | None = None) -> None:
    document = {"title": title or path.name.split(".json")[0], "photoTakenTime": {"timestamp": "1500000000"},
                "people": [{"name": n} for n in people]}
    path.write_text(json.dumps(document))


def test_takeout_names_only_where_unambiguous_and_undo(facedata, lib, tmp_path):
    library, db = lib
    ok(db, "name", "Sheldon", "--unset")
    ok(db, "name", "Leonard", "--unset")
    takeout = tmp_path / "Takeout" / "Google Photos" / "Photos from 2019"
    takeout.mkdir(parents=True)
    for source, listed in [
        (library / "people" / "Sheldon" / "sheldon1.jpg", ["Sheldon Cooper"]),
        (library / "people" / "Sheldon" / "sheldon2.jpg", ["Sheldon Cooper"]),
        (library / "people" / "Leonard" / "leonard1.png", ["Leonard Hofstadter"]),
        (library / "people" / "Leonard" / "leonard2.png", ["Leonard Hofstadter"]),
        # Three faces, three names: Sheldon confirmed by his photos above; Leonard's two portraits are too far
        # from his face here (mean distance 1.04) to be sure, and Kripke has nothing: both left out.
        (library / "groups" / "faceapi_bbt2.jpg", ["Sheldon Cooper", "Leonard Hofstadter", "Barry Kripke"]),
    ]:
        shutil.copy(source, takeout / source.name)
        sidecar(takeout / f"{source.name}.json", listed)
    # The newer sidecar name (Stuart's face is named Stuart already: left alone), and a photo this library never saw.
    shutil.copy(library / "people" / "Stuart" / "stuart1.png", takeout / "stuart1.png")
    sidecar(takeout / "stuart1.png.supplemental-metadata.json", ["Stuart Bloom"], title="stuart1.png")
    shutil.copy(next(iter(sorted((facedata / "celeb5_opencv_course" / "Madonna").iterdir()))), takeout / "madonna.jpg")
    sidecar(takeout / "madonna.jpg.json", ["Madonna"])
    (takeout / "metadata.json").write_text(json.dumps({"title": "Photos from 2019", "description": ""}))

    result = ok(db, "names", "--import", str(tmp_path / "Takeout"))
    assert "left out: 1 names in photos not in this library" in result.stderr
    assert "left out: 2 names in photos with several faces where nothing confirmed which face" in result.stderr
    assert "1 already named otherwise" in result.stderr
    sheldon = names(lines(ok(db, "photos", "--with", "Sheldon Cooper")))
    assert sheldon == {"sheldon1.jpg", "sheldon2.jpg", "faceapi_bbt2.jpg"}
    assert names(lines(ok(db, "photos", "--with", "Leonard Hofstadter"))) == {"leonard1.png", "leonard2.png"}
    assert run(db, "photos", "--with", "Barry Kripke").exit_code == 1
    assert run(db, "photos", "--with", "Stuart Bloom").exit_code == 1

    store = Store(db)
    assert undo_last(store).startswith("Imported Google Takeout names from Takeout")
    store.close()
    people = {p["name"] for p in json.loads(ok(db, "people", "--json").stdout) if p["name"]}
    assert not people & {"Sheldon Cooper", "Leonard Hofstadter"} and "Stuart" in people
    assert len(lines(ok(db, "photos", "--with", "Stuart"))) == 4


def test_a_takeout_sidecar_with_a_bad_people_list_imports_nothing(lib, tmp_path):
    _, db = lib
    (tmp_path / "a.jpg.json").write_text(json.dumps({"title": "a.jpg", "people": [{"name": "Ann"}, {"nom": 3}]}))
    result = run(db, "names", "--import", str(tmp_path / "a.jpg.json"))
    assert result.exit_code == 1 and 'people[1] must be an object with a text "name"; nothing was imported' in result.output
    result = run(db, "names", "--import", str(tmp_path / "a.jpg.json"), "--format", "picasa")
    assert result.exit_code == 1
    result = run(db, "names", "--export", "-", "--format", "picasa")
    assert result.exit_code == 2


# ---- a person's faces by year ----------------------------------------------------------------------


SHELDON_BY_YEAR = "2015: 1 · 2016: 1 · 2017: 1 · 2018: 1 · no date: 5"  # the cast photos and PNGs carry no EXIF date


def test_the_person_page_shows_faces_by_year(lib, tmp_path):
    _, db = lib
    sheldon = json.loads(ok(db, "show", "Sheldon", "--json").stdout)["id"]
    client = create_app(db, token="t").test_client()
    assert client.get("/?token=t").status_code == 303
    page = client.get(f"/person/{sheldon}").get_data(as_text=True)
    assert f"Faces by year: {SHELDON_BY_YEAR}" in page
    ok(db, "export", "--html", str(tmp_path / "site"))
    exported = (tmp_path / "site" / f"person-{sheldon}.html").read_text()
    assert f"Faces by year: {SHELDON_BY_YEAR}" in exported

