"""Media made at test (and benchmark) time from real photos: DNG files, videos, Live and Motion Photos.

Never committed: each test writes what it needs under its tmp_path. DNGs are
written with pidng (a test dependency): a mosaiced one that LibRaw must
demosaic, and one with an embedded JPEG preview in IFD0 and the mosaic in
a SubIFD, the layout cameras and Adobe's converter write. Videos are encoded
with PyAV (libx264, libx265) from photos moving across a canvas.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

# XYZ (D65) -> linear sRGB: the "camera" of these DNGs sees sRGB primaries.
_XYZ_TO_CAMERA = [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]


def mosaic(rgb: np.ndarray, white: int = 4095) -> np.ndarray:
    """An RGGB Bayer mosaic (uint16, linear light) of an sRGB image, as a sensor would record it."""
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    lin = (np.asarray(rgb[:h, :w], np.float64) / 255.0) ** 2.2
    bayer = np.empty((h, w), np.float64)
    bayer[0::2, 0::2] = lin[0::2, 0::2, 0]
    bayer[0::2, 1::2] = lin[0::2, 1::2, 1]
    bayer[1::2, 0::2] = lin[1::2, 0::2, 1]
    bayer[1::2, 1::2] = lin[1::2, 1::2, 2]
    return (bayer * white).astype(np.uint16)


def dng_bytes(upright: np.ndarray, orientation: int = 1, preview: bool = False, preview_side: int | None = None) -> bytes:
    """A DNG of this upright photo: stored as a sensor would (turned against `orientation`, 1, 3, 6 or 8),
    with an embedded JPEG preview (stored the same way, at most `preview_side` a side) when `preview`."""
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation
    from pidng.dng import DNG, Tag, Type, dngIFD, dngTag

    turns = {1: 0, 3: 2, 6: 1, 8: 3}[orientation]  # counter-clockwise turns from upright to stored
    stored = np.ascontiguousarray(np.rot90(upright, turns))
    bayer = mosaic(stored)
    h, w = bayer.shape
    d = DNG()
    raw = dngIFD()
    raw_offsets = dngTag(Tag.TileOffsets, [0])
    raw.tags += [
        dngTag(Tag.NewSubfileType, [0]), dngTag(Tag.ImageWidth, [w]), dngTag(Tag.ImageLength, [h]),
        dngTag(Tag.TileWidth, [w]), dngTag(Tag.TileLength, [h]), raw_offsets,
        dngTag(Tag.TileByteCounts, [bayer.nbytes]), dngTag(Tag.Compression, [1]),
        dngTag(Tag.PhotometricInterpretation, [PhotometricInterpretation.Color_Filter_Array]),
        dngTag(Tag.SamplesPerPixel, [1]), dngTag(Tag.BitsPerSample, [16]),
        dngTag(Tag.CFARepeatPatternDim, [2, 2]), dngTag(Tag.CFAPattern, CFAPattern.RGGB),
        dngTag(Tag.BlackLevel, [0]), dngTag(Tag.WhiteLevel, [4095]),
    ]
    common = [
        dngTag(Tag.Orientation, [orientation]), dngTag(Tag.Make, "facecluster"), dngTag(Tag.Model, "test DNG"),
        dngTag(Tag.DNGVersion, DNGVersion.V1_4), dngTag(Tag.DNGBackwardVersion, DNGVersion.V1_2),
        dngTag(Tag.ColorMatrix1, [[int(v * 10000), 10000] for row in _XYZ_TO_CAMERA for v in row]),
        dngTag(Tag.CalibrationIlluminant1, [CalibrationIlluminant.D65]),
        dngTag(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
    ]
    if not preview:
        raw.tags += common
        d.IFDs.append(raw)
        d.ImageDataStrips.append(bayer.tobytes())
        offsets = [(raw_offsets, 0)]
    else:
        img = Image.fromarray(stored)
        if preview_side:
            img.thumbnail((preview_side, preview_side))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        jpeg = out.getvalue()
        d.ImageDataStrips += [jpeg, bayer.tobytes()]
        prev_offsets = dngTag(Tag.StripOffsets, [0])
        # pidng's SubIFD tag type does not encode (a str/bytes mix-up): a LONG tag holding the nested IFD instead.
        sub = dngTag((330, Type.Long), [0])
        sub.subIFD = raw
        main = dngIFD()
        main.tags += [
            dngTag(Tag.NewSubfileType, [1]), dngTag(Tag.ImageWidth, [img.width]), dngTag(Tag.ImageLength, [img.height]),
            dngTag(Tag.BitsPerSample, [8, 8, 8]), dngTag(Tag.Compression, [7]), dngTag(Tag.PhotometricInterpretation, [6]),
            dngTag(Tag.SamplesPerPixel, [3]), dngTag(Tag.RowsPerStrip, [img.height]), prev_offsets,
            dngTag(Tag.StripByteCounts, [len(jpeg)]), sub, *common,
        ]
        d.IFDs.append(main)
        offsets = [(prev_offsets, 0), (raw_offsets, 1)]
    total = d.dataLen()
    for tag, strip in offsets:
        tag.setValue([d.StripOffsets[strip]])
    buf = bytearray(total)
    d.setBuffer(buf)
    d.write()
    return bytes(buf)


def motion_photo_bytes(rgb: np.ndarray, video: bytes) -> bytes:
    """A Google Motion Photo: a JPEG whose XMP says so, with an MP4 appended after it."""
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MotionPhoto="1" '
        f'GCamera:MotionPhotoVersion="1" GCamera:MicroVideoOffset="{len(video)}"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    jpeg = out.getvalue()
    app1 = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return jpeg[:2] + segment + jpeg[2:] + video


def encode_video(path: Path, scenes: Sequence[tuple[float, float, np.ndarray | None]], size: tuple[int, int] = (640, 360),
                 seconds: float = 10.0, fps: int = 10, codec: str = "libx264", rotation: int = 0, gop: int | None = None,
                 faststart: bool = True, texture: bool = False, travel: float = 1.0, rows: int | None = None) -> Path:
    """Encode a video of `seconds` where each (start_s, end_s, photo) scene shows that photo moving across a
    grey canvas from start to end, each scene in a band of its own. `rotation`: the display matrix's
    counter-clockwise degrees (90 or -90: a phone held upright records sideways frames; the frames are
    stored turned, so that the displayed video is upright)."""
    import av

    width, height = size
    turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    options = {"movflags": "+faststart"} if faststart and path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop or fps  # a keyframe a second, as phones write
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        elif codec == "libx265":
            stream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        if rotation:
            stream.set_display_rotation(rotation)
        rows = rows or max(1, len(scenes))
        band = height // rows
        backdrop = None
        if texture:
            rng = np.random.default_rng(17)
            backdrop = np.asarray(Image.fromarray(rng.integers(0, 256, (height // 12, width // 12 * 2, 3), np.uint8)).resize(
                (width * 2, height), Image.Resampling.BILINEAR))
        prepared = [(a, b, None if p is None else _fit(p, width // 2, band)) for a, b, p in scenes]
        for i in range(int(seconds * fps)):
            t = i / fps
            if backdrop is None:
                canvas = np.full((height, width, 3), 96, np.uint8)
            else:
                shift = (i * 7) % width
                canvas = backdrop[:, shift:shift + width].copy()
            for k, (start, end, photo) in enumerate(prepared):
                if photo is None or not start <= t < end:
                    continue
                ph, pw = photo.shape[:2]
                progress = (t - start) / max(end - start, 1e-6)
                x = int((width - pw) * (k % 3 / 3 * (1 - travel) + travel * progress)) if travel < 1 else int((width - pw) * progress)
                y = k % rows * band + (band - ph) // 2
                canvas[y:y + ph, x:x + pw] = photo
            stored = np.ascontiguousarray(np.rot90(canvas, -turns)) if turns else canvas
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _fit(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo scaled (up or down) to fill most of a width x height box."""
    h, w = photo.shape[:2]
    factor = min(width / w, height * 0.95 / h)
    return np.asarray(Image.fromarray(photo).resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.Resampling.LANCZOS))
