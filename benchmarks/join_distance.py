"""How close must a new face be to a named person's faces to join them?

For every scored face of the labelled sets (the largest face of each photo),
take its nearest other scored faces and ask: within distance T, how often is
the nearest one the same person (precision), and how many faces have one
(reach)? Uses the database that benchmarks/quality.py builds.

    python benchmarks/join_distance.py
    python benchmarks/join_distance.py other.db PHOTOS   # another scanned database (its embedder in use)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import labelled_faces  # noqa: E402



def main() -> None:
    # Optional: another scanned database and its photos (the vectors of its embedder in use are measured).
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"
    if not root.is_dir():
        sys.exit(f"labelled photos not found at {root} (../shared/facedata beside the checkout)")
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".bench" / "facedata-sface.db"
    if not db.exists():
        sys.exit("run benchmarks/quality.py first (it builds the scanned database)")
    x, who = labelled_faces(db, root, aliases=False)  # as first measured: the two Obama folders apart
    dist = np.sqrt(np.maximum(2 - 2 * x @ x.T, 0))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(axis=1)
    d = dist[np.arange(len(x)), nearest]
    same = who[nearest] == who
    print(f"{len(x)} faces; nearest neighbour same person overall: {same.mean():.3f}")
    print(f"{'T':>5} {'reach':>6} {'precision':>9}")
    for t in (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2):
        within = d <= t
        print(f"{t:>5.2f} {within.mean():>6.3f} {same[within].mean() if within.any() else 1:>9.4f}")


if __name__ == "__main__":
    main()
