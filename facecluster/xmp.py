"""XMP face regions: read the ones other photo apps wrote, write ours for them.

Two region dialects are read and written:

- Metadata Working Group (`mwg-rs:Regions`; digiKam, Lightroom, darktable,
  Immich): `Area` x/y is the region's centre, w/h its size, normalised to the
  photo as displayed (after EXIF orientation), with `AppliedToDimensions`.
- Microsoft Photo (`MP:RegionInfo`; Windows Photo Gallery, Picasa exports):
  `MPReg:Rectangle` "x, y, w, h" with x/y the top-left corner, normalised.

Writing never touches a photo: it writes or merges a sidecar. Regions and
keywords that were there before are kept, except regions this export
replaces (same name, or the same face); writing twice gives the same file.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "MP": "http://ns.microsoft.com/photo/1.2/",
    "MPRI": "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
    "MPReg": "http://ns.microsoft.com/photo/1.2/t/Region#",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


@dataclass(frozen=True)
class Region:
    """A named face region in displayed pixels: x, y the top-left corner."""

    name: str
    box: tuple[float, float, float, float]


# ---- reading -----------------------------------------------------------------------


def sidecar_candidates(photo: str) -> list[str]:
    """Sidecar names photo apps use: IMG_1.jpg.xmp (digiKam, darktable) and IMG_1.xmp (Lightroom)."""
    stem = os.path.splitext(photo)[0]
    return [photo + ".xmp", photo + ".XMP", stem + ".xmp", stem + ".XMP"]


def existing_sidecar(photo: str) -> str | None:
    for candidate in sidecar_candidates(photo):
        if os.path.isfile(candidate):
            return candidate
    return None


def embedded_xmp(data: bytes) -> bytes | None:
    """The XMP packet inside a JPEG, PNG, TIFF or WebP, found by its wrapper."""
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start)
    return data[start : end + len(b"</x:xmpmeta>")] if end > 0 else None


def read_regions(photo: str, data: bytes, width: int, height: int) -> list[Region]:
    """Named face regions from the sidecar (preferred, as apps write there) or the embedded XMP."""
    packets = []
    sidecar = existing_sidecar(photo)
    if sidecar:
        try:
            packets.append(Path(sidecar).read_bytes())
        except OSError:
            pass
    embedded = embedded_xmp(data)
    if embedded:
        packets.append(embedded)
    for packet in packets:
        regions = parse_regions(packet, width, height)
        if regions:
            return regions
    return []


def parse_regions(packet: bytes, width: int, height: int) -> list[Region]:
    """MWG regions, else Microsoft ones, of type Face with a name, in displayed pixels."""
    try:
        root = ET.fromstring(packet)
    except ET.ParseError:
        return []  # a broken sidecar must not cost the photo
    regions = []
    for item in root.iter(_q("mwg-rs:RegionList")):
        for li in item.iter(_q("rdf:li")):
            name = _value(li, "mwg-rs:Name")
            kind = _value(li, "mwg-rs:Type") or "Face"
            area = li.find(_q("mwg-rs:Area"))
            if not name or kind != "Face" or area is None:
                continue
            try:
                cx, cy, w, h = (float(_value(area, f"stArea:{k}")) for k in "xywh")
            except (TypeError, ValueError):
                continue
            regions.append(Region(name.strip(), ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)))
    if regions:
        return regions
    for li in root.iter(_q("rdf:li")):
        name = _value(li, "MPReg:PersonDisplayName")
        rect = _value(li, "MPReg:Rectangle")
        if not name or not rect:
            continue
        try:
            x, y, w, h = (float(v) for v in rect.split(","))
        except ValueError:
            continue
        regions.append(Region(name.strip(), (x * width, y * height, w * width, h * height)))
    return regions


def _value(element: ET.Element, name: str) -> str | None:
    """A property given either as an attribute or as a child element."""
    key = _q(name)
    if key in element.attrib:
        return element.attrib[key]
    child = element.find(key)
    if child is None:
        return None
    if child.text and child.text.strip():
        return child.text.strip()
    # rdf:Alt / rdf:Bag wrapped values
    li = child.find(f".//{_q('rdf:li')}")
    return li.text.strip() if li is not None and li.text else None


def match_regions(regions: list[Region], boxes: list[tuple[float, float, float, float]], min_iou: float = 0.3) -> list[str | None]:
    """The region name for each detected face box (x, y, w, h), by best overlap."""
    names: list[str | None] = [None] * len(boxes)
    pairs = sorted(
        ((iou(r.box, b), i, r.name) for r in regions for i, b in enumerate(boxes)), reverse=True
    )
    used_regions: set[str] = set()
    for overlap, i, name in pairs:
        if overlap < min_iou:
            break
        if names[i] is None and name not in used_regions:
            names[i] = name
            used_regions.add(name)
    return names


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


# ---- writing -----------------------------------------------------------------------


def sidecar_with_regions(existing: bytes | None, regions: list[Region], width: int, height: int) -> bytes:
    """The sidecar's new bytes: `existing` (or an empty packet) with our regions merged in."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = None
    if existing:
        for prefix, uri in _namespaces(existing):
            if prefix and prefix not in NS:
                ET.register_namespace(prefix, uri)
        try:
            root = ET.fromstring(existing)
        except ET.ParseError:
            root = None  # unreadable: replaced (the caller keeps a backup)
    if root is None or root.tag != _q("x:xmpmeta"):
        root = ET.Element(_q("x:xmpmeta"))
        ET.SubElement(root, _q("rdf:RDF"))
    rdf = root.find(_q("rdf:RDF"))
    if rdf is None:
        rdf = ET.SubElement(root, _q("rdf:RDF"))
    descriptions = rdf.findall(_q("rdf:Description"))
    description = descriptions[0] if descriptions else ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})

    ours = {r.name for r in regions}
    kept_mwg, kept_mp = [], []
    for d in descriptions or [description]:
        for old in d.findall(_q("mwg-rs:Regions")):
            for li in old.iter(_q("rdf:li")):
                if _value(li, "mwg-rs:Name") not in ours and li.find(_q("mwg-rs:Area")) is not None:
                    kept_mwg.append(li)
            d.remove(old)
        for old in d.findall(_q("MP:RegionInfo")):
            for li in old.iter(_q("rdf:li")):
                if _value(li, "MPReg:PersonDisplayName") not in ours and _value(li, "MPReg:Rectangle"):
                    kept_mp.append(li)
            d.remove(old)

    mwg = ET.SubElement(description, _q("mwg-rs:Regions"), {_q("rdf:parseType"): "Resource"})
    ET.SubElement(mwg, _q("mwg-rs:AppliedToDimensions"), {
        _q("stDim:w"): str(width), _q("stDim:h"): str(height), _q("stDim:unit"): "pixel",
    })
    bag = ET.SubElement(ET.SubElement(mwg, _q("mwg-rs:RegionList")), _q("rdf:Bag"))
    for li in kept_mwg:
        bag.append(li)
    for r in regions:
        x, y, w, h = _normalised(r.box, width, height)
        li = ET.SubElement(bag, _q("rdf:li"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(li, _q("mwg-rs:Name")).text = r.name
        ET.SubElement(li, _q("mwg-rs:Type")).text = "Face"
        ET.SubElement(li, _q("mwg-rs:Area"), {
            _q("stArea:x"): _num(x + w / 2), _q("stArea:y"): _num(y + h / 2),
            _q("stArea:w"): _num(w), _q("stArea:h"): _num(h), _q("stArea:unit"): "normalized",
        })

    mp = ET.SubElement(description, _q("MP:RegionInfo"), {_q("rdf:parseType"): "Resource"})
    mp_bag = ET.SubElement(ET.SubElement(mp, _q("MPRI:Regions")), _q("rdf:Bag"))
    for li in kept_mp:
        mp_bag.append(li)
    for r in regions:
        x, y, w, h = _normalised(r.box, width, height)
        li = ET.SubElement(mp_bag, _q("rdf:li"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(li, _q("MPReg:Rectangle")).text = ", ".join(_num(v) for v in (x, y, w, h))
        ET.SubElement(li, _q("MPReg:PersonDisplayName")).text = r.name

    # Keywords: the old ones in their order, then ours. The element moves after
    # the regions every time, so that a second export writes the same bytes.
    subject = description.find(_q("dc:subject"))
    if subject is None:
        subject = ET.Element(_q("dc:subject"))
    else:
        description.remove(subject)
    description.append(subject)
    keywords = subject.find(_q("rdf:Bag"))
    if keywords is None:
        keywords = ET.SubElement(subject, _q("rdf:Bag"))
    present = {li.text for li in keywords.findall(_q("rdf:li"))}
    for name in sorted(ours - present):
        ET.SubElement(keywords, _q("rdf:li")).text = name

    ET.indent(root, space=" ")
    out = io.BytesIO()
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=False)
    return b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + out.getvalue() + b'\n<?xpacket end="w"?>\n'


def _normalised(box, width, height):
    x, y, w, h = box
    x, y = max(0.0, x), max(0.0, y)
    w, h = min(w, width - x), min(h, height - y)
    return x / width, y / height, w / width, h / height


def _num(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v else "0"


def _namespaces(data: bytes) -> list[tuple[str, str]]:
    found = []
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            found.append((prefix, uri))
    except ET.ParseError:
        pass
    return found

