"""XMP face regions: read the ones other photo apps wrote, write ours for them.

Two region dialects are read and written:

- Metadata Working Group (`mwg-rs:Regions`; digiKam, Lightroom, darktable,
  Immich): `Area` x/y is the region's centre, w/h its size, normalised to the
  photo as displayed (after EXIF orientation), with `AppliedToDimensions`.
- Microsoft Photo (`MP:RegionInfo`; Windows Photo Gallery, Picasa exports):
  `MPReg:Rectangle` "x, y, w, h" with x/y the top-left corner, normalised.

Sidecars come from other programs, so they are untrusted: they are parsed
with defusedxml (no DTDs, no entities) and never with a process-wide
namespace registry. Writing never touches a photo: it merges our regions into
the sidecar's own tree, in place, and serialises that tree with the sidecar's
own prefixes. Everything else stays: other properties, other apps' regions,
keywords; only a region of the same name as one of ours is replaced. A merge
that would lose anything we did not write (checked by comparing every
property before and after), or a sidecar we cannot parse, raises
`SidecarProblem`: the caller leaves that sidecar untouched and reports it.
Writing twice gives the same bytes.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from facecluster.errors import PeopleError
from facecluster.files import FileTooBig, NotRegularFile, read_regular
from facecluster.geometry import iou
from facecluster.naming_rules import clean_name

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
XML_NS = "http://www.w3.org/XML/1998/namespace"
MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # real sidecars are a few KB; a bigger one is not read, and not rewritten

# Characters XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


class SidecarProblem(Exception):
    """A sidecar we cannot parse, or cannot merge into without losing something: left untouched."""


@dataclass(frozen=True)
class Region:
    """A named face region in displayed pixels: x, y the top-left corner."""

    name: str
    box: tuple[float, float, float, float]


def xml_safe(text: str) -> bool:
    """Whether XML 1.0 can hold `text` (no control characters other than tab and newlines).

    Example:
        xml_safe("Ann") and not xml_safe("red\\x1b[31m")
    """
    return _NOT_XML.search(text) is None


def parse_xml(data: bytes) -> ET.Element:
    """The root element of untrusted XML, comments and processing instructions kept.

    Raises SidecarProblem for XML that does not parse, or that declares a DTD or entities.

    Example:
        root = parse_xml(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    """
    return _parse(data)[0]


class _Builder(ET.TreeBuilder):
    """A tree builder that also records the namespace declarations, (prefix, uri) in document order."""

    def __init__(self) -> None:
        super().__init__(insert_comments=True, insert_pis=True)
        self.prefixes: list[tuple[str, str]] = []

    def start_ns(self, prefix: str, uri: str) -> None:
        self.prefixes.append((prefix, uri))


def _parse(data: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    """parse_xml's tree, and the prefixes the document declares (one parse for both)."""
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    try:
        parser.feed(data)
        return parser.close(), builder.prefixes
    except ET.ParseError as e:
        raise SidecarProblem(f"not well-formed XML ({e})") from None
    except DefusedXmlException as e:
        raise SidecarProblem(f"refused: {type(e).__name__}") from None


# ---- reading -----------------------------------------------------------------------


def sidecar_candidates(photo: str) -> list[str]:
    """Sidecar names photo apps use: IMG_1.jpg.xmp (digiKam, darktable) and IMG_1.xmp (Lightroom)."""
    stem = os.path.splitext(photo)[0]
    return [photo + ".xmp", photo + ".XMP", stem + ".xmp", stem + ".XMP"]


def existing_sidecar(photo: str) -> str | None:
    """The first of `sidecar_candidates` that exists in any form: a FIFO, a device or a symlink
    (even a dangling one) counts, so that it is reported and left alone, never passed over for
    another candidate or replaced by a regular file."""
    for candidate in sidecar_candidates(photo):
        if os.path.lexists(candidate):
            return candidate
    return None


def read_sidecar(path: str, follow_symlinks: bool = True) -> bytes:
    """A sidecar's bytes, if it is a regular file of at most MAX_SIDECAR_BYTES; else SidecarProblem with why.

    Opened without blocking (a FIFO returns at once) and checked on the open
    descriptor, so a symlink to /dev/zero is refused rather than read for ever.

    Example:
        read_sidecar("IMG_1.jpg.xmp")
    """
    try:
        return read_regular(path, MAX_SIDECAR_BYTES, follow_symlinks)
    except (NotRegularFile, FileTooBig) as e:
        raise SidecarProblem(e.strerror) from None
    except OSError as e:
        if not follow_symlinks and os.path.islink(path):
            raise SidecarProblem("a symbolic link, not a regular file") from None
        raise SidecarProblem(f"cannot read it: {e.strerror or e}") from None


def embedded_xmp(data: bytes) -> bytes | None:
    """The XMP packet inside a JPEG, PNG, TIFF or WebP, found by its wrapper."""
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start)
    return data[start : end + len(b"</x:xmpmeta>")] if end > 0 else None


def read_regions(photo: str, data: bytes, width: int, height: int) -> tuple[list[Region], str | None]:
    """Named face regions from the sidecar (preferred, as apps write there) or the embedded XMP,
    and, where the sidecar could not be read, a warning saying why (the photo itself is never lost).

    Example:
        regions, warning = read_regions("/p/IMG_1.jpg", jpeg_bytes, 4032, 3024)
    """
    warning = None
    sidecar = existing_sidecar(photo)
    if sidecar:
        try:
            regions = _regions_in(parse_xml(read_sidecar(sidecar)), width, height)
            if regions:
                return regions, None
        except SidecarProblem as e:
            warning = f"face names in its sidecar {os.path.basename(sidecar)} not read: {e}"
    embedded = embedded_xmp(data)
    return (parse_regions(embedded, width, height) if embedded else []), warning


def parse_regions(packet: bytes, width: int, height: int) -> list[Region]:
    """MWG regions, else Microsoft ones, of type Face with a valid name, in displayed pixels.

    Names go through the same `clean_name` as `facecluster name`: a region whose
    name it refuses (control characters, only digits, too long) is not read.
    """
    try:
        root = parse_xml(packet)
    except SidecarProblem:
        return []  # a broken packet must not cost the photo
    return _regions_in(root, width, height)


def _regions_in(root: ET.Element, width: int, height: int) -> list[Region]:
    regions = []
    for item in root.iter(_q("mwg-rs:RegionList")):
        for li in item.iter(_q("rdf:li")):
            name = _clean(_value(li, "mwg-rs:Name"))
            kind = _value(li, "mwg-rs:Type") or "Face"
            area = li.find(_q("mwg-rs:Area"))
            if not name or kind != "Face" or area is None:
                continue
            try:
                cx, cy, w, h = (float(_value(area, f"stArea:{k}")) for k in "xywh")
            except (TypeError, ValueError):
                continue
            regions.append(Region(name, ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)))
    if regions:
        return regions
    for li in root.iter(_q("rdf:li")):
        name = _clean(_value(li, "MPReg:PersonDisplayName"))
        rect = _value(li, "MPReg:Rectangle")
        if not name or not rect:
            continue
        try:
            x, y, w, h = (float(v) for v in rect.split(","))
        except ValueError:
            continue
        regions.append(Region(name, (x * width, y * height, w * width, h * height)))
    return regions


def _clean(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return clean_name(name)
    except PeopleError:
        return None


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


# ---- writing -----------------------------------------------------------------------


PACKET_START = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_END = b'\n<?xpacket end="w"?>\n'



def _drop_regions(descriptions: list, container: str, name_tag: str, names: set[str]) -> None:
    """Remove, from every `container` (one XMP dialect's region list), the regions named in `names`:
    ours replace them, and every other region is left as it is."""
    for d in descriptions:
        for found in d.findall(_q(container)):
            for bag in found.iter(_q("rdf:Bag")):
                for li in list(bag.findall(_q("rdf:li"))):
                    if _value(li, name_tag) in names:
                        bag.remove(li)

def sidecar_with_regions(existing: bytes | None, regions: list[Region], width: int, height: int) -> bytes:
    """The sidecar's new bytes: `existing` (or an empty packet) with our regions merged in.

    Raises SidecarProblem where `existing` cannot be parsed or merged without
    losing something; `regions` must have XML-safe names (see `xml_safe`).

    Example:
        sidecar_with_regions(None, [Region("Ann", (10, 20, 30, 40))], 640, 480)
    """
    unsafe = [r.name for r in regions if not xml_safe(r.name)]
    if unsafe:
        raise ValueError(f"names XML cannot hold: {unsafe!r}")
    root, rdf, prefixes = _packet(existing)
    ours = {r.name for r in regions}
    before = _inventory(root, ours)

    descriptions = rdf.findall(_q("rdf:Description"))
    if not descriptions:
        descriptions = [ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})]
    home = next((d for d in descriptions if d.find(_q("mwg-rs:Regions")) is not None), descriptions[0])
    _merge_mwg_regions(descriptions, home, regions, width, height)
    _merge_microsoft_regions(descriptions, home, regions, width, height)
    _merge_keywords(descriptions, home, ours)

    lost = before - _inventory(root, ours)
    if lost:
        path, _, text = next(iter(lost))
        raise SidecarProblem(f"merging would lose {_readable_tag(str(path[-1]))}{' ' + repr(text) if text else ''}")
    ET.indent(root, space=" ")
    data = PACKET_START + serialise(root, prefixes) + PACKET_END
    parse_xml(data)  # never write what we could not read back
    return data


def _packet(existing: bytes | None) -> tuple[ET.Element, ET.Element, list[tuple[str, str]]]:
    """(root, its rdf:RDF, namespace prefixes) of `existing`, or of a new empty packet."""
    if existing is None:
        root = ET.Element(_q("x:xmpmeta"))
        ET.SubElement(root, _q("rdf:RDF"))
        prefixes: list[tuple[str, str]] = []
    else:
        root, prefixes = _parse(existing)
    if root.tag == _q("x:xmpmeta"):
        rdf = root.find(_q("rdf:RDF"))
        if rdf is None:
            rdf = ET.SubElement(root, _q("rdf:RDF"))
    elif root.tag == _q("rdf:RDF"):
        rdf = root  # valid XMP without the x:xmpmeta wrapper: kept as it is
    else:
        raise SidecarProblem(f"not an XMP packet (its root element is {_readable_tag(root.tag)})")
    return root, rdf, prefixes


def _merge_mwg_regions(descriptions: list[ET.Element], home: ET.Element, regions: list[Region], width: int, height: int) -> None:
    """MWG: drop the regions we replace (same name) wherever they are, then add ours to the first list."""
    _drop_regions(descriptions, "mwg-rs:Regions", "mwg-rs:Name", {r.name for r in regions})
    mwg = home.find(_q("mwg-rs:Regions"))
    if mwg is None:
        mwg = ET.SubElement(home, _q("mwg-rs:Regions"), {_q("rdf:parseType"): "Resource"})
    bag = _bag(mwg, "mwg-rs:RegionList")
    # AppliedToDimensions belongs to the whole list: another app placed its regions against the
    # dimensions it wrote, so while one of its regions is in the list they are kept as it wrote
    # them (ours are normalised, right at any size). Ours only where there is none, or where
    # every region left is ours.
    dimensions = mwg.findall(_q("mwg-rs:AppliedToDimensions"))
    if not dimensions or not bag.findall(_q("rdf:li")):
        for old in dimensions:
            mwg.remove(old)
        mwg.insert(0, ET.Element(_q("mwg-rs:AppliedToDimensions"), {
            _q("stDim:w"): str(width), _q("stDim:h"): str(height), _q("stDim:unit"): "pixel",
        }))
    for r in regions:
        x, y, w, h = _normalised(r.box, width, height)
        li = ET.SubElement(bag, _q("rdf:li"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(li, _q("mwg-rs:Name")).text = r.name
        ET.SubElement(li, _q("mwg-rs:Type")).text = "Face"
        ET.SubElement(li, _q("mwg-rs:Area"), {
            _q("stArea:x"): _num(x + w / 2), _q("stArea:y"): _num(y + h / 2),
            _q("stArea:w"): _num(w), _q("stArea:h"): _num(h), _q("stArea:unit"): "normalized",
        })


def _merge_microsoft_regions(descriptions: list[ET.Element], home: ET.Element, regions: list[Region], width: int,
                             height: int) -> None:
    """Microsoft: the same as MWG, in MP:RegionInfo."""
    _drop_regions(descriptions, "MP:RegionInfo", "MPReg:PersonDisplayName", {r.name for r in regions})
    mp_home = next((d for d in descriptions if d.find(_q("MP:RegionInfo")) is not None), home)
    mp = mp_home.find(_q("MP:RegionInfo"))
    if mp is None:
        mp = ET.SubElement(mp_home, _q("MP:RegionInfo"), {_q("rdf:parseType"): "Resource"})
    mp_bag = _bag(mp, "MPRI:Regions")
    for r in regions:
        x, y, w, h = _normalised(r.box, width, height)
        li = ET.SubElement(mp_bag, _q("rdf:li"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(li, _q("MPReg:Rectangle")).text = ", ".join(_num(v) for v in (x, y, w, h))
        ET.SubElement(li, _q("MPReg:PersonDisplayName")).text = r.name


def _merge_keywords(descriptions: list[ET.Element], home: ET.Element, ours: set[str]) -> None:
    """Keywords: the old ones in their order, then ours."""
    subject = next((s for d in descriptions for s in d.findall(_q("dc:subject"))), None)
    if subject is None:
        subject = ET.SubElement(home, _q("dc:subject"))
    keywords = subject.find(_q("rdf:Bag"))
    if keywords is None:
        keywords = ET.SubElement(subject, _q("rdf:Bag"))
    present = {(li.text or "").strip() for li in keywords.findall(_q("rdf:li"))}
    for name in sorted(ours - present):
        ET.SubElement(keywords, _q("rdf:li")).text = name


def _bag(container: ET.Element, list_name: str) -> ET.Element:
    holder = container.find(_q(list_name))
    if holder is None:
        holder = ET.SubElement(container, _q(list_name))
    bag = holder.find(_q("rdf:Bag"))
    if bag is None:
        bag = ET.SubElement(holder, _q("rdf:Bag"))
    return bag


def _inventory(root: ET.Element, replaced: set[str]) -> Counter:
    """Every property in the tree as (tag path, attributes, text), except the parts an export rewrites.

    Those are the regions named like ours and `AppliedToDimensions`; what a
    merge adds is never in the old inventory, so old minus new is what it lost.
    """
    found: Counter = Counter()

    def walk(element: ET.Element, path: tuple[str, ...]) -> None:
        if not isinstance(element.tag, str):  # comment or processing instruction
            found[(path + ("#" + str(element.tag.__name__ if callable(element.tag) else element.tag),),
                   (), (element.text or "").strip())] += 1
            return
        if element.tag == _q("mwg-rs:AppliedToDimensions"):
            return
        if element.tag == _q("rdf:li") and (
            _value(element, "mwg-rs:Name") in replaced or _value(element, "MPReg:PersonDisplayName") in replaced
        ):
            return
        here = path + (element.tag,)
        found[(here, tuple(sorted(element.attrib.items())), (element.text or "").strip())] += 1
        for child in element:
            walk(child, here)

    walk(root, ())
    return found


def serialise(root: ET.Element, declared: list[tuple[str, str]]) -> bytes:
    """UTF-8 XML for `root`, using the document's own prefixes, every namespace declared on the root.

    ElementTree's writer takes prefixes from a process-wide registry (which
    refuses names like `ns1`); this one takes them from the document itself.

    Example:
        serialise(ET.fromstring("<a xmlns:p='u'><p:b/></a>"), [("p", "u")])
    """
    preferred: dict[str, str] = {}
    for prefix, uri in declared:
        if prefix and uri not in preferred:
            preferred[uri] = prefix
    for prefix, uri in NS.items():
        preferred.setdefault(uri, prefix)
    chosen: dict[str, str] = {XML_NS: "xml"}
    taken = {"xml", "xmlns"}

    def prefix_of(uri: str) -> str:
        if uri not in chosen:
            prefix = preferred.get(uri, "")
            n = 0
            while not prefix or prefix in taken:
                prefix, n = f"fc{n}", n + 1
            chosen[uri] = prefix
            taken.add(prefix)
        return chosen[uri]

    def name(tag: str) -> str:
        if tag.startswith("{"):
            uri, local = tag[1:].split("}", 1)
            return f"{prefix_of(uri)}:{local}"
        return tag

    parts: list[str] = []

    def emit(element: ET.Element) -> None:
        if element.tag is ET.Comment:
            parts.append(f"<!--{element.text or ''}-->")
        elif element.tag is ET.ProcessingInstruction:
            parts.append(f"<?{element.text or ''}?>")
        else:
            tag = name(element.tag)
            attributes = "".join(f' {name(k)}="{_escape_attribute(v)}"' for k, v in element.attrib.items())
            if element is root:
                attributes = "\0" + attributes  # the namespace declarations go here, once all prefixes are known
            if len(element) or element.text:
                parts.append(f"<{tag}{attributes}>{_escape_text(element.text or '')}")
                for child in element:
                    emit(child)
                parts.append(f"</{tag}>")
            else:
                parts.append(f"<{tag}{attributes}/>")
        if element is not root and element.tail:
            parts.append(_escape_text(element.tail))

    emit(root)
    declarations = "".join(f' xmlns:{p}="{_escape_attribute(u)}"' for u, p in chosen.items() if u != XML_NS)
    parts[0] = parts[0].replace("\0", declarations, 1)
    return "".join(parts).encode("utf-8")


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(text: str) -> str:
    return (_escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
            .replace("\t", "&#9;"))


def _readable_tag(tag: str) -> str:
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        return f"<{local}> of {uri}"
    return f"<{tag}>"


def _normalised(box, width, height):
    x, y, w, h = box
    x, y = max(0.0, x), max(0.0, y)
    w, h = min(w, width - x), min(h, height - y)
    return x / width, y / height, w / width, h / height


def _num(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v else "0"
