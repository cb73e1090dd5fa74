"""OpenCV Zoo SFace recognizer (2021dec, 128-D, Apache-2.0) on onnxruntime."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecluster.errors import ModelError
from facecluster.models import cache
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
    data = onnx_util.prelu_as_depthwise(_folded(shipped))
    return onnx_util.make_dims_dynamic(data, {0: "batch"})


def _folded(shipped: bytes) -> bytes:
    """The repairs and numpy folds both graphs start from: weights dequantised, BatchNorm folded."""
    data = onnx_util.repair_block_quantized(shipped)
    data = onnx_util.fold_weight_dequantize(data)
    return onnx_util.fold_batchnorm(data)


# Change FLOAT_RECIPE whenever runtime_graph changes: it is part of the cache key.
FLOAT_RECIPE = "fold-bn-prelu-into-next-split-gemm-v1"
# Faces whose last layer runs as one call: the Gemm reads its 25 MB of weights once a call.
HEAD_BATCH = 64


def runtime_graph(shipped: bytes) -> tuple[bytes, bytes]:
    """The graph the float pack runs, as (trunk, head): `float_graph` with each PRelu
    folded into the layer after it, split before the last Gemm (onnx.split_final_gemm).

    The embeddings are those of `float_graph` up to float rounding (cosine
    1.0000000 on 1,237 faces, largest difference 3e-7); 6.9 ms a face instead
    of 7.7 one face a call, 6.4 with a photo's 12 faces (docs/benchmarks.md).

    Example:
        trunk, head = runtime_graph(read_verified(path, sha))
    """
    data = onnx_util.prelu_scale_into_next(_folded(shipped))
    data = onnx_util.prelu_as_depthwise(data)  # any PRelu the fold could not take
    return onnx_util.split_final_gemm(onnx_util.make_dims_dynamic(data, {0: "batch"}))


def _runtime_graph_or_error(shipped: bytes) -> tuple[bytes, bytes]:
    try:
        return runtime_graph(shipped)
    except ValueError as e:  # a graph of another shape than SFace 2021dec's (the digest pins it; never here)
        raise ModelError(f"cannot prepare the SFace model: {e}") from None


class SFaceEmbedder(Embedder):
    """Aligned 112x112 RGB crops, 0..255 unnormalised (as cv2.FaceRecognizerSF feeds it).

    `precision="fp32"` (the pack's default) runs the float graph, whose
    embeddings equal OpenCV's own FaceRecognizerSF: the convolutions one face at
    a time (fastest per face on CPU), then the last layer once for all of a
    photo's faces. `"int8"` runs the graph quantised for int8 execution
    (facecluster.models.sface_int8): faster, but it lowered clustering
    quality, so nothing uses it by default.

    The graphs are rewritten from the shipped file once and cached
    (facecluster.models.cache); the shipped file is read and its sha256
    checked at every load all the same.
    """

    dim = 128

    def __init__(self, path: Path, sha256: str | None, threads: int = 1, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ModelError(f"unknown SFace precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.path, self.sha256, self.threads, self.precision = path, sha256, threads, precision
        # int8: one face a call (measured fastest); fp32: batches for the last layer only.
        self.batch_size = HEAD_BATCH if precision == "fp32" else 1
        self._session = self._head = None

    def _load(self) -> None:
        shipped = onnx_util.read_verified(self.path, self.sha256)
        source = self.sha256 or hashlib.sha256(shipped).hexdigest()
        if self.precision == "int8":
            # The opt-in int8 build and its calibration table load only for the int8 pack.
            from facecluster.models import sface_int8
            from facecluster.models.sface_int8_ranges import RANGES

            data = cache.cached("sface_int8", int8_key(source), lambda: sface_int8.build(float_graph(shipped), RANGES))
            self._session = onnx_util.session(data, self.threads, fold_qdq=False)
        else:
            graphs = functools.cache(lambda: _runtime_graph_or_error(shipped))
            key = f"{source}:{FLOAT_RECIPE}"
            self._session = onnx_util.session(cache.cached("sface_fp32_trunk", key, lambda: graphs()[0]), self.threads)
            self._head = onnx_util.session(cache.cached("sface_fp32_head", key, lambda: graphs()[1]), self.threads, optimize_all=False)
            self._head_input = self._head.get_inputs()[0].name
        self._input_name = self._session.get_inputs()[0].name

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        if self._head is None:
            return self._session.run(None, {self._input_name: blob})[0].reshape(len(crops), -1)
        features = np.concatenate([self._session.run(None, {self._input_name: blob[i : i + 1]})[0] for i in range(len(blob))])
        return self._head.run(None, {self._head_input: features})[0]


def int8_key(source_sha256: str) -> str:
    """What an int8 build is made from: the shipped file, the recipe, the calibration table.

    Example:
        int8_key("fb143eea...")  # 'fb143eea...:qdq-u8s8-perchannel-v1:3f2a9c1d0b7e6a55'
    """
    # The calibration table loads only where an int8 key is asked for (the opt-in int8 pack).
    from facecluster.models.sface_int8 import RECIPE, ranges_digest
    from facecluster.models.sface_int8_ranges import RANGES

    return f"{source_sha256}:{RECIPE}:{ranges_digest(RANGES)[:16]}"
