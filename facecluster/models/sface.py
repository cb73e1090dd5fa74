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
from facecluster.models import sface_graph
from facecluster.models.base import Embedder


def float_graph(shipped: bytes) -> bytes:
    """The shipped weight-only-int8 file as a plain float graph (PRelu as depthwise Convs).

    Every step is numpy on the weights (no onnxruntime optimiser involved), so
    the graph is the same on every machine. The pack runs `runtime_graph`; this
    one is the reference it is checked against, and what the int8 experiment
    (benchmarks/sface_int8.py) quantises: its tensor names are the keys of that
    calibration table.

    Example:
        graph = float_graph(read_verified(path, sha))
    """
    data = sface_graph.prelu_as_depthwise(_folded(shipped))
    return onnx_util.make_dims_dynamic(data, {0: "batch"})


def _folded(shipped: bytes) -> bytes:
    """The repairs and numpy folds both graphs start from: weights dequantised, BatchNorm folded."""
    data = sface_graph.repair_block_quantized(shipped)
    data = sface_graph.fold_weight_dequantize(data)
    return sface_graph.fold_batchnorm(data)


# Change FLOAT_RECIPE whenever runtime_graph changes: it is part of the cache key.
FLOAT_RECIPE = "fold-bn-prelu-into-next-split-gemm-v1"
# Faces whose last layer runs as one call: the Gemm reads its 25 MB of weights once a call.
HEAD_BATCH = 64


def runtime_graph(shipped: bytes) -> tuple[bytes, bytes]:
    """The graph the float pack runs, as (trunk, head): `float_graph` with each PRelu
    folded into the layer after it, split before the last Gemm (sface_graph.split_final_gemm).

    The embeddings are those of `float_graph` up to float rounding (cosine
    1.0000000 on 1,237 faces, largest difference 3e-7); 6.9 ms a face instead
    of 7.7 one face a call, 6.4 with a photo's 12 faces (docs/benchmarks.md).

    Example:
        trunk, head = runtime_graph(read_verified(path, sha))
    """
    data = sface_graph.prelu_scale_into_next(_folded(shipped))
    data = sface_graph.prelu_as_depthwise(data)  # any PRelu the fold could not take
    return sface_graph.split_final_gemm(onnx_util.make_dims_dynamic(data, {0: "batch"}))


def _runtime_graph_or_error(shipped: bytes) -> tuple[bytes, bytes]:
    try:
        return runtime_graph(shipped)
    except ValueError as e:  # a graph of another shape than SFace 2021dec's (the digest pins it; never here)
        raise ModelError(f"cannot prepare the SFace model: {e}") from None


class SFaceEmbedder(Embedder):
    """Aligned 112x112 RGB crops, 0..255 unnormalised (as cv2.FaceRecognizerSF feeds it).

    It runs the float graph, whose embeddings equal OpenCV's own
    FaceRecognizerSF: the convolutions one face at a time (fastest per face on
    CPU), then the last layer once for all of a photo's faces.

    The graphs are rewritten from the shipped file once and cached
    (facecluster.models.cache); the shipped file is read and its sha256
    checked at every load all the same.
    """

    dim = 128

    def __init__(self, path: Path, sha256: str | None, threads: int = 1) -> None:
        super().__init__()
        self.path, self.sha256, self.threads = path, sha256, threads
        self.batch_size = HEAD_BATCH  # faces a call; the convolutions still run one face at a time
        self._session = self._head = None

    def _load(self) -> None:
        shipped = onnx_util.read_verified(self.path, self.sha256)
        source = self.sha256 or hashlib.sha256(shipped).hexdigest()
        graphs = functools.cache(lambda: _runtime_graph_or_error(shipped))
        key = f"{source}:{FLOAT_RECIPE}"
        self._session = onnx_util.session(cache.cached("sface_fp32_trunk", key, lambda: graphs()[0]), self.threads)
        self._head = onnx_util.session(cache.cached("sface_fp32_head", key, lambda: graphs()[1]), self.threads, optimize_all=False)
        self._head_input = self._head.get_inputs()[0].name
        self._input_name = self._session.get_inputs()[0].name

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        features = np.concatenate([self._session.run(None, {self._input_name: blob[i : i + 1]})[0] for i in range(len(blob))])
        return self._head.run(None, {self._head_input: features})[0]

