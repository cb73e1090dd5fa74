"""Write the names of named people into XMP sidecars beside the photos.

One sidecar's trouble never stops the others: a sidecar that cannot be read,
parsed or merged without loss is left untouched and reported, as is a name
XML cannot hold, and the export goes on with the next photo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from facecluster.atomic import write_atomic
from facecluster.errors import FaceclusterError
from facecluster.export import collect
from facecluster.store import Store
from facecluster.xmp import Region, SidecarProblem, existing_sidecar, read_sidecar, sidecar_with_regions, xml_safe


@dataclass(frozen=True)
class SidecarChange:
    photo: str
    sidecar: str
    names: tuple[str, ...]
    created: bool


@dataclass(frozen=True)
class SidecarSkipped:
    """A sidecar left as it was, or a name not written, and why."""

    path: str
    reason: str


@dataclass
class XmpSummary:
    changes: list[SidecarChange] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SidecarSkipped] = field(default_factory=list)


def export_xmp(store: Store, dry_run: bool = False) -> XmpSummary:
    """Write or merge a sidecar for every photo with a named person in it.

    Returns the sidecars that changed (or would, with `dry_run`), how many
    were already up to date, and those left untouched with the reason.
    Originals are never modified.

    Example:
        summary = export_xmp(Store("library.db"), dry_run=True)
    """
    summary = XmpSummary()
    by_photo: dict[str, tuple[int, int, list[Region]]] = {}
    for person in collect(store).people:
        if not person.name:
            continue
        if not xml_safe(person.name):
            # Names stored before control characters were refused: XML cannot hold them at all.
            summary.skipped.append(SidecarSkipped(
                f"#{person.id}", f"the name {person.name!r} has control characters XMP cannot hold; rename it"))
            continue
        for face in person.faces:
            if not face.width or not face.height or face.frame_ms is not None:
                continue  # a video's faces are regions of frames, not of the file: no sidecar holds them
            entry = by_photo.setdefault(face.path, (face.width, face.height, []))
            entry[2].append(Region(person.name, face.box))
    for photo, (width, height, regions) in sorted(by_photo.items()):
        if not os.path.exists(photo):
            continue  # gone from disk: nothing to write beside
        # A RAW+JPEG pair is one shot with one sidecar: the photo's own if it has one, else the one the
        # RAW's app keeps beside the RAW (darktable's IMG_1.CR2.xmp; Lightroom's IMG_1.xmp is found either way).
        raws = [path for path, kind in store.companions_of(photo) if kind == "raw"]
        try:
            change = _one_sidecar(photo, width, height, regions, dry_run, raws)
        except (SidecarProblem, FaceclusterError) as e:
            summary.skipped.append(SidecarSkipped(existing_sidecar(photo) or photo + ".xmp", str(e)))
            continue
        if change is None:
            summary.unchanged += 1
        else:
            summary.changes.append(change)
    return summary


def _one_sidecar(photo: str, width: int, height: int, regions: list[Region], dry_run: bool,
                 raws: list[str] = ()) -> SidecarChange | None:
    sidecar = existing_sidecar(photo) or next((s for s in map(existing_sidecar, raws) if s), None)
    created = sidecar is None
    target = Path(sidecar or photo + ".xmp")
    old = None
    try:
        if not created:
            # Only a regular file is merged into and replaced: a symlink (to /dev/zero, or to a
            # sidecar elsewhere), a FIFO or a device is the user's, left as it is and reported.
            old = read_sidecar(str(target), follow_symlinks=False)
        regions.sort(key=lambda r: (r.name, r.box))
        new = sidecar_with_regions(old, regions, width, height)
    except SidecarProblem as e:
        raise SidecarProblem(f"left untouched: {e}") from None
    if new == old:
        return None
    if not dry_run:
        # A new sidecar never replaces a name that appeared since we looked (overwrite=False).
        write_atomic(target, new, overwrite=not created)
    return SidecarChange(photo, str(target), tuple(sorted({r.name for r in regions})), created)
