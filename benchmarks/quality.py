"""Clustering quality on the labelled photos of ../shared/facedata.

Scans every set into a cached database (a real `scan`; later runs are
incremental), then groups each identity set on its own, and all of them
together with `groups/` and `nonhuman_faces/` as distractors (the "library"
run), with the same code as `facecluster group`. The largest face of each
photo is scored against its folder's identity; other faces take part in the
clustering but are not scored. Prints BCubed precision/recall/F, pairwise F
and the share of scored faces left unclustered.

    python benchmarks/quality.py                       # the defaults
    python benchmarks/quality.py --min-faces 4 --min-samples 2
    python benchmarks/quality.py --method agglomerative --threshold 1.0
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.metrics import quality  # noqa: E402
from facecluster.grouping import GroupOptions, plan_groups  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import GroupingInputs, Store  # noqa: E402

DISTRACTORS = ("groups", "nonhuman_faces")


def identities(root: Path) -> dict[str, tuple[str, str]]:
    """Absolute photo path -> (set, identity) from each set's MANIFEST.tsv."""
    out = {}
    for manifest in sorted(root.glob("*/MANIFEST.tsv")):
        folder = manifest.parent
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                out[os.path.abspath(folder / row["file"])] = (folder.name, row.get("identity") or "")
    return out


def subset(data: GroupingInputs, rows: np.ndarray) -> GroupingInputs:
    return GroupingInputs(
        face_ids=data.face_ids[rows], photo_ids=data.photo_ids[rows], sizes=data.sizes[rows],
        scores=data.scores[rows], person_ids=np.full(len(rows), -1, np.int64),
        embeddings=data.embeddings[rows], people={}, rejections=set(),
    )


def evaluate(data: GroupingInputs, truth_rows: dict[int, str], options: GroupOptions):
    """Group `data` from scratch; score rows in `truth_rows` (row -> identity)."""
    plan = plan_groups(data, options)
    labels = np.full(len(data.face_ids), -1, np.int64)
    for c, rows in enumerate(plan.clusters):
        labels[rows] = c
    scored = np.array(sorted(truth_rows), np.int64)
    truth = [truth_rows[r] for r in scored]
    return quality(truth, labels[scored]), len(scored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facedata", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"))
    parser.add_argument("--db", default=str(Path(__file__).resolve().parent.parent / ".bench" / "facedata-sface.db"))
    defaults = GroupOptions()
    parser.add_argument("--method", default=defaults.method)
    parser.add_argument("--min-faces", type=int, default=defaults.min_faces)
    parser.add_argument("--min-samples", type=int, default=defaults.min_samples)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--min-size", type=float, default=defaults.min_face_size)
    parser.add_argument("--min-score", type=float, default=defaults.min_score)
    parser.add_argument("--sets", nargs="*", help="only these identity sets (and no library run)")
    args = parser.parse_args()
    root = Path(args.facedata)
    if not root.is_dir():
        sys.exit(f"labelled photos not found at {root}")

    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.db)
    summary = scan(store, [str(root)], ScanOptions())
    print(f"scan: {summary.seen} files, {summary.new} newly scanned, {summary.failed} unreadable", file=sys.stderr)
    options = replace(
        defaults, method=args.method, min_faces=args.min_faces, min_samples=args.min_samples,
        threshold=args.threshold, min_face_size=args.min_size, min_score=args.min_score,
    )
    data = store.grouping_inputs("sface")
    paths = store.photo_paths()
    known = identities(root)
    face_set, face_identity = [], []
    for photo_id in data.photo_ids.tolist():
        s, who = known.get(os.path.abspath(paths[photo_id]), ("?", ""))
        face_set.append(s)
        face_identity.append(who)
    face_set = np.array(face_set)
    # The largest face of each photo is the one the folder names.
    largest: dict[int, int] = {}
    for row, (photo, size) in enumerate(zip(data.photo_ids.tolist(), data.sizes.tolist())):
        if photo not in largest or size > data.sizes[largest[photo]]:
            largest[photo] = row
    scored_rows = {row for row in largest.values() if face_set[row] not in DISTRACTORS and face_identity[row]}

    sets = args.sets or sorted({s for s in face_set.tolist() if s not in DISTRACTORS and s != "?"})
    print(f"{options.method} min_faces={options.min_faces} min_samples={options.min_samples} "
          f"threshold={options.threshold} min_size={options.min_face_size} min_score={options.min_score}")
    print(f"{'set':<38} {'scored':>6} {'B3 P':>6} {'B3 R':>6} {'B3 F':>6} {'pair F':>6} {'uncl.':>6}")
    for name in sets:
        rows = np.flatnonzero(face_set == name)
        position = {int(r): i for i, r in enumerate(rows)}
        truth = {position[r]: face_identity[r] for r in scored_rows if r in position}
        q, n = evaluate(subset(data, rows), truth, options)
        print(f"{name:<38} {n:>6} {q.bcubed_precision:>6.3f} {q.bcubed_recall:>6.3f} {q.bcubed_f:>6.3f} "
              f"{q.pairwise_f:>6.3f} {q.unclustered:>6.3f}")
    if not args.sets:
        rows = np.arange(len(data.face_ids))
        truth = {r: face_identity[r].lower() for r in scored_rows}
        q, n = evaluate(subset(data, rows), truth, options)
        print(f"{'library (all sets + distractors)':<38} {n:>6} {q.bcubed_precision:>6.3f} {q.bcubed_recall:>6.3f} "
              f"{q.bcubed_f:>6.3f} {q.pairwise_f:>6.3f} {q.unclustered:>6.3f}")


if __name__ == "__main__":
    main()
