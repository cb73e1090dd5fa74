"""How much a face can be trusted to say who it is: one number in [0, 1]. Pure functions.

A blurred, tiny, doubtful or side-on face gives an embedding that sits close
to many people at once; HDBSCAN then happily builds a "group" of such faces
(the blur group: 8 out-of-focus strangers from crowd photos). The quality
score keeps those faces from seeding or forming groups; they may still join
a strong group by a nearest-neighbour vote.

Four aspects, each mapped to [0, 1] by a linear ramp between a "useless"
and a "good" value (docs/quality.md has the measurements behind them):

- sharpness: variance of the Laplacian of the face's centre (the middle 60 %
  of the stored 128 px thumbnail, grey, resized to 64 x 64). Computed from the
  stored thumbnail, not the aligned crop, so that a database scanned before
  the score existed gets exactly the same numbers without re-running the
  models. Ramp on log10 from 30 (smeared) to 300 (crisp).
- size: the box's shorter side, 20 px -> 0, 60 px -> 1.
- detection score: 0.6 -> 0, 0.9 -> 1.
- pose: how far the nose sits off the middle of the eyes, along the eye line,
  over the eye distance (0 frontal, about 0.5 in profile): 0.25 -> 1, 0.5 -> 0.

The score is their geometric mean: one very poor aspect pulls it down hard,
a zero makes it zero.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

SHARP_RAMP = (30.0, 300.0)  # Laplacian variance, on a log scale
SIZE_RAMP = (20.0, 60.0)  # pixels, the box's shorter side
SCORE_RAMP = (0.6, 0.9)  # detector confidence
YAW_RAMP = (1.0, 0.6)  # nose offset over eye distance: 1.0 -> 0, 0.6 -> 1 (only near-profiles lose)
CORE = 0.6  # middle share of the thumbnail that is the face itself (the thumbnail has a 1.4x margin)
SHARP_SIDE = 64  # pixels a side the face centre is resized to before the Laplacian


def ramp(value: float, low: float, high: float) -> float:
    """`value` mapped linearly from [low, high] to [0, 1], clipped. `high` may be below `low`.

    Example:
        ramp(0.75, 0.6, 0.9)  # 0.5
    """
    if not math.isfinite(value):
        return 0.0
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def sharpness(gray: npt.NDArray[np.floating]) -> float:
    """Variance of the Laplacian of the centre of a grey face image, at a fixed 64 x 64 scale.

    Example:
        sharpness(np.zeros((128, 128)))  # 0.0 (a flat image has no edges)
    """
    # OpenCV is a large native library: loaded at the first face rated
    import cv2

    g = np.asarray(gray, np.float32)
    h, w = g.shape[:2]
    if h < 2 or w < 2:
        return 0.0
    margin_y, margin_x = int(h * (1 - CORE) / 2), int(w * (1 - CORE) / 2)
    core = g[margin_y : max(h - margin_y, margin_y + 1), margin_x : max(w - margin_x, margin_x + 1)]
    shrink = core.shape[0] > SHARP_SIDE
    core = cv2.resize(core, (SHARP_SIDE, SHARP_SIDE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(core, cv2.CV_32F).var())


def thumb_sharpness(jpeg: bytes | None) -> float:
    """`sharpness` of a stored face thumbnail (JPEG bytes); 0 when there is none or it cannot be read.

    Example:
        thumb_sharpness(store.thumb(face_id))
    """
    if not jpeg:
        return 0.0
    # Pillow loads with the first thumbnail rated
    from PIL import Image

    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as im:  # our own thumbnails: JPEG, and nothing else is tried
            gray = np.asarray(im.convert("L"), np.float32)
    except (OSError, ValueError):
        return 0.0
    return sharpness(gray)


def yaw_ratio(landmarks: Sequence[float]) -> float:
    """Nose offset from the eyes' midpoint, along the eye line, over the eye distance.

    Landmarks are YuNet's five (x, y) points: eyes, nose tip, mouth corners.
    0 for a frontal face, about 0.5 and more in profile; inf when the eyes coincide.

    Example:
        yaw_ratio([0, 0, 10, 0, 5, 6, 1, 10, 9, 10])  # 0.0
    """
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_line = p[1] - p[0]
    distance = float(np.hypot(*eye_line))
    if distance <= 1e-6:
        return math.inf
    offset = float(np.dot(p[2] - (p[0] + p[1]) / 2, eye_line / distance))
    return abs(offset) / distance


def face_quality(sharp: float, size: float, score: float, yaw: float) -> float:
    """The combined quality: geometric mean of the four aspects' ramps, in [0, 1].

    Example:
        face_quality(sharp=500, size=100, score=0.95, yaw=0.05)  # 1.0
    """
    parts = (
        ramp(math.log10(sharp) if sharp > 0 else -math.inf, *map(math.log10, SHARP_RAMP)),
        ramp(size, *SIZE_RAMP),
        ramp(score, *SCORE_RAMP),
        ramp(yaw, *YAW_RAMP),
    )
    if min(parts) <= 0:
        return 0.0
    return round(float(math.prod(parts) ** (1 / len(parts))), 4)


def thumb_quality(jpeg: bytes | None, landmarks: Sequence[float], size: float, score: float) -> float:
    """`face_quality` of a stored face: what scan computes, and what filling an older database computes.

    Example:
        thumb_quality(face.thumb, face.landmarks, face.size, face.score)
    """
    return face_quality(thumb_sharpness(jpeg), size, score, yaw_ratio(landmarks))
