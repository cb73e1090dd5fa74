"""OpenCV Zoo SFace recognizer (2021dec, 128-D, Apache-2.0) on onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecluster.errors import ModelError
from facecluster.models import onnx as onnx_util
from facecluster.models.base import Embedder

PRECISIONS = ("int8", "fp32")


def float_graph(shipped: bytes) -> bytes:
    """The shipped weight-only-int8 file as a plain float graph, ready to run or to quantise.

    Every step is numpy on the weights (no onnxruntime optimiser involved), so
    the graph is the same on every machine: its tensor names are the keys of
    the int8 calibration table.

    Example:
        graph = float_graph(read_verified(path, sha))
    """
    data = onnx_util.repair_block_quantized(shipped)
    data = onnx_util.fold_weight_dequantize(data)
    data = onnx_util.fold_batchnorm(data)
    data = onnx_util.prelu_as_depthwise(data)
    return onnx_util.make_dims_dynamic(data, {0: "batch"})


class SFaceEmbedder(Embedder):
    """Aligned 112x112 RGB crops, 0..255 unnormalised (as cv2.FaceRecognizerSF feeds it).

    `precision="fp32"` (the pack's default) runs the float graph, whose
    embeddings equal OpenCV's own FaceRecognizerSF; `"int8"` runs the graph
    quantised for int8 execution (facecluster.models.sface_int8): about 1.7x
    faster, but it lowered clustering quality, so nothing uses it by default.
    """

    dim = 128
    batch_size = 1  # measured fastest per face on CPU (see Embedder.batch_size)

    def __init__(self, path: Path, sha256: str | None, threads: int = 1, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ModelError(f"unknown SFace precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.path, self.sha256, self.threads, self.precision = path, sha256, threads, precision
        self._session = None

    def _load(self) -> None:
        data = float_graph(onnx_util.read_verified(self.path, self.sha256))
        if self.precision == "int8":
            from facecluster.models import sface_int8
            from facecluster.models.sface_int8_ranges import RANGES

            data = sface_int8.cached_int8(data, int8_key(self.sha256 or onnx_util.sha256_of(self.path)), RANGES)
        self._session = onnx_util.session(data, self.threads, fold_qdq=self.precision != "int8")
        self._input_name = self._session.get_inputs()[0].name

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input_name: blob})[0].reshape(len(crops), -1)


def int8_key(source_sha256: str) -> str:
    """What an int8 build is made from: the shipped file, the recipe, the calibration table.

    Example:
        int8_key("fb143eea...")  # 'fb143eea...:qdq-u8s8-perchannel-v1:3f2a9c1d0b7e6a55'
    """
    from facecluster.models.sface_int8 import RECIPE, ranges_digest
    from facecluster.models.sface_int8_ranges import RANGES

    return f"{source_sha256}:{RECIPE}:{ranges_digest(RANGES)[:16]}"
