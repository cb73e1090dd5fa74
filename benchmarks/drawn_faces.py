"""How good is a face the user draws (facecluster add-face, the review page's box)?

For one-face photos of labelled people in ../shared/facedata, a "person's box" is made from the
face a scan finds (moved by up to 15 % of its size, made 0.9 to 1.3 times larger), and the face is
drawn there with drawn.face_in_box. Printed: how often the detector found the face again in the
box, and how far the drawn faces lie from the centre of their person's other scanned faces, against
the scanned faces themselves; for several crop margins and detector thresholds, and for the
box-only fallback (the detector forced to find nothing).

    python benchmarks/drawn_faces.py [PHOTOS_PER_PERSON]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster import drawn  # noqa: E402
from facecluster.decode import decode  # noqa: E402
from facecluster.models import Detections, load_pack  # noqa: E402
from facecluster.faces import find_faces  # noqa: E402
from facecluster.store import DrawPhoto  # noqa: E402

FACEDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"
PEOPLE = [*sorted((FACEDATA / "celebrity17_kaggle_via_macfaceswap").glob("*/"))[:8],
          *sorted((FACEDATA / "celeb5_opencv_course").glob("*/"))]


def main() -> None:
    if not FACEDATA.is_dir():
        sys.exit(f"labelled photos not found at {FACEDATA} (../shared/facedata beside the checkout)")
    per_person = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    pack = load_pack("sface")
    rows = []  # (person, scanned face, photo)
    for folder in PEOPLE:
        for path in sorted(folder.glob("*.jpg"))[:per_person]:
            decoded = decode(path.read_bytes())
            faces = [f for f in find_faces(decoded.rgb, pack, decoded.scale) if f.size >= 30]
            if len(faces) != 1:
                continue
            facts = os.stat(path)
            rows.append((folder.name, faces[0], DrawPhoto(0, str(path), facts.st_size, facts.st_mtime_ns,
                                                          decoded.width, decoded.height, "ok", [])))
    print(f"{len(rows)} one-face photos of {len({r[0] for r in rows})} people")
    embeddings = np.array([face.embedding for _, face, _ in rows])
    who = np.array([person for person, _, _ in rows])

    def centre(i: int) -> np.ndarray:
        others = who == who[i]
        others[i] = False
        c = embeddings[others].mean(axis=0)
        return c / np.linalg.norm(c)

    rng = np.random.default_rng(0)
    boxes = []
    for _, face, photo in rows:
        x, y, w, h = face.box
        bx, by = max(0.0, x + rng.uniform(-0.15, 0.15) * w), max(0.0, y + rng.uniform(-0.15, 0.15) * h)
        boxes.append((bx, by, min(w * rng.uniform(0.9, 1.3), photo.width - bx), min(h * rng.uniform(0.9, 1.3), photo.height - by)))
    scanned = np.array([np.linalg.norm(face.embedding - centre(i)) for i, (_, face, _) in enumerate(rows)])
    print(f"scanned faces: distance to their person's centre, median {np.median(scanned):.3f}, mean {scanned.mean():.3f}")
    drawing = drawn.drawing_pack("sface")
    for margin in (0.5, 1.0, 2.0):
        for threshold in (0.3, 0.6):
            drawn.CROP_MARGIN, drawing.detector.score_threshold = margin, threshold
            to_centre, to_scanned, found = [], [], 0
            for i, ((_, face, photo), box) in enumerate(zip(rows, boxes)):
                got = drawn.face_in_box(photo, box, drawing)
                found += got.score > 0
                to_centre.append(np.linalg.norm(got.embedding - centre(i)))
                to_scanned.append(np.linalg.norm(got.embedding - face.embedding))
            print(f"margin {margin} threshold {threshold}: found again {found}/{len(rows)}; to the person's centre median "
                  f"{np.median(to_centre):.3f} mean {np.mean(to_centre):.3f}; to the scanned face median "
                  f"{np.median(to_scanned):.3f}, 90th percentile {np.percentile(to_scanned, 90):.3f}")
    drawn.CROP_MARGIN, drawing.detector.score_threshold = 1.0, drawn.DRAWN_THRESHOLD
    drawing.detector.predict = lambda rgb, prepared=None: Detections.empty()
    alone = np.array([np.linalg.norm(drawn.face_in_box(photo, box, drawing).embedding - centre(i))
                      for i, ((_, _, photo), box) in enumerate(zip(rows, boxes))])
    print(f"the box alone: to the person's centre median {np.median(alone):.3f}, mean {alone.mean():.3f}")


if __name__ == "__main__":
    main()
