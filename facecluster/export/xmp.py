"""Write the names of named people into XMP sidecars beside the photos."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from facecluster.errors import FaceclusterError
from facecluster.export import collect
from facecluster.store import Store
from facecluster.xmp import Region, existing_sidecar, sidecar_with_regions


@dataclass(frozen=True)
class SidecarChange:
    photo: str
    sidecar: str
    names: tuple[str, ...]
    created: bool


def export_xmp(store: Store, dry_run: bool = False) -> tuple[list[SidecarChange], int]:
    """Write or merge a sidecar for every photo with a named person in it.

    Returns the sidecars that changed (or would, with `dry_run`) and how many
    were already up to date. Originals are never modified.

    Example:
        changes, unchanged = export_xmp(Store("library.db"), dry_run=True)
    """
    by_photo: dict[str, tuple[int, int, list[Region]]] = {}
    for person in collect(store).people:
        if not person.name:
            continue
        for face in person.faces:
            if not face.width or not face.height:
                continue
            entry = by_photo.setdefault(face.path, (face.width, face.height, []))
            entry[2].append(Region(person.name, face.box))
    changes, unchanged = [], 0
    for photo, (width, height, regions) in sorted(by_photo.items()):
        if not os.path.exists(photo):
            continue  # gone from disk: nothing to write beside
        sidecar = existing_sidecar(photo)
        created = sidecar is None
        target = Path(sidecar or photo + ".xmp")
        try:
            old = None if created else target.read_bytes()
        except OSError as e:
            raise FaceclusterError(f"cannot read {target}: {e.strerror}") from None
        regions.sort(key=lambda r: (r.name, r.box))
        new = sidecar_with_regions(old, regions, width, height)
        if new == old:
            unchanged += 1
            continue
        changes.append(SidecarChange(photo, str(target), tuple(sorted({r.name for r in regions})), created))
        if not dry_run:
            _write_atomically(target, new)
    return changes, unchanged


def _write_atomically(target: Path, data: bytes) -> None:
    """Write beside, then rename: a crash never leaves half a sidecar."""
    temporary = target.with_name(f".{target.name}.facecluster-tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise FaceclusterError(f"cannot write {target}: {e.strerror}") from None
