"""Suggestions: what is likely, at the level people think in.

- "Same person?" for two people or groups (named or not), ranked by the
  distance between their centres.
- "Is this Alice?" for the unnamed groups and the faces in no group that look
  most like one person.

Each comes with a likelihood in words ("very likely", "likely", "possible"),
calibrated per embedder (Distances.group_likelihood and .face_likelihood in
models/registry.py; evidence in docs/quality.md); anything less likely
than "possible" is never offered. The answers go through people.py: "yes"
merges or moves, "no" is remembered (a cannot-link or a rejection), so the same
question is never asked twice and grouping never undoes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facecluster.models.registry import Distances, distances
from facecluster.people import resolve
from facecluster.store import PersonRow, Store

NEIGHBOURS = 3  # a face's distance to a person: the mean of its distances to the person's 3 nearest faces
BLOCK = 4096  # rows per block of a distance matrix: 4096 x 10,000 is 160 MB of float32


@dataclass(frozen=True)
class Suggestion:
    face_id: int
    distance: float  # Euclidean distance between unit vectors (0 same, 2 opposite)
    group: int | None  # the unnamed group it is in now, None for a face in no group
    likelihood: str = ""


@dataclass(frozen=True)
class PairSuggestion:
    """ "Are these two the same person?" about people or groups `a` and `b` (person ids)."""

    a: int
    b: int
    distance: float  # between the two centres
    likelihood: str


@dataclass(frozen=True)
class PersonSuggestions:
    person: PersonRow
    groups: list[PairSuggestion]  # unnamed groups that may be this person (b is the group)
    faces: list[Suggestion]  # faces in no group that may be this person


@dataclass(frozen=True)
class GroupCard:
    """What a question shows of one person or group: its name, size and a few faces."""

    id: int
    name: str | None
    faces: int
    face_ids: list[int]  # the largest, most confident faces first (the first is the one that stands for it)


@dataclass(frozen=True)
class SamePersonPage:
    pairs: list[PairSuggestion]
    cards: dict[int, GroupCard]  # person id -> its card, for both sides of every pair


def likelihood(distance: float, levels: tuple[tuple[float, str], ...]) -> str | None:
    """The words for a distance under calibrated `levels` ((up to this distance, words), nearest first), or None.

    Example:
        likelihood(0.7, distances("sface").group_likelihood) == "very likely"
    """
    for limit, words in levels:
        if distance <= limit:
            return words
    return None


def nearest(person: npt.NDArray[np.floating], candidates: npt.NDArray[np.floating], limit: int,
            k: int = NEIGHBOURS, block: int = BLOCK) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Rows of `candidates` closest to the faces in `person`, nearest first, with their distances.

    A candidate's distance is the mean of its distances to its k nearest faces of
    the person: one look-alike face is not enough, the whole person must be close.

    Example:
        rows, distances = nearest(np.eye(3)[:1], np.eye(3), limit=2)  # rows[0] == 0
    """
    if len(person) == 0 or len(candidates) == 0 or limit <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    p = _unit(person)
    k = min(k, len(p))
    scores = np.empty(len(candidates))
    for start in range(0, len(candidates), block):
        x = _unit(candidates[start : start + block])
        sim = x @ p.T
        top = -np.partition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else sim
        distance = np.sqrt(np.clip(2.0 - 2.0 * top, 0.0, None))
        scores[start : start + block] = distance.mean(axis=1)
    order = np.argsort(scores, kind="stable")[:limit]
    return order.astype(np.int64), scores[order]


def centre_pairs(centres: npt.NDArray[np.float32], limit: float, block: int = BLOCK) -> list[tuple[int, int, float]]:
    """(i, j, distance) with i < j for every two rows of `centres` (unit vectors) at most `limit` apart, nearest first.

    Example:
        centre_pairs(np.eye(2, dtype=np.float32), 1.5)  # [(0, 1, 1.414...)]
    """
    out: list[tuple[int, int, float]] = []
    floor = 1.0 - limit * limit / 2.0  # distance <= limit  <=>  cosine >= floor
    for start in range(0, len(centres), block):
        sim = centres[start : start + block] @ centres.T
        rows, cols = np.nonzero(sim >= floor)
        keep = cols > rows + start
        for i, j in zip(rows[keep].tolist(), cols[keep].tolist()):
            out.append((start + i, j, float(np.sqrt(max(2.0 - 2.0 * sim[i, j], 0.0)))))
    return sorted(out, key=lambda t: (t[2], t[0], t[1]))


def _distances(store: Store, model: str, given: Distances | None) -> Distances:
    """The distances of the embedder in use for pack `model`, unless the caller gave some."""
    return given or distances(store.active_embedder(model))


def same_person_pairs(store: Store, limit: int = 50, d: Distances | None = None) -> list[PairSuggestion]:
    """ "Same person?" questions worth asking, most likely first: two people or groups whose centres are
    close enough to be at least "possible", not both named (two names are two people until the user says
    otherwise), not ignored, and not already answered "no".

    Example:
        for s in same_person_pairs(store): print(s.a, s.b, s.likelihood)
    """
    data = store.person_centres()
    links = store.cannot_links()
    found = []
    # Each pack's people are compared with its embedder's distances (a pair is always of one pack).
    by_model = {m: _distances(store, m, d) for m in set(data.models)}
    reach = max((x.group_likelihood[-1][0] for x in by_model.values()), default=0.0)
    for i, j, distance in centre_pairs(data.centres, reach):
        a, b = int(data.person_ids[i]), int(data.person_ids[j])
        if data.models[i] != data.models[j] or (data.named[i] and data.named[j]) or (min(a, b), max(a, b)) in links:
            continue
        words = likelihood(distance, by_model[data.models[i]].group_likelihood)
        if words:
            # The named one first: the question reads "is group 12 Alice?"
            first, second = (a, b) if data.named[i] or not data.named[j] else (b, a)
            found.append(PairSuggestion(first, second, distance, words))
            if len(found) >= limit:
                break
    return found


def group_cards(store: Store, person_ids, per_card: int = 5) -> dict[int, GroupCard]:
    """Cards for these people or groups (those that still exist): name, number of faces, a few faces.

    Example:
        group_cards(store, [12, 31])[12].face_ids[0]
    """
    return {pid: GroupCard(pid, name, count, faces) for pid, (name, count, faces) in store.person_samples(person_ids, per_card).items()}


def same_person_page(store: Store, limit: int = 50, per_card: int = 5) -> SamePersonPage:
    """The "same person?" questions (`same_person_pairs`) with a card for each side: what the review shows.

    Example:
        page = same_person_page(store); page.cards[page.pairs[0].a].name
    """
    pairs = same_person_pairs(store, limit)
    cards = group_cards(store, [pid for p in pairs for pid in (p.a, p.b)], per_card)
    return SamePersonPage([p for p in pairs if p.a in cards and p.b in cards], cards)


def suggest(store: Store, target: str, limit: int = 24, d: Distances | None = None) -> PersonSuggestions:
    """ "Is this Alice?": the unnamed groups and the faces in no group that may be person `target`,
    most likely first, only those at least "possible"; empty lists when nothing is likely.

    Example:
        found = suggest(store, "Alice"); found.groups, found.faces
    """
    person = resolve(store, target)
    d = _distances(store, person.model, d)
    centres = store.person_centres()
    links = store.cannot_links()
    groups = []
    mine = np.flatnonzero(centres.person_ids == person.id)
    if len(mine):
        distance = np.linalg.norm(centres.centres - centres.centres[mine[0]], axis=1)
        for row in np.argsort(distance, kind="stable").tolist():
            other = int(centres.person_ids[row])
            words = likelihood(float(distance[row]), d.group_likelihood)
            if words is None:
                break
            if other == person.id or centres.named[row] or centres.models[row] != person.model:
                continue
            if (min(other, person.id), max(other, person.id)) in links:
                continue
            groups.append(PairSuggestion(person.id, other, float(distance[row]), words))
            if len(groups) >= limit:
                break
    data = store.suggestion_inputs(person.id, person.model, unclustered_only=True)
    rows, found = nearest(data.person, data.embeddings, limit)
    faces = []
    for r, distance in zip(rows.tolist(), found.tolist()):
        words = likelihood(distance, d.face_likelihood)
        if words is None:
            break
        faces.append(Suggestion(int(data.face_ids[r]), float(distance), None, words))
    return PersonSuggestions(person, groups, faces)


def _unit(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)
