"""Faces -> groups: clustering every face while keeping every user decision.

The rules that make a user's corrections stick:

- The faces the user placed (named, merged, given, accepted, imported: anchors)
  never move, and only they pull faces into a named or ignored person: a face
  joins when it shares a cluster with the person's anchors and a real majority
  of its nearest anchors agree, unless the user removed it from that person.
  An automatic join is a member, never an anchor, so a regroup with nothing
  new decides exactly what the one before did.
- A group the user has seen is never absorbed by a named person; groups the
  user called different people are kept apart.
- Everything else is clustered afresh; each new cluster keeps the number of
  the old unnamed group it mostly overlaps, so `facecluster name 12` still
  means the group the user looked at. Numbers are never reused.
- A person appears at most once per photo.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from facecluster import config
from facecluster.cluster import (
    ATTACH_SEARCH,
    AttachRule,
    Fellows,
    anchor_votes,
    agglomerative_labels,
    attach_faces,
    drop_small,
    hdbscan_labels,
    match_groups,
    members_by_label,
    merge_small_groups,
    one_face_per_photo,
    one_join_per_photo,
    split_merged,
    strict_small_groups,
    trim_loose,
)
from facecluster.errors import PeopleError, UsageProblem
from facecluster.models import DEFAULT_PACK
from facecluster.models.registry import SFACE_DISTANCES, Distances, distances
from facecluster.naming_rules import clean_name
from facecluster.neighbours import knn, knn_of, knn_of_reusing
from facecluster.people import PersonChange, compare_people
from facecluster.quality import thumb_quality
from facecluster.store import GroupingInputs, Store


@dataclass(frozen=True)
class GroupOptions:
    model: str = DEFAULT_PACK
    method: str = "hdbscan"  # or "agglomerative"
    min_faces: int = config.MIN_GROUP_FACES  # the smallest group, after every step
    min_samples: int = config.HDBSCAN_MIN_SAMPLES
    threshold: float = config.AGGLOMERATIVE_THRESHOLD
    min_face_size: float = config.MIN_CLUSTER_FACE_PIXELS
    min_score: float = config.MIN_CLUSTER_SCORE
    min_quality: float = config.MIN_CLUSTER_QUALITY
    join_distance: float | None = None  # None: the embedder's own (Distances.join)
    distances: Distances = SFACE_DISTANCES  # of the embedder whose vectors are grouped; `group` sets them

    def check(self) -> None:
        if self.method not in ("hdbscan", "agglomerative"):
            raise UsageProblem("--method must be hdbscan or agglomerative")
        if self.min_faces < 2:
            raise UsageProblem("--min-faces must be at least 2")
        if self.min_samples < 1:
            raise UsageProblem("--min-samples must be a positive number")
        # NaN compares false with everything, so each range test is written to fail on it.
        for name in ("threshold", "join_distance"):
            if getattr(self, name) is not None and not 0 < getattr(self, name) <= 2:
                raise UsageProblem(f"--{name.replace('_', '-')} must be between 0 and 2 (distances between unit vectors)")
        if not 0 <= self.min_face_size < math.inf:
            raise UsageProblem("--min-size must be a number of pixels, 0 or more")
        if not 0 <= self.min_score <= 1:
            raise UsageProblem("--min-score must be between 0 and 1")
        if not 0 <= self.min_quality <= 1:
            raise UsageProblem("--min-quality must be between 0 and 1")


@dataclass
class GroupSummary:
    model: str
    faces: int = 0
    groups: int = 0  # unnamed groups after grouping
    new_groups: int = 0
    kept_groups: int = 0  # groups that kept their number
    named: int = 0  # named people
    joined: dict[str, int] = field(default_factory=dict)  # name (or "#id") -> faces that joined
    below_quality: int = 0  # faces below the quality gate left unclustered
    noise: int = 0  # faces that passed the gate but fit no group
    attached: int = 0  # left-out faces that joined a group by their neighbours' vote
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
    attached: list[int] = field(default_factory=list)  # rows that joined a group after clustering (attach_faces)


def plan_groups(data: GroupingInputs, options: GroupOptions) -> Plan:
    """The decisions of `group`, computed from arrays alone (no database).

    Only the user's own decisions pull faces into a person. Every face takes
    part in clustering, the user's too, so naming a group changes none of the
    geometry; then, cluster by cluster (evidence: docs/quality.md):

    1. a face the user placed (an *anchor*: named, merged, accepted, imported)
       stays where it is and is evidence, nothing more;
    2. any other face in a cluster holding anchors of a named or ignored person
       joins that person when a real majority of its nearest anchors name the
       person too (`anchor_votes`), unless it belongs to an unnamed group the
       user has seen: a group is never absorbed, it becomes a suggestion;
       a face left out of every cluster joins only under the same vote with
       the nearest faces of any kind agreeing;
    3. what is left of each cluster is an unnamed group; groups the user said
       are different people (cannot-links) are kept apart.
    Automatic joins are members, never anchors, so no join votes for the next
    one, and with nothing new a second run decides exactly what the first did.

    Example:
        plan = plan_groups(store.grouping_inputs("sface"), GroupOptions())
    """
    n = len(data.face_ids)
    people = data.people
    decided_person = np.array(
        [p in people and (people[p].name is not None or people[p].ignored) for p in data.person_ids.tolist()], bool
    ).reshape(n)
    anchored = decided_person & (data.anchored if data.anchored is not None else True)
    excluded = data.excluded if data.excluded is not None else np.zeros(n, bool)
    qualities = data.qualities if data.qualities is not None else np.ones(n)
    passes = (
        (data.sizes >= options.min_face_size) & (data.scores >= options.min_score)
        & (np.nan_to_num(qualities, nan=1.0) >= options.min_quality)
    )
    pool = np.flatnonzero(~excluded)
    x = data.embeddings if len(pool) == n else data.embeddings[pool]  # a copy only when some faces are left out
    labels, clustered = cluster_pool(x, data.photo_ids[pool], passes[pool], options)
    all_labels = np.full(n, -1, np.int64)
    all_labels[pool] = labels
    joined = _anchor_joins(data, all_labels, anchored, excluded, options)
    rest = all_labels.copy()
    rest[anchored | excluded] = -1
    rest[[row for row, _ in joined]] = -1
    clusters = [c for c in _apart(rest, data) if len(c) >= options.min_faces]
    in_cluster = {r for c in clusters for r in c}
    attached = [int(r) for r in pool[(labels >= 0) & ~clustered] if r in in_cluster]
    return Plan(anchored | excluded, passes, joined, clusters, attached)


def cluster_pool(x: np.ndarray, photos: np.ndarray, strong: np.ndarray, options: GroupOptions) -> tuple[np.ndarray, np.ndarray]:
    """Labels for every face of the pool, and which were clustered before the left-out ones attached.

    The faces that pass the quality gate (`strong`) are clustered (HDBSCAN,
    minimum `config.HDBSCAN_MIN_CLUSTER`), look-alikes split, one face per
    photo, loose members trimmed; if `min_faces` is below that minimum, a
    strict pass forms small groups and a small group joins a big one when all
    its members vote for it; left-out faces, below the gate too, attach by a
    nearest-neighbour vote; last, no group under `min_faces`, nobody twice in a photo.
    """
    labels = np.full(len(x), -1, np.int64)
    first = max(options.min_faces, config.HDBSCAN_MIN_CLUSTER)
    rows = np.flatnonzero(strong)
    # No copy when every face passes the gate: at a million faces each copy is 512 MB.
    xs = x if len(rows) == len(x) else x[rows]
    rule, d = attach_rule(options.distances), options.distances
    fellows = Fellows(x, max(rule.k, d.trim_neighbour))
    if options.method == "hdbscan":
        found_near = knn(xs, max(ATTACH_SEARCH, options.min_samples + 1))
        found = hdbscan_labels(xs, first, options.min_samples, neighbours=found_near)
        found = split_merged(found, xs, first, options.min_samples)
        labels[rows] = one_face_per_photo(found, photos[rows], xs)
        labels = drop_small(trim_loose(labels, x, d.trim_neighbour, d.trim, fellows), first)
        neighbours = knn_of_reusing(x, np.flatnonzero(labels < 0), ATTACH_SEARCH, rows, found_near, xs)
        if options.min_faces < first:
            labels = strict_small_groups(labels, x, photos, strong, d.small_group, options.min_faces, first - 1)
            labels = merge_small_groups(labels, x, photos, first, rule, neighbours, fellows)
    else:
        found = agglomerative_labels(xs, options.threshold, options.min_faces)
        labels[rows] = drop_small(one_face_per_photo(found, photos[rows], xs), options.min_faces)
        neighbours = knn_of(x, np.flatnonzero(labels < 0), ATTACH_SEARCH)
    clustered = labels >= 0
    labels = attach_faces(labels, x, photos, np.ones(len(x), bool), rule, neighbours=neighbours, fellows=fellows)
    return drop_small(one_face_per_photo(labels, photos, x), options.min_faces), clustered


def _anchor_joins(data: GroupingInputs, labels: np.ndarray, anchored: np.ndarray, excluded: np.ndarray,
                  options: GroupOptions) -> list[tuple[int, int]]:
    """(row, person) for the faces that join a named or ignored person this run (step 2 of plan_groups)."""
    anchors = np.flatnonzero(anchored)
    open_rows = np.flatnonzero(~anchored & ~excluded)
    if len(anchors) == 0 or len(open_rows) == 0:
        return []
    person_ids, photos = data.person_ids, data.photo_ids
    # Only faces left out of every cluster, or in a cluster holding anchors, can join: ask about those alone.
    with_anchors = np.unique(labels[anchors][labels[anchors] >= 0])
    open_rows = open_rows[(labels[open_rows] < 0) | np.isin(labels[open_rows], with_anchors)]
    winner, nearest = anchor_votes(
        data.embeddings[open_rows], photos[open_rows], data.embeddings[anchors], person_ids[anchors], photos[anchors],
        threshold=options.join_distance or options.distances.join,
        k=options.distances.join_neighbours, votes=options.distances.join_votes,
    )
    # Anchors of each person in each cluster: the clustering must agree with the vote.
    in_cluster = {(int(labels[r]), int(person_ids[r])) for r in anchors.tolist() if labels[r] >= 0}
    seen_group = {p for p in data.people if data.people[p].name is None and not data.people[p].ignored}
    strays = open_rows[(labels[open_rows] < 0) & (winner >= 0)]
    agree = _strays_agree(data, strays, winner[np.searchsorted(open_rows, strays)], anchored, excluded, options.distances)
    ok = np.zeros(len(open_rows), bool)
    for j, row in enumerate(open_rows.tolist()):
        person = int(winner[j])
        if person < 0 or (data.face_ids[row], person) in data.rejections:
            continue
        if labels[row] >= 0:
            # In a cluster: never out of an unnamed group the user has seen, and only with the cluster's anchors.
            ok[j] = int(person_ids[row]) not in seen_group and (int(labels[row]), person) in in_cluster
        else:
            ok[j] = agree.get(row, False)
    rows, chosen = open_rows[ok], winner[ok]
    taken = {(int(photos[r]), int(person_ids[r])) for r in anchors.tolist()}
    keep = one_join_per_photo(rows, chosen, nearest[ok], photos, taken)
    return [(int(r), int(p)) for r, p in zip(rows[keep], chosen[keep])]


def _strays_agree(data: GroupingInputs, rows: np.ndarray, persons: np.ndarray, anchored: np.ndarray,
                  excluded: np.ndarray, d: Distances) -> dict[int, bool]:
    """For faces left out of every cluster: do their nearest faces of any kind (other photos) agree with the
    anchors' vote, with `d.join_votes` of the first `d.join_neighbours` anchors of that person?"""
    if len(rows) == 0:
        return {}
    usable = np.flatnonzero(~excluded)
    ids, _ = knn_of(data.embeddings[usable], np.searchsorted(usable, rows), ATTACH_SEARCH)
    out = {}
    for row, person in zip(rows.tolist(), persons.tolist()):
        near = usable[ids[np.searchsorted(usable, row)]]
        near = near[data.photo_ids[near] != data.photo_ids[row]][: d.join_neighbours]
        theirs = anchored[near] & (data.person_ids[near] == person)
        out[row] = len(near) > 0 and bool(theirs[0]) and int(theirs.sum()) >= min(d.join_votes, len(near))
    return out


def _apart(labels: np.ndarray, data: GroupingInputs) -> list[list[int]]:
    """Rows of each cluster, with the groups the user said are different people (cannot-links) kept apart:
    such a cluster splits by the groups its faces were in; faces from no such group stay with the largest part."""
    out = []
    for members in members_by_label(labels):
        rows = members.tolist()
        if not rows:
            continue
        old = data.person_ids[members].tolist()
        present = sorted({p for p in old if p >= 0})
        clash = any((a, b) in data.cannot_links for i, a in enumerate(present) for b in present[i + 1:])
        if not clash:
            out.append(rows)
            continue
        parts: dict[int, list[int]] = {}
        for row, p in zip(rows, old):
            parts.setdefault(p, []).append(row)
        loose = parts.pop(-1, [])
        ordered = sorted(parts.values(), key=len, reverse=True)
        ordered[0].extend(loose)
        out.extend(ordered)
    return out


def attach_rule(d: Distances) -> AttachRule:
    """The attach step's rule with an embedder's distances."""
    return AttachRule(d.attach_neighbours, d.attach_votes, d.attach_reach_ratio, d.attach_floor, d.attach_cap)


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
        if fill_face_quality(store, options.model, say):
            say("quality scores filled in for faces scanned before they existed")
        embedder = store.active_embedder(options.model)
        options = replace(options, distances=distances(embedder))
        data = store.grouping_inputs(options.model)
        if len(data.face_ids) == 0:
            known = store.models_with_faces()
            hint = f" (faces exist for: {', '.join(known)}; use --model)" if known else "; run facecluster scan first"
            raise PeopleError(f"no faces of model pack {options.model!r} in the database{hint}")
        if _adopt_xmp_names(store, options.model, data):
            data = store.grouping_inputs(options.model)
        say(f"grouping {len(data.face_ids)} faces with the {embedder} embedder")
        plan = plan_groups(data, options)
        people, face_ids = data.people, data.face_ids.tolist()
        settled = settle(data, plan)
        summary = GroupSummary(model=options.model, faces=len(face_ids))
        for _, person in settled.joined:
            label = people[person].name or f"#{person}"
            summary.joined[label] = summary.joined.get(label, 0) + 1
        fresh = [i for i, (number, _) in enumerate(settled.groups) if number is None]
        with store.transaction():
            numbers = dict(zip(fresh, store.create_people(options.model, len(fresh))))
            assignments: list[tuple[int | None, str | None, int]] = [(p, "auto", f) for f, p in settled.joined]
            for index, (number, members) in enumerate(settled.groups):
                assignments += [(numbers.get(index, number), "cluster", f) for f in members]
            assignments += [(None, None, f) for f in settled.unplaced]
            store.assign_faces(assignments)
            store.delete_people(settled.gone)
        clusters = settled.groups
        placed = len(face_ids) - len(settled.unplaced) - int(plan.decided.sum())
        summary.groups = len(clusters)
        summary.new_groups = len(fresh)
        summary.kept_groups = len(clusters) - len(fresh)
        summary.named = sum(1 for p in people.values() if p.name is not None)
        unplaced = set(settled.unplaced)
        summary.below_quality = int(sum(
            1 for row in np.flatnonzero(~plan.decided & ~plan.passes).tolist() if face_ids[row] in unplaced
        ))
        summary.noise = int((~plan.decided).sum()) - placed - summary.below_quality
        summary.attached = len(plan.attached)
        summary.seconds = time.monotonic() - started
    return summary


@dataclass
class Settlement:
    """What a plan means for the database, before anything is written (pure: `settle`).

    joined: (face id, person) of the automatic joins into named or ignored people.
    groups: (the old number the group keeps, or None for a new group; its face ids).
    unplaced: face ids that end in no person. gone: old group numbers no longer used.
    """

    joined: list[tuple[int, int]]
    groups: list[tuple[int | None, list[int]]]
    unplaced: list[int]
    gone: list[int]


def settle(data: GroupingInputs, plan: Plan) -> Settlement:
    """Number the plan's groups: each keeps the number of the old unnamed group it mostly overlaps
    (`match_groups`), so `facecluster name 12` still means the group the user looked at; the rest are new.
    A face the user took out of a group never goes back into it.

    Example:
        settled = settle(data, plan_groups(data, GroupOptions()))
    """
    people, face_ids = data.people, data.face_ids.tolist()
    old_groups: dict[int, set[int]] = {}
    for face_id, person in zip(face_ids, data.person_ids.tolist()):
        if person in people and people[person].name is None and not people[person].ignored:
            old_groups.setdefault(person, set()).add(face_id)
    clusters = [{face_ids[r] for r in rows} for rows in plan.clusters]
    kept = match_groups(old_groups, clusters)
    joined = [(face_ids[row], person) for row, person in plan.joined]
    placed = {f for f, _ in joined}
    groups = []
    for index, rows in enumerate(plan.clusters):
        number = kept.get(index)
        members = [face_ids[r] for r in rows if number is None or (face_ids[r], number) not in data.rejections]
        placed.update(members)
        groups.append((number, members))
    unplaced = [face_ids[r] for r in np.flatnonzero(~plan.decided).tolist() if face_ids[r] not in placed]
    return Settlement(joined, groups, unplaced, sorted(n for n in old_groups if n not in kept.values()))


def fill_face_quality(store: Store, model: str, progress: Callable[[str], None] | None = None) -> int:
    """Compute the quality score of faces scanned before it existed (migration m004). Returns faces filled.

    Uses only what the database holds (the 128 px thumbnail, landmarks, size
    and detection score), the same inputs scan uses, so no photo is read and
    no model runs: about 1 ms a face, once.

    Example:
        fill_face_quality(store, "sface")
    """
    filled = 0
    while True:
        rows = store.faces_without_quality(model)
        if not rows:
            return filled
        pairs = []
        for face_id, thumb, landmarks, size, score in rows:
            marks = json.loads(landmarks) if landmarks else []
            quality = thumb_quality(thumb, marks, size or 0.0, score or 0.0) if len(marks) == 10 else 0.0
            pairs.append((face_id, quality))
        with store.transaction():
            store.set_face_quality(pairs)
        filled += len(pairs)
        if progress:
            progress(f"quality scores: {filled} faces")


def _adopt_xmp_names(store: Store, model: str, data: GroupingInputs) -> int:
    """Faces named in a photo's XMP (by digiKam, Lightroom, ...) start out as that named person.

    A face the user already put with a named or ignored person, or removed
    from the person of that name, is left alone. Returns faces adopted.
    """
    named: dict[str, int] = {}  # name as written in the XMP -> person
    people = data.people
    adopted = 0
    with store.transaction():
        for face_id, raw, person in store.xmp_labelled_faces(model):
            if person in people and (people[person].name is not None or people[person].ignored):
                continue
            if raw not in named:
                try:
                    name = clean_name(raw)  # the same rules as `facecluster name`: no control characters, no numbers
                except PeopleError:
                    continue
                found = store.person_named(model, name)  # any case: "bald GUY" and "bald guy" are one person
                named[raw] = found.id if found is not None else store.name_person_new(model, name)
            if (face_id, named[raw]) in data.rejections:
                continue
            store.assign_faces([(named[raw], "xmp", face_id)])
            adopted += 1
    return adopted


@dataclass(frozen=True)
class Regrouped:
    summary: GroupSummary
    changes: list[PersonChange]


def regroup(store: Store, options: GroupOptions | None = None) -> Regrouped:
    """Run `group` and say what it changed, person by person.

    Example:
        regroup(store).changes
    """
    before = store.people_summaries()
    summary = group(store, options)
    return Regrouped(summary, compare_people(before, store.people_summaries()))
