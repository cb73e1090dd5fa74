"""Photos through Pillow (decode.py), and Motion Photos: JPEGs with their short video inside.

A Motion Photo (Google's MotionPhoto / MicroVideo XMP, Samsung's
MotionPhoto_Data trailer) is one moment: its still is scanned, the video
appended after it is not (it would only find the still's faces again).
"""

from __future__ import annotations

from typing import BinaryIO

from facecluster.decode import decode, photo_info
from facecluster.sources.base import Still

EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp", ".gif"})

# In the XMP of a Motion Photo: Google's current and older names (Camera:MotionPhoto, GCamera:MicroVideo).
_MOTION_XMP = (b"MotionPhoto", b"MicroVideo")
# XMP sits in an APP1 segment (at most 64 KB) near the start: only this much is searched. Searching a
# whole file costs about 1 ms a megabyte, 5 ms for a phone's photo (8 % of its scan).
_XMP_WITHIN = 512 << 10
# Samsung's own Motion Photos: a trailer ending in "SEFT" whose blocks include the video, named so.
_SAMSUNG_FOOTER, _SAMSUNG_VIDEO = b"SEFT", b"MotionPhoto_Data"


def is_motion_photo(data: bytes) -> bool:
    """True for a still that carries a video of the same moment (a Google or Samsung Motion Photo).

    Example:
        is_motion_photo(Path("PXL_20240101_MP.jpg").read_bytes())  # True
    """
    start = data.find(b"<x:xmpmeta", 0, _XMP_WITHIN)
    if start >= 0:
        end = data.find(b"</x:xmpmeta>", start, start + _XMP_WITHIN)
        xmp = data[start:end] if end > 0 else b""
        if any(marker in xmp for marker in _MOTION_XMP):
            return True
    return data.endswith(_SAMSUNG_FOOTER) and _SAMSUNG_VIDEO in data


def read(source: bytes | BinaryIO, head: bytes, mtime: float, max_side: int, max_pixels: int) -> Still:
    """A photo file (bytes, or an open file with `head` its start) -> its still.

    Example:
        still = read(data, data, os.stat(path).st_mtime, 2048, 200_000_000)
    """
    photo = decode(source, max_side, max_pixels)
    info = photo_info(source, mtime)
    return Still(photo, info, "motion" if is_motion_photo(head) else "photo")
