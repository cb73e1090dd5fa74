"""Loading ONNX weights: sha256 check, dynamic input sizes, one-thread sessions.

Generic to any ONNX model; the rewrites of OpenCV Zoo's graphs are in sface_graph.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from facecluster.errors import ModelError


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_verified(path: Path, expected_sha256: str | None) -> bytes:
    """The file's bytes, after checking its digest. A mismatch is an error, never a fallback.

    Example:
        data = read_verified(Path("sface.onnx"), "fb143eea...")
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from None
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise ModelError(
                f"model file {path} has sha256 {actual[:12]}…, expected {expected_sha256[:12]}…; "
                "reinstall the package that ships it"
            )
    return data


def make_dims_dynamic(model_bytes: bytes, dims: dict[int, str]) -> bytes:
    """Turn fixed input dimensions (by index) into named symbolic ones.

    Example:
        data = make_dims_dynamic(data, {0: "batch"})
    """
    import onnx  # takes over a second to import; a cached graph never needs it

    model = onnx.load_from_string(model_bytes)
    for index, name in dims.items():
        dim = model.graph.input[0].type.tensor_type.shape.dim[index]
        dim.ClearField("dim_value")
        dim.dim_param = name
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                dim.ClearField("dim_value")
                dim.dim_param = "?"
    return model.SerializeToString()


def session(model_bytes: bytes, threads: int = 1, fold_qdq: bool = True, optimize_all: bool = True):
    """An onnxruntime CPU session.

    One intra-op thread: on a 2-core machine two spinning sessions doubled the
    latency, so parallelism comes from one worker process per core instead.
    `fold_qdq` sets `session.disable_quant_qdq`, which folds the int8 weights to
    float at load time (what makes OpenCV Zoo's weight-only int8 graphs fast on
    CPU: YuNet ~3 ms at 640 px); a graph quantised for real int8 execution
    (benchmarks/sface_int8.py) must keep its QDQ pairs, so it passes False. `optimize_all=False`
    stops at the basic graph optimisations: for SFace's last layer alone (one
    Gemm) ALL only added prepacking, 57 ms at load against 22, and ran no faster
    (12 faces: 1.68 against 1.47 ms).

    Example:
        sess = session(read_verified(path, sha))
    """
    import onnxruntime as ort  # heavy, and only where a model runs

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize_all else level.ORT_ENABLE_BASIC
    if fold_qdq:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime could not load the model: {str(e).splitlines()[0]}") from None
