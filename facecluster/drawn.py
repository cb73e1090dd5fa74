"""Faces the detector missed, drawn by the user: a box on a photo becomes a face like any other.

The photo is decoded with the scan's decoder (decode.py), and the pack's own
detector looks again inside a margin around the box, with a lower score
threshold than a scan's (the user has said there is a face there): where it
finds a face centred in the box, that face's box and five landmarks align it,
exactly as a scanned face is aligned. Where it finds none (a face too turned,
too dark or too covered for it), the landmarks are placed where YuNet puts
them in its own boxes on average (LANDMARKS_IN_BOX) and the face is aligned
from the box alone. Either way the scan's own code (faces.faces_from_detections)
embeds it, makes its 128 px thumbnail and rates its quality, and the face is
saved as a face of that photo: removed with the photo, exported in XMP, grouped
and suggested like any other. With a name it is the user's face of that person
from the start (as `give` makes it).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np

from facecluster import config
from facecluster.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, DecodeError, decode
from facecluster.errors import FaceclusterError, ModelError, PeopleError
from facecluster.faces import faces_from_detections
from facecluster.files import open_regular
from facecluster.geometry import iou
from facecluster.models import DEFAULT_PACK, Detections, ModelPack, load_pack
from facecluster.naming_rules import clean_name, group_number, parse_id
from facecluster.people import put_faces, resolve
from facecluster.store import DrawPhoto, Store


class DrawError(FaceclusterError):
    """A drawn box that cannot become a face: outside the photo, too small, on a face already there..."""


# The detector's score threshold inside a drawn box. The user has said a face is there, so a doubtful
# detection's landmarks (still far better than none) are used from this score up.
DRAWN_THRESHOLD = 0.3
# The detector sees the box with this many box sides around it on each side (clipped to the photo):
# the face then fills about a third of its input, a size YuNet finds well, and the scan's thumbnail
# (1.4 x the face) and aligned crop of a face inside the box lie within the crop.
CROP_MARGIN = 1.0
# Where YuNet puts the five landmarks (eyes, nose tip, mouth corners) inside its own box, as shares of
# the box's width and height: medians over 351 confident faces (score >= 0.8, 40 px and more) of 300
# random photos of ../shared/facedata, made left-right symmetric. Used when the detector finds nothing.
LANDMARKS_IN_BOX = np.array(
    [[0.267, 0.390], [0.733, 0.390], [0.500, 0.589], [0.299, 0.735], [0.701, 0.735]], np.float32
)
# Decoded pixels a side a drawn face should have at least (the embedder's crop is 112 px): a small face
# in a big photo is decoded at a larger size than the scan's 2048 px, up to the photo's own size.
FACE_PIXELS = 112


@dataclass(frozen=True)
class DrawnFace:
    face_id: int
    photo: str  # the photo's path
    box: tuple[float, float, float, float]  # x, y, w, h in the photo's full-size pixels, as stored
    detected: bool  # the detector found the face in the box (its landmarks aligned it); False: aligned from the box alone
    score: float  # the detector's score for it (0 when aligned from the box alone)
    person_id: int | None  # the person it was given to, None when left in no group
    name: str | None


def parse_box(text: str) -> tuple[float, float, float, float]:
    """ "x,y,w,h" (full-size photo pixels) -> four numbers, or a DrawError saying what is wrong.

    Example:
        parse_box("120,80,64,64") == (120.0, 80.0, 64.0, 64.0)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise DrawError(f"a box is four numbers x,y,w,h in the photo's pixels, not {str(text)[:40]!r}")
    return values  # type: ignore[return-value]


def check_box(box: tuple[float, float, float, float], width: int, height: int) -> None:
    """A DrawError unless the box lies inside a width x height photo and is at least 20 px a side.

    Example:
        check_box((10, 10, 40, 40), 640, 480)
    """
    x, y, w, h = box
    if not all(math.isfinite(v) for v in box):
        raise DrawError("a box is four finite numbers")
    if min(w, h) < config.MIN_FACE_PIXELS:
        raise DrawError(f"the box must be at least {config.MIN_FACE_PIXELS} pixels a side (this one is {w:g} x {h:g})")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise DrawError(f"the box ({x:g}, {y:g}, {w:g} x {h:g}) reaches outside the photo ({width} x {height} pixels)")


def add_face(store: Store, photo: str | int, box: tuple[float, float, float, float], name: str | None = None,
             model: str | None = None) -> DrawnFace:
    """Add a face the detector missed: `box` (x, y, w, h in the photo's full-size pixels) on `photo`,
    a path the database holds, a face id (int, or a number as text that names no photo) of the same photo.
    `name` (a name, a new name, or a group number) gives it to that person at once. `model` defaults to
    the pack of the photo's other faces, else the default pack.

    Example:
        add_face(store, "/photos/party.jpg", (812, 240, 96, 110), name="Alice")
    """
    found = _find_photo(store, photo)
    check_box(box, found.width, found.height)
    model = model or _pack_of(found)
    target = None
    if name is not None:
        target = _check_target(store, name, model)
    pack = drawing_pack(model)
    face = face_in_box(found, box, pack)
    with store.writer("add face"):
        if store.register_model(pack.name, pack.fingerprint, int(getattr(pack.embedder, "dim", 0)), pack.licence):
            raise ModelError(f"the files of model pack {pack.name!r} differ from the ones this database was built with")
        current = store.draw_photo(found.id)
        if current is None or (current.size, current.mtime_ns) != (found.size, found.mtime_ns):
            raise DrawError(f"{found.path} changed while the face was being read; try again")
        for face_id, face_model, other in current.faces:
            if face_model == model and iou(other, face.box) >= config.SAME_FACE_IOU:
                raise DrawError(f"face {face_id} already covers this box")
        with store.transaction():
            face_id = store.add_face(found.id, model, face)
            given = put_faces(store, [face_id], target) if target is not None else None
    return DrawnFace(face_id, found.path, face.box, face.score > 0, face.score,
                     given.person_id if given else None, given.name if given else None)


def face_in_box(photo: DrawPhoto, box: tuple[float, float, float, float], pack: ModelPack):
    """The Face (records.Face) in `box` on `photo`: decoded as a scan decodes it, found again by the
    pack's detector in a margin around the box (else aligned from the box alone), embedded, thumbnailed
    and rated by the scan's own code. Checks that the file is still the one the database describes.

    Example:
        face = face_in_box(store.draw_photo(7), (812, 240, 96, 110), drawing_pack("sface"))
    """
    x, y, w, h = box
    longest = max(photo.width, photo.height)
    # At the scan's size unless the face would come out smaller than the embedder's crop there.
    side = max(DEFAULT_MAX_SIDE, math.ceil(longest * FACE_PIXELS / min(w, h)))
    try:
        f = open_regular(photo.path)
    except OSError as e:
        raise DrawError(f"cannot read {photo.path}: {e.strerror or e}") from None
    except Exception as e:  # open_regular's refusal of a FIFO or device put in the photo's place
        raise DrawError(f"cannot read {photo.path}: it is {e} now, not a regular file") from None
    with f:
        try:
            facts = os.fstat(f.fileno())
            if (facts.st_size, facts.st_mtime_ns) != (photo.size, photo.mtime_ns):
                raise DrawError(f"{photo.path} changed since it was scanned; scan it again first")
            decoded = decode(f, min(side, longest), DEFAULT_MAX_PIXELS)
        except DecodeError as e:
            raise DrawError(f"cannot read {photo.path}: {e}") from None
        except OSError as e:
            raise DrawError(f"cannot read {photo.path}: {e.strerror or e}") from None
    if (decoded.width, decoded.height) != (photo.width, photo.height):
        raise DrawError(f"{photo.path} is {decoded.width} x {decoded.height} pixels now, not the "
                        f"{photo.width} x {photo.height} it was scanned at; scan it again first")
    found = find_in_box(decoded.rgb, np.array([x, y, x + w, y + h], np.float64) * decoded.scale, pack)
    return faces_from_detections(decoded.rgb, found, pack, decoded.scale)[0]


def find_in_box(rgb: np.ndarray, box: np.ndarray, pack: ModelPack) -> Detections:
    """One detection for the face in `box` (x1, y1, x2, y2 in rgb's pixels): the detector's, run on the
    box with CROP_MARGIN around it, whose box centre lies in `box` (the best overlap where several do);
    else the box itself with LANDMARKS_IN_BOX and a score of 0.

    Example:
        found = find_in_box(rgb, np.array([100, 80, 196, 190]), drawing_pack("sface"))
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    margin = CROP_MARGIN * max(x2 - x1, y2 - y1)
    h, w = rgb.shape[:2]
    left, top = int(max(0, x1 - margin)), int(max(0, y1 - margin))
    right, bottom = int(min(w, math.ceil(x2 + margin))), int(min(h, math.ceil(y2 + margin)))
    crop = np.ascontiguousarray(rgb[top:bottom, left:right])
    found = pack.detector.predict(crop)
    if len(found):
        shift = np.array([left, top], np.float32)
        boxes = found.boxes + np.tile(shift, 2)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
        if inside.any():
            overlaps = np.array([iou(_xywh(b), _xywh(box)) if ok else -1.0 for b, ok in zip(boxes, inside)])
            best = int(np.argmax(overlaps))
            return Detections(boxes[best : best + 1], found.scores[best : best + 1], found.landmarks[best : best + 1] + shift)
    size = np.array([x2 - x1, y2 - y1], np.float32)
    marks = LANDMARKS_IN_BOX * size + np.array([x1, y1], np.float32)
    return Detections(np.array([[x1, y1, x2, y2]], np.float32), np.zeros(1, np.float32), marks[None])


_packs: dict[str, ModelPack] = {}
_packs_lock = threading.Lock()


def drawing_pack(model: str = DEFAULT_PACK) -> ModelPack:
    """The pack `model` with its detector at DRAWN_THRESHOLD, loaded once per process (the review
    server draws many faces; loading the models takes about a second).

    Example:
        pack = drawing_pack("sface")
    """
    with _packs_lock:
        pack = _packs.get(model)
        if pack is None:
            pack = load_pack(model, config.DETECTION_SIZE, DRAWN_THRESHOLD)
            pack.load()
            _packs.clear()  # one pack at a time: each holds about 300 MB
            _packs[model] = pack
        return pack


def _xywh(box) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1, y1, x2 - x1, y2 - y1


def _find_photo(store: Store, photo: str | int) -> DrawPhoto:
    """The photo a path (one the database holds) or a face id stands for."""
    if isinstance(photo, str):
        found = store.draw_photo_by_path(os.path.abspath(os.path.expanduser(photo)))
        if found is not None:
            return _usable(found)
        face_id = parse_id(photo)
        if face_id is None:
            raise DrawError(f"{photo} is not a photo in the database (scan it first), nor a face id")
    else:
        face_id = photo
    found = store.draw_photo_of_face(face_id)
    if found is None:
        raise DrawError(f"no face with id {face_id}" if isinstance(photo, int) else
                        f"{photo} is not a photo in the database (scan it first), nor a face id")
    return _usable(found)


def _usable(photo: DrawPhoto) -> DrawPhoto:
    if photo.status != "ok" or not photo.width or not photo.height:
        raise DrawError(f"{photo.path} could not be read when it was scanned; nothing to draw on")
    return photo


def _pack_of(photo: DrawPhoto) -> str:
    models = sorted({m for _, m, _ in photo.faces})
    if len(models) > 1:
        raise DrawError(f"{photo.path} holds faces of several model packs ({', '.join(models)}); choose one with --model")
    return models[0] if models else DEFAULT_PACK


def _check_target(store: Store, name: str, model: str) -> str:
    """Refuse a name the face could not be given to, before the models run: an unknown group number,
    a name of another pack's person, a name that is no name."""
    text = name.strip()
    try:
        person = resolve(store, text)
    except PeopleError:
        if group_number(text) is not None:
            raise
        return clean_name(text)
    if person.model != model:
        raise PeopleError(f"{text} holds faces of the {person.model} pack; this face is made by {model}")
    return text
