"""XMP sidecars: never lose what other apps wrote, never write what XML cannot hold, one bad file never stops the rest.

exiftool reads every sidecar back: it is the reference other photo apps agree with.
"""

import os
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from facecluster.store import Store
from facecluster.xmp import Region, SidecarProblem, parse_regions, parse_xml, sidecar_with_regions
from tests.conftest import cli_ok as ok
from tests.conftest import cli_run as run
from tests.test_export import add_photo, exif_json, exiftool, make_person

BOX = (100.0, 80.0, 120.0, 140.0)


def tags_of(path) -> dict:
    """Every tag exiftool reads from a sidecar, grouped by namespace, structures kept."""
    tags = exif_json("-G1", "-XMP:all", str(path))
    tags.pop("SourceFile", None)
    return tags


def library(tmp_path, count=3, name="Ann"):
    """`count` real photos, each with one face of a person called `name`."""
    db = tmp_path / "faces.db"
    store = Store(db)
    faces = [add_photo(store, tmp_path / "photos" / f"{i}.jpg", [BOX])[0] for i in range(count)]
    make_person(store, faces, name)
    store.close()
    return db, [tmp_path / "photos" / f"{i}.jpg" for i in range(count)]


def region_names(tags) -> list[str]:
    regions = tags.get("XMP-mwg-rs:RegionInfo", {}).get("RegionList", [])
    return sorted(r.get("Name", "") for r in regions)


def test_a_sidecar_we_cannot_parse_is_left_untouched_and_the_rest_are_written(tmp_path):
    db, photos = library(tmp_path)
    broken = Path(str(photos[0]) + ".xmp")
    # An unescaped & (exiftool reads this one anyway) beside a rating.
    broken.write_bytes(
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        b'xmp:Rating="5"><dc:description>Tom & Jerry</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>'
    )
    before = broken.read_bytes()
    result = run(db, "export", "--xmp")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"not written: {broken}: left untouched: not well-formed XML" in result.stderr
    assert "1 sidecar or name could not be written" in result.output
    assert broken.read_bytes() == before
    for photo in photos[1:]:
        assert region_names(tags_of(str(photo) + ".xmp")) == ["Ann"]


def test_a_sidecar_without_the_xmpmeta_wrapper_keeps_its_rating_and_keywords(tmp_path):
    db, photos = library(tmp_path, 1)
    sidecar = Path(str(photos[0]) + ".xmp")
    sidecar.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        ' <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="5">\n'
        '  <dc:subject><rdf:Bag><rdf:li>Holiday</rdf:li><rdf:li>Beach</rdf:li></rdf:Bag></dc:subject>\n'
        ' </rdf:Description>\n</rdf:RDF>\n'
    )
    assert tags_of(sidecar)["XMP-xmp:Rating"] == 5
    ok(db, "export", "--xmp")
    tags = tags_of(sidecar)
    assert tags["XMP-xmp:Rating"] == 5
    assert tags["XMP-dc:Subject"] == ["Holiday", "Beach", "Ann"]
    assert region_names(tags) == ["Ann"]


def test_unknown_prefixes_like_ns1_neither_abort_nor_touch_the_process(tmp_path):
    db, photos = library(tmp_path, 2)
    sidecar = Path(str(photos[0]) + ".xmp")
    sidecar.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:ns1="http://example.com/one/" xmlns:ns0="http://example.com/zero/" '
        'xmlns:dc="http://example.com/not-dublin-core/" ns1:Colour="blue"><ns0:Mood>calm</ns0:Mood>'
        '<dc:Thing>kept</dc:Thing></rdf:Description></rdf:RDF></x:xmpmeta>'
    )
    registry = dict(ET._namespace_map)
    result = ok(db, "export", "--xmp")
    assert "2 sidecars changed" in result.stderr
    assert dict(ET._namespace_map) == registry  # nothing process-wide was registered
    text = sidecar.read_text()
    assert 'ns1:Colour="blue"' in text and "<ns0:Mood>calm</ns0:Mood>" in text
    root = parse_xml(sidecar.read_bytes())
    assert root.find(".//{http://example.com/not-dublin-core/}Thing").text == "kept"
    assert root.find(".//{http://purl.org/dc/elements/1.1/}subject") is not None  # real dc, another prefix
    assert region_names(tags_of(sidecar)) == ["Ann"]


def test_no_property_of_another_app_is_lost(tmp_path):
    db, photos = library(tmp_path, 1)
    photo = photos[0]
    sidecar = Path(str(photo) + ".xmp")
    subprocess.run(
        [exiftool(), "-q", "-o", str(sidecar), "-XMP-xmp:Rating=4", "-XMP-xmp:Label=Red", "-XMP-dc:Subject=Holiday",
         "-XMP-dc:Description=Tom & Jerry <3", "-XMP-dc:Creator=Ann", "-XMP-dc:Creator=Bob",
         "-XMP-xmpMM:History={Action=saved,When=2020:01:01 10:00:00,SoftwareAgent=Lightroom}",
         "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=100,H=100,Unit=pixel},RegionList=["
         "{Name=Bob,Type=Face,Area={X=0.9,Y=0.9,W=0.1,H=0.1,Unit=normalized}},"
         "{Type=Pet,Area={X=0.2,Y=0.2,W=0.1,H=0.1,Unit=normalized}},"
         "{Name=Ann,Type=Face,Area={X=0.5,Y=0.5,W=0.3,H=0.3,Unit=normalized}},"
         "{Type=Focus,Description=sharp here}]}",
         "-XMP-MP:RegionInfoMP={DateRegionsValid=2020:01:01,Regions=[{PersonDisplayName=Carol,Rectangle=0.1|, 0.1|, 0.2|, 0.2}]}",
         str(photo)],
        check=True,
    )
    before = tags_of(sidecar)
    ok(db, "export", "--xmp")
    after = tags_of(sidecar)
    ours = ("XMP-mwg-rs:RegionInfo", "XMP-MP:RegionInfoMP", "XMP-dc:Subject")
    assert {k: v for k, v in after.items() if k not in ours} == {k: v for k, v in before.items() if k not in ours}
    regions = after["XMP-mwg-rs:RegionInfo"]["RegionList"]
    old = [r for r in before["XMP-mwg-rs:RegionInfo"]["RegionList"] if r.get("Name") != "Ann"]
    assert regions[: len(old)] == old  # Bob, the pet and the focus region, exactly as they were
    assert [r["Name"] for r in regions[len(old):]] == ["Ann"] and regions[-1]["Area"]["W"] != 0.3  # ours replaced
    # The dimensions the other app placed its regions against, as it wrote them (not our 640 x 480).
    assert after["XMP-mwg-rs:RegionInfo"]["AppliedToDimensions"] == {"W": 100, "H": 100, "Unit": "pixel"}
    mp = after["XMP-MP:RegionInfoMP"]
    assert mp["DateRegionsValid"] == before["XMP-MP:RegionInfoMP"]["DateRegionsValid"]
    assert [r["PersonDisplayName"] for r in mp["Regions"]] == ["Carol", "Ann"]
    assert after["XMP-dc:Subject"] == ["Holiday", "Ann"]
    assert ok(db, "export", "--xmp").stderr.count("0 sidecars changed, 1 already up to date") == 1


def test_names_with_control_characters_never_make_invalid_xml(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    shared = add_photo(store, tmp_path / "photos" / "both.jpg", [BOX, (400.0, 80.0, 120.0, 140.0)])
    alone = add_photo(store, tmp_path / "photos" / "alone.jpg", [BOX])
    red = "\x1b[31mred\x1b]0;pwned\x07"
    make_person(store, [shared[0]], red)  # stored before names were checked
    make_person(store, [shared[1]] + alone, "Ann")
    store.close()
    result = run(db, "export", "--xmp")
    assert result.exit_code == 1 and "control characters" in result.stderr and "Traceback" not in result.output
    for sidecar in (tmp_path / "photos").glob("*.xmp"):
        parse_xml(sidecar.read_bytes())  # every sidecar is valid XML
        assert region_names(tags_of(sidecar)) == ["Ann"]
    assert len(list((tmp_path / "photos").glob("*.xmp"))) == 2


def test_a_long_file_name_does_not_block_the_export(tmp_path):
    db = tmp_path / "faces.db"
    store = Store(db)
    folder = tmp_path / "photos"
    long_name, too_long = "x" * 236 + ".jpg", "y" * 248 + ".jpg"  # 240 bytes; 252 (its sidecar would be 256)
    faces = [add_photo(store, folder / name, [BOX])[0] for name in ("a.jpg", long_name, too_long, "z.jpg")]
    make_person(store, faces, "Ann")
    store.close()
    result = run(db, "export", "--xmp")
    assert result.exit_code == 1 and "File name too long" in result.stderr
    written = sorted(p.name for p in folder.glob("*.xmp"))
    assert written == sorted(["a.jpg.xmp", long_name + ".xmp", "z.jpg.xmp"])
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_dtd_and_entity_tricks_are_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    with pytest.raises(SidecarProblem):
        sidecar_with_regions(bomb, [Region("Ann", BOX)], 640, 480)
    assert parse_regions(bomb, 640, 480) == []


def test_writing_twice_gives_the_same_bytes():
    once = sidecar_with_regions(None, [Region("Ann & <Bob>", BOX)], 640, 480)
    assert sidecar_with_regions(once, [Region("Ann & <Bob>", BOX)], 640, 480) == once


def test_names_read_from_xmp_go_through_clean_name():
    rows = "".join(
        f'<rdf:li rdf:parseType="Resource"><mwg-rs:Name>{name}</mwg-rs:Name><mwg-rs:Type>Face</mwg-rs:Type>'
        f'<mwg-rs:Area stArea:x="0.{i + 1}" stArea:y="0.5" stArea:w="0.1" stArea:h="0.1"/></rdf:li>'
        for i, name in enumerate(["12345", "  Ann \t  Lee ", "x" * 5000, "Zoë\u202e"])
    )
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
        'xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"><mwg-rs:Regions rdf:parseType="Resource">'
        f"<mwg-rs:RegionList><rdf:Bag>{rows}</rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    assert [r.name for r in parse_regions(packet, 1000, 1000)] == ["Ann Lee"]


def test_applied_to_dimensions_is_ours_only_where_every_region_is_ours():
    mine = sidecar_with_regions(None, [Region("Ann", (10, 20, 30, 40))], 640, 480)
    assert b'stDim:w="640"' in mine
    # Our region moved and the photo's size changed (say, scanned again after an edit): ours follow.
    again = sidecar_with_regions(mine, [Region("Ann", (12, 20, 30, 40))], 1280, 960)
    assert b'stDim:w="1280"' in again and b'stDim:w="640"' not in again
    theirs = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              b'<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
              b'xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#" xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">'
              b'<mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:AppliedToDimensions stDim:w="4000" stDim:h="3000" '
              b'stDim:unit="pixel"/><mwg-rs:RegionList><rdf:Bag><rdf:li rdf:parseType="Resource"><mwg-rs:Name>Bob</mwg-rs:Name>'
              b'<mwg-rs:Type>Face</mwg-rs:Type><mwg-rs:Area stArea:x="0.5" stArea:y="0.5" stArea:w="0.1" stArea:h="0.1" '
              b'stArea:unit="normalized"/></rdf:li></rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions></rdf:Description></rdf:RDF></x:xmpmeta>')
    merged = sidecar_with_regions(theirs, [Region("Ann", (10, 20, 30, 40))], 640, 480)
    assert b'stDim:w="4000" stDim:h="3000"' in merged and b'stDim:w="640"' not in merged
    assert sidecar_with_regions(merged, [Region("Ann", (10, 20, 30, 40))], 640, 480) == merged


def test_sidecars_that_are_not_regular_files_are_left_alone_and_reported(tmp_path):
    db, photos = library(tmp_path, 4)
    zero, fifo, linked = (Path(str(p) + ".xmp") for p in photos[:3])
    os.symlink("/dev/zero", zero)  # read whole, it never ends; replaced, it became a 0666 regular file
    os.mkfifo(fifo)  # opened for reading, it waits for a writer for ever
    elsewhere = tmp_path / "elsewhere.xmp"
    elsewhere.write_bytes(sidecar_with_regions(None, [Region("Bob", (1, 2, 3, 4))], 640, 480))
    before = elsewhere.read_bytes()
    os.symlink(elsewhere, linked)
    result = run(db, "export", "--xmp")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"not written: {zero}: left untouched: a symbolic link, not a regular file" in result.stderr
    assert f"not written: {fifo}: left untouched: a FIFO (named pipe), not a regular file" in result.stderr
    assert f"not written: {linked}: left untouched: a symbolic link, not a regular file" in result.stderr
    assert "3 sidecars or names could not be written" in result.output
    assert os.readlink(zero) == "/dev/zero" and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.readlink(linked) == str(elsewhere) and elsewhere.read_bytes() == before
    assert region_names(tags_of(str(photos[3]) + ".xmp")) == ["Ann"]
    assert not [p for p in (tmp_path / "photos").iterdir() if p.name.startswith(".fc-")]
