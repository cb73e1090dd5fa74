"""Photos through Pillow (decode.py), and Motion Photos: JPEGs with their short video inside.

A Motion Photo (Google's MotionPhoto / MicroVideo XMP, Samsung's
MotionPhoto_Data trailer) is one moment: its still is scanned, the video
appended after it is not (it would only find the still's faces again).
"""

from __future__ import annotations

from typing import BinaryIO

from facecluster.decode import decode, photo_info
from facecluster.sources.base import Still
from facecluster.xmp import embedded_xmp

EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp", ".gif"})

# In the XMP of a Motion Photo: Google's current and older names (Camera:MotionPhoto, GCamera:MicroVideo).
_MOTION_XMP = (b"MotionPhoto", b"MicroVideo")
# Samsung appends the video after a marker of its own.
_SAMSUNG_TRAILER = b"MotionPhoto_Data"


def is_motion_photo(data: bytes) -> bool:
    """True for a still that carries a video of the same moment (a Google or Samsung Motion Photo).

    Example:
        is_motion_photo(Path("PXL_20240101_MP.jpg").read_bytes())  # True
    """
    xmp = embedded_xmp(data) or b""
    return any(marker in xmp for marker in _MOTION_XMP) or _SAMSUNG_TRAILER in data


def read(source: bytes | BinaryIO, head: bytes, mtime: float, max_side: int, max_pixels: int) -> Still:
    """A photo file (bytes, or an open file with `head` its start) -> its still.

    Example:
        still = read(data, data, os.stat(path).st_mtime, 2048, 200_000_000)
    """
    photo = decode(source, max_side, max_pixels)
    info = photo_info(source, mtime)
    return Still(photo, info, "motion" if is_motion_photo(head) else "photo")
