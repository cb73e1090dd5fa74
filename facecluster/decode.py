"""File bytes -> the photo as a person sees it: an RGB array, upright, plus when it was taken.

Content decides the format (Pillow sniffs it); the file name does not. Only
the formats in `OPEN_FORMATS` are ever tried: Pillow's default is every plugin
it has, and some of those run another program on the file (EPS and PostScript
through Ghostscript, which loops for ever on a 69-byte PostScript file named
`.jpg`). Every failure is a `DecodeError` with a reason a person can read.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from facecluster.errors import DecodeError, short_reason

# Decoding bigger than this buys nothing for faces and costs time: JPEG draft
# mode decodes at 1/2, 1/4 or 1/8 scale to the smallest size at least this big.
DEFAULT_MAX_SIDE = 2048
# Refuse images above this many pixels before decoding them: a 20,000 x 20,000
# image or a decompression bomb must be refused, not run the machine out of
# memory. 200 MP is above any camera sensor sold today (150 MP).
DEFAULT_MAX_PIXELS = 200_000_000
# Formats that cannot decode at reduced size (PNG, WebP, TIFF, HEIC, GIF, ...)
# are decoded whole, then reduced: refuse those whose full decode would take
# more memory than this, so that a scan worker (about 300 MB with its models)
# stays under about 1 GB. A 14000 x 14000 16-bit PNG (380 KB on disk) took
# 5.1 GB before this budget; 100 MP of 8-bit RGB (400 MB) still fits.
# Evidence: benchmarks/hostile_corpus.py, docs/reliability.md.
DEFAULT_MAX_DECODE_BYTES = 512 * 1024 * 1024

# Pillow hands every freed image block back to the C library and allocates the
# next photo's afresh, and touching fresh memory costs a page fault per 4 KB: a
# 20 MP photo decoded whole needs five 16 MB blocks. Kept for reuse instead
# (Pillow's own PILLOW_BLOCKS_MAX setting, process-wide): read + hash + decode of
# compreface_samples (12-36 MP) took 29 ms a photo instead of 42 (best of 6,
# alternated, load average 1.5); a steady-state scan stream of them, models
# loaded, 16-25 thousand minor page faults instead of 189 thousand and 10 % less
# CPU. The price: between photos a worker keeps up to this many freed blocks of
# at most 16 MB (what its biggest recent decode needed; 128 MB at most), which
# the next decode takes first. A higher PILLOW_BLOCKS_MAX set by the user wins.
PILLOW_BLOCKS_KEPT = 8

# The only formats a file from the library is opened as, in the order Pillow tries them. Each
# decodes inside this process, with a library linked into Pillow or pillow-heif; none runs a
# program. HEIF is iPhone photos (pillow-heif), AVIF the same container with AV1 (Pillow's own
# libavif). "JPEG" also opens MPO, the multi-picture JPEG phones write for portraits and 3D
# (Pillow has no MPO opener of its own: its JPEG opener returns an MPO image for those files),
# which decodes as its first picture, a plain JPEG.
OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF", "TIFF", "BMP", "GIF")
DECODED_FORMATS = frozenset(OPEN_FORMATS) | {"MPO"}
# The readable names, for the reason a file is not read.
FORMAT_NAMES = "JPEG, PNG, WebP, HEIC/HEIF, AVIF, TIFF, BMP, GIF"
# Documents that are programs: named in the reason, so the user knows why such a file is not read.
_DOCUMENT_MAGIC = ((b"%!", "a PostScript document"), (b"\xc5\xd0\xd3\xc6", "an EPS document"), (b"%PDF", "a PDF document"))

_heif_registered = False
_blocks_set = False


@dataclass(frozen=True)
class Decoded:
    """rgb: (h, w, 3) uint8, upright. width/height: the full displayed size.
    scale: rgb's size divided by the full size (1.0, or less after draft/resizing)."""

    rgb: npt.NDArray[np.uint8]
    width: int
    height: int
    scale: float
    format: str


@dataclass(frozen=True)
class PhotoInfo:
    taken: str | None  # ISO 8601 local time, as the camera wrote it; None: no date known
    taken_source: str | None  # "exif", or "mtime" where the photo carries no date; None with taken
    camera: str | None


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF (iPhone photos) through pillow-heif, once."""
    global _heif_registered
    if not _heif_registered:
        try:
            # optional HEIF support, registered on first use
            from pillow_heif import register_heif_opener

            register_heif_opener()
        except ImportError:  # optional at run time: HEIC files then fail with a clear reason
            pass
        _heif_registered = True


def keep_pillow_blocks(blocks: int = PILLOW_BLOCKS_KEPT) -> None:
    """Let Pillow keep up to `blocks` freed image blocks for the next image (never lowers the setting), once.

    Example:
        keep_pillow_blocks()  # Image.core.get_blocks_max() is now at least 8
    """
    global _blocks_set
    if not _blocks_set:
        if Image.core.get_blocks_max() < blocks:
            Image.core.set_blocks_max(blocks)
        _blocks_set = True


def decode(source: bytes | BinaryIO, max_side: int = DEFAULT_MAX_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS,
           max_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> Decoded:
    """Decode image bytes (or an open binary file) to an upright RGB array no larger than `max_side`.

    Refused with a `DecodeError`, before any pixel is decoded: images over
    `max_pixels`, and images whose decode at the smallest size the format
    allows would need more than `max_bytes` of memory.

    Example:
        photo = decode(Path("IMG_1234.jpg").read_bytes())
    """
    register_heif()
    keep_pillow_blocks()
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    if _is_empty(fp):
        raise DecodeError("empty file (0 bytes)")
    try:
        with _own_pixel_limit():
            img = open_image(fp)
        with warnings.catch_warnings():
            # Our limits above replace Pillow's bomb warning, which would only print to stderr.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            rgb, orientation, fmt, (w, h) = _decode_opened(img, fp, max_side, max_pixels, max_bytes)
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError(_not_read_reason(fp)) from None
    except Image.DecompressionBombError as e:  # a plugin's own check while loading (GIF/PNG frames, say)
        raise DecodeError(f"refused as a decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error) as e:
        raise DecodeError(f"broken image data: {short_reason(e)}") from None
    except MemoryError:
        raise DecodeError("image too large to decode in memory") from None
    except Exception as e:  # Pillow's plugins raise many types on hostile input; each is a bad file, not a crash
        raise DecodeError(f"broken image data: {type(e).__name__}: {short_reason(e)}") from None
    full_w, full_h = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DecodeError(f"unexpected pixel layout {rgb.shape}")
    return Decoded(rgb=rgb, width=full_w, height=full_h, scale=rgb.shape[1] / full_w, format=fmt)


def open_image(fp: BinaryIO, formats: tuple[str, ...] = OPEN_FORMATS):
    """Pillow's Image.open, trying only `formats` (the allowed ones unless narrowed): the one way
    facecluster opens an image, so no file reaches a plugin that runs another program.

    Example:
        with open_image(io.BytesIO(thumbnail_jpeg), formats=("JPEG",)) as im: im.size
    """
    register_heif()
    img = Image.open(fp, formats=list(formats))
    if img.format not in DECODED_FORMATS:  # never expected: a plugin that names itself otherwise
        img.close()
        raise DecodeError(f"{img.format} is not a format facecluster reads ({FORMAT_NAMES})")
    return img


def _not_read_reason(fp: BinaryIO) -> str:
    """Why a file no allowed format recognised is not read, naming a document format we know of."""
    try:
        fp.seek(0)
        head = fp.read(1024).lstrip(b"\x04\r\n\t ")  # PostScript may start with a Ctrl-D or blank lines
    except (OSError, ValueError):
        head = b""
    for magic, kind in _DOCUMENT_MAGIC:
        if head.startswith(magic):
            return f"not an image: {kind}, not opened (facecluster reads {FORMAT_NAMES} and never runs a document)"
    return f"not an image in a format facecluster reads ({FORMAT_NAMES})"


def _decode_opened(img, fp: BinaryIO, max_side: int, max_pixels: int, max_bytes: int):
    """The limits, then the decode itself, of an image Pillow has opened: (rgb, orientation, format, size)."""
    fmt = img.format or "unknown"
    w, h = img.size
    if w <= 0 or h <= 0:
        raise DecodeError(f"{fmt} image with no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise DecodeError(f"{fmt} image is {w}x{h} ({w * h / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP limit")
    held = 0
    if fmt in ("JPEG", "MPO"):
        # Decodes at 1/2, 1/4 or 1/8 scale (the memory is that size's): as much of
        # the shrinking as the decode can do, the rest by reduce() below.
        scale = draft_scale(w, h, max_side)
        img.draft("RGB", (w // scale, h // scale))
        held = jpeg_held_bytes(fp, (w, h, [(layer[1], layer[2]) for layer in getattr(img, "layer", [])]))
    need = decode_bytes(img) + held
    if need > max_bytes:
        what = f"{fmt} image is {w}x{h} ({w * h / 1e6:.0f} MP, {img.mode})"
        if held:
            # Measured: a 14100 x 14100 progressive JPEG (2.4 MB on disk) took 1,152 MB decoded at 1/8 scale, 1,171 MB before.
            kind = "progressive" if img.info.get("progressive") or img.info.get("progression") else "multi-scan"
            what = f"{kind} {what}, decoded from all its coefficients at full size whatever the scale"
        raise DecodeError(
            f"{what}; decoding it would take about {need / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit"
        )
    img.load()
    # Read after load(), never before the budget: Pillow's PNG getexif() loads the whole image to find
    # an eXIf chunk after the pixels (a refused 12000 x 12000 RGBA PNG took 555 MB that way).
    orientation = _orientation(img)
    # Smaller first, then convert: every conversion of a full-size image
    # would cost another full-size copy.
    factor = -(-max(img.size) // max_side)
    if factor > 1:
        img = _shrink(img, factor)
    img = _to_rgb(img)
    # Turn it upright. Pillow's exif_transpose needs the EXIF it reads
    # from the image; we already have the tag, so apply it directly.
    if orientation in _TRANSPOSE:
        img = img.transpose(_TRANSPOSE[orientation])
    rgb = np.asarray(img, dtype=np.uint8)
    return rgb, orientation, fmt, (w, h)


def draft_scale(w: int, h: int, max_side: int) -> int:
    """The JPEG decode scale, 1, 2, 4 or 8, for a w x h photo shrunk to at most `max_side` a side.

    The final size is the one a draft to (max_side, max_side) then an integer
    reduce gives; but where that total shrink is divisible by 4 or 8 the decoder
    does all of it. A 36 MP photo (7360 x 4912) decoded at 1/4 instead of at 1/2
    then reduced: 36 ms instead of 71, the same 1840 x 1228 pixels out.

    Example:
        draft_scale(7360, 4912, 2048)  # 4
    """
    # What Pillow's draft to a max_side box chooses: the largest scale keeping both sides >= max_side.
    boxed = next((s for s in (8, 4, 2) if min(w // max_side, h // max_side) >= s), 1)
    drafted = -(-max(w, h) // boxed)  # the decoder rounds up
    total = boxed * -(-drafted // max_side)
    return next((s for s in (8, 4, 2) if total % s == 0), 1)


# Bytes per pixel Pillow keeps in memory for each mode: RGB, LA, CMYK and the
# like live in 32-bit pixels; 16-bit greys in two bytes; 1, L and P in one.
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
# Full-size copies a decode makes, measured (peak RSS over the image's own size,
# benchmarks/hostile_corpus.py --calibrate): WebP decodes into a buffer of its
# own, as RGBA, then converts; HEIF/AVIF into libheif's buffer; an image with
# alpha is premultiplied into a second copy before it is reduced. PNG, TIFF and
# GIF decode in place, plus about a quarter for their row and frame buffers.
_COPIES = {"WEBP": 4.0, "HEIF": 2.5, "AVIF": 2.5}
_ALPHA_MODES = frozenset({"LA", "PA", "RGBA", "La", "RGBa"})


# JPEG start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15; not DHT, JPG or DAC), and those of progressive JPEGs.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE_MARKERS = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# Segments read before the first scan at most; real files have a few dozen (Pillow walks them all too).
_MAX_JPEG_SEGMENTS = 10_000
_MAX_JPEG_JUNK = 65_536  # bytes of junk between segments skipped, in all


def jpeg_held_bytes(fp: BinaryIO, frame: tuple[int, int, list[tuple[int, int]]] | None = None) -> int:
    """The memory libjpeg holds for a JPEG's DCT coefficients at full size, whatever the output scale.

    A baseline JPEG whose first scan holds every component decodes a row of
    blocks at a time: 0. A progressive one, or one whose components come in
    separate scans, is first read whole into a coefficient buffer (libjpeg's
    `has_multiple_scans`): 64 two-byte coefficients per 8 x 8 block of each
    component, so 6 bytes a pixel at 4:4:4 and 3 at 4:2:0, and `draft` does not
    shrink it. Headers that cannot be walked to the first scan count as that
    too (refusing an odd file is safer than running out of memory on it), with
    `frame` (width, height, [(h, v) sampling per component], as Pillow read
    them) where our walk found no frame header at all.

    Example:
        jpeg_held_bytes(open("progressive_14100.jpg", "rb"))  # 4:4:4: about 1.19e9
    """
    position = fp.tell()
    try:
        found, whole = _jpeg_frame(fp)
    finally:
        fp.seek(position)
    frame = found or frame
    if frame is None or not whole or not frame[2]:
        return 0
    width, height, sampling = frame
    components = [(max(1, h), max(1, v)) for h, v in sampling]
    h_max = max(c[0] for c in components)
    v_max = max(c[1] for c in components)
    held = 0
    for h, v in components:
        # libjpeg's width_in_blocks and height_in_blocks, rounded up to whole MCUs (jdcoefct.c).
        across = _ceil_div(_ceil_div(width * h, 8 * h_max), h) * h
        down = _ceil_div(_ceil_div(height * v, 8 * v_max), v) * v
        held += across * down * 64 * 2
    return held


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _jpeg_frame(fp: BinaryIO) -> tuple[tuple[int, int, list[tuple[int, int]]] | None, bool]:
    """((width, height, [(h, v) sampling per component]) or None, whether the coefficients are held whole)."""
    fp.seek(0)
    if fp.read(2) != b"\xff\xd8":
        return None, True
    frame = None
    junk = 0
    for _ in range(_MAX_JPEG_SEGMENTS):
        byte = fp.read(1)
        while byte and byte != b"\xff" and junk < _MAX_JPEG_JUNK:  # junk between segments: skipped, as Pillow and libjpeg do
            junk += 1
            byte = fp.read(1)
        if byte != b"\xff":
            break
        marker = fp.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fp.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if code == 0xD9:
            break
        size = fp.read(2)
        if len(size) < 2 or struct.unpack(">H", size)[0] < 2:
            break
        length = struct.unpack(">H", size)[0] - 2
        if code in _SOF_MARKERS:
            body = fp.read(length)
            if len(body) < 6 or len(body) < 6 + 3 * body[5] or body[5] == 0:
                break
            height, width = struct.unpack(">HH", body[1:5])
            sampling = [(max(1, body[7 + 3 * i] >> 4), max(1, body[7 + 3 * i] & 15)) for i in range(body[5])]
            frame = (width, height, sampling)
            if code in _PROGRESSIVE_MARKERS:
                return frame, True
        elif code == 0xDA:  # the first scan: interleaved (one pass) only if it holds every component
            body = fp.read(1)
            if frame is None or not body:
                break
            return frame, body[0] < len(frame[2])
        else:
            fp.seek(length, io.SEEK_CUR)
    return frame, True


def decode_bytes(img) -> int:
    """About how much memory decoding this opened (not yet loaded) image takes, at its current size.

    Example:
        decode_bytes(Image.open("pano.png"))  # 16000 x 4000 RGB: about 320,000,000
    """
    w, h = img.size
    mode = img.mode
    per_pixel = 1 if mode in _ONE_BYTE_MODES else 2 if mode.startswith("I;16") else 4
    copies = _COPIES.get(img.format or "", 2.0 if mode in _ALPHA_MODES else 1.25)
    return int(w * h * per_pixel * copies)


def _shrink(img, factor: int):
    """The image `factor` times smaller a side, in the same mode (box average where it means something)."""
    if img.mode in ("1", "P", "PA") or img.mode.startswith("I;16"):
        # Averaging palette indices is meaningless and Pillow cannot box-reduce 16-bit
        # greys: take every factor-th pixel instead (faces survive; it is 1/factor size).
        return img.resize((-(-img.width // factor), -(-img.height // factor)), Image.Resampling.NEAREST)
    # Integer box reduction, not resampling: for a 36 MP photo drafted to
    # 3680 px, bilinear resizing took 33 ms, as long as the decode itself.
    return img.reduce(factor)


@contextmanager
def _own_pixel_limit():
    """Pillow's process-wide bomb limit off for our one Image.open call, and back after.

    Our own limit (checked right after, with the size in the message) replaces
    it here; every other use of Pillow in the process keeps Pillow's default.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _is_empty(fp) -> bool:
    position = fp.tell()
    empty = not fp.read(1)
    fp.seek(position)
    return empty


# EXIF orientation -> the transpose that makes the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(img) -> int:
    """EXIF orientation 1..8; anything unreadable counts as 1 (as displayed)."""
    try:
        value = img.getexif().get(0x0112, 1)
        value = int(value)
    except Exception:  # a corrupt EXIF block must not lose the photo
        return 1
    return value if 1 <= value <= 8 else 1


def _to_rgb(img):
    """Every mode to 8-bit RGB; transparency composited on white, 16-bit scaled down, floats by their range."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "F":
        return Image.fromarray(_floats_to_bytes(np.asarray(img, dtype=np.float64)), "L").convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size else 0
        # 16-bit data lives in 0..65535; plain 8-bit data in an "I" image is left alone; 32-bit data
        # beyond 16 bits is scaled by its own range (clipping it made the picture white).
        if top > 65535 or (arr.size and arr.min() < 0):
            arr = _floats_to_bytes(arr, unit=False)
        else:
            arr = np.clip(arr / (257.0 if top > 255 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _floats_to_bytes(arr: npt.NDArray[np.float64], unit: bool = True) -> npt.NDArray[np.uint8]:
    """Pixel values to 0..255: those in 0..1 (floating-point images' usual scale, with `unit`) as they are,
    any others stretched from their lowest to their highest. Not-a-number pixels are black; an image
    with no finite pixel at all is refused.

    Measured before: a float32 TIFF of 0..1 greys was stored as a black image, with no warning.
    """
    finite = np.isfinite(arr)
    if not finite.any():
        raise DecodeError("floating-point image with no finite pixel values (all NaN or infinite)")
    values = arr[finite]
    low, high = float(values.min()), float(values.max())
    if unit and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    span = high - low
    scaled = (np.where(finite, arr, low) - low) * (255.0 / span) if span > 0 else np.zeros_like(arr)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def photo_info(source: bytes | BinaryIO, mtime: float) -> PhotoInfo:
    """Date taken (EXIF DateTimeOriginal, else the file's mtime) and camera model.

    A file time no calendar can hold (year 11476, say) gives no date, not an error.

    Example:
        info = photo_info(Path("IMG_1234.jpg").read_bytes(), os.stat("IMG_1234.jpg").st_mtime)
    """
    # exifread loads with the first photo whose date is read, not when the module is imported
    import exifread

    # exifread reports "file has no EXIF" and the like through logging: not the user's concern.
    logging.getLogger("exifread").setLevel(logging.CRITICAL)
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    taken = camera = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp.seek(0)
            tags = exifread.process_file(fp, details=False, extract_thumbnail=False)
        for key in ("EXIF DateTimeOriginal", "EXIF DateTimeDigitized", "Image DateTime"):
            taken = _exif_date(tags.get(key))
            if taken:
                break
        make = str(tags.get("Image Make", "")).strip().strip("\x00")
        model = str(tags.get("Image Model", "")).strip().strip("\x00")
        if model:
            camera = model if (not make or model.lower().startswith(make.split()[0].lower())) else f"{make} {model}"
    except Exception:  # exifread on a corrupt block raises anything; the photo still counts
        pass
    if taken is None:
        try:
            return PhotoInfo(datetime.fromtimestamp(mtime).isoformat(timespec="seconds"), "mtime", camera or None)
        except (ValueError, OverflowError, OSError):  # outside what datetime (or the C library) can hold
            return PhotoInfo(None, None, camera or None)
    return PhotoInfo(taken, "exif", camera or None)


def _exif_date(tag) -> str | None:
    if tag is None:
        return None
    text = str(tag).strip().strip("\x00")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"):
        try:
            parsed = datetime.strptime(text[:19], fmt)
        except ValueError:
            continue
        if parsed.year < 1826:  # zeros and junk dates ("0000:00:00") are not dates
            return None
        return parsed.isoformat(timespec="seconds")
    return None
