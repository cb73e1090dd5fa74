"""Decoding: every mode to upright RGB, bad bytes to DecodeError, dates from EXIF."""

import io
import os
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from facecluster.decode import decode, photo_info
from facecluster.errors import DecodeError
from tests.conftest import jpeg_bytes


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def exif_with(**tags) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[int(tag[1:], 16) if tag.startswith("x") else tag] = value
    return exif.tobytes()


@pytest.mark.parametrize(
    "mode",
    ["L", "LA", "RGBA", "CMYK", "P", "1", "I;16"],
)
def test_every_mode_becomes_rgb(mode):
    base = Image.new("RGB", (40, 30), (200, 120, 40))
    img = base.convert(mode) if mode != "I;16" else Image.fromarray(np.full((30, 40), 60000, np.uint16))
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    photo = decode(encode(img, fmt))
    assert photo.rgb.shape == (30, 40, 3) and photo.rgb.dtype == np.uint8
    if mode == "I;16":
        assert 225 <= photo.rgb[0, 0, 0] <= 240  # 60000/65535 of white, not clipped to 255


def test_transparent_palette_composited_on_white():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0] * 256)
    img.info["transparency"] = 0
    photo = decode(encode(img, "PNG", transparency=0))
    assert photo.rgb[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg():
    img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # red
    photo = decode(encode(img, "JPEG"))
    r, g, b = photo.rgb[10, 10].tolist()
    assert r > 200 and g < 60 and b < 60


def test_content_wins_over_the_name():
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    assert decode(png).format == "PNG"
    assert decode(jpeg_bytes(np.zeros((8, 8, 3), np.uint8))).format == "JPEG"


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"hello, not a photo\n", "not an image"),
        (os.urandom(5000), "not an image"),
    ],
)
def test_bad_bytes(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode(data)


def test_truncated_jpeg(astronaut):
    data = jpeg_bytes(astronaut)
    with pytest.raises(DecodeError, match="broken image data"):
        decode(data[: len(data) // 2])


def test_size_limit_refuses_before_decoding():
    # A 20,000 x 20,000 PNG of one colour is tiny on disk; decoding it would take 1.2 GB.
    big = encode(Image.new("L", (20000, 20000)), "PNG")
    assert len(big) < 2_000_000
    with pytest.raises(DecodeError, match=r"20000x20000 \(400 MP\), over the 200 MP limit"):
        decode(big)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode(data).rgb[8, 8].tolist()[0] > 200


def test_jpeg_draft_decodes_big_photos_small():
    big = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    photo = decode(jpeg_bytes(big), max_side=1000)
    assert max(photo.rgb.shape[:2]) <= 1000
    assert (photo.width, photo.height) == (4000, 3000)
    assert photo.scale == pytest.approx(photo.rgb.shape[1] / 4000)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_upright(orientation):
    # A 40x20 image, red on its displayed top-left; stored as the camera would for each orientation.
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:5, :5] = (255, 0, 0)
    # What the camera stored is the upright picture put through the inverse of the display transform.
    t = Image.Transpose
    stored_as = {1: None, 2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM,
                 5: t.TRANSPOSE, 6: t.ROTATE_90, 7: t.TRANSVERSE, 8: t.ROTATE_270}[orientation]
    img = Image.fromarray(upright)
    if stored_as is not None:
        img = img.transpose(stored_as)
    data = encode(img, "PNG", exif=exif_with(x0112=orientation))
    photo = decode(data)
    assert photo.rgb.shape == (20, 40, 3)
    assert (photo.width, photo.height) == (40, 20)
    assert photo.rgb[1, 1, 0] > 200 and photo.rgb[18, 38, 0] < 50


def test_corrupt_exif_does_not_lose_the_photo(astronaut):
    data = bytearray(jpeg_bytes(astronaut, exif=exif_with(x0112=6, x9003="2001:02:03 04:05:06")))
    start = data.find(b"Exif\x00\x00")
    data[start + 10 : start + 40] = os.urandom(30)
    photo = decode(bytes(data))
    assert photo.rgb.shape[2] == 3
    info = photo_info(bytes(data), mtime=0)
    # A date is always given: from EXIF where the damage spared it, else the file's mtime.
    from_mtime = (datetime.fromtimestamp(0).isoformat(timespec="seconds"), "mtime")
    assert (info.taken, info.taken_source) in {("2001-02-03T04:05:06", "exif"), from_mtime}


def test_date_taken_from_exif_else_mtime(astronaut):
    exif = Image.Exif()
    exif[0x0110] = "Pixel 7"
    exif[0x010F] = "Google"
    exif.get_ifd(0x8769)[0x9003] = "2019:07:14 16:20:05"
    data = jpeg_bytes(astronaut, exif=exif.tobytes())
    info = photo_info(data, mtime=0)
    assert (info.taken, info.taken_source, info.camera) == ("2019-07-14T16:20:05", "exif", "Google Pixel 7")
    plain = photo_info(jpeg_bytes(astronaut), mtime=1_500_000_000)
    assert plain.taken_source == "mtime" and plain.taken.startswith("2017-07-1")


def test_heic_round_trip():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    img = Image.new("RGB", (64, 48), (10, 200, 30))
    try:
        data = encode(img, "HEIF")
    except Exception as e:  # some libheif builds have no encoder
        pytest.skip(f"this pillow-heif cannot write HEIC: {e}")
    photo = decode(data)
    assert photo.rgb.shape == (48, 64, 3) and photo.rgb[20, 20, 1] > 150


def test_decode_leaves_pillows_own_limit_alone_for_the_rest_of_the_process():
    before = Image.MAX_IMAGE_PIXELS
    decode(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert Image.MAX_IMAGE_PIXELS == before and before is not None


def test_memory_budget_refuses_before_decoding():
    png = encode(Image.new("RGB", (2000, 2000), (1, 2, 3)), "PNG")
    with pytest.raises(DecodeError, match=r"PNG image is 2000x2000 \(4 MP, RGB\); decoding it would take about 19 MB, "
                                          r"over the 10 MB limit"):
        decode(png, max_bytes=10 * 2**20)
    assert decode(png, max_bytes=20 * 2**20).rgb.shape == (2000, 2000, 3)


def test_big_16_bit_png_is_reduced_before_it_is_converted():
    grey = np.full((3000, 4000), 60000, np.uint16)
    photo = decode(encode(Image.fromarray(grey), "PNG"), max_side=1000)
    assert photo.rgb.shape == (750, 1000, 3) and (photo.width, photo.height) == (4000, 3000)
    assert 225 <= photo.rgb[10, 10, 0] <= 240


def test_transparent_image_reduced_and_composited():
    img = Image.new("RGBA", (3000, 1000), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 1500, 1000))
    photo = decode(encode(img, "PNG"), max_side=1000)
    assert photo.rgb.shape == (334, 1000, 3)
    assert photo.rgb[100, 100].tolist() == [0, 0, 255] and photo.rgb[100, 900].tolist() == [255, 255, 255]


def test_decode_from_an_open_file(tmp_path, astronaut):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(astronaut))
    with open(path, "rb") as f:
        assert decode(f).rgb.shape == (512, 512, 3)
        assert photo_info(f, mtime=0).taken_source == "mtime"


@pytest.mark.parametrize("mtime", [3e11, -3e11, 1e20])
def test_file_time_no_calendar_holds_gives_no_date(astronaut, mtime):
    info = photo_info(jpeg_bytes(astronaut), mtime=mtime)
    assert (info.taken, info.taken_source) == (None, None)
