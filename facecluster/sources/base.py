"""What a source hands the scan for one still (a photo, a RAW): its pixels, its facts, and a note."""

from __future__ import annotations

from dataclasses import dataclass

from facecluster.decode import Decoded, PhotoInfo


@dataclass(frozen=True)
class Still:
    photo: Decoded  # upright RGB, at most max_side a side
    info: PhotoInfo
    kind: str  # what the file really is: "photo", "motion" (a Motion Photo's still), "raw"
    note: str | None = None  # something the user should know (a .CR2 that is really a JPEG)
