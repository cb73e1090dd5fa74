"""Camera RAW files through LibRaw (rawpy's wheel bundles it).

The camera's own rendering is inside almost every RAW: an embedded JPEG
preview, often full size. Where it is big enough to find faces in (its longer
side at least the detector's input size) it is used as is: it is fast (a JPEG
decode at reduced size) and it is what the photographer saw. It is turned
upright by the RAW's orientation (LibRaw's `flip`), since cameras write the
preview as the sensor saw it. Otherwise LibRaw demosaics at half size
(`half_size=True`: each 2x2 Bayer block becomes one pixel, no interpolation),
with the camera's white balance, and turns the result upright itself.

The memory budget of photos applies: a RAW whose demosaic would need more than
the decode budget is refused before its pixels are unpacked, and a RAW over
the pixel limit before anything. A file LibRaw cannot read is a failure with
LibRaw's reason. A file named like a RAW that is really a JPEG (or another
format Pillow reads) is read as what it is, with a warning saying so: the
content decides, as it does for photos.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import BinaryIO

import numpy as np
from PIL import Image

from facecluster.decode import DEFAULT_MAX_DECODE_BYTES, Decoded, DecodeError, PhotoInfo, decode, open_image, photo_info
from facecluster.errors import short_reason
from facecluster.sources.base import Still

# LibRaw reads these (https://www.libraw.org/supported-cameras); lower case, with the dot.
EXTENSIONS = frozenset({
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf", ".pef",
    ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".kdc", ".dcr", ".mrw", ".mos", ".mef", ".rwl", ".gpr",
})

# Memory a half-size demosaic takes per sensor pixel: LibRaw's copy of the file,
# the unpacked mosaic (2 bytes), its 4-channel half-size image (2 bytes: a
# quarter of the pixels at 8 bytes), and the 8-bit output. Measured on a 24 MP
# uncompressed 16-bit DNG: a peak 140 MB above the file's own bytes, 6.1 bytes
# a pixel (VmHWM around raw.read).
DEMOSAIC_BYTES_PER_PIXEL = 6

# LibRaw's flip -> the EXIF orientation that makes the preview upright.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}
_TRANSPOSE = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_270,
    8: Image.Transpose.ROTATE_90,
}


def read(source: bytes | BinaryIO, mtime: float, det_size: int, max_side: int, max_pixels: int,
         max_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> Still:
    """A RAW file (bytes or an open binary file) -> its still: the preview if big enough, else a half-size demosaic.

    Raises DecodeError with the reason when neither LibRaw nor Pillow can read it.

    Example:
        still = read(Path("IMG_1.CR2").read_bytes(), 0.0, 640, 2048, 200_000_000)
    """
    import rawpy  # a heavy C extension: loaded by the first RAW, not by every scan

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    fp.seek(0)
    raw = rawpy.RawPy()
    try:
        try:
            raw.open_buffer(fp)
        except rawpy.LibRawFileUnsupportedError:
            return _not_raw(fp, mtime, max_side, max_pixels)
        except rawpy.LibRawError as e:
            raise DecodeError(f"LibRaw cannot read this RAW file: {_reason(e)}") from None
        sizes = raw.sizes
        full_w, full_h = (sizes.height, sizes.width) if sizes.flip in (5, 6) else (sizes.width, sizes.height)
        pixels = int(sizes.raw_width) * int(sizes.raw_height)
        if pixels <= 0 or full_w <= 0 or full_h <= 0:
            raise DecodeError(f"RAW image with no pixels ({sizes.raw_width}x{sizes.raw_height})")
        if pixels > max_pixels:
            raise DecodeError(f"RAW image is {sizes.raw_width}x{sizes.raw_height} ({pixels / 1e6:.0f} MP), "
                              f"over the {max_pixels / 1e6:.0f} MP limit")
        fp.seek(0)
        info = photo_info(fp, mtime)
        if info.taken_source != "exif":
            info = _libraw_date(raw, info)
        photo = _preview(raw, sizes.flip, full_w, full_h, det_size, max_side, max_pixels)
        if photo is None:
            # LibRaw refuses to unpack after a thumbnail was looked at ("out of order call"): open it afresh.
            raw.close()
            raw = rawpy.RawPy()
            fp.seek(0)
            raw.open_buffer(fp)
            photo = _demosaic(raw, pixels, full_w, full_h, max_side, max_bytes)
        return Still(photo, info, "raw")
    except MemoryError:
        raise DecodeError("RAW image too large to decode in memory") from None
    finally:
        raw.close()


def _not_raw(fp: BinaryIO, mtime: float, max_side: int, max_pixels: int) -> Still:
    """A file LibRaw does not know: read by Pillow if it is really a photo, else the RAW's failure."""
    fp.seek(0)
    try:
        photo = decode(fp, max_side, max_pixels)
    except DecodeError:
        raise DecodeError("LibRaw cannot read this RAW file: unsupported file format or not a RAW file") from None
    fp.seek(0)
    what = photo.format if photo.format != "unknown" else "an image"
    return Still(photo, photo_info(fp, mtime), "photo", note=f"named like a RAW file but it is a {what}; read as a {what}")


def _preview(raw, flip: int, full_w: int, full_h: int, det_size: int, max_side: int, max_pixels: int) -> Decoded | None:
    """The embedded preview, upright and no larger than max_side, if it is big enough to detect faces in."""
    # LibRaw (rawpy) loads only when a RAW file is read
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, MemoryError):  # no preview, or one LibRaw cannot unpack: demosaic instead
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            # Opened as a JPEG and nothing else: the preview is the RAW's bytes, not trusted to be what LibRaw says.
            with open_image(io.BytesIO(thumb.data), formats=("JPEG",)) as img:
                if max(img.size) < det_size:
                    return None
                own = img.getexif().get(0x0112, 1)
            photo = decode(bytes(thumb.data), max_side, max_pixels)
        except DecodeError:
            return None
        except Exception:  # a preview Pillow cannot open is no preview: the mosaic is still there
            return None
        rgb = photo.rgb
    else:
        rgb = np.asarray(thumb.data)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or max(rgb.shape[:2]) < det_size:
            return None
        own = 1
        rgb = _fit(rgb.astype(np.uint8, copy=False), max_side)
    orientation = _FLIP_TO_ORIENTATION.get(flip, 1)
    if own in (1, None) and orientation in _TRANSPOSE:  # a preview that carries its own orientation was turned by decode
        rgb = np.asarray(Image.fromarray(rgb).transpose(_TRANSPOSE[orientation]))
    return Decoded(rgb=rgb, width=full_w, height=full_h, scale=rgb.shape[1] / full_w, format="RAW preview")


def _demosaic(raw, pixels: int, full_w: int, full_h: int, max_side: int, max_bytes: int) -> Decoded:
    # LibRaw (rawpy) loads only when a RAW file is read
    import rawpy

    need = pixels * DEMOSAIC_BYTES_PER_PIXEL
    if need > max_bytes:
        raise DecodeError(
            f"RAW image has no preview big enough and its demosaic would take about {need / 2**20:.0f} MB, "
            f"over the {max_bytes / 2**20:.0f} MB limit"
        )
    try:
        raw.unpack()
        rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    except rawpy.LibRawError as e:
        raise DecodeError(f"LibRaw cannot decode this RAW file: {_reason(e)}") from None
    rgb = _fit(rgb, max_side)
    return Decoded(rgb=rgb, width=full_w, height=full_h, scale=rgb.shape[1] / full_w, format="RAW demosaic")


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """No larger than max_side a side (an integer box reduction, as decode does for photos)."""
    factor = -(-max(rgb.shape[:2]) // max_side)
    if factor <= 1:
        return np.ascontiguousarray(rgb)
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).reduce(factor))


def _libraw_date(raw, info: PhotoInfo) -> PhotoInfo:
    """LibRaw's own date for RAWs exifread cannot parse (CR3, RAF, X3F, ...), when it has one."""
    try:
        stamp = raw.other.timestamp
    except Exception:  # an old rawpy without it, or a date LibRaw could not parse
        return info
    if isinstance(stamp, datetime) and stamp.year > 1970:
        return PhotoInfo(stamp.isoformat(timespec="seconds"), "exif", info.camera)
    return info


def _reason(e: Exception) -> str:
    text = e.args[0] if e.args else e
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return short_reason(Exception(str(text))) if str(text) else type(e).__name__
