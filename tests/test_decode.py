"""Decoding: every mode to upright RGB, bad bytes to DecodeError, dates from EXIF."""

import io
import os
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from facecluster.decode import decode, photo_info
from facecluster.errors import DecodeError
from tests.conftest import claimed_size, jpeg_bytes


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
    # A 20,000 x 20,000 PNG of one colour is tiny on disk; decoding it would take 1.2 GB. Its header is all the
    # check may read (claimed_size: a decoder that went on would fail on its missing pixels instead).
    big = claimed_size("PNG", 20000, 20000)
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


def test_an_image_over_the_budget_is_never_loaded(monkeypatch):
    # Pillow's PNG getexif() loads the whole image to look for an eXIf chunk after the pixels:
    # reading the orientation before the budget check decoded the 12000 x 12000 RGBA PNG it refused (555 MB).
    from PIL import PngImagePlugin

    loaded = []
    real_load = PngImagePlugin.PngImageFile.load
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: loaded.append(self.size) or real_load(self))
    png = encode(Image.new("RGBA", (2000, 2000), (1, 2, 3, 4)), "PNG")
    with pytest.raises(DecodeError, match="over the 10 MB limit"):
        decode(png, max_bytes=10 * 2**20)
    assert loaded == []
    assert decode(png).rgb.shape == (2000, 2000, 3) and loaded


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


# ---- only the allowed formats are ever opened --------------------------------------

# A PostScript program that never ends (66 bytes), with the header that makes Pillow's EPS plugin take it.
POSTSCRIPT_LOOP = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{ 1 pop } loop\n"
DOCUMENTS = {  # named as photos: a scan reads files by their content, whatever their name
    "postscript_loop.jpg": (POSTSCRIPT_LOOP, "a PostScript document"),
    # DOS EPS: a binary header pointing at the PostScript part.
    "eps_photo.tif": (b"\xc5\xd0\xd3\xc6" + (30).to_bytes(4, "little") + len(POSTSCRIPT_LOOP).to_bytes(4, "little")
                   + bytes(18) + POSTSCRIPT_LOOP, "an EPS document"),
    "scan_pdf.png": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "a PDF document"),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_never_reach_a_plugin_that_runs_a_program(name, monkeypatch):
    from PIL import EpsImagePlugin

    # Pillow's EPS plugin opens these, then runs Ghostscript on them at load().
    opened = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(self) or 1 / 0)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: opened.append(a) or 1 / 0)
    data, kind = DOCUMENTS[name]
    with pytest.raises(DecodeError, match=f"not an image: {kind}, not opened"):
        decode(data)
    assert opened == []


def test_only_the_allowed_formats_are_tried():
    # A format Pillow reads but a photo library has no use for (and whose plugin nobody audits for us).
    with pytest.raises(DecodeError, match=r"not an image in a format facecluster reads \(JPEG, PNG"):
        decode(encode(Image.new("RGB", (8, 8)), "PPM"))
    for fmt in ("BMP", "GIF", "TIFF", "WEBP", "PNG", "JPEG"):
        assert decode(encode(Image.new("RGB", (8, 8), (9, 9, 9)), fmt)).format == fmt


def test_nothing_in_the_package_opens_an_image_without_the_allow_list():
    import ast
    from pathlib import Path

    import facecluster

    unguarded = []
    for path in Path(facecluster.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "open"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "Image"
                    and not any(k.arg == "formats" for k in node.keywords)):
                unguarded.append(f"{path.name}:{node.lineno}")
    assert unguarded == []


def test_mpo_from_a_phone_is_read_as_its_first_picture_and_drafted():
    first = Image.new("RGB", (4000, 3000), (200, 30, 30))
    data = encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (4000, 3000), (30, 30, 200))])
    photo = decode(data, max_side=1000)
    assert photo.format == "MPO" and (photo.width, photo.height) == (4000, 3000)
    assert max(photo.rgb.shape[:2]) <= 1000 and photo.rgb[10, 10, 0] > 150


# ---- the memory budget holds for JPEG too ----------------------------------------


def test_progressive_jpeg_over_the_budget_is_refused_before_decoding():
    # 2000 x 2000 at 4:4:4: libjpeg holds 2000*2000*6 bytes (23 MB) of coefficients, at any draft scale.
    img = Image.linear_gradient("L").resize((2000, 2000)).convert("RGB")
    progressive = encode(img, "JPEG", progressive=True, subsampling=0)
    with pytest.raises(DecodeError, match=r"progressive JPEG image is 2000x2000 \(4 MP, RGB\), .*"
                                          r"decoding it would take about 2[34] MB, over the 20 MB limit"):
        decode(progressive, max_side=500, max_bytes=20 * 2**20)
    # The same picture as a baseline JPEG decodes a row at a time, at 1/4 scale: well within.
    assert decode(encode(img, "JPEG", subsampling=0), max_side=500, max_bytes=20 * 2**20).rgb.shape == (500, 500, 3)
    assert decode(progressive, max_side=500, max_bytes=30 * 2**20).rgb.shape == (500, 500, 3)


def test_held_coefficients_follow_libjpegs_block_layout():
    from facecluster.decode import jpeg_held_bytes

    img = Image.new("RGB", (1000, 600), (1, 2, 3))
    assert jpeg_held_bytes(io.BytesIO(encode(img, "JPEG"))) == 0  # baseline, one interleaved scan
    # 4:2:0: Y 125x75 blocks rounded up to 126x76 (2x2 MCUs), Cb and Cr 63x38 each; 128 bytes a block.
    assert jpeg_held_bytes(io.BytesIO(encode(img, "JPEG", progressive=True, subsampling=2))) == (126 * 76 + 2 * 63 * 38) * 128
    # A baseline JPEG whose first scan holds one component of three: its scans are buffered whole too.
    baseline = bytearray(encode(img, "JPEG", subsampling=0))
    sos = baseline.find(b"\xff\xda")
    baseline[sos + 4] = 1
    assert jpeg_held_bytes(io.BytesIO(bytes(baseline))) == 3 * 125 * 75 * 128
    # Junk between segments is skipped, as libjpeg does; headers the walk cannot follow at all (cut short
    # before the first scan) are counted from what Pillow read, not as 0.
    junk = bytearray(encode(img, "JPEG", subsampling=0))
    junk[2:2] = b"junk"
    assert jpeg_held_bytes(io.BytesIO(bytes(junk))) == 0
    cut = encode(img, "JPEG", subsampling=0)[:200]
    assert jpeg_held_bytes(io.BytesIO(cut), (1000, 600, [(1, 1)] * 3)) == 3 * 125 * 75 * 128


def test_a_14100_pixel_progressive_jpeg_header_is_refused_at_the_default_budget():
    # The reported hostile file (1,185 MB to decode) without its 2.4 MB of scans: the header decides.
    small = bytearray(encode(Image.new("RGB", (64, 64), (5, 5, 5)), "JPEG", progressive=True, subsampling=0))
    sof = small.find(b"\xff\xc2")
    small[sof + 5:sof + 9] = (14100).to_bytes(2, "big") * 2
    with pytest.raises(DecodeError, match=r"14100x14100 \(199 MP, RGB\).*about 11[45]\d MB, over the 512 MB limit"):
        decode(bytes(small))


# ---- floating-point and 32-bit images -----------------------------------------------


def test_float_tiff_is_scaled_not_black():
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    photo = decode(encode(Image.fromarray(ramp), "TIFF"))
    assert photo.rgb[0, 0].tolist() == [0, 0, 0] and photo.rgb[0, -1].tolist() == [255, 255, 255]
    assert 120 <= photo.rgb[0, 32, 0] <= 135


def test_float_tiff_outside_0_to_1_is_stretched_by_its_range():
    values = np.tile(np.linspace(-500, 3000, 64, dtype=np.float32), (48, 1))
    values[0, 5] = np.nan
    photo = decode(encode(Image.fromarray(values), "TIFF"))
    assert photo.rgb[1, 0, 0] == 0 and photo.rgb[1, -1, 0] == 255 and photo.rgb[0, 5, 0] == 0
    assert 120 <= photo.rgb[1, 32, 0] <= 135  # 1,250 of -500..3,000: mid-grey, not clipped to white


def test_float_tiff_without_a_finite_pixel_is_refused():
    with pytest.raises(DecodeError, match="no finite pixel values"):
        decode(encode(Image.fromarray(np.full((8, 8), np.nan, np.float32)), "TIFF"))


def test_32_bit_integer_image_beyond_16_bits_is_scaled_not_white():
    values = np.tile(np.linspace(0, 2**30, 64).astype(np.int32), (48, 1))
    photo = decode(encode(Image.fromarray(values), "TIFF"))
    assert photo.rgb[0, 0, 0] == 0 and photo.rgb[0, -1, 0] == 255 and 120 <= photo.rgb[0, 32, 0] <= 135
