"""Five landmarks -> a 112x112 face crop, by the ArcFace similarity transform.

Pure functions: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CROP_SIZE = 112

# Where the eyes, nose tip and mouth corners sit in a 112x112 ArcFace crop
# (insightface's `arcface_dst`; OpenCV's FaceRecognizerSF uses the same points).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 2x3 matrix of the least-squares similarity (rotation, uniform scale,
    translation) taking points `src` onto `dst` (Umeyama, 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1  # a reflection is not a similarity: flip the weakest axis
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: npt.NDArray[np.uint8], landmarks: npt.ArrayLike, size: int = CROP_SIZE) -> npt.NDArray[np.uint8]:
    """Warp one face of `image` (h, w, 3) to a size x size crop given its five landmarks."""
    # OpenCV is a large native library: loaded where a face is first warped, not on import
    import cv2

    template = ARCFACE_TEMPLATE * (size / CROP_SIZE)
    matrix = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2), template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def align_faces(image: npt.NDArray[np.uint8], landmarks: npt.ArrayLike, size: int = CROP_SIZE) -> npt.NDArray[np.uint8]:
    """Crops for every face: landmarks (n, 5, 2) -> (n, size, size, 3)."""
    marks = np.asarray(landmarks).reshape(-1, 5, 2)
    if len(marks) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([align_face(image, m, size) for m in marks])
