"""Box geometry: pure functions on (x, y, w, h) boxes, importing nothing of ours.

Low in the import graph so that the store (re-matching faces after a photo is
detected again), the file formats (XMP regions) and the name files can all
compare boxes without importing one another.
"""

from __future__ import annotations

Box = tuple[float, float, float, float]  # x, y, width, height, in pixels


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes: 1 for the same box, 0 for boxes apart.

    Example:
        iou((0, 0, 10, 10), (5, 0, 10, 10)) == 1 / 3
    """
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
