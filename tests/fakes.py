"""A fake detector and embedder for tests of the code around the models: no model files, deterministic, fast.

A "face" here is a square of one strong colour, textured so that it reads as sharp, on a grey photo
(`paint_photo`, `write_photo`). `SquareDetector` finds each such square and puts the five landmarks
where the ArcFace template has them, so the real alignment turns the square into the whole crop;
`HueEmbedder` maps the crop's colour to a vector by its hue. Two squares of one colour are one
"person" (distance about 0), two colours of the palette are two (distance about 1).

Use them where the models are only plumbing (scan's bookkeeping: unchanged, moved, failed and pruned
files, progress; grouping's bookkeeping). Keep the real models where behaviour depends on faces.

Example:
    summary = scan(store, [str(folder)], ScanOptions(jobs=1), pack=fake_pack())
"""

from __future__ import annotations

import colorsys
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

from facecluster.align import ARCFACE_TEMPLATE, CROP_SIZE
from facecluster.models import DEFAULT_PACK, Detections, Detector, Embedder, ModelPack

# Colours far apart on the colour wheel (30 degrees or more): each is one fake person.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (230, 130, 20),
    "yellow": (220, 220, 30),
    "green": (30, 200, 40),
    "cyan": (30, 200, 210),
    "blue": (40, 60, 220),
    "purple": (140, 40, 220),
    "magenta": (220, 40, 180),
}
HUE_BINS = 12  # one bin per 30 degrees of hue: JPEG's colour shifts stay well inside a bin
CHROMA = 60  # max - min channel above which a pixel is "coloured" (the grey background has 0)
SIDE = 64  # a square's side, pixels: big and sharp enough to pass grouping's quality gate


class _NoLock:
    """The fakes travel to scan's worker processes (pickled); the base class's lock does not pickle."""

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class SquareDetector(_NoLock, Detector):
    """Each connected patch of strong colour at least `min_side` pixels a side is a face, score 0.95."""

    def __init__(self, min_side: int = 8) -> None:
        super().__init__()
        self.min_side = min_side
        self.calls = 0  # images looked at, in this process

    def _load(self) -> None:
        pass  # no files

    def _predict(self, rgb: npt.NDArray[np.uint8], prepared: object | None = None) -> Detections:
        self.calls += 1
        chroma = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
        labels, _count = ndimage.label(chroma > CHROMA)
        boxes = []
        for rows, cols in ndimage.find_objects(labels):
            if min(rows.stop - rows.start, cols.stop - cols.start) >= self.min_side:
                boxes.append((cols.start, rows.start, cols.stop, rows.stop))
        if not boxes:
            return Detections.empty()
        boxes.sort(key=lambda b: (b[1], b[0]))
        box_array = np.array(boxes, np.float32)
        sizes = box_array[:, 2:] - box_array[:, :2]
        landmarks = box_array[:, None, :2] + ARCFACE_TEMPLATE[None].astype(np.float32) / CROP_SIZE * sizes[:, None, :]
        return Detections(box_array, np.full(len(boxes), 0.95, np.float32), landmarks.astype(np.float32))


class HueEmbedder(_NoLock, Embedder):
    """The crop's mean colour: a one-hot of its hue bin, plus a little of the colour itself."""

    dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0  # crops embedded, in this process

    def _load(self) -> None:
        pass  # no files

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        self.calls += len(crops)
        middle = crops[:, CROP_SIZE // 4 : -CROP_SIZE // 4, CROP_SIZE // 4 : -CROP_SIZE // 4]
        means = middle.reshape(len(crops), -1, 3).mean(axis=1) / 255.0
        vectors = np.zeros((len(crops), self.dim), np.float32)
        for i, (r, g, b) in enumerate(means):
            hue = colorsys.rgb_to_hsv(r, g, b)[0]
            vectors[i, int(round(hue * HUE_BINS)) % HUE_BINS] = 1.0
            vectors[i, HUE_BINS : HUE_BINS + 3] = 0.05 * np.array([r, g, b])
        return vectors


def fake_pack(name: str = DEFAULT_PACK) -> ModelPack:
    """A pack of the two fakes. Named as the default pack, so that every command's default `--model` finds
    its faces and its grouping distances (the fakes' are about 0 and 1, inside any pack's); its own
    fingerprint keeps a database from mixing its faces with real SFace faces (scan refuses changed weights).

    Example:
        pack = fake_pack(); scan(store, [folder], ScanOptions(jobs=1), pack=pack); pack.detector.calls
    """
    return ModelPack(name=name, detector=SquareDetector(), embedder=HueEmbedder(),
                     fingerprint="fake:square-detector:hue-embedder:1", licence="test only")


def paint_photo(colours: list[str], seed: int = 0, size: tuple[int, int] = (240, 360)) -> npt.NDArray[np.uint8]:
    """A grey photo (height, width) with one textured square per colour, left to right; `seed` moves them a little
    and shades the background, so that two photos of the same people differ.

    Example:
        rgb = paint_photo(["red", "blue"], seed=3)
    """
    rng = np.random.default_rng(seed)
    height, width = size
    rgb = np.full((height, width, 3), 110 + seed % 40, np.uint8)
    rgb += rng.integers(0, 6, size=(height, width, 1), dtype=np.uint8)  # grey noise: no colour
    cells = (np.add.outer(np.arange(SIDE) // 8, np.arange(SIDE) // 8) % 2)[..., None]  # an 8-pixel checkerboard
    for i, name in enumerate(colours):
        colour = np.array(COLOURS[name], np.float32)
        square = np.where(cells == 1, colour, colour * 0.65).astype(np.uint8)
        x = 16 + i * (SIDE + 24) + int(rng.integers(0, 8))
        y = (height - SIDE) // 2 + int(rng.integers(-20, 20))
        if x + SIDE > width:
            raise ValueError(f"{len(colours)} squares do not fit in a photo {width} pixels wide")
        rgb[y : y + SIDE, x : x + SIDE] = square
    return rgb


def write_photo(path: Path, colours: list[str], seed: int = 0, size: tuple[int, int] = (240, 360)) -> Path:
    """`paint_photo` saved as a JPEG at `path` (folders made as needed).

    Example:
        write_photo(tmp_path / "lib" / "a.jpg", ["red"])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(paint_photo(colours, seed, size)).save(path, "JPEG", quality=95)
    return path
