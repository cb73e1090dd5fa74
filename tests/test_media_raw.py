"""RAW files, RAW+JPEG pairs, Live Photos and Motion Photos, on real faces from ../shared/facedata.

Every RAW here is written at test time (tests/mediagen.py): DNGs that LibRaw
must demosaic, DNGs with an embedded JPEG preview, stored sideways with an
orientation, as cameras write them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster.errors import DecodeError
from facecluster.sources import raw as raw_source
from facecluster.sources.pairs import pair
from facecluster.crawl import CrawlEntry
from facecluster.geometry import iou
from tests.conftest import cli_ok, in_facedata
from tests.mediagen import dng_bytes, encode_video, motion_photo_bytes

GROUP = "groups/compreface_000_5.jpg"  # five people, 819 x 546


@pytest.fixture(scope="module")
def group_photo(facedata: Path) -> Path:
    return in_facedata(GROUP)


@pytest.fixture(scope="module")
def group_rgb(group_photo: Path) -> np.ndarray:
    pytest.importorskip("pidng", reason="pidng (the test extra) writes the DNGs: pip install 'facecluster[test]'")
    return np.asarray(Image.open(group_photo).convert("RGB"))


def rows(db: Path, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def boxes_of(db: Path, name: str) -> list[tuple[float, float, float, float]]:
    return [tuple(r) for r in rows(db, "SELECT f.x, f.y, f.w, f.h FROM faces f JOIN photos p ON p.id = f.photo_id "
                                       "WHERE p.path LIKE ? ORDER BY f.x", ["%/" + name])]


def same_faces(a, b) -> bool:
    """Every face of one list overlaps one of the other (the same people at the same places)."""
    return len(a) == len(b) and all(max(iou(x, y) for y in b) > 0.5 for x in a)


def test_raw_files_scanned_upright_with_warnings_for_the_odd_ones(tmp_path, group_photo, group_rgb):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mosaic.dng").write_bytes(dng_bytes(group_rgb, orientation=6))  # no preview: half-size demosaic
    (lib / "preview.dng").write_bytes(dng_bytes(group_rgb, orientation=8, preview=True))
    shutil.copy(group_photo, lib / "really_a_jpeg.CR2")
    (lib / "refused.NEF").write_bytes(b"II*\x00" + bytes(4000))
    (lib / "notes.txt").write_text("not a photo")
    db = tmp_path / "lib.db"

    result = cli_ok(db, "scan", "-j", "1", str(lib))

    kinds = dict(rows(db, "SELECT substr(path, length(?) + 2), kind FROM photos", [str(lib)]))
    assert kinds == {"mosaic.dng": "raw", "preview.dng": "raw", "really_a_jpeg.CR2": "photo", "refused.NEF": "raw"}
    # Upright, at the displayed size, whichever way the sensor was held.
    assert rows(db, "SELECT width, height FROM photos WHERE path LIKE '%.dng'") == [(818, 546), (818, 546)]
    jpeg = boxes_of(db, "really_a_jpeg.CR2")
    assert len(jpeg) == 5
    assert same_faces(boxes_of(db, "preview.dng"), jpeg)
    assert same_faces(boxes_of(db, "mosaic.dng"), jpeg)
    assert "really_a_jpeg.CR2: named like a RAW file but it is a JPEG; read as a JPEG" in result.output
    assert "refused.NEF\tLibRaw cannot read this RAW file: unsupported file format or not a RAW file" in result.stdout
    assert "Read 2 RAW, 1 photo; skipped 1 file of unknown type." in result.output

    again = cli_ok(db, "scan", "-j", "1", str(lib))
    assert "0 new, 0 changed, 0 moved, 4 unchanged" in again.output


def test_small_preview_means_demosaic_and_the_budget_refuses_before_unpacking(group_rgb):
    big = raw_source.read(dng_bytes(group_rgb, 6, preview=True), 0.0, 640, 2048, 200_000_000)
    small = raw_source.read(dng_bytes(group_rgb, 6, preview=True, preview_side=320), 0.0, 640, 2048, 200_000_000)
    assert big.photo.format == "RAW preview" and big.photo.rgb.shape == (546, 819, 3)
    assert small.photo.format == "RAW demosaic" and small.photo.rgb.shape == (273, 409, 3)
    mosaic = dng_bytes(group_rgb)
    with pytest.raises(DecodeError, match=r"demosaic would take about 3 MB, over the 1 MB limit"):
        raw_source.read(mosaic, 0.0, 640, 2048, 200_000_000, max_bytes=1 << 20)
    with pytest.raises(DecodeError, match=r"RAW image is 818x546 \(0 MP\), over the 0 MP limit"):
        raw_source.read(mosaic, 0.0, 640, 2048, 400_000)


def test_pairs_are_planned_from_names_alone():
    def e(name):
        return CrawlEntry(f"/p/{name}", 1, 0)

    entries = [e("IMG_1.CR2"), e("IMG_1.JPG"), e("IMG_2.HEIC"), e("IMG_2.MOV"), e("IMG_3.dng"), e("VID_4.mp4"),
               e("IMG_5.jpg"), e("img_5.NEF"), e("IMG_6.HEIC"), e("IMG_6.JPG"), e("IMG_7.JPG"),
               CrawlEntry("/p/IMG_7.MOV", 200 << 20, 0)]
    todo, companions = pair(entries)
    # IMG_7.MOV is far bigger than a Live Photo's few seconds: a video of its own.
    assert [t.path for t in todo] == ["/p/IMG_1.JPG", "/p/IMG_2.HEIC", "/p/IMG_3.dng", "/p/VID_4.mp4", "/p/IMG_5.jpg",
                                      "/p/IMG_6.HEIC", "/p/IMG_6.JPG", "/p/IMG_7.JPG", "/p/IMG_7.MOV"]
    assert [(c.entry.path, c.kind, c.photo) for c in companions] == [
        ("/p/IMG_1.CR2", "raw", "/p/IMG_1.JPG"), ("/p/IMG_2.MOV", "live", "/p/IMG_2.HEIC"), ("/p/img_5.NEF", "raw", "/p/IMG_5.jpg"),
    ]


def test_raw_jpeg_pair_live_photo_and_motion_photo_are_one_shot_each(tmp_path, group_photo, group_rgb):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "IMG_1.CR2").write_bytes(dng_bytes(group_rgb, preview=True))  # LibRaw reads by content, not by name
    db = tmp_path / "lib.db"
    cli_ok(db, "scan", "-j", "1", str(lib))
    assert rows(db, "SELECT count(*) FROM faces") == [(5,)]

    # The camera's JPEG appears beside the RAW (exported later, or the card copied in two goes).
    shutil.copy(group_photo, lib / "IMG_1.JPG")
    clip = encode_video(tmp_path / "clip.mp4", [(0, 3, group_rgb)], seconds=3)
    (lib / "PXL_2.MP.jpg").write_bytes(motion_photo_bytes(group_rgb, clip.read_bytes()))
    Image.fromarray(group_rgb).save(lib / "IMG_3.JPG")
    shutil.copy(clip, lib / "IMG_3.MOV")
    result = cli_ok(db, "scan", "-j", "1", str(lib))

    kinds = dict(rows(db, "SELECT substr(path, length(?) + 2), kind FROM photos", [str(lib)]))
    assert kinds == {"IMG_1.JPG": "photo", "PXL_2.MP.jpg": "motion", "IMG_3.JPG": "photo"}
    # Each shot's five people once: not again from the RAW, the Live Photo's video or the Motion Photo's.
    assert rows(db, "SELECT count(*), count(DISTINCT photo_id) FROM faces") == [(15, 3)]
    assert rows(db, "SELECT substr(c.path, length(?) + 2), c.kind, substr(p.path, length(?) + 2) FROM companions c "
                    "JOIN photos p ON p.id = c.photo_id ORDER BY c.path", [str(lib), str(lib)]) == [
        ("IMG_1.CR2", "raw", "IMG_1.JPG"), ("IMG_3.MOV", "live", "IMG_3.JPG"),
    ]
    assert ("Read 1 Motion Photo (its still), 2 photos; 1 Live Photo video, 1 RAW file beside its JPEG not scanned "
            "(one shot with their photo).") in result.output

    # Names go into the pair's one sidecar: darktable's, beside the RAW, where it has one.
    darktable = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                 '<rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/" darktable:xmp_version="5"/>'
                 '</rdf:RDF></x:xmpmeta>')
    (lib / "IMG_1.CR2.xmp").write_text(darktable)
    cli_ok(db, "group")
    person = rows(db, "SELECT person_id FROM faces WHERE person_id IS NOT NULL ORDER BY x LIMIT 1")[0][0]
    cli_ok(db, "name", str(person), "Alice")
    cli_ok(db, "export", "--xmp")
    assert "Alice" in (lib / "IMG_1.CR2.xmp").read_text() and "darktable:xmp_version" in (lib / "IMG_1.CR2.xmp").read_text()
    assert not (lib / "IMG_1.JPG.xmp").exists() and (lib / "IMG_3.JPG.xmp").exists()
    assert not list(lib.glob("*.MOV.xmp"))


def test_motion_photos_are_told_by_their_xmp_or_samsung_trailer(group_rgb):
    from facecluster.sources.photo import is_motion_photo
    from tests.conftest import jpeg_bytes

    plain = jpeg_bytes(group_rgb)
    assert not is_motion_photo(plain)
    assert is_motion_photo(motion_photo_bytes(group_rgb, b"\x00\x00\x00\x18ftypmp42"))
    samsung = plain + b"MotionPhoto_Data" + b"\x00\x00\x00\x18ftypmp42" + bytes(100) + b"SEFT"
    assert is_motion_photo(samsung)
    assert not is_motion_photo(plain + b"Image_UTC_Data1700000000" + b"SEFT")  # a Samsung trailer without a video
