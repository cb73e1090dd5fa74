"""SFace for real int8 execution: built on the user's machine, cached, verified.

The shipped SFace file stores int8 weights but computes in float (its
DequantizeLinear nodes feed float Convs). Static QDQ quantisation makes the
Convs and the Gemm run as int8 kernels (QLinearConv, VNNI where the CPU has it).

Nothing is downloaded and no image is needed on the user's machine: the
activation ranges were calibrated once, on faces of ../shared/facedata that
are not in the verification sets, and ship as numbers in
`sface_int8_ranges.py` (written by `benchmarks/embed_speed.py --write-ranges`).
At first load the int8 graph is built from the verified shipped weights and
those ranges with onnxruntime's own quantiser, then cached and verified at
every load (facecluster.models.cache).

Measured (benchmarks/embed_speed.py, benchmarks/quality.py, docs/models.md):
about 0.6x the float graph's time a face and the same verification accuracy on
the labelled pairs, but the library run's BCubed F fell from 0.994 to 0.986, so
the `sface` pack keeps the float graph and this build is opt-in
(`sface_pack("int8")`), with its own fingerprint.
"""

from __future__ import annotations

import hashlib
import json

from facecluster.errors import ModelError

# Change RECIPE whenever the graph rewrite or the quantiser settings change: it
# is part of the cache key and of the pack's fingerprint (see sface_fingerprint).
RECIPE = "qdq-u8s8-perchannel-v1"


def ranges_digest(ranges: dict[str, tuple[float, float]]) -> str:
    """sha256 of the calibration table in a canonical form."""
    canonical = json.dumps({k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def build(float_bytes: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """`quantize`, with any failure of the quantiser as one ModelError.

    Example:
        int8_bytes = build(float_graph, RANGES)
    """
    try:
        return quantize(float_bytes, ranges)
    except Exception as e:  # the quantiser raises many exception types
        raise ModelError(f"could not build the int8 SFace model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
