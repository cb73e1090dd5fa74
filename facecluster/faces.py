"""One decoded image -> its faces: detect, align, embed, thumbnail and rate each.

Shared by the scan (scan_file.py, a photo or a video's frames), by faces a user
draws (drawn.py) and by identify.

Example:
    faces = find_faces(decode(data).rgb, load_pack("sface"))
"""

from __future__ import annotations

import io
from concurrent.futures import Executor

import numpy as np

from facecluster import config
from facecluster.align import align_faces
from facecluster.models import ModelPack
from facecluster.models.base import Detections
from facecluster.quality import thumb_quality
from facecluster.records import Face


def may_hold_faces(rgb: np.ndarray, scale: float) -> bool:
    """Whether an image `scale` times a photo's size is big enough to hold a face we would keep."""
    return min(rgb.shape[:2]) / scale >= config.MIN_FACE_PIXELS


def find_faces(rgb: np.ndarray, pack: ModelPack, scale: float = 1.0, pool: Executor | None = None,
               prepared: object | None = None) -> list[Face]:
    """Detect, align and embed every face of one decoded image.

    `scale` is the decoded image's size over the photo's full size; stored
    boxes and landmarks are in full-size (displayed) pixels. With a `pool` (one
    thread), the thumbnails and their quality are made there while this thread
    aligns and embeds: Pillow and OpenCV release the GIL, and so does onnxruntime.
    `prepared` is the detector's input for `rgb` where it was made ahead.

    Example:
        faces = find_faces(decode(data).rgb, load_pack("sface"))
    """
    return faces_from_detections(rgb, detect_faces(rgb, pack, scale, prepared), pack, scale, pool)


def detect_faces(rgb: np.ndarray, pack: ModelPack, scale: float = 1.0, prepared: object | None = None) -> Detections:
    """The faces of one decoded image big enough to keep, in `rgb`'s pixels (the first half of find_faces).

    A video detects in every sampled frame but describes (embeds) only the faces
    it may keep (sources/video.py).

    Example:
        found = detect_faces(rgb, load_pack("sface"))
    """
    if not may_hold_faces(rgb, scale):
        return Detections.empty()  # too small to hold a face we would keep: do not enlarge 1x1 icons to 640 px
    found = pack.detector.predict(rgb, prepared)
    if len(found):
        sides = np.minimum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1]) / scale
        keep = sides >= config.MIN_FACE_PIXELS
        found = type(found)(found.boxes[keep], found.scores[keep], found.landmarks[keep])
    return found


def faces_from_detections(rgb: np.ndarray, found, pack: ModelPack, scale: float = 1.0,
                          pool: Executor | None = None) -> list[Face]:
    """Align, embed, thumbnail and rate faces already found in `rgb` (boxes and landmarks in rgb's pixels):
    the second half of `find_faces`, shared with faces a user draws (drawn.py).

    `scale` is rgb's size over the photo's full size; with a `pool` (one thread) the thumbnails and
    their quality are made there while this thread aligns and embeds.

    Example:
        faces = faces_from_detections(rgb, pack.detector.predict(rgb), pack)
    """
    if not len(found):
        return []
    # In float64, as Python floats always were (float32 / a Python float stays float32 in NumPy 2).
    boxes = (found.boxes.astype(np.float64) / scale).tolist()
    landmarks = (found.landmarks.reshape(len(found), -1).astype(np.float64) / scale).tolist()
    scores = found.scores.tolist()
    sizes = [round(min(x2 - x1, y2 - y1), 1) for x1, y1, x2, y2 in boxes]
    extras = None if pool is None else pool.submit(_thumbs_and_quality, rgb, found.boxes, landmarks, sizes, scores)
    vectors = pack.embedder.predict(align_faces(rgb, found.landmarks))
    thumbs, qualities = _thumbs_and_quality(rgb, found.boxes, landmarks, sizes, scores) if extras is None else extras.result()
    return [
        Face(
            box=(round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)),
            landmarks=tuple(marks),
            score=score,
            size=size,
            embedding=vector,
            thumb=thumb,
            quality=quality,
        )
        for (x1, y1, x2, y2), marks, score, size, vector, thumb, quality
        in zip(boxes, landmarks, scores, sizes, vectors, thumbs, qualities)
    ]


def _thumbs_and_quality(rgb: np.ndarray, boxes: np.ndarray, landmarks: list[list[float]], sizes: list[float],
                        scores: list[float]) -> tuple[list[bytes], list[float]]:
    """Each face's thumbnail (from the decoded image's own box) and its quality.

    The quality is computed from what the database keeps (the thumbnail, landmarks
    as stored, size, score), so that filling an older database gives the very same number.
    """
    thumbs = [face_thumbnail(rgb, box) for box in boxes]
    qualities = [thumb_quality(thumb, [round(v, 2) for v in marks], size, score)
                 for thumb, marks, size, score in zip(thumbs, landmarks, sizes, scores)]
    return thumbs, qualities


def face_thumbnail(rgb: np.ndarray, box: np.ndarray, size: int = config.THUMB_SIZE) -> bytes:
    """A square JPEG around the face, with some margin, about `size` pixels a side."""
    # Pillow loads with the first thumbnail, not when the module is imported
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * 1.4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = rgb.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    # A contiguous copy first: Pillow turns a strided view into bytes through numpy's
    # element-by-element copy, 1.2 ms for a 331 px crop where this takes 0.05 ms.
    crop = Image.fromarray(np.ascontiguousarray(rgb[top:max(bottom, top + 1), left:max(right, left + 1)]))
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
