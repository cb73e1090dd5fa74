"""Files that are one moment with another: found by name alone, before anything is read.

- RAW + JPEG (or HEIC): a camera set to RAW+JPEG writes IMG_1.CR2 and IMG_1.JPG,
  one shot. The JPEG is scanned (it is the camera's rendering, and fast); the
  RAW is its companion, recorded but never read for faces, so that a person
  is not counted twice for one moment.
- Live Photos: an iPhone writes IMG_1.HEIC (or .JPG) and IMG_1.MOV, the still and
  a few seconds around it. The still is scanned; the video is its companion
  (unless it is over LIVE_MAX_BYTES: then it is a video of its own).

Same folder, same name before the extension, compared without case (cameras
and phones write upper case, some importers lower). A RAW or a video with no
still beside it is scanned on its own. Motion Photos (one JPEG with the video
inside) need no pairing: photo.py reads only their still.

Pure: entries in, a plan out; the scan records the companions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from facecluster.crawl import CrawlEntry
from facecluster.sources import extension, kind_of

# Stills that stand for a shot, in order of preference when a name has several (IMG_1.HEIC and IMG_1.JPG).
STILLS = (".heic", ".heif", ".jpg", ".jpeg")
# The video half of a Live Photo (Apple writes .MOV; some exporters .MP4).
LIVE_VIDEOS = frozenset({".mov", ".mp4"})
# A Live Photo's video is about 3 seconds (1440x1080 HEVC, 3 to 8 MB); a bigger video beside a still
# of the same name is a video of its own, scanned as one.
LIVE_MAX_BYTES = 32 << 20


@dataclass(frozen=True)
class Companion:
    """A file recorded as part of another file's shot, not scanned itself."""

    entry: CrawlEntry
    kind: str  # "raw": the RAW of a RAW+JPEG pair; "live": the video of a Live Photo
    photo: str  # the path of the still it belongs to


def pair(entries: list[CrawlEntry]) -> tuple[list[CrawlEntry], list[Companion]]:
    """(the entries to scan, in their order; the companions) for one crawl.

    Example:
        todo, companions = pair([CrawlEntry("/p/IMG_1.JPG", 1, 0), CrawlEntry("/p/IMG_1.CR2", 2, 0)])
        # todo: IMG_1.JPG; companions: IMG_1.CR2, kind "raw", photo "/p/IMG_1.JPG"
    """
    shots: dict[tuple[str, str], list[CrawlEntry]] = {}
    for entry in entries:
        folder, name = os.path.split(entry.path)
        shots.setdefault((folder, os.path.splitext(name)[0].casefold()), []).append(entry)
    companions: dict[str, Companion] = {}
    for files in shots.values():
        if len(files) < 2:
            continue
        stills = sorted((f for f in files if extension(f.path) in STILLS), key=lambda f: STILLS.index(extension(f.path)))
        if not stills:
            continue
        for f in files:
            kind = kind_of(f.path)
            if kind == "raw":
                companions[f.path] = Companion(f, "raw", stills[0].path)
            elif kind == "video" and extension(f.path) in LIVE_VIDEOS and f.size <= LIVE_MAX_BYTES:
                companions[f.path] = Companion(f, "live", stills[0].path)
    todo = [e for e in entries if e.path not in companions]
    return todo, [companions[e.path] for e in entries if e.path in companions]
