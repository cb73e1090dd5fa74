"""SFace for real int8 execution: built on the user's machine, cached, verified.

The shipped SFace file stores int8 weights but computes in float (its
DequantizeLinear nodes feed float Convs). Static QDQ quantisation makes the
Convs and the Gemm run as int8 kernels (QLinearConv, VNNI where the CPU has it).

Nothing is downloaded and no image is needed on the user's machine: the
activation ranges were calibrated once, on faces of ../shared/facedata that
are not in the verification sets, and ship as numbers in
`sface_int8_ranges.py` (written by `benchmarks/embed_speed.py --write-ranges`).
At first load the int8 graph is built from the verified shipped weights and
those ranges with onnxruntime's own quantiser, then cached; the cache file's
sha256 is recorded beside it and checked at every load, and a missing,
corrupt or stale cache is rebuilt (written atomically). When the cache folder
cannot be written, the graph is built in memory each time instead.

Measured (benchmarks/embed_speed.py, benchmarks/quality.py, docs/models.md):
about 0.6x the float graph's time a face and the same verification accuracy on
the labelled pairs, but the library run's BCubed F fell from 0.994 to 0.986, so
the `sface` pack keeps the float graph and this build is opt-in
(`sface_pack("int8")`), with its own fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from facecluster.errors import ModelError

# Change RECIPE whenever the graph rewrite or the quantiser settings change: it
# is part of the cache key and of the pack's fingerprint (see sface_fingerprint).
RECIPE = "qdq-u8s8-perchannel-v1"
CACHE_ENV = "FACECLUSTER_MODEL_CACHE"


def ranges_digest(ranges: dict[str, tuple[float, float]]) -> str:
    """sha256 of the calibration table in a canonical form."""
    canonical = json.dumps({k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_dir() -> Path:
    """$FACECLUSTER_MODEL_CACHE, else the platform's per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "cache"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "facecluster" / "models"


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


def cached_int8(float_bytes: bytes, key: str, ranges: dict[str, tuple[float, float]], folder: Path | None = None) -> bytes:
    """The int8 graph for `float_bytes`, from the cache when its sha256 checks out, else built (and cached).

    `key` names what the graph was built from (source weights, recipe, ranges);
    a cache entry made from anything else is not used.

    Example:
        data = cached_int8(float_graph, "fb143eea...:qdq-v1:1a2b", RANGES)
    """
    folder = cache_dir() if folder is None else folder
    stem = "sface_int8_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    model_path, meta_path = folder / f"{stem}.onnx", folder / f"{stem}.json"
    cached = _read_cached(model_path, meta_path, key)
    if cached is not None:
        return cached
    try:
        data = quantize(float_bytes, ranges)
    except Exception as e:  # the quantiser raises many exception types
        raise ModelError(f"could not build the int8 SFace model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "onnxruntime": _ort_version()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Model first, then the record that vouches for it: a crash between the two
        # leaves a record that does not match, and the next load rebuilds.
        _write_atomic(model_path, data)
        _write_atomic(meta_path, json.dumps(meta, indent=1).encode())
    except OSError:
        pass  # a read-only or full cache folder costs a rebuild per load, nothing else
    return data


def _read_cached(model_path: Path, meta_path: Path, key: str) -> bytes | None:
    try:
        meta = json.loads(meta_path.read_text())
        data = model_path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("onnxruntime") != _ort_version():
        return None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None  # corrupt or half-written: rebuilt and replaced by the caller
    return data


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
