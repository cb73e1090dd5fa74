"""Sources: how each kind of file in a library becomes frames for the face models.

One module per source; adding a kind of file is one module and one line in
SOURCES below. The scan asks `kind_of(path)` which source reads a crawled
file (by its extension; the content is checked when the file is read, and a
file that is not what its name says is read as what it really is, with a
warning), and hands the frames to the same analysis whatever their source:

- photo (photo.py): Pillow, as decode.py always did; one frame.
- raw (raw.py): camera RAW through LibRaw (rawpy): the embedded JPEG preview
  when it is big enough to detect faces in, else a half-size demosaic; one frame.
- video (video.py): PyAV (FFmpeg): keyframes, about one a second, capped per
  video; faces of one person across frames are one track, of which only the
  best few faces are kept, each with its time in the video.

pairs.py decides, from names alone, which files are the same moment as
another (a RAW beside its JPEG, the video of a Live Photo): those are
recorded as companions of the photo and not read for faces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from facecluster.sources import photo, raw, video


@dataclass(frozen=True)
class Source:
    kind: str  # stored in photos.kind: "photo", "raw", "video"
    label: str  # what the scan summary calls one file of this kind
    plural: str
    extensions: frozenset[str]


SOURCES: tuple[Source, ...] = (
    Source("photo", "photo", "photos", photo.EXTENSIONS),
    Source("raw", "RAW", "RAW", raw.EXTENSIONS),
    Source("video", "video", "videos", video.EXTENSIONS),
)

_BY_EXTENSION = {ext: s for s in SOURCES for ext in s.extensions}
# Every extension the scan reads (lower case, with the dot).
EXTENSIONS = frozenset(_BY_EXTENSION)
# Files that travel with photos but are not photos: not "of unknown type" in the summary.
SIDECAR_EXTENSIONS = frozenset({".xmp", ".aae", ".thm", ".pp3", ".dop", ".on1"})


def extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def kind_of(path: str) -> str | None:
    """Which source reads this file, by its name: "photo", "raw", "video", or None (not a file we read).

    Example:
        kind_of("/p/IMG_1.CR2")  # "raw"
    """
    source = _BY_EXTENSION.get(extension(path))
    return source.kind if source else None


def source(kind: str) -> Source:
    """The registry entry of one kind.

    Example:
        source("raw").plural  # "RAW"
    """
    return next(s for s in SOURCES if s.kind == kind)
