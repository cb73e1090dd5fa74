"""A simulated user fixes a whole library through the product's own suggestion and action functions.

One database of all of ../shared/facedata is scanned and grouped. The user knows the truth (the
folder labels) and acts only through the functions the review page calls:

- names each group once by the label most of its faces carry (`name_person`; a second group of
  a name merges into the first, as in the page);
- takes the faces that are not that person out of each named person, one click per person
  (`remove_faces` on a selection);
- answers suggestions, each answer one decision:
  * `--policy groups` (this release): "same person?" pairs (`same_person_pairs`, `answer_same`),
    then per named person "is this Alice?" groups and faces (`suggest`): a yes merges a group or
    gives the selected right faces in one click (`give_faces`), a no is `answer_same` or
    `answer_suggestion(..., yes=False)`;
  * `--policy faces` (the face-by-face suggestions of earlier releases): the 24 nearest faces of
    each named person, each answered yes or no (`answer_suggestion`);
- with `--policy groups`, also acts on the page of faces in no group: selects the faces of one
  person and gives them to that person, or makes a new person of two or more (`give_faces`);
- regroups (`group`) between rounds.

Printed after each decision batch: decisions so far, BCubed F of the whole library and of its
worst labelled set (the largest face of each labelled photo is scored); at the end, the decisions
needed to reach F >= 0.99 and >= 0.995 on every labelled set, the precision of every automatic
join over the regroups, and the likelihood words of every suggestion offered.

    python benchmarks/review_effort.py                       # scans ../shared/facedata into a temporary folder
    python benchmarks/review_effort.py --scanned lib.db --library PHOTOS --policy faces
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from naming import DISTRACTORS, identities, library_arguments, scanned_library  # noqa: E402

from facecluster import people as actions  # noqa: E402
from facecluster.grouping import group  # noqa: E402
from benchmarks.metrics import quality  # noqa: E402
from facecluster.store import Store  # noqa: E402
from facecluster.suggestions import nearest  # noqa: E402


class User:
    def __init__(self, store: Store, root: Path, policy: str):
        self.store, self.policy = store, policy
        self.known = identities(root)
        self.sets = {}
        for manifest in root.glob("*/MANIFEST.tsv"):
            if manifest.parent.name not in DISTRACTORS:
                for path in self.known:
                    if path.startswith(os.path.realpath(manifest.parent) + os.sep):
                        self.sets[path] = manifest.parent.name
        self.decisions = 0
        self.history: list[tuple[int, float, float]] = []
        self.auto_right = self.auto_wrong = 0
        self.offered: collections.Counter = collections.Counter()

    # ---- what the user knows -------------------------------------------------------------------

    def faces(self):
        """face id -> (label or None, person or None, photo, is the photo's largest face, set)."""
        rows = self.store.db.execute(
            "SELECT f.id, f.photo_id, f.w * f.h, f.person_id, p.path, f.assigned FROM faces f JOIN photos p ON p.id = f.photo_id"
        ).fetchall()
        largest: dict[int, tuple[float, int]] = {}
        for face, photo, area, *_ in rows:
            if photo not in largest or area > largest[photo][0]:
                largest[photo] = (area, face)
        biggest = {face for _, face in largest.values()}
        out = {}
        for face, photo, _, person, path, how in rows:
            real = os.path.realpath(path)
            # Every face of a one-person photo is that person as far as the user can tell only for the largest.
            label = self.known.get(real) if face in biggest else None
            out[face] = (label, person, photo, face in biggest, self.sets.get(real), how)
        return out

    def score(self) -> tuple[float, float]:
        faces = self.faces()
        truth, pred, sets = [], [], []
        for label, person, _, big, where, _ in faces.values():
            if big and label:
                truth.append(label)
                pred.append(-1 if person is None else person)
                sets.append(where)
        overall = quality(truth, pred).bcubed_f
        worst = 1.0
        for where in set(sets):
            idx = [i for i, s in enumerate(sets) if s == where]
            worst = min(worst, quality([truth[i] for i in idx], [pred[i] for i in idx]).bcubed_f)
        return overall, worst

    def record(self) -> None:
        overall, worst = self.score()
        self.history.append((self.decisions, overall, worst))
        print(f"  decisions {self.decisions:4d}   F {overall:.4f}   worst set F {worst:.4f}", flush=True)

    def majority(self) -> dict[int, str]:
        counts: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        for label, person, *_ in self.faces().values():
            if person is not None and label:
                counts[person][label] += 1
        return {p: c.most_common(1)[0][0] for p, c in counts.items()}

    # ---- acting through the product ------------------------------------------------------------

    def regroup(self) -> None:
        before = {f: v[1] for f, v in self.faces().items()}
        group(self.store)
        names = {p: n.lower() for p, n in self.store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")}
        for face, (label, person, _, big, _, how) in self.faces().items():
            if how == "auto" and before.get(face) != person and big and label and person in names:
                self.auto_right += label == names[person]
                self.auto_wrong += label != names[person]

    def name_groups(self) -> None:
        names = {p: n for p, n in self.store.db.execute("SELECT id, name FROM people")}
        for person, label in sorted(self.majority().items()):
            if names.get(person) is None and self.store.db.execute("SELECT 1 FROM people WHERE id = ?", [person]).fetchone():
                actions.name_person(self.store, str(person), label.title())
                self.decisions += 1

    def remove_strangers(self) -> None:
        names = {p: n.lower() for p, n in self.store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")}
        wrong: dict[int, list[int]] = collections.defaultdict(list)
        for face, (label, person, *_rest) in self.faces().items():
            if person in names and label and label != names[person]:
                wrong[person].append(face)
        for faces in wrong.values():
            actions.remove_faces(self.store, faces)
            self.decisions += 1

    def answer(self) -> int:
        if self.policy == "faces":
            return self.answer_faces()
        return self.answer_groups() + self.place_unclustered()

    def answer_groups(self) -> int:
        from facecluster.suggestions import same_person_pairs, suggest  # this release only

        asked = 0
        labels = self.majority()
        for pair in same_person_pairs(self.store, limit=200):
            self.offered[pair.likelihood] += 1
            if not (self.exists(pair.a) and self.exists(pair.b)):
                continue
            same = labels.get(pair.a) is not None and labels.get(pair.a) == labels.get(pair.b)
            actions.answer_same(self.store, str(pair.a), str(pair.b), yes=same)
            self.decisions += 1
            asked += 1
        faces = self.faces()
        for person, name in list(self.store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")):
            found = suggest(self.store, str(person))
            for g in found.groups:
                self.offered[g.likelihood] += 1
                if self.exists(g.b):
                    labels = self.majority()
                    actions.answer_same(self.store, str(person), str(g.b), yes=labels.get(g.b) == name.lower())
                    self.decisions += 1
                    asked += 1
            right = [s.face_id for s in found.faces if faces[s.face_id][0] == name.lower()]
            for s in found.faces:
                self.offered[s.likelihood] += 1
                if s.face_id not in right and faces[s.face_id][0] is not None:
                    actions.answer_suggestion(self.store, str(person), s.face_id, yes=False)
                    self.decisions += 1
                    asked += 1
            if right:
                actions.give_faces(self.store, right, str(person))
                self.decisions += 1
                asked += 1
        return asked

    def place_unclustered(self) -> int:
        """The page of faces in no group: select the faces of one person, give them to that person (a new
        name makes a new person of two or more); one decision per selection."""
        names = {n.lower(): p for p, n in self.store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")}
        loose: dict[str, list[int]] = collections.defaultdict(list)
        for face, (label, person, _, _, _, how) in self.faces().items():
            if person is None and label and how != "notperson":
                loose[label].append(face)
        asked = 0
        for label, faces in sorted(loose.items()):
            if label in names or len(faces) >= 2:
                actions.give_faces(self.store, faces, str(names[label]) if label in names else label.title())
                self.decisions += 1
                asked += 1
        return asked

    def answer_faces(self, limit: int = 24) -> int:
        asked = 0
        faces = self.faces()
        for person, name in list(self.store.db.execute("SELECT id, name FROM people WHERE name IS NOT NULL")):
            data = self.store.suggestion_inputs(person, "sface")
            rows, _ = nearest(data.person, data.embeddings, limit)
            for r in rows.tolist():
                face = int(data.face_ids[r])
                label = faces[face][0]
                if label is None:
                    continue  # a face the user cannot judge from the labels: skipped, as a user skips a blur
                actions.answer_suggestion(self.store, str(person), face, yes=label == name.lower())
                self.decisions += 1
                asked += 1
        return asked

    def exists(self, person: int) -> bool:
        return self.store.db.execute("SELECT 1 FROM people WHERE id = ?", [person]).fetchone() is not None


def first_reaching(history, target: float) -> str:
    for decisions, _, worst in history:
        if worst >= target:
            return str(decisions)
    return "not reached"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    library_arguments(parser)
    parser.add_argument("--policy", choices=["groups", "faces"], default="groups")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of answering suggestions, each followed by a regroup")
    args = parser.parse_args()
    work, root, db = scanned_library(args, "effort-")
    user = User(Store(db), root, args.policy)
    print(f"policy {args.policy}: group, then name every group by its majority label")
    user.regroup()
    user.record()
    user.name_groups()
    user.record()
    user.remove_strangers()
    user.record()
    for _ in range(args.rounds):
        asked = user.answer()
        user.record()
        user.regroup()
        user.name_groups()
        user.remove_strangers()
        user.record()
        if asked == 0:
            break
    joins = user.auto_right + user.auto_wrong
    print(f"decisions to F >= 0.99 on every labelled set: {first_reaching(user.history, 0.99)}; "
          f"to F >= 0.995: {first_reaching(user.history, 0.995)}; total decisions {user.decisions}")
    print(f"automatic joins over the regroups: {user.auto_right} right, {user.auto_wrong} wrong "
          f"(precision {user.auto_right / joins if joins else 1.0:.3f})")
    if user.offered:
        print("suggestions offered by likelihood: " + ", ".join(f"{k} {v}" for k, v in sorted(user.offered.items())))
    print(f"final F {user.history[-1][1]:.4f}, worst set {user.history[-1][2]:.4f}; "
          f"final F per decision: {np.round([h[2] for h in user.history], 4).tolist()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
