"""How sure can `identify` be? The wording thresholds, measured on ../shared/facedata.

Uses the database benchmarks/quality.py builds (all of ../shared/facedata scanned with `sface`).
Every labelled photo's largest face, with its folder's identity (identities matched by name across
sets). Two questions, both through identify.Reference and identify.wording themselves:

- known: each face of an identity with 4 or more faces is left out in turn, and matched against
  all the other faces as named people (its own identity keeps 3 or more faces). Is the nearest
  person right, and how is it worded?
- stranger: each identity is taken out of the reference altogether, and each of its faces matched
  against everyone else. Anything but "unknown" names the wrong person.

Printed for a grid of (very likely, possible) thresholds: how often "very likely" is wrong, how
often a known face gets "very likely", and how often a stranger is called "very likely" or "possible".

    python benchmarks/identify_calibration.py [DB [PHOTOS]]   # DB: its embedder in use is measured
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import labelled_faces  # noqa: E402

from facecluster.identify import Candidate, Reference, wording  # noqa: E402
from facecluster.models.registry import SFACE_DISTANCES, Distances  # noqa: E402


def main() -> None:
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"
    if not root.is_dir():
        sys.exit(f"labelled photos not found at {root} (../shared/facedata beside the checkout)")
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".bench" / "facedata-sface.db"
    if not db.exists():
        sys.exit("run benchmarks/quality.py first (it builds the scanned database)")
    x, who = labelled_faces(db, root)
    labels = {name: i for i, name in enumerate(sorted(set(who)))}
    ids = np.array([labels[w] for w in who], np.int64)
    counts = np.bincount(ids)
    names = {i: n for n, i in labels.items()}
    print(f"{len(x)} labelled faces of {len(labels)} identities; {int((counts >= 4).sum())} with 4 or more faces")

    known, strangers = [], []  # (best distance, runner-up distance, right?) per query
    everyone = np.arange(len(x))
    for q in range(len(x)):
        if counts[ids[q]] >= 4:
            keep = everyone != q
            ranked = Reference(ids[keep], x[keep], names).candidates(x[q])
            known.append((ranked[0].distance, ranked[1].distance, ranked[0].person_id == ids[q]))
    for person in range(len(labels)):
        keep = ids != person
        reference = Reference(ids[keep], x[keep], names)
        for q in np.flatnonzero(~keep):
            ranked = reference.candidates(x[q])
            strangers.append((ranked[0].distance, ranked[1].distance, False))
    known_a, strangers_a = np.array(known), np.array(strangers)
    right = known_a[:, 2].astype(bool)
    print(f"known faces: {len(known_a)}, nearest person right for {right.mean():.3f}; stranger faces: {len(strangers_a)}")
    print(f"{'very':>5} {'poss':>5} {'margin':>6} | {'known: very likely':>18} {'of which wrong':>14} {'possible':>8} | "
          f"{'strangers: very likely':>22} {'possible':>8}")
    for very in (0.8, 0.85, 0.9, 0.95, 1.0):
        for possible in (1.0, 1.05, 1.1):
            for margin in (0.0, 0.05, 0.1):
                d = replace(SFACE_DISTANCES, identify_very_likely=very, identify_possible=possible, identify_margin=margin)
                k = [_word(d1, d2, d) for d1, d2, _ in known_a]
                s = [_word(d1, d2, d) for d1, d2, _ in strangers_a]
                k, s = np.array(k), np.array(s)
                very_k = k == "very likely"
                print(f"{very:>5.2f} {possible:>5.2f} {margin:>6.2f} | {very_k.mean():>18.3f} "
                      f"{(very_k & ~right).sum() / max(1, very_k.sum()):>14.4f} {(k == 'possible').mean():>8.3f} | "
                      f"{(s == 'very likely').mean():>22.4f} {(s == 'possible').mean():>8.3f}")
    d = SFACE_DISTANCES
    print(f"SFace's: very likely <= {d.identify_very_likely}, possible <= {d.identify_possible}, margin {d.identify_margin}")


def _word(d1: float, d2: float, d: Distances) -> str:
    return wording(Candidate(0, "", d1), Candidate(1, "", d2), d)


if __name__ == "__main__":
    main()
