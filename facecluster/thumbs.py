"""A face's thumbnail as both front-ends show it: the crop `scan` stored, made square.

`faces.face_thumbnail` cuts a square with a margin around the face; at the
photo's edge that square is cut short, so the stored crop is narrower (or
shorter) than it is tall (or wide). Shown as it is in a square frame, the
face would sit off-centre or be cropped. Made square here, with a neutral
grey band on the side the photo ended: the face stays where the card expects
it, and nothing is shown that the photo does not hold (repeating the crop's
edge pixels smeared them into streaks).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facecluster.store import ExportFace

PAD = (238, 238, 238)  # the grey a thumbnail's frame shows while loading (review.css: background #eee)
MARGIN = 1.4  # faces.face_thumbnail's square side over the box's longer side


def square_thumbnail(data: bytes, face: ExportFace) -> bytes:
    """The stored crop made square with grey bands on its cut side(s); returns `data` itself when it already is.

    Example:
        square_thumbnail(store.thumb(face.face_id), face)
    """
    if not near_an_edge(face):
        return data  # the crop was not cut: no need to open it (this keeps a rerun with 20,000 faces fast)
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:  # our own thumbnails: nothing else is tried
            width, height = image.size
            if width == height:
                return data
            pixels = np.asarray(image.convert("RGB"))
    except Exception:  # a crop PIL cannot read is shown as it is, rather than not at all
        return data
    x, y, w, h = face.box
    side = max(w, h) * MARGIN
    before_x = _cut_before(x + w / 2, side, face.width)
    before_y = _cut_before(y + h / 2, side, face.height)
    extra_x, extra_y = max(0, height - width), max(0, width - height)
    left, top = round(extra_x * before_x), round(extra_y * before_y)
    square = np.empty((max(width, height), max(width, height), 3), np.uint8)
    square[:] = PAD
    square[top : top + height, left : left + width] = pixels
    out = io.BytesIO()
    Image.fromarray(square).save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def near_an_edge(face: ExportFace) -> bool:
    """Whether scan's square crop around the face reached past (or to within a pixel of) the photo's edge.

    Example:
        near_an_edge(face)  # True for a face touching the left edge
    """
    if not face.width or not face.height:
        return True
    x, y, w, h = face.box
    half = max(w, h) * MARGIN / 2
    cx, cy = x + w / 2, y + h / 2
    return cx - half < 1 or cy - half < 1 or cx + half > face.width - 1 or cy + half > face.height - 1


def _cut_before(centre: float, side: float, limit: int | None) -> float:
    """Which share of the missing margin was cut on the low side (left or top): 1, 0, or in between."""
    low = max(0.0, side / 2 - centre)
    high = max(0.0, centre + side / 2 - (limit or 0)) if limit else 0.0
    return 0.5 if low + high == 0 else low / (low + high)
