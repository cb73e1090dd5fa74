"""Rewrites of OpenCV Zoo's ONNX graphs, in numpy on the weights: what SFace runs, and YuNet's repair.

The shipped files store int8 weights that compute in float. These functions
turn them into the graphs facecluster runs (models/sface.py builds SFace's;
models/yunet.py only repairs YuNet's), the same bytes on every machine: no
onnxruntime optimiser takes part, so a graph cached under a recipe name
(models/cache.py) is what the recipe makes anywhere.

onnx itself is imported inside the functions: it takes over a second to
import, and a scan whose graphs are cached never needs it.
"""

from __future__ import annotations

import numpy as np


def repair_block_quantized(model_bytes: bytes) -> bytes:
    """Make OpenCV Zoo's int8 block-quantised graphs loadable by onnxruntime.

    Two faults in the published files, fixed without touching any weight:
    - per-tensor DequantizeLinear nodes (a one-element scale) carry a
      `block_size` attribute, which onnxruntime rejects;
    - initialisers are listed again as graph inputs, which onnxruntime then
      asks the caller to feed.

    Example:
        data = repair_block_quantized(read_verified(path, sha))
    """
    import onnx  # heavy: see the module's docstring

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


def fold_weight_dequantize(model_bytes: bytes) -> bytes:
    """Replace every DequantizeLinear (and Reshape) of a constant weight by the
    float weight it computes, in numpy: a plain float graph, the same numbers
    onnxruntime's `session.disable_quant_qdq` computes at load time.

    Handles per-tensor, per-axis and blocked (`block_size`) scales, as OpenCV
    Zoo's int8 block-quantised files use. Deterministic: the float graph, and
    so anything built from it, does not depend on the onnxruntime version.

    Example:
        float_graph = fold_weight_dequantize(repair_block_quantized(data))
    """
    import onnx  # heavy: see the module's docstring
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in initializers for name in node.input):
            q, scale, *zero = (numpy_helper.to_array(initializers[name]) for name in node.input)
            attrs = {a.name: helper_value(a) for a in node.attribute}
            folded[node.output[0]] = _dequantize(q, scale, zero[0] if zero else None, attrs.get("axis", 1), attrs.get("block_size", 0))
        elif node.op_type == "Reshape" and node.input[0] in folded and node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]])
            folded[node.output[0]] = folded.pop(node.input[0]).reshape(shape)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(w.astype(np.float32), name) for name, w in folded.items())
    _drop_unused_initializers(graph)
    return model.SerializeToString()


def fold_batchnorm(model_bytes: bytes) -> bytes:
    """Fold inference BatchNormalization into the Conv before it or the Gemm
    after it (through Dropout and Flatten), in numpy; drop inference Dropout.

    onnxruntime does the Conv case itself at load; doing it here makes the
    float graph the same on every onnxruntime version, and takes the two
    BatchNorms around SFace's last layer (which onnxruntime leaves in place)
    out of the graph.

    Example:
        float_graph = fold_batchnorm(float_graph)
    """
    import onnx  # heavy: see the module's docstring
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    nodes = _without_dropout(graph.node)
    weights = {init.name: numpy_helper.to_array(init).astype(np.float32) for init in graph.initializer}
    producer = {out: n for n in nodes for out in n.output}
    readers = _readers(nodes)
    graph_outputs = {o.name for o in graph.output}
    removed = set()
    for bn in [n for n in nodes if n.op_type == "BatchNormalization"]:
        if not all(name in weights for name in bn.input[1:5]):
            continue
        eps = next((helper_value(a) for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (weights[name] for name in bn.input[1:5])
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        before = producer.get(bn.input[0])
        only_reader = len(readers.get(bn.input[0], [])) == 1
        if before is not None and before.op_type == "Conv" and only_reader and bn.input[0] not in graph_outputs:
            _fold_bn_into_conv(bn, before, weights, scale, shift)
        elif before is not None and before.op_type == "Gemm" and _plain_gemm(before) and only_reader:
            _fold_bn_into_gemm_before(bn, before, weights, scale, shift)
        elif not _fold_bn_into_gemm_after(bn, readers, weights, scale, shift):
            continue
        removed.add(id(bn))
    nodes = [n for n in nodes if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(w, name) for name, w in weights.items())
    _drop_unused_initializers(graph)
    return model.SerializeToString()


def _without_dropout(graph_nodes) -> list:
    """The nodes but Dropout, the identity at inference: its readers are rewired to its input."""
    renames = {n.output[0]: n.input[0] for n in graph_nodes if n.op_type == "Dropout"}
    nodes = [n for n in graph_nodes if n.op_type != "Dropout"]
    for n in nodes:
        for i, name in enumerate(n.input):
            if name in renames:
                n.input[i] = renames[name]
    return nodes


def _fold_bn_into_conv(bn, conv, weights: dict[str, np.ndarray], scale: np.ndarray, shift: np.ndarray) -> None:
    """Conv -> BatchNorm as one Conv: each output channel's weights scaled, its bias scaled and shifted."""
    w = weights[conv.input[1]]
    b = weights[conv.input[2]] if len(conv.input) > 2 else np.zeros(w.shape[0], np.float32)
    weights[conv.input[1]] = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    bias_name = f"{conv.name or conv.output[0]}/bias"
    weights[bias_name] = b * scale + shift
    if len(conv.input) > 2:
        conv.input[2] = bias_name
    else:
        conv.input.append(bias_name)
    conv.output[0] = bn.output[0]


def _fold_bn_into_gemm_before(bn, gemm, weights: dict[str, np.ndarray], scale: np.ndarray, shift: np.ndarray) -> None:
    """Gemm -> BatchNorm as one Gemm: y = W x + b, then a per-output scale and shift."""
    w, b = weights[gemm.input[1]], weights[gemm.input[2]]
    weights[gemm.input[1]] = w * scale[:, None]
    weights[gemm.input[2]] = b * scale + shift
    gemm.output[0] = bn.output[0]


def _fold_bn_into_gemm_after(bn, readers: dict[str, list], weights: dict[str, np.ndarray], scale: np.ndarray,
                             shift: np.ndarray) -> bool:
    """BatchNorm -> Flatten -> Gemm as Flatten -> Gemm, if that is what reads it; False where it is not."""
    after = readers.get(bn.output[0], [])
    if len(after) != 1 or after[0].op_type != "Flatten":
        return False
    flatten = after[0]
    gemms = readers.get(flatten.output[0], [])
    if len(gemms) != 1 or gemms[0].op_type != "Gemm" or not _plain_gemm(gemms[0]):
        return False
    gemm = gemms[0]
    w, b = weights[gemm.input[1]], weights[gemm.input[2]]
    per_channel = w.shape[1] // scale.size
    s, t = np.repeat(scale, per_channel), np.repeat(shift, per_channel)
    weights[gemm.input[2]] = b + w @ t
    weights[gemm.input[1]] = w * s[None, :]
    flatten.input[0] = bn.input[0]
    return True


def prelu_as_depthwise(model_bytes: bytes) -> bytes:
    """Rewrite every PRelu(x, a) with a constant per-channel slope as
    DepthwiseConv1x1[a](x) + DepthwiseConv1x1[1 - a](Relu(x)), the same function.

    Why not Relu(x) + a * (x - Relu(x)): its Sub and broadcast Mul have no NCHWc
    kernel, so onnxruntime reordered every activation out of and back into its
    blocked layout around them (a third of SFace's time). Relu, a 1x1 depthwise
    Conv and Add all run blocked, so the reorders go (SFace 10.4 -> 8.4 ms a
    face in one measurement, cosine to the original 1.0000); and a Conv is what
    int8 quantisation knows how to run.

    Example:
        graph = prelu_as_depthwise(graph)
    """
    import onnx  # heavy: see the module's docstring
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes, added = [], []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        a = numpy_helper.to_array(initializers[slope]).astype(np.float32).reshape(-1)
        if a.size == 1:
            nodes.append(node)  # one slope: nothing per-channel to gain
            continue
        channels = a.size
        keep_negative = numpy_helper.from_array(a.reshape(channels, 1, 1, 1), f"{y}/slope")
        keep_positive = numpy_helper.from_array((1.0 - a).reshape(channels, 1, 1, 1), f"{y}/one_minus_slope")
        added += [keep_negative, keep_positive]
        nodes += [
            helper.make_node("Relu", [x], [f"{y}/relu"], name=f"{y}/relu"),
            helper.make_node("Conv", [x, keep_negative.name], [f"{y}/ax"], name=f"{y}/ax", group=channels, kernel_shape=[1, 1]),
            helper.make_node(
                "Conv", [f"{y}/relu", keep_positive.name], [f"{y}/br"], name=f"{y}/br", group=channels, kernel_shape=[1, 1]
            ),
            helper.make_node("Add", [f"{y}/ax", f"{y}/br"], [y], name=f"{y}/add"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    _drop_unused_initializers(graph)
    return model.SerializeToString()


def prelu_scale_into_next(model_bytes: bytes) -> bytes:
    """Rewrite PRelu(x, a) as (1 - a) * (Relu(x) + c * x), c = a / (1 - a), and fold the
    per-channel (1 - a) into the weights of the linear layer that alone reads it.

    What is left per PRelu is a Relu and one 1x1 depthwise Conv whose Add
    onnxruntime fuses into it: one depthwise Conv fewer than
    `prelu_as_depthwise`, which stays the fallback for a PRelu read by anything
    but one Conv (any group) or one Flatten -> Gemm. The same function, up to
    float rounding: where 1 - a is small, c * x is large and (1 - a) small, and
    their product carries the same relative error as a * x would.

    Example:
        graph = prelu_scale_into_next(graph)
    """
    import onnx  # heavy: see the module's docstring
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    readers = _readers(graph.node)
    graph_outputs = {o.name for o in graph.output}
    new_weights: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.node:
        is_prelu = node.op_type == "PRelu" and node.input[1] in weights
        target = _linear_reader(node.output[0], weights, readers, graph_outputs) if is_prelu else None
        a = numpy_helper.to_array(weights[node.input[1]]).astype(np.float64).reshape(-1) if target is not None else None
        if target is None or a.size == 1 or np.any(np.abs(1.0 - a) < 1e-6):
            nodes.append(node)
            continue
        nodes += _prelu_scaled_into(node, target, a, weights, new_weights)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if init.name not in new_weights]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(w, name) for name, w in new_weights.items())
    _drop_unused_initializers(graph)
    return model.SerializeToString()


def _linear_reader(name: str, weights: dict, readers: dict[str, list], graph_outputs: set[str]):
    """The one linear layer reading `name` (a Conv, or a Gemm through one Flatten) that can take a scale, else None."""
    found = readers.get(name, [])
    if len(found) != 1 or name in graph_outputs:
        return None
    node = found[0]
    if node.op_type == "Conv" and node.input[0] == name and _owns_weight(node, 1, weights, readers):
        return node
    if node.op_type == "Flatten" and len(readers.get(node.output[0], [])) == 1:
        gemm = readers[node.output[0]][0]
        if gemm.op_type == "Gemm" and _plain_gemm(gemm) and _owns_weight(gemm, 1, weights, readers):
            return gemm
    return None


def _owns_weight(node, index: int, weights: dict, readers: dict[str, list]) -> bool:
    # A weight read by another layer too cannot take this layer's scale.
    name = node.input[index]
    return name in weights and len(readers.get(name, [])) == 1


def _prelu_scaled_into(node, target, a: np.ndarray, weights: dict, new_weights: dict[str, np.ndarray]) -> list:
    """One PRelu's replacement nodes (Relu(x) + c * x); its (1 - a) goes into `target`'s weight in `new_weights`."""
    from onnx import helper, numpy_helper  # heavy: see the module's docstring

    x, y = node.input[0], node.output[0]
    channels = a.size
    s = 1.0 - a
    c = (a / s).astype(np.float32)
    w_name = target.input[1]
    w = new_weights.get(w_name)
    w = numpy_helper.to_array(weights[w_name]).astype(np.float32) if w is None else w
    if target.op_type == "Conv":
        group = next((helper_value(at) for at in target.attribute if at.name == "group"), 1)
        per_group_in, per_group_out = w.shape[1], w.shape[0] // group
        # Input channel read by weight [o, j]: (o's group) * per_group_in + j.
        cin = (np.arange(w.shape[0])[:, None] // per_group_out) * per_group_in + np.arange(per_group_in)[None, :]
        w = w * s[cin].astype(np.float32)[:, :, None, None]
    else:  # Gemm after Flatten of (N, C, H, W): column k reads channel k // (H * W)
        w = w * np.repeat(s, w.shape[1] // channels).astype(np.float32)[None, :]
    new_weights[w_name] = w
    c_name = f"{y}/c"
    new_weights[c_name] = c.reshape(channels, 1, 1, 1)
    return [
        helper.make_node("Relu", [x], [f"{y}/relu"], name=f"{y}/relu"),
        helper.make_node("Conv", [x, c_name], [f"{y}/cx"], name=f"{y}/cx", group=channels, kernel_shape=[1, 1]),
        helper.make_node("Add", [f"{y}/cx", f"{y}/relu"], [y], name=f"{y}/add"),
    ]


def split_final_gemm(model_bytes: bytes) -> tuple[bytes, bytes]:
    """Split a graph whose output is made by one plain Gemm into the part before it
    (its output: the Gemm's input) and a graph of that Gemm alone, batch dimension free.

    Why: SFace's last layer is a 50176 x 128 Gemm (25 MB of weights) that one face
    at a time reads from memory once per face (0.6 to 0.9 ms); fed all faces of a
    photo at once, it reads them once per photo (12 faces: 0.16 ms a face), while
    the convolutions stay fastest one face at a time.

    Example:
        trunk, head = split_final_gemm(graph)
    """
    import onnx  # heavy: see the module's docstring
    from onnx import helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    if len(graph.output) != 1:
        raise ValueError("the graph has more than one output")
    gemm = next((n for n in graph.node if graph.output[0].name in n.output), None)
    initializers = {init.name: init for init in graph.initializer}
    if gemm is None or gemm.op_type != "Gemm" or not _plain_gemm(gemm) or not all(name in initializers for name in gemm.input[1:]):
        raise ValueError("the graph's output is not made by a plain Gemm of constant weights")
    features = gemm.input[0]
    width = int(initializers[gemm.input[1]].dims[1])
    out_dim = int(initializers[gemm.input[1]].dims[0])

    head_graph = helper.make_graph(
        [helper.make_node("Gemm", [features, *gemm.input[1:]], list(gemm.output), transB=1)],
        "head",
        [helper.make_tensor_value_info(features, onnx.TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(gemm.output[0], onnx.TensorProto.FLOAT, ["batch", out_dim])],
        [initializers[name] for name in gemm.input[1:]],
    )
    head = helper.make_model(head_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)

    kept = [n for n in graph.node if n is not gemm]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info(features, onnx.TensorProto.FLOAT, ["batch", width])])
    _drop_unused_initializers(graph)
    return model.SerializeToString(), head.SerializeToString()


def _readers(nodes) -> dict[str, list]:
    """Tensor name -> the nodes that read it, in graph order."""
    readers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


def _plain_gemm(node) -> bool:
    attrs = {a.name: helper_value(a) for a in node.attribute}
    return (
        len(node.input) == 3 and attrs.get("transA", 0) == 0 and attrs.get("transB", 0) == 1
        and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
    )


def helper_value(attribute):
    """An ONNX node attribute's Python value."""
    from onnx import helper  # heavy: see the module's docstring

    return helper.get_attribute_value(attribute)


def _dequantize(q, scale, zero, axis: int, block_size: int):
    q = q.astype(np.float32)
    scale = scale.astype(np.float32)
    zero = np.zeros_like(scale) if zero is None else zero.astype(np.float32)
    if scale.size == 1:
        return (q - zero.reshape(())) * scale.reshape(())
    axis = axis % q.ndim
    if block_size:
        # One scale per block of `block_size` along `axis`; the last block may be short.
        scale = np.repeat(scale, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
        zero = np.repeat(zero, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
