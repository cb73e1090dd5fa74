"""OpenCV Zoo SFace recognizer (2021dec, 128-D, Apache-2.0) on onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecluster.models import onnx as onnx_util
from facecluster.models.base import Embedder


class SFaceEmbedder(Embedder):
    """Aligned 112x112 RGB crops, 0..255 unnormalised (as cv2.FaceRecognizerSF feeds it)."""

    dim = 128
    batch_size = 1  # measured fastest per face on CPU (see Embedder.batch_size)

    def __init__(self, path: Path, sha256: str | None, threads: int = 1) -> None:
        super().__init__()
        self.path, self.sha256, self.threads = path, sha256, threads
        self._session = None

    def _load(self) -> None:
        data = onnx_util.read_verified(self.path, self.sha256)
        data = onnx_util.repair_block_quantized(data)
        data = onnx_util.make_dims_dynamic(onnx_util.expand_prelu(data), {0: "batch"})
        self._session = onnx_util.session(data, self.threads)
        self._input_name = self._session.get_inputs()[0].name

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input_name: blob})[0].reshape(len(crops), -1)
