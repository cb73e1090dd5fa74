"""Suggestions: the faces in no group, or in an unnamed group, that look most like a named person.

The review page offers them one by one ("yes, that's Alice" / "no"); the
answers go through people.answer_suggestion. A "no" is a rejection, so a
face refused once is never suggested for that person again, and grouping
never puts it there either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facecluster.people import resolve
from facecluster.store import PersonRow, Store

NEIGHBOURS = 3  # a candidate's distance: the mean of its distances to the person's 3 nearest faces
BLOCK = 4096  # candidates per block: 4096 x 10,000 faces of one person is 160 MB of float32


@dataclass(frozen=True)
class Suggestion:
    face_id: int
    distance: float  # Euclidean distance between unit vectors (0 same, 2 opposite); `group` joins below 1.0
    group: int | None  # the unnamed group it is in now, None for a face in no group


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


def suggest(store: Store, target: str, limit: int = 24) -> tuple[PersonRow, list[Suggestion]]:
    """The faces most like person `target` among those in no group or an unnamed group, nearest first.

    Example:
        person, found = suggest(store, "Alice")
    """
    person = resolve(store, target)
    data = store.suggestion_inputs(person.id, person.model)
    rows, distances = nearest(data.person, data.embeddings, limit)
    return person, [
        Suggestion(int(data.face_ids[r]), float(d), int(data.person_ids[r]) if data.person_ids[r] >= 0 else None)
        for r, d in zip(rows.tolist(), distances.tolist())
    ]


def _unit(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)
