"""insightface model packs (buffalo_l, buffalo_s, antelopev2, or a folder of ONNX files).

insightface's pretrained weights are licensed for non-commercial research
only, so these packs are never the default. insightface's model zoo reads the
files; where they are missing it may download them, which fails cleanly on a
machine without network.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecluster.errors import ModelError
from facecluster.models.base import Detections, Detector, Embedder, ModelPack
from facecluster.models.onnx import sha256_of


_MISSING = 'insightface packs need the optional insightface package: pip install "facecluster[insightface]"'


def insightface_root() -> Path:
    return Path(os.environ.get("FACECLUSTER_INSIGHTFACE_ROOT", "~/.insightface")).expanduser()


def pack_folder(name: str) -> Path:
    given = Path(name).expanduser()
    if given.is_dir():
        return given.resolve()
    return insightface_root() / "models" / name


def insightface_pack(name: str, det_size: int, det_threshold: float) -> ModelPack:
    folder = pack_folder(name)
    if not any(folder.glob("*.onnx")):
        folder = _fetch(name, folder)
    files = sorted(folder.glob("*.onnx"))
    fingerprint = ":".join(sha256_of(f)[:16] for f in files)
    pack_name = name if not Path(name).expanduser().is_dir() else f"dir:{folder}"
    return ModelPack(
        name=pack_name,
        detector=InsightFaceDetector(folder, det_size, det_threshold),
        embedder=InsightFaceEmbedder(folder),
        fingerprint=fingerprint,
        licence="insightface pretrained weights: non-commercial research only",
    )


def _fetch(name: str, folder: Path) -> Path:
    if Path(name).expanduser().is_dir():
        raise ModelError(f"no .onnx files in {folder}")
    try:
        # insightface is an optional extra (non-commercial weights)
        from insightface.utils.storage import ensure_available
    except ImportError:
        raise ModelError(_MISSING) from None
    try:
        # insightface prints its download chatter to stdout, which is for results.
        with contextlib.redirect_stdout(sys.stderr):
            return Path(ensure_available("models", name, root=str(insightface_root())))
    except Exception as e:  # a failed download surfaces as many exception types
        raise ModelError(
            f"model pack {name!r} is not installed and could not be downloaded ({type(e).__name__}); "
            f"put its .onnx files in {folder} or set FACECLUSTER_INSIGHTFACE_ROOT"
        ) from None


def _models_by_task(folder: Path) -> dict:
    try:
        # insightface is an optional extra (non-commercial weights)
        from insightface.model_zoo import model_zoo
    except ImportError:
        raise ModelError(_MISSING) from None
    found = {}
    for file in sorted(folder.glob("*.onnx")):
        try:
            model = model_zoo.get_model(str(file), providers=["CPUExecutionProvider"])
        except Exception:
            continue  # not every file of a pack is a model the zoo knows
        if model is not None and model.taskname not in found:
            found[model.taskname] = model
    return found


class InsightFaceDetector(Detector):
    def __init__(self, folder: Path, det_size: int, threshold: float) -> None:
        super().__init__()
        self.folder, self.det_size, self.threshold = folder, det_size, threshold

    def _load(self) -> None:
        model = _models_by_task(self.folder).get("detection")
        if model is None:
            raise ModelError(f"no face detection model in {self.folder}")
        model.prepare(ctx_id=-1, input_size=(self.det_size, self.det_size), det_thresh=self.threshold)
        self._model = model

    def _predict(self, rgb: npt.NDArray[np.uint8], prepared: object | None = None) -> Detections:
        det, kps = self._model.detect(np.ascontiguousarray(rgb[:, :, ::-1]), input_size=(self.det_size, self.det_size))
        if det is None or len(det) == 0:
            return Detections.empty()
        return Detections(det[:, :4].astype(np.float32), det[:, 4].astype(np.float32), kps.astype(np.float32))


class InsightFaceEmbedder(Embedder):
    dim = 512

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def _load(self) -> None:
        model = _models_by_task(self.folder).get("recognition")
        if model is None:
            raise ModelError(f"no face recognition model in {self.folder}")
        model.prepare(ctx_id=-1)
        self._model = model
        self.dim = int(model.output_shape[-1])

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        # insightface expects BGR crops and swaps them to RGB itself.
        return self._model.get_feat([np.ascontiguousarray(c[:, :, ::-1]) for c in crops])
