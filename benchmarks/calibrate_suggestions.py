"""How likely a suggestion is, by its distance: the evidence behind an embedder's group_likelihood and face_likelihood.

On a database holding a scan of all of ../shared/facedata, with the largest face of each labelled
photo and its folder's identity:

- faces: for each face, the mean distance to the 3 nearest faces of every identity (itself left
  out); the nearest identity is the suggestion. Printed per distance band: how many top
  suggestions fell there and the share that were the face's own identity.
- groups: random groups of 2 to 7 faces of one identity; the candidate is the nearest of another
  random group of the same identity and one group of each other identity, by distance between
  centres (mean embedding, made unit). Printed per band: the share of top candidates, and of
  best wrong candidates, that were the same identity.

    python benchmarks/calibrate_suggestions.py --scanned lib.db --library PHOTOS
    python benchmarks/calibrate_suggestions.py          # scans ../shared/facedata into a temporary folder
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from naming import faces, identities, library_arguments, scanned_library  # noqa: E402

from facecluster.store import Store  # noqa: E402


def bands(values: np.ndarray, same: np.ndarray, edges: list[float]) -> None:
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (values > lo) & (values <= hi)
        if m.any():
            print(f"  ({lo:.2f}, {hi:.2f}]  n={int(m.sum()):5d}  same person {same[m].mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    library_arguments(parser)
    parser.add_argument("--trials", type=int, default=3000)
    args = parser.parse_args()
    work, root, db = scanned_library(args, "calibrate-")
    store = Store(db)
    face = faces(store, identities(root))
    ids = [f for (f,) in store.db.execute("SELECT id FROM faces") if face[f][1]]
    vectors = store.vectors_of(ids, store.active_embedder("sface"))  # the embedder in use (scan --embedder)
    rows = [(f, vectors[f]) for f in ids]
    x = np.stack([v for _, v in rows])
    label = np.array([face[f][1] for f, _ in rows])
    people = sorted(set(label))
    print(f"{len(rows)} labelled faces of {len(people)} people")

    d = np.sqrt(np.maximum(2 - 2 * x @ x.T, 0))
    np.fill_diagonal(d, np.inf)
    top, right = [], []
    for i in range(len(rows)):
        best = min(
            (np.sort(d[i, label == p])[:3].mean(), p) for p in people if np.isfinite(np.sort(d[i, label == p])[:3]).sum() == 3
        )
        top.append(best[0])
        right.append(best[1] == label[i])
    print("faces: mean distance to the 3 nearest faces of the top identity")
    bands(np.array(top), np.array(right), [0, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 2])

    rng = np.random.default_rng(0)
    values, same = [], []
    for _ in range(args.trials):
        size = int(rng.integers(2, 8))
        who = people[rng.integers(len(people))]
        mine = rng.permutation(np.flatnonzero(label == who))
        if len(mine) < 2 * size:
            continue
        centre = _centre(x[mine[:size]])
        candidates = [(float(np.linalg.norm(centre - _centre(x[mine[size : 2 * size]]))), True)]
        for other in people:
            theirs = rng.permutation(np.flatnonzero(label == other))[:size]
            if other != who and len(theirs) >= 2:
                candidates.append((float(np.linalg.norm(centre - _centre(x[theirs]))), False))
        candidates.sort()
        values.append(candidates[0][0])
        same.append(candidates[0][1])
        wrong = min(c for c in candidates if not c[1])
        values.append(wrong[0])
        same.append(False)
    print("groups: distance between centres of the top candidate and of the best wrong one")
    bands(np.array(values), np.array(same), [0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 2])
    shutil.rmtree(work, ignore_errors=True)


def _centre(x: np.ndarray) -> np.ndarray:
    c = x.mean(axis=0)
    return c / np.linalg.norm(c)


if __name__ == "__main__":
    main()
