"""Clustering quality on the labelled photos of ../shared/facedata, as a user's library.

Scans all of ../shared/facedata (every identity set, plus `groups/` multi-person
photos and `nonhuman_faces/` cartoons) into ONE cached database (a real
`scan`; later runs are incremental), groups it with the same code as
`facecluster group`, and scores every labelled set inside that library: the
headline. The largest face of each photo is scored against its folder's
identity; other faces take part but are not scored. Identities are matched
by name across sets (ALIASES lists the one celebrity filed under two names).

Also printed: groups that mix three or more labelled identities, groups under
the minimum, groups holding a person twice in a photo, groups mostly below
the quality gate, the share of faces left unclustered, and the precision of
the faces that joined a group after clustering (attach_faces).

The small-people set: the same library, but every identity of
celebrity17, lfw_subset and celebrity_extras keeps only 2 to 4 of its photos
(drawn at random per seed). Printed: the share of those identities that get
a group of their own (at least two of their faces, and the most of the
group's scored faces), and the BCubed precision of the groups holding them.

    python benchmarks/quality.py                    # the defaults
    python benchmarks/quality.py --min-faces 5      # no small groups
    python benchmarks/quality.py --alone            # also each set scanned alone
    python benchmarks/quality.py --method agglomerative --threshold 1.0
    python benchmarks/quality.py --skip-below 20   # as if faces under 20 px were never embedded
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.grouping import GroupOptions, fill_face_quality, plan_groups  # noqa: E402
from benchmarks.metrics import quality  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import GroupingInputs, Store  # noqa: E402

DISTRACTORS = ("groups", "nonhuman_faces")
SMALL_SETS = ("celebrity17_kaggle_via_macfaceswap", "lfw_subset_krasserm", "celebrity_extras_macfaceswap")
ALIASES = {"obama": "barack_obama"}  # face_recognition_examples and celebrity_extras name him differently
TARGETS = {"library": ">= 0.975", "five": ">= 0.97"}  # "five": sets with (a median of) 5 or more photos per person


def identities(root: Path) -> dict[str, tuple[str, str]]:
    """Absolute photo path -> (set, identity) from each set's MANIFEST.tsv."""
    out = {}
    for manifest in sorted(root.glob("*/MANIFEST.tsv")):
        folder = manifest.parent
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                out[os.path.abspath(folder / row["file"])] = (folder.name, row.get("identity") or "")
    return out


def labelled_faces(db: Path, root: Path, aliases: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The embedding and identity (lower case) of the largest face of every labelled photo, outside the distractor sets.

    `aliases`: one identity for the celebrity filed under two names (ALIASES).
    """
    store = Store(db, readonly=True)
    data = store.grouping_inputs("sface")
    paths = store.photo_paths()
    known = identities(root)
    largest: dict[int, int] = {}
    for row, (photo, size) in enumerate(zip(data.photo_ids.tolist(), data.sizes.tolist())):
        if photo not in largest or size > data.sizes[largest[photo]]:
            largest[photo] = row
    rows, who = [], []
    for photo, row in largest.items():
        s, identity = known.get(os.path.abspath(paths[photo]), ("?", ""))
        if s not in DISTRACTORS and identity:
            rows.append(row)
            who.append(ALIASES.get(identity.lower(), identity.lower()) if aliases else identity.lower())
    return data.embeddings[np.array(rows)], np.array(who)


def subset(data: GroupingInputs, rows: np.ndarray) -> GroupingInputs:
    return GroupingInputs(
        face_ids=data.face_ids[rows], photo_ids=data.photo_ids[rows], sizes=data.sizes[rows],
        scores=data.scores[rows], person_ids=np.full(len(rows), -1, np.int64),
        embeddings=data.embeddings[rows], people={}, rejections=set(),
        qualities=None if data.qualities is None else data.qualities[rows],
    )


def group_labels(data: GroupingInputs, options: GroupOptions):
    """Group from scratch: (label per row, -1 unclustered; attached rows; passes the gate per row)."""
    plan = plan_groups(data, options)
    labels = np.full(len(data.face_ids), -1, np.int64)
    for c, rows in enumerate(plan.clusters):
        labels[rows] = c
    return labels, np.array(plan.attached, np.int64), plan.passes


def junk(labels, photo_ids, passes, identity, scored, minimum):
    """Counts of groups a user should never see."""
    mixed = small = twice = weak = 0
    for c in range(int(labels.max(initial=-1)) + 1):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        mixed += len({identity[m] for m in members if m in scored}) >= 3
        small += len(members) < minimum
        twice += len(np.unique(photo_ids[members])) < len(members)
        weak += (~passes[members]).mean() > 0.5
    return mixed, small, twice, weak


def attach_precision(labels, attached, identity, scored):
    """Of the scored faces that joined a group after clustering: share whose group's other scored faces are mostly theirs."""
    right = total = 0
    for row in attached.tolist():
        if row not in scored:
            continue
        others = [identity[m] for m in np.flatnonzero(labels == labels[row]) if m in scored and m != row]
        if others:
            total += 1
            right += collections.Counter(others).most_common(1)[0][0] == identity[row]
    return right, total


def small_people(labels, rows_kept, keep, face_set, identity, scored):
    """(share of small identities with a group of their own, BCubed precision of the groups holding them)."""
    kept_scored = scored & set(rows_kept.tolist())
    found = 0
    faces = []
    for (name, who) in keep:
        mine = [r for r in kept_scored if face_set[r] == name and identity[r] == who]
        faces += mine
        for c in set(labels[mine].tolist()) - {-1}:
            count = collections.Counter(identity[m] for m in np.flatnonzero(labels == c) if m in kept_scored)
            if count[who] >= 2 and count.most_common(1)[0][0] == who:
                found += 1
                break
    groups = set(labels[faces].tolist()) - {-1}
    inside = np.array([r for r in kept_scored if labels[r] in groups], np.int64)
    precision = quality([identity[r] for r in inside], labels[inside]).bcubed_precision if len(inside) else 1.0
    return found / max(len(keep), 1), precision


def small_subset(data, face_set, identity, scored, seed, paths):
    """Rows of the library with every SMALL_SETS identity cut to 2..4 photos; and the (set, identity) pairs kept.

    Photos are drawn in path order, not by database id (which follows the order a
    scan happened to store them), so a seed draws the same photos in any database."""
    rng = np.random.default_rng(seed)
    drop, keep = set(), []
    for name in SMALL_SETS:
        rows = sorted(r for r in scored if face_set[r] == name)
        for who in sorted({identity[r] for r in rows}):
            photos = sorted({int(data.photo_ids[r]) for r in rows if identity[r] == who}, key=lambda p: paths[p])
            if len(photos) < 2:
                continue
            chosen = set(rng.choice(photos, size=min(int(rng.integers(2, 5)), len(photos)), replace=False).tolist())
            drop |= set(photos) - chosen
            keep.append((name, who))
    return np.flatnonzero(~np.isin(data.photo_ids, list(drop))), keep


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
    parser.add_argument("--min-quality", type=float, default=defaults.min_quality)
    parser.add_argument("--seeds", type=int, default=5, help="draws of the small-people set (0 to skip it)")
    parser.add_argument("--alone", action="store_true", help="also group each identity set on its own")
    parser.add_argument("--no-scan", action="store_true", help="use the database as it is (already scanned)")
    parser.add_argument("--skip-below", type=float, default=0.0,
                        help="group as if faces whose shorter side is under this many pixels had not been embedded")
    args = parser.parse_args()
    root = Path(args.facedata)
    if not root.is_dir():
        sys.exit(f"labelled photos not found at {root}")

    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.db)
    if not args.no_scan:
        summary = scan(store, [str(root)], ScanOptions())
        print(f"scan: {summary.seen} files, {summary.new} newly scanned, {summary.failed} unreadable", file=sys.stderr)
    with store.writer("benchmark"):
        fill_face_quality(store, "sface")
    options = replace(
        defaults, method=args.method, min_faces=args.min_faces, min_samples=args.min_samples,
        threshold=args.threshold, min_face_size=args.min_size, min_score=args.min_score, min_quality=args.min_quality,
    )
    data = store.grouping_inputs("sface")
    paths = store.photo_paths()
    known = identities(root)
    face_set, identity = [], []
    for photo_id in data.photo_ids.tolist():
        s, who = known.get(os.path.abspath(paths[photo_id]), ("?", ""))
        face_set.append(s)
        identity.append(ALIASES.get(who.lower(), who.lower()))
    face_set = np.array(face_set)
    # The largest face of each photo is the one the folder names.
    largest: dict[int, int] = {}
    for row, (photo, size) in enumerate(zip(data.photo_ids.tolist(), data.sizes.tolist())):
        if photo not in largest or size > data.sizes[largest[photo]]:
            largest[photo] = row
    scored = {row for row in largest.values() if face_set[row] not in DISTRACTORS and identity[row]}
    if not scored:  # the database's photos lie elsewhere: every score would be empty
        sys.exit(f"no photo of {args.db} lies under {root}; pass --facedata with the folder that was scanned")
    sets = sorted({face_set[r] for r in scored})
    per_identity = {s: collections.Counter(identity[r] for r in scored if face_set[r] == s) for s in sets}

    print(f"{options.method} min_faces={options.min_faces} min_samples={options.min_samples} threshold={options.threshold} "
          f"min_size={options.min_face_size} min_score={options.min_score} min_quality={options.min_quality}")
    print(f"\nONE library database: {len(data.face_ids)} faces in {len(set(data.photo_ids.tolist()))} photos")
    # --skip-below: those faces take no part at all (never embedded); scored ones count as unclustered.
    kept = np.flatnonzero(data.sizes >= args.skip_below)
    labels, passes = np.full(len(data.face_ids), -1, np.int64), np.zeros(len(data.face_ids), bool)
    labels[kept], attached, passes[kept] = group_labels(subset(data, kept), options)
    attached = kept[attached]
    if args.skip_below:
        skipped = np.ones(len(data.face_ids), bool)
        skipped[kept] = False
        in_groups = face_set == "groups"
        print(f"skipped (not embedded, under {args.skip_below:g} px): {int(skipped.sum())} of {len(skipped)} faces; "
              f"groups/: {int(skipped[in_groups].sum())} of {int(in_groups.sum())}; scored faces skipped: "
              f"{sum(1 for r in scored if skipped[r])}")
    print(f"{'set':<38} {'scored':>6} {'B3 P':>6} {'B3 R':>6} {'B3 F':>6} {'uncl.':>6}  target")
    for name in sets:
        rows = sorted(r for r in scored if face_set[r] == name)
        q = quality([identity[r] for r in rows], labels[rows])
        target = TARGETS["five"] if np.median(list(per_identity[name].values())) >= 5 else ""
        print(f"{name:<38} {len(rows):>6} {q.bcubed_precision:>6.3f} {q.bcubed_recall:>6.3f} {q.bcubed_f:>6.3f} "
              f"{q.unclustered:>6.3f}  {target}")
    rows = sorted(scored)
    q = quality([identity[r] for r in rows], labels[rows])
    print(f"{'library (all sets + distractors)':<38} {len(rows):>6} {q.bcubed_precision:>6.3f} {q.bcubed_recall:>6.3f} "
          f"{q.bcubed_f:>6.3f} {q.unclustered:>6.3f}  {TARGETS['library']}")
    mixed, small, twice, weak = junk(labels, data.photo_ids, passes, identity, scored, options.min_faces)
    right, total = attach_precision(labels, attached, identity, scored)
    distract = np.isin(face_set, DISTRACTORS)
    print(f"groups: {int(labels.max(initial=-1)) + 1}; mixing 3+ identities: {mixed}; under the minimum: {small}; "
          f"a person twice in a photo: {twice}; mostly below the quality gate: {weak}")
    print(f"faces below the quality gate: {int((~passes).sum())}; groups/ + nonhuman faces unclustered: "
          f"{(labels[distract] < 0).mean():.3f}")
    print(f"attached after clustering: {len(attached)} faces; scored ones right {right}/{total}"
          + (f" = {right / total:.3f}" if total else ""))

    if args.seeds:
        found, precision = [], []
        for seed in range(args.seeds):
            rows_kept, keep = small_subset(data, face_set, identity, scored, seed, paths)
            rows_kept = rows_kept[data.sizes[rows_kept] >= args.skip_below]
            part = np.full(len(data.face_ids), -1, np.int64)
            part[rows_kept] = group_labels(subset(data, rows_kept), options)[0]
            f, p = small_people(part, rows_kept, keep, face_set, identity, scored)
            found.append(f)
            precision.append(p)
            print(f"small-people set, seed {seed}: {len(rows_kept)} faces, {len(keep)} identities with 2-4 photos: "
                  f"own group {f:.2f}, precision of their groups {p:.3f}")
        print(f"small-people set, mean of {args.seeds}: own group {np.mean(found):.2f} (target >= 0.60), "
              f"precision {np.mean(precision):.3f} (target >= 0.98; lowest {min(precision):.3f})")

    if args.alone:
        print("\neach set grouped alone")
        for name in sets:
            rows = np.flatnonzero(face_set == name)
            alone = group_labels(subset(data, rows), options)[0]
            position = {int(r): i for i, r in enumerate(rows)}
            mine = sorted(position[r] for r in scored if r in position)
            q = quality([identity[rows[i]] for i in mine], alone[mine])
            print(f"{name:<38} {len(mine):>6} {q.bcubed_precision:>6.3f} {q.bcubed_recall:>6.3f} {q.bcubed_f:>6.3f} "
                  f"{q.unclustered:>6.3f}")


if __name__ == "__main__":
    main()
