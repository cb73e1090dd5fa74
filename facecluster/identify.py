"""Who is in this photo? Faces of photos outside the library, matched against the named people.

Each photo goes through the scan's own pipeline (`scan_file.analyse_file`: decode, detect, align,
embed, with the same pack and settings), so a face gets the embedding a scan would give it. A face
is matched against every named person of that pack with conservative evidence: its distance to a
person is the mean of its distances to that person's 3 nearest faces (one look-alike face is not
enough), and the wording says how far that can be trusted (the embedder's Distances.identify_*
in models/registry.py; docs/quality.md says how they were chosen).

Nothing is written unless `add`: then the photos are stored as a scan would store them, and the
next `group` lets their faces join the people they match.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from facecluster.crawl import CrawlEntry, clamp_ns
from facecluster.errors import ModelError, UsageProblem
from facecluster.models import DEFAULT_PACK, Embedder, ModelPack, load_embedder, load_pack
from facecluster.models.registry import SFACE_DISTANCES, Distances, distances
from facecluster.records import Face, FileResult
from facecluster.reembed import vectors_for
from facecluster.scan_file import analyse_file
from facecluster.scan_options import ScanOptions
from facecluster.store import Store

NEIGHBOURS = 3  # a person's distance: the mean of the distances to their 3 nearest faces
VERY_LIKELY, POSSIBLE, UNKNOWN = "very likely", "possible", "unknown"


@dataclass(frozen=True)
class Candidate:
    person_id: int
    name: str
    distance: float  # mean Euclidean distance (unit vectors) to the person's nearest faces


@dataclass(frozen=True)
class FaceMatch:
    box: tuple[float, float, float, float]  # x, y, w, h in the photo's displayed pixels
    score: float
    wording: str  # "very likely", "possible" or "unknown"
    best: Candidate | None  # the nearest named person, also when the wording is "unknown"
    runner_up: Candidate | None = None


@dataclass
class IdentifiedPhoto:
    path: str
    faces: list[FaceMatch] = field(default_factory=list)
    error: str | None = None  # the photo could not be read
    added: bool = False  # stored in the library (--add)
    known: bool = False  # --add: already in the library with this content


class Reference:
    """The named people's faces of one pack, ready to be compared with new faces.

    Example:
        ref = Reference.load(store, "sface"); ref.candidates(vector)[:1]
    """

    def __init__(self, person_ids: npt.NDArray[np.int64], embeddings: npt.NDArray[np.float32], names: dict[int, str]) -> None:
        order = np.argsort(person_ids, kind="stable")
        self.person_ids = person_ids[order]
        self.embeddings = np.ascontiguousarray(embeddings[order], dtype=np.float32)
        self.names = names
        self.people, self.starts, self.counts = np.unique(self.person_ids, return_index=True, return_counts=True)

    @classmethod
    def load(cls, store: Store, model: str) -> Reference:
        person_ids, embeddings = store.named_embeddings(model)
        names = {p.id: p.name for p in store.people_rows(model) if p.name}
        return cls(person_ids, embeddings, names)

    def __len__(self) -> int:
        return len(self.people)

    def candidates(self, vector: npt.NDArray[np.floating], k: int = NEIGHBOURS) -> list[Candidate]:
        """Every named person with their distance to `vector`, nearest first."""
        if not len(self.people):
            return []
        v = np.asarray(vector, np.float32)
        v = v / (np.linalg.norm(v) or 1.0)
        distance = np.sqrt(np.clip(2.0 - 2.0 * (self.embeddings @ v), 0.0, None))
        # Sorted by person, then by distance: each person's k nearest are the first k of its run.
        order = np.lexsort((distance, self.person_ids))
        sorted_d = distance[order]
        take = np.minimum(self.counts, k)
        sums = np.zeros(len(self.people))
        for j in range(k):
            has = take > j
            sums[has] += sorted_d[self.starts[has] + j]
        means = sums / take
        ranked = np.argsort(means, kind="stable")
        return [Candidate(int(self.people[i]), self.names.get(int(self.people[i]), f"#{self.people[i]}"), float(means[i]))
                for i in ranked]


def wording(best: Candidate | None, runner_up: Candidate | None, d: Distances = SFACE_DISTANCES) -> str:
    """How sure a match is: "very likely" (close, and clearly closer than anyone else), "possible", "unknown".

    Example:
        wording(Candidate(3, "Alice", 0.7), None) == "very likely"
    """
    if best is None or best.distance > d.identify_possible:
        return UNKNOWN
    clear = runner_up is None or runner_up.distance - best.distance >= d.identify_margin
    return VERY_LIKELY if best.distance <= d.identify_very_likely and clear else POSSIBLE


def match_faces(reference: Reference, faces: list[Face], d: Distances = SFACE_DISTANCES) -> list[FaceMatch]:
    """Each face's best named person and how sure that is.

    Example:
        match_faces(Reference.load(store, "sface"), result.faces)[0].wording
    """
    out = []
    for face in faces:
        ranked = reference.candidates(face.embedding)
        best = ranked[0] if ranked else None
        runner_up = ranked[1] if len(ranked) > 1 else None
        out.append(FaceMatch(face.box, face.score, wording(best, runner_up, d), best, runner_up))
    return out


def identify(store: Store, paths: list[str], model: str = DEFAULT_PACK, add: bool = False,
             pack: ModelPack | None = None) -> list[IdentifiedPhoto]:
    """Who is in each photo, by the named people of pack `model`; with `add`, also store the photos.

    A photo that cannot be read gets its reason in `error`; the others are still answered.

    Example:
        for photo in identify(store, ["party.jpg"]): print([f.wording for f in photo.faces])
    """
    if not paths:
        raise UsageProblem("name at least one photo")
    pack = pack or load_pack(model)
    options = ScanOptions(model=pack.name, jobs=1)
    reference = Reference.load(store, pack.name)
    # The named people's vectors are the active embedder's: new faces are described by it too.
    active = store.active_embedder(pack.name)
    other = load_embedder(active) if active != pack.name else None
    results: list[tuple[IdentifiedPhoto, FileResult | None]] = []
    for path in paths:
        photo, result = _analyse(path, pack, options)
        if result is not None:
            faces = result.faces if other is None or not result.faces else _described_by(other, result)
            photo.faces = match_faces(reference, faces, distances(active))
        results.append((photo, result))
    if add:
        _add(store, pack, options, results)
    return [photo for photo, _ in results]


def _described_by(embedder: Embedder, result: FileResult) -> list[Face]:
    """The file's faces with vectors of `embedder`, aligned from the landmarks the scan found."""
    faces = result.faces
    vectors = vectors_for(result.facts.path, [f.landmarks for f in faces], [f.frame_ms for f in faces], embedder, result.facts.kind)
    return [replace(f, embedding=v) for f, v in zip(faces, vectors)]


def _analyse(path: str, pack: ModelPack, options: ScanOptions) -> tuple[IdentifiedPhoto, FileResult | None]:
    full = os.path.abspath(os.path.expanduser(path))
    photo = IdentifiedPhoto(full)
    try:
        st = os.stat(full)
    except OSError as e:
        photo.error = f"cannot read: {e.strerror or e}"
        return photo, None
    if not os.path.isfile(full):
        photo.error = "not a file"
        return photo, None
    result = analyse_file(CrawlEntry(full, st.st_size, clamp_ns(st.st_mtime_ns)), pack, options, frozenset())
    if result.fatal:
        raise ModelError(result.fatal)
    if result.facts.error:
        photo.error = result.facts.error
        return photo, None
    return photo, result


def _add(store: Store, pack: ModelPack, options: ScanOptions, results: list[tuple[IdentifiedPhoto, FileResult | None]]) -> None:
    """Store the photos read as `scan` would (same pack, same settings); one already there unchanged stays as it is."""
    with store.writer("identify --add"):
        changed = store.register_model(pack.name, pack.fingerprint, int(getattr(pack.embedder, "dim", 0)), pack.licence)
        if changed:
            raise ModelError(f"the files of model pack {pack.name!r} differ from the ones this database was built with; "
                             "embeddings of different weights cannot be compared")
        scanned = store.scan_settings(pack.name)
        with store.transaction():
            for photo, result in results:
                if result is None:
                    continue
                existing = store.photo_at(result.facts.path)
                same = existing is not None and existing.sha256 == result.facts.sha256 and existing.status == "ok"
                if same and existing.id in scanned:
                    photo.known = True
                    continue
                store.save_photo(result.facts, result.faces, pack.name, existing.id if existing else None,
                                 options.settings, keep_people=same)
                photo.added = True
