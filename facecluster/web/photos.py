"""A face shown in its photo: the photo, upright and shrunk for the screen, with the face's box drawn."""

from __future__ import annotations

import io

from facecluster.errors import DecodeError, FaceclusterError
from facecluster.files import open_regular
from facecluster.store import ExportFace

SHOWN_SIDE = 1600  # pixels: larger than most browser windows, small enough to send at once


def photo_with_box(face: ExportFace, side: int = SHOWN_SIDE) -> bytes:
    """JPEG of `face`'s photo no larger than `side`, its box outlined. The path comes from the
    database (the caller looked the face up), never from the request.

    Example:
        jpeg = photo_with_box(store.face_row(1234))
    """
    # Pillow and the decoders (RAW, HEIF) load at the first photo shown, not when the review starts.
    from PIL import Image, ImageDraw

    from facecluster.decode import decode

    try:
        with open_regular(face.path) as f:  # a FIFO put in the photo's place must not hang the request
            photo = decode(f, max_side=side)
    except OSError as e:
        raise FaceclusterError(f"cannot read {face.path}: {e.strerror or e}") from None
    except DecodeError as e:
        raise FaceclusterError(f"cannot show {face.path}: {e}") from None
    image = Image.fromarray(photo.rgb)
    x, y, w, h = (v * photo.scale for v in face.box)
    line = max(2, round(max(image.size) / 300))
    draw = ImageDraw.Draw(image)
    draw.rectangle((x - line, y - line, x + w + line, y + h + line), outline=(255, 214, 0), width=line)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()

