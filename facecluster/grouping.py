"""Faces -> groups: clustering the open faces while keeping every user decision.

The rules that make a user's corrections stick:

- Faces of a named or ignored person are the user's: grouping never moves them.
- New faces close to a named (or ignored) person join it by a nearest-neighbour
  vote, unless the face was removed from that person before.
- Everything else is clustered afresh; each new cluster keeps the number of
  the old unnamed group it mostly overlaps, so `facecluster name 12` still
  means the group the user looked at. Numbers are never reused.
- A person appears at most once per photo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facecluster import config
from facecluster.cluster import (
    agglomerative_labels,
    hdbscan_labels,
    match_groups,
    members_by_label,
    one_face_per_photo,
    split_merged,
    vote_join,
)
from facecluster.errors import UsageProblem
from facecluster.models import DEFAULT_PACK
from facecluster.people import PeopleError
from facecluster.store import GroupingInputs, Store


@dataclass(frozen=True)
class GroupOptions:
    model: str = DEFAULT_PACK
    method: str = "hdbscan"  # or "agglomerative"
    min_faces: int = config.MIN_GROUP_FACES
    min_samples: int = config.HDBSCAN_MIN_SAMPLES
    threshold: float = config.AGGLOMERATIVE_THRESHOLD
    min_face_size: float = config.MIN_CLUSTER_FACE_PIXELS
    min_score: float = config.MIN_CLUSTER_SCORE
    join_distance: float = config.JOIN_DISTANCE

    def check(self) -> None:
        if self.method not in ("hdbscan", "agglomerative"):
            raise UsageProblem("--method must be hdbscan or agglomerative")
        if self.min_faces < 2:
            raise UsageProblem("--min-faces must be at least 2")
        if self.min_samples < 1:
            raise UsageProblem("--min-samples must be a positive number")
        for name in ("threshold", "join_distance"):
            if not 0 < getattr(self, name) <= 2:
                raise UsageProblem(f"--{name.replace('_', '-')} must be between 0 and 2 (distances between unit vectors)")
        if self.min_face_size < 0 or not 0 <= self.min_score <= 1:
            raise UsageProblem("--min-size must be >= 0 and --min-score between 0 and 1")


@dataclass
class GroupSummary:
    model: str
    faces: int = 0
    groups: int = 0  # unnamed groups after grouping
    new_groups: int = 0
    kept_groups: int = 0  # groups that kept their number
    named: int = 0  # named people
    joined: dict[str, int] = field(default_factory=dict)  # name (or "#id") -> faces that joined
    below_quality: int = 0  # faces kept out of groups by the quality gate
    noise: int = 0  # faces that passed the gate but fit no group
    seconds: float = 0.0


@dataclass
class Plan:
    """What grouping decided, before anything is written.

    joined: (row, person id) for faces that join a decided person.
    clusters: lists of rows, one list per group found among the other faces.
    """

    decided: np.ndarray  # bool per row: the user's decision holds this face
    passes: np.ndarray  # bool per row: passed the quality gate
    joined: list[tuple[int, int]]
    clusters: list[list[int]]
    clustered_rows: int  # faces that were clustered (passed the gate, joined nobody)


def plan_groups(data: GroupingInputs, options: GroupOptions) -> Plan:
    """The decisions of `group`, computed from arrays alone (no database).

    Example:
        plan = plan_groups(store.grouping_inputs("sface"), GroupOptions())
    """
    people = data.people
    decided = np.array(
        [p in people and (people[p].name is not None or people[p].ignored) for p in data.person_ids.tolist()], bool
    )
    passes = (data.sizes >= options.min_face_size) & (data.scores >= options.min_score)
    open_rows = np.flatnonzero(~decided & passes)
    ref_rows = np.flatnonzero(decided)
    votes = vote_join(
        data.embeddings[open_rows], data.photo_ids[open_rows],
        data.embeddings[ref_rows], data.person_ids[ref_rows], data.photo_ids[ref_rows],
        threshold=options.join_distance, refused=_refusals(data, open_rows),
    )
    joined = [(int(r), int(p)) for r, p in zip(open_rows[votes >= 0], votes[votes >= 0])]
    rest = open_rows[votes < 0]
    x = data.embeddings[rest]
    if options.method == "hdbscan":
        labels = hdbscan_labels(x, options.min_faces, options.min_samples)
        labels = split_merged(labels, x, options.min_faces, options.min_samples)
    else:
        labels = agglomerative_labels(x, options.threshold, options.min_faces)
    labels = one_face_per_photo(labels, data.photo_ids[rest], x)
    clusters = [rest[members].tolist() for members in members_by_label(labels)]
    return Plan(decided, passes, joined, [c for c in clusters if c], len(rest))


def group(store: Store, options: GroupOptions | None = None, progress: Callable[[str], None] | None = None) -> GroupSummary:
    """Cluster one pack's faces into people, keeping every user decision.

    Example:
        summary = group(Store("library.db"))
    """
    options = options or GroupOptions()
    options.check()
    say = progress or (lambda message: None)
    started = time.monotonic()
    with store.writer("group"):
        data = store.grouping_inputs(options.model)
        if len(data.face_ids) == 0:
            known = store.models_with_faces()
            hint = f" (faces exist for: {', '.join(known)}; use --model)" if known else "; run facecluster scan first"
            raise PeopleError(f"no faces of model pack {options.model!r} in the database{hint}")
        if _adopt_xmp_names(store, options.model, data):
            data = store.grouping_inputs(options.model)
        say(f"grouping {len(data.face_ids)} faces")
        plan = plan_groups(data, options)
        people, face_ids = data.people, data.face_ids.tolist()

        # Keep old numbers where the members mostly stayed.
        old_groups: dict[int, set[int]] = {}
        for face_id, person in zip(face_ids, data.person_ids.tolist()):
            if person in people and people[person].name is None and not people[person].ignored:
                old_groups.setdefault(person, set()).add(face_id)
        clusters = [{face_ids[r] for r in rows} for rows in plan.clusters]
        kept = match_groups(old_groups, clusters)
        fresh = [i for i in range(len(clusters)) if i not in kept]

        summary = GroupSummary(model=options.model, faces=len(face_ids))
        assignments: list[tuple[int | None, str | None, int]] = []
        for row, person in plan.joined:
            assignments.append((person, "auto", face_ids[row]))
            label = people[person].name or f"#{person}"
            summary.joined[label] = summary.joined.get(label, 0) + 1
        placed = {face_ids[row] for row, _ in plan.joined}
        with store.transaction():
            numbers = {**kept, **dict(zip(fresh, store.create_people(options.model, len(fresh))))}
            for index, members in enumerate(clusters):
                for face_id in members:
                    if (face_id, numbers[index]) not in data.rejections:  # the user took it out of this group
                        assignments.append((numbers[index], "cluster", face_id))
                        placed.add(face_id)
            for row in np.flatnonzero(~plan.decided).tolist():
                if face_ids[row] not in placed:
                    assignments.append((None, None, face_ids[row]))
            store.assign_faces(assignments)
            store.delete_people(n for n in old_groups if n not in kept.values())
        summary.groups = len(clusters)
        summary.new_groups = len(fresh)
        summary.kept_groups = len(kept)
        summary.named = sum(1 for p in people.values() if p.name is not None)
        summary.below_quality = int((~plan.decided & ~plan.passes).sum())
        summary.noise = int((~plan.decided).sum()) - len(placed) - summary.below_quality
        summary.seconds = time.monotonic() - started
    return summary


def _adopt_xmp_names(store: Store, model: str, data: GroupingInputs) -> int:
    """Faces named in a photo's XMP (by digiKam, Lightroom, ...) start out as that named person.

    A face the user already put with a named or ignored person, or removed
    from the person of that name, is left alone. Returns faces adopted.
    """
    named = {p.name: p.id for p in data.people.values() if p.name is not None}
    people = data.people
    adopted = 0
    with store.transaction():
        for face_id, name, person in store.xmp_labelled_faces(model):
            name = " ".join(name.split())
            if not name or name.isdigit():
                continue
            if person in people and (people[person].name is not None or people[person].ignored):
                continue
            if name not in named:
                named[name] = store.name_person_new(model, name)
            if (face_id, named[name]) in data.rejections:
                continue
            store.assign_faces([(named[name], "xmp", face_id)])
            adopted += 1
    return adopted


def _refusals(data, open_rows: np.ndarray) -> set[tuple[int, int]]:
    """(position in open_rows, person) pairs the user has ruled out."""
    if not data.rejections:
        return set()
    by_face: dict[int, list[int]] = {}
    for face_id, person in data.rejections:
        by_face.setdefault(face_id, []).append(person)
    out = set()
    for j, i in enumerate(open_rows.tolist()):
        for person in by_face.get(int(data.face_ids[i]), ()):
            out.add((j, person))
    return out
