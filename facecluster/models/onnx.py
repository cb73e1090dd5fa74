"""Loading ONNX weights: sha256 check, in-memory repairs, one-thread sessions."""

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
    """The file's bytes, after checking its digest. A mismatch is an error, never a fallback."""
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


def repair_block_quantized(model_bytes: bytes) -> bytes:
    """Make OpenCV Zoo's int8 block-quantised graphs loadable by onnxruntime.

    Two faults in the published files, fixed without touching any weight:
    - per-tensor DequantizeLinear nodes (a one-element scale) carry a
      `block_size` attribute, which onnxruntime rejects;
    - initialisers are listed again as graph inputs, which onnxruntime then
      asks the caller to feed.
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 2:
            continue
        scale = initializers.get(node.input[1])
        # A blocked scale keeps the weight's rank ([64, 1], and [1, 1] for a single
        # block); a per-tensor one is a scalar or a one-element vector.
        per_tensor = scale is not None and len(scale.dims) <= 1 and _numel(scale.dims) == 1
        if per_tensor:
            kept = [a for a in node.attribute if a.name != "block_size"]
            if len(kept) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(kept)
    # The listed "inputs" besides the image are the float weights' names from
    # before quantisation: initialisers, or names no node reads any more (the
    # nodes now read the DequantizeLinear/Reshape outputs). Only a name some
    # node reads and nothing provides is a real input.
    consumed = {name for node in graph.node for name in node.input}
    real_inputs = [i for i in graph.input if i.name in consumed and i.name not in initializers]
    if len(real_inputs) != len(graph.input):
        del graph.input[:]
        graph.input.extend(real_inputs)
    return model.SerializeToString()


def expand_prelu(model_bytes: bytes) -> bytes:
    """Rewrite every PRelu(x, a) as Relu(x) + a * (x - Relu(x)), which is exact.

    onnxruntime's CPU PRelu with a (C, 1, 1) slope falls back to generic
    broadcasting and took 60% of SFace's time; the four plain element-wise
    ops run in NCHWc layout and cut SFace from 24 to 18 ms a face here
    (benchmarks/README: embeddings unchanged, cosine 1.0).
    """
    import onnx
    from onnx import helper

    model = onnx.load_from_string(model_bytes)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        relu, negative, scaled = f"{y}/relu", f"{y}/negative", f"{y}/scaled"
        nodes += [
            helper.make_node("Relu", [x], [relu]),
            helper.make_node("Sub", [x, relu], [negative]),
            helper.make_node("Mul", [negative, slope], [scaled]),
            helper.make_node("Add", [relu, scaled], [y]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


def make_dims_dynamic(model_bytes: bytes, dims: dict[int, str]) -> bytes:
    """Turn fixed input dimensions (by index) into named symbolic ones."""
    import onnx

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


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def session(model_bytes: bytes, threads: int = 1):
    """An onnxruntime CPU session.

    One intra-op thread: on a 2-core machine two spinning sessions doubled the
    latency, so parallelism comes from one worker process per core instead.
    `session.disable_quant_qdq` folds the int8 weights to float at load time,
    which is what makes these graphs fast on CPU (YuNet ~3 ms at 640 px).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime could not load the model: {str(e).splitlines()[0]}") from None
