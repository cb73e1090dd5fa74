"""Names a user can trust: what `group` does with a user's names, on one library of all of ../shared/facedata.

Two scenarios, both through the product's own functions (the ones `facecluster group` and
`facecluster name` call), on a real database:

1. **Regroups after naming.** Group the whole library, name the best group of every second
   labelled person (the group whose largest faces are at least 80% that person), then run
   `group` N times with nothing new. Printed: automatic joins into named people (right/wrong by
   folder label, the largest face of each photo), unnamed groups absorbed (a group the user saw
   whose faces mostly moved into a named person), faces moved by each regroup, names that lost faces.
2. **Split arrival.** Half of each labelled person's photos first (every second photo of the
   manifest), grouped, every group named by its majority label (a second group of one name
   merges into the first, as `name` does); then the other half is scanned and grouped. Printed:
   precision and recall of the new faces joining the right named person.

Targets (issue "Names a user can trust"): join precision >= 0.995 and 0 groups absorbed over 5
regroups; the last regroup moves 0 faces; split arrival precision >= 0.99, recall >= 0.85.

    python benchmarks/naming.py                      # scans ../shared/facedata into a temporary folder
    python benchmarks/naming.py --scanned lib.db     # start from a copy of an already scanned database
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecluster.grouping import group  # noqa: E402
from facecluster.people import name_person  # noqa: E402
from facecluster.scan import ScanOptions, scan  # noqa: E402
from facecluster.store import Store  # noqa: E402

FACEDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"
DISTRACTORS = ("groups", "nonhuman_faces")
ALIASES = {"obama": "barack obama"}


def identities(root: Path) -> dict[str, str]:
    """Real photo path -> identity (lower case, spaces; one identity per name across sets)."""
    out = {}
    for manifest in sorted(root.glob("*/MANIFEST.tsv")):
        if manifest.parent.name in DISTRACTORS:
            continue
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                who = (row.get("identity") or "").lower().replace("_", " ")
                if who:
                    out[os.path.realpath(manifest.parent / row["file"])] = ALIASES.get(who, who)
    return out


def faces(store: Store, known: dict[str, str]) -> dict[int, tuple[int, str | None, int | None]]:
    """face id -> (photo id, identity of the photo if this is its largest face else None, person id)."""
    rows = store.db.execute(
        "SELECT f.id, f.photo_id, f.w * f.h, f.person_id, p.path FROM faces f JOIN photos p ON p.id = f.photo_id"
    ).fetchall()
    largest: dict[int, tuple[float, int]] = {}
    for face, photo, area, _, _ in rows:
        if photo not in largest or area > largest[photo][0]:
            largest[photo] = (area, face)
    biggest = {face for _, face in largest.values()}
    return {
        face: (photo, known.get(os.path.realpath(path)) if face in biggest else None, person)
        for face, photo, _, person, path in rows
    }


def owners(store: Store) -> dict[int, int | None]:
    return dict(store.db.execute("SELECT id, person_id FROM faces").fetchall())


def members(store: Store) -> dict[int, set[int]]:
    out: dict[int, set[int]] = collections.defaultdict(set)
    for face, person in store.db.execute("SELECT id, person_id FROM faces WHERE person_id IS NOT NULL"):
        out[person].add(face)
    return out


def named(store: Store) -> dict[int, str]:
    return {p: n for p, n in store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")}


def majority(store: Store, known: dict[str, str]) -> dict[int, tuple[str, int, float]]:
    """group -> (its majority identity, faces of it, share) over the scored faces."""
    face = faces(store, known)
    out = {}
    for person, ids in members(store).items():
        count = collections.Counter(face[f][1] for f in ids if face[f][1])
        if count:
            who, n = count.most_common(1)[0]
            out[person] = (who, n, n / sum(count.values()))
    return out


def regroups(store: Store, known: dict[str, str], runs: int) -> dict:
    group(store)
    best: dict[str, tuple[int, int]] = {}
    for person, (who, n, share) in majority(store, known).items():
        if share >= 0.8 and n >= 3 and (who not in best or n > best[who][1]):
            best[who] = (person, n)
    picked = sorted(best)[::2]
    for who in picked:
        name_person(store, str(best[who][0]), who.title())
    face = faces(store, known)
    before = members(store)
    names = named(store)
    unnamed_before = {p: ids for p, ids in before.items() if p not in names}
    moved, owner = [], owners(store)
    for _ in range(runs):
        group(store)
        now = owners(store)
        moved.append(sum(now[f] != owner.get(f) for f in now))
        owner = now
    prev = members(store)
    right = wrong = 0
    wrong_pairs: collections.Counter = collections.Counter()
    for person, name in names.items():
        for f in prev.get(person, set()) - before.get(person, set()):
            who = face[f][1]
            if who is None:
                continue
            if who == name.lower():
                right += 1
            else:
                wrong += 1
                wrong_pairs[(name, who)] += 1
    in_named = set().union(*[prev.get(p, set()) for p in names]) if names else set()
    absorbed = [p for p, ids in unnamed_before.items() if len(ids & in_named) * 2 > len(ids)]
    lost = [n for p, n in names.items() if not before.get(p, set()) <= prev.get(p, set())]
    return {"named": len(picked), "right": right, "wrong": wrong, "absorbed": len(absorbed), "moved": moved,
            "lost": len(lost), "worst": wrong_pairs.most_common(3)}


def split_arrival(store: Store, root: Path, known: dict[str, str], options: ScanOptions) -> dict:
    by_person: dict[str, list[int]] = collections.defaultdict(list)
    for photo, path in store.db.execute("SELECT id, path FROM photos ORDER BY path"):
        who = known.get(os.path.realpath(path))
        if who:
            by_person[who].append(photo)
    later = [p for photos in by_person.values() for p in photos[1::2]]
    with store.transaction():
        store.delete_photos(later)
    group(store)
    for person, (who, _, _) in sorted(majority(store, known).items()):
        name_person(store, str(person), who.title())
    first = set(faces(store, known))
    scan(store, [str(root)], options)
    group(store)
    face = faces(store, known)
    names = {p: n.lower() for p, n in named(store).items()}
    right = wrong = total = 0
    for f, (_, who, person) in face.items():
        if f in first or who is None or who.title().lower() not in names.values():
            continue
        total += 1
        if person in names:
            right += names[person] == who
            wrong += names[person] != who
    return {"new": total, "right": right, "wrong": wrong}


def library_arguments(parser: argparse.ArgumentParser) -> None:
    """--scanned and --library, shared by the benchmarks that work on the whole labelled library."""
    parser.add_argument("--scanned", type=Path, help="a database that already holds a scan of the library (it is copied)")
    parser.add_argument("--library", type=Path, help="where that scan's photos are (default: a copy of ../shared/facedata)")


def scanned_library(args: argparse.Namespace, prefix: str) -> tuple[Path, Path, Path]:
    """(work folder, photo root, database): a copy of `--scanned`, else all of ../shared/facedata copied and scanned."""
    if not FACEDATA.is_dir():
        sys.exit(f"needs the labelled photos at {FACEDATA}")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    root = args.library or work / "lib"
    if not args.library:
        shutil.copytree(FACEDATA, root)
    db = work / "scanned.db"
    if args.scanned:
        shutil.copy(args.scanned, db)
    else:
        scan(Store(db), [str(root)], ScanOptions())
    return work, root, db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    library_arguments(parser)
    parser.add_argument("--regroups", type=int, default=5)
    args = parser.parse_args()
    work, root, base = scanned_library(args, "naming-")
    known = identities(root)
    options = ScanOptions()
    shutil.copy(base, work / "a.db")
    a = regroups(Store(work / "a.db"), known, args.regroups)
    print(f"regroups: named {a['named']}; automatic joins into named people over {args.regroups} regroups: "
          f"{a['right']} right, {a['wrong']} wrong (precision {a['right'] / max(1, a['right'] + a['wrong']):.3f}); "
          f"unnamed groups absorbed {a['absorbed']}; faces moved per regroup {a['moved']}; names that lost faces {a['lost']}"
          + (f"; worst {a['worst']}" if a["worst"] else ""))
    shutil.copy(base, work / "b.db")
    b = split_arrival(Store(work / "b.db"), root, known, options)
    joined = b["right"] + b["wrong"]
    print(f"split arrival: {b['new']} new labelled faces of named people; joined the right person {b['right']}, "
          f"a wrong one {b['wrong']} (precision {b['right'] / max(1, joined):.3f}, recall {b['right'] / max(1, b['new']):.3f})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
