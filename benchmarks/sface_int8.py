"""The int8 SFace experiment (not in the product): static QDQ quantisation of the float graph.

The shipped SFace file stores int8 weights but computes in float (its
DequantizeLinear nodes feed float Convs). Static QDQ quantisation makes the
Convs and the Gemm run as int8 kernels (QLinearConv, VNNI where the CPU has it),
from facecluster.models.sface.float_graph and activation ranges calibrated once
on faces of ../shared/facedata that are not in the verification sets
(`sface_int8_ranges.py`, written by `embed_speed.py --write-ranges`).

Measured (benchmarks/embed_speed.py, benchmarks/quality.py, docs/models.md):
about 0.6x the float graph's time a face and the same verification accuracy on
the labelled pairs, but the library run's BCubed F fell from 0.994 to 0.986, so
facecluster runs the float graph and this build lives here, as a recipe to
measure against.
"""

from __future__ import annotations

import hashlib
import json

# Names this build: the graph rewrite and the quantiser settings.
RECIPE = "qdq-u8s8-perchannel-v1"


def ranges_digest(ranges: dict[str, tuple[float, float]]) -> str:
    """sha256 of the calibration table in a canonical form."""
    canonical = json.dumps({k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def int8_key(source_sha256: str, ranges: dict[str, tuple[float, float]]) -> str:
    """What an int8 build is made from: the shipped file, the recipe, the calibration table.

    Example:
        int8_key("fb143eea...", RANGES)  # 'fb143eea...:qdq-u8s8-perchannel-v1:3f2a9c1d0b7e6a55'
    """
    return f"{source_sha256}:{RECIPE}:{ranges_digest(ranges)[:16]}"


def quantize(float_bytes: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """Static QDQ quantisation of a float graph with given activation ranges.

    Weights int8 per output channel (symmetric), activations uint8 (asymmetric)
    with the recorded ranges; onnxruntime's quantiser does the work, so the
    result is what `quantize_static` would make with a calibrator that found
    these ranges.

    Example:
        int8_bytes = quantize(float_graph, RANGES)
    """
    import numpy as np
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(float_bytes))
    tensors = TensorsData(
        CalibrationMethod.MinMax,
        {name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in ranges.items()},
    )
    op_types = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    quantizer = QDQQuantizer(model, True, False, QuantType.QInt8, QuantType.QUInt8, tensors, [], [], op_types, {})
    quantizer.quantize_model()
    return quantizer.model.model.SerializeToString()
