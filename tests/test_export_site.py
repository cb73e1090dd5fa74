"""The static site and the review page are one renderer: the same cards, the same face for a person.

And export, like every command that only reads, never creates a database.
Stores filled by hand (tests/test_export.py's helpers): real files, real SQLite, no model.
"""

import os
import re
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

import facecluster.export.html as html_module
from facecluster.store import Store
from facecluster.web import create_app
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run
from tests.test_export import add_photo, make_person


@pytest.mark.parametrize("args", [["--json", "-"], ["--csv", "-"], ["--html", "site"], ["--xmp"], ["--links", "links"]])
def test_export_never_creates_a_database(tmp_path, monkeypatch, args):
    # `facecluster --db new.db export --json -` (no such file yet): an error, and nothing written at all.
    monkeypatch.chdir(tmp_path)
    result = run(Path("new.db"), "export", *args)
    assert result.exit_code == 1 and "no database at new.db" in result.output
    assert sorted(tmp_path.iterdir()) == []


def card_faces(text: str) -> list[int]:
    """The face shown on each card of a people page, the review's (/thumb/ID) or the export's (thumbs/ID-...)."""
    return [int(face) for face in re.findall(r'class="card[^"]*"[^>]*>.*?<img src="[^"]*?thumb[s/]+(\d+)', text, re.S)]


def test_the_review_and_the_export_show_the_same_best_face(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    # Four faces, each bigger than the one before (the old rule's pick was the largest).
    faces = [add_photo(store, tmp_path / "p" / f"{i}.jpg", [(100, 100, 100 + 20 * i, 100 + 20 * i)])[0] for i in range(4)]
    make_person(store, faces, "Ann")
    client = create_app(db, token="t").test_client()
    assert client.get("/?token=t").status_code == 303

    def shown(qualities):
        with store.transaction():
            store.set_face_quality(zip(faces, qualities))
        ok(db, "export", "--html", str(tmp_path / "site"))
        exported = card_faces((tmp_path / "site" / "index.html").read_text())
        reviewed = card_faces(client.get("/").get_data(as_text=True))
        assert len(exported) == 1 and exported == reviewed
        return exported[0]

    assert shown([0.3, 0.9, 0.5, 0.2]) == faces[1]  # the best quality, not the largest
    assert shown([0.3, 0.9, 0.9, 0.2]) == faces[2]  # a tie: the larger of the two
    assert shown([None, None, None, 0.1]) == faces[3]  # a face not scored yet comes after every scored one
    assert shown([None, None, None, None]) == faces[3]  # none scored: the largest
    store.close()


def test_every_link_of_the_site_is_a_relative_file_that_exists(tmp_path, monkeypatch):
    db = tmp_path / "faces.db"
    store = Store(db)
    ann = [add_photo(store, tmp_path / "p" / f"ann {i}.jpg", [(100, 100, 120, 120)])[0] for i in range(3)]
    make_person(store, ann, "Ann")
    make_person(store, add_photo(store, tmp_path / "p" / "trip" / "group#1.jpg", [(0, 10, 90, 90), (300, 10, 90, 90)]))
    add_photo(store, tmp_path / "p" / "alone.jpg", [(10, 10, 60, 60)] * 3)
    store.close()
    monkeypatch.setattr(html_module, "CARDS_PER_PAGE", 1)
    monkeypatch.setattr(html_module, "FACES_PER_PAGE", 2)
    site = tmp_path / "site"
    ok(db, "export", "--html", str(site))
    pages = sorted(site.glob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "index-2.html", "unclustered.html", "unclustered-2.html"}
    for page in pages:
        text = page.read_text()
        assert "<form" not in text and "<input type=\"checkbox\"" not in text and "token" not in text  # nothing to send
        links = re.findall(r'(?:href|src)="([^"]+)"', text)
        assert links, page.name
        for link in links:
            assert "://" not in link and not link.startswith("/"), (page.name, link)
            target = site / os.fsdecode(unquote_to_bytes(link.split("#")[0]))
            assert target.is_file(), (page.name, link)
