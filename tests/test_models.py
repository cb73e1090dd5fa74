"""The default pack on real faces, checked against OpenCV's own implementation."""

import hashlib
import json
import sqlite3

import numpy as np
import pytest

from facecluster.align import align_faces
from facecluster.errors import ModelError
from facecluster.models import SFACE_FILES, load_pack, sface_fingerprint, sface_model_dir
from facecluster.models import onnx as onnx_util
from facecluster.models import cache, sface, sface_graph
from facecluster.models.sface import SFaceEmbedder, float_graph
from facecluster.models.yunet import YuNetDetector


@pytest.fixture(scope="module")
def pack():
    p = load_pack("sface")
    p.load()
    return p


@pytest.fixture(scope="module")
def shipped_float_graph():
    return float_graph(onnx_util.read_verified(sface_model_dir() / SFACE_FILES["embedder"][0], SFACE_FILES["embedder"][1]))


def test_astronaut_has_one_face(pack, astronaut):
    found = pack.detector.predict(astronaut)
    assert len(found) == 1
    x1, y1, x2, y2 = found.boxes[0]
    # Eileen Collins' face is in the upper middle of the 512x512 picture.
    assert 150 < x1 < 200 and 40 < y1 < 90 and 250 < x2 < 290 and 150 < y2 < 200
    eyes = found.landmarks[0, :2]
    assert eyes[0, 0] < eyes[1, 0]  # image-left eye first, as the ArcFace template wants


def test_t1_has_six_faces(pack, t1):
    assert len(pack.detector.predict(t1)) == 6


def test_detector_agrees_with_opencv(pack, t1):
    cv2 = pytest.importorskip("cv2")
    h, w = t1.shape[:2]
    scale = 640 / max(h, w)
    small = cv2.resize(t1, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ref = cv2.FaceDetectorYN.create(str(sface_model_dir() / SFACE_FILES["detector"][0]), "", (small.shape[1], small.shape[0]), 0.6, 0.3)
    _, faces = ref.detect(np.ascontiguousarray(small[:, :, ::-1]))
    ours = pack.detector.predict(t1)
    assert len(ours) == len(faces)
    ref_boxes = faces[:, :4] / scale
    for box in ours.boxes:
        x, y, bw, bh = box[0], box[1], box[2] - box[0], box[3] - box[1]
        best = np.abs(ref_boxes - [x, y, bw, bh]).max(axis=1).min()
        assert best < 3.0  # pixels


def test_embeddings_agree_with_opencv_sface(pack, t1):
    cv2 = pytest.importorskip("cv2")
    found = pack.detector.predict(t1)
    crops = align_faces(t1, found.landmarks)
    ours = pack.embedder.predict(crops)
    recognizer = cv2.FaceRecognizerSF.create(str(sface_model_dir() / SFACE_FILES["embedder"][0]), "")
    ref = np.stack([recognizer.feature(np.ascontiguousarray(c[:, :, ::-1])).ravel() for c in crops])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    cosine = (ours * ref).sum(axis=1)
    assert cosine.min() > 0.99
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosine.min() > 0.99999  # the float graph rewrite (folds, PRelu as depthwise Conv) is exact


def test_the_default_fingerprint_is_the_one_databases_have_recorded():
    fp32 = sface_fingerprint()
    assert fp32 == f"{SFACE_FILES['detector'][1][:16]}:{SFACE_FILES['embedder'][1][:16]}"
    assert load_pack("sface").fingerprint == fp32


def test_model_cache_is_verified_and_rebuilt_when_corrupt(tmp_path):
    built = []

    def build():
        built.append(1)
        return b"graph bytes " * 1000

    first = cache.cached("g", "key-1", build, folder=tmp_path)
    assert len(built) == 1
    (model,) = tmp_path.glob("g_*.onnx")
    record = json.loads(model.with_suffix(".json").read_text())
    assert record["sha256"] == hashlib.sha256(first).hexdigest() and record["key"] == "key-1"

    assert cache.cached("g", "key-1", build, folder=tmp_path) == first
    assert len(built) == 1  # read back, not rebuilt

    corrupt = bytearray(model.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    model.write_bytes(bytes(corrupt))
    assert cache.cached("g", "key-1", build, folder=tmp_path) == first
    assert len(built) == 2  # the digest did not match: rebuilt, and the same bytes again
    assert model.read_bytes() == first

    model.with_suffix(".json").write_text("{not json")
    assert cache.cached("g", "key-1", build, folder=tmp_path) == first
    assert len(built) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([model.name, model.with_suffix(".json").name])  # no temp files left

    # Another key (new weights or recipe) is another entry; a record made by another onnxruntime is stale.
    cache.cached("g", "key-2", build, folder=tmp_path)
    assert len(built) == 4 and len(list(tmp_path.glob("g_*.onnx"))) == 2
    record["onnxruntime"] = "0.0.1"
    model.with_suffix(".json").write_text(json.dumps(record))
    cache.cached("g", "key-1", build, folder=tmp_path)
    assert len(built) == 5


def test_model_cache_builds_in_memory_when_the_folder_cannot_be_written(tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    assert cache.cached("g", "k", lambda: b"made", folder=blocked / "cache") == b"made"
    assert cache.cached("g", "k", lambda: b"made again", folder=blocked / "cache") == b"made again"


def test_float_pack_loads_from_the_cache_without_rewriting(tmp_path, monkeypatch, t1):
    """The second load reads the cached graphs (no rewrite), still checks the shipped file, and embeds the same."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    rewrites = []
    real = sface.runtime_graph
    monkeypatch.setattr(sface, "runtime_graph", lambda shipped: rewrites.append(1) or real(shipped))
    first = load_pack("sface")
    found = first.detector.predict(t1)
    crops = align_faces(t1, found.landmarks)
    a = first.embedder.predict(crops)
    assert rewrites == [1] and len(list(tmp_path.glob("sface_fp32_*.onnx"))) == 2
    second = load_pack("sface")
    b = second.embedder.predict(crops)
    assert rewrites == [1]
    np.testing.assert_array_equal(a, b)
    # A changed shipped file is refused even though a cached graph exists for the expected digest.
    bad = tmp_path / "sface.onnx"
    data = bytearray((sface_model_dir() / SFACE_FILES["embedder"][0]).read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        SFaceEmbedder(bad, SFACE_FILES["embedder"][1]).load()


def test_float_runtime_graph_matches_the_plain_float_graph(pack, shipped_float_graph, astronaut, t1):
    """Folding each PRelu into the next layer and running the last layer per photo changes nothing but rounding."""
    crops = np.concatenate([align_faces(img, pack.detector.predict(img).landmarks) for img in (astronaut, t1)])
    plain = onnx_util.session(shipped_float_graph)
    name = plain.get_inputs()[0].name
    ref = np.concatenate([plain.run(None, {name: c[None].transpose(0, 3, 1, 2).astype(np.float32)})[0] for c in crops])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours = pack.embedder.predict(crops)
    assert pack.embedder._head is not None and pack.embedder.batch_size > 1
    assert np.abs(ours - ref).max() < 1e-5
    # One face at a time or all seven in one call: the same vectors.
    one_by_one = np.concatenate([pack.embedder.predict(crops[i : i + 1]) for i in range(len(crops))])
    assert np.abs(one_by_one - ours).max() < 1e-6


def test_prelu_folded_into_the_next_layer_is_the_same_function():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    # Slopes like SFace's: negative, near 1 (1 - a small), above 1; then a grouped Conv, a plain Conv, Flatten -> Gemm.
    a1 = np.array([0.25, -0.5, 0.999, 1.12], np.float32)
    a2 = np.array([0.1, 0.9, -0.3, 0.5], np.float32)
    a3 = np.array([0.3, 0.6], np.float32)
    w_grouped = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)  # 2 groups of 2 channels
    w_plain = rng.normal(size=(2, 4, 1, 1)).astype(np.float32)
    w_gemm, b_gemm = rng.normal(size=(5, 2 * 3 * 3)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("PRelu", ["x", "a1"], ["p1"]),
            helper.make_node("Conv", ["p1", "w1"], ["c1"], group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["c1", "a2"], ["p2"]),
            helper.make_node("Conv", ["p2", "w2"], ["c2"], kernel_shape=[1, 1]),
            helper.make_node("PRelu", ["c2", "a3"], ["p3"]),
            helper.make_node("Flatten", ["p3"], ["f"]),
            helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], transB=1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, n) for n, v in [
            ("a1", a1.reshape(4, 1, 1)), ("a2", a2.reshape(4, 1, 1)), ("a3", a3.reshape(2, 1, 1)),
            ("w1", w_grouped), ("w2", w_plain), ("wg", w_gemm), ("bg", b_gemm)]],
    )
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    folded = sface_graph.prelu_scale_into_next(original)
    assert "PRelu" not in {n.op_type for n in onnx.load_from_string(folded).graph.node}
    x = rng.normal(size=(1, 4, 3, 3)).astype(np.float32) * 3
    run = lambda data: ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(folded), run(original), rtol=1e-4, atol=1e-4)

    trunk, head = sface_graph.split_final_gemm(folded)
    features = run(trunk)
    assert features.shape == (1, 18)
    y = ort.InferenceSession(head, providers=["CPUExecutionProvider"]).run(None, {"f": np.concatenate([features, features])})[0]
    np.testing.assert_allclose(y, np.concatenate([run(original)] * 2), rtol=1e-4, atol=1e-4)


def test_the_int8_experiment_builds_int8_kernels(shipped_float_graph):
    """benchmarks/sface_int8.py, the rejected int8 build embed_speed.py measures, still quantises SFace."""
    from benchmarks.sface_int8 import quantize
    from benchmarks.sface_int8_ranges import RANGES

    onnx = pytest.importorskip("onnx")
    graph = onnx.load_from_string(quantize(shipped_float_graph, RANGES))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    quantised_weights = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(quantised_weights) >= 27  # every Conv of SFace, plus the 1x1 depthwise PRelu halves


def test_prelu_as_depthwise_is_exact():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    slope = np.array([0.25, -0.5, 1.5], np.float32).reshape(3, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "a"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        [numpy_helper.from_array(slope, "a")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rewritten = sface_graph.prelu_as_depthwise(model.SerializeToString())
    assert "PRelu" not in {n.op_type for n in onnx.load_from_string(rewritten).graph.node}
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)
    y = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, np.where(x > 0, x, slope * x), rtol=1e-6, atol=1e-6)


def test_blocked_dequantize_matches_the_definition():
    q = np.array([[1, -2, 3, 4, -5]], np.int8)
    scale = np.array([[0.5, 2.0]], np.float32)  # blocks of 3 along axis 1: [0:3] and [3:5]
    zero = np.array([[1, 0]], np.int8)
    w = sface_graph._dequantize(q, scale, zero, axis=1, block_size=3)
    np.testing.assert_allclose(w, [[0.0, -1.5, 1.0, 8.0, -10.0]])


def test_alignment_matches_opencv_aligncrop(pack, t1):
    cv2 = pytest.importorskip("cv2")
    found = pack.detector.predict(t1)
    recognizer = cv2.FaceRecognizerSF.create(str(sface_model_dir() / SFACE_FILES["embedder"][0]), "")
    bgr = np.ascontiguousarray(t1[:, :, ::-1])
    row = np.concatenate([found.boxes[0, :2], found.boxes[0, 2:] - found.boxes[0, :2], found.landmarks[0].ravel(), found.scores[:1]])
    theirs = recognizer.alignCrop(bgr, row.astype(np.float32))[:, :, ::-1]
    ours = align_faces(t1, found.landmarks[:1])[0]
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 3.0


def test_different_people_are_far_same_person_is_near(pack, astronaut):
    found = pack.detector.predict(astronaut)
    a = pack.embedder.predict(align_faces(astronaut, found.landmarks))[0]
    flipped_bright = np.clip(astronaut.astype(int) * 1.15, 0, 255).astype(np.uint8)
    f2 = pack.detector.predict(flipped_bright)
    b = pack.embedder.predict(align_faces(flipped_bright, f2.landmarks))[0]
    assert float(a @ b) > 0.9


def test_repair_fixes_exactly_the_published_faults():
    onnx = pytest.importorskip("onnx")
    folder = sface_model_dir()
    det = (folder / SFACE_FILES["detector"][0]).read_bytes()
    rec = (folder / SFACE_FILES["embedder"][0]).read_bytes()

    def per_tensor_block_size(model):
        inits = {i.name: i for i in model.graph.initializer}
        return sum(
            1 for n in model.graph.node if n.op_type == "DequantizeLinear"
            and any(a.name == "block_size" for a in n.attribute)
            and len(inits[n.input[1]].dims) <= 1 and int(np.prod(inits[n.input[1]].dims)) == 1
        )

    before = onnx.load_from_string(det)
    assert per_tensor_block_size(before) == 20
    after = onnx.load_from_string(sface_graph.repair_block_quantized(det))
    assert per_tensor_block_size(after) == 0
    assert len(after.graph.initializer) == len(before.graph.initializer)
    assert len(onnx.load_from_string(rec).graph.input) == 175
    assert [i.name for i in onnx.load_from_string(sface_graph.repair_block_quantized(rec)).graph.input] == ["data"]


def test_sha256_mismatch_is_a_clear_error(tmp_path):
    folder = sface_model_dir()
    bad = tmp_path / "yunet.onnx"
    data = bytearray((folder / SFACE_FILES["detector"][0]).read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    detector = YuNetDetector(bad, SFACE_FILES["detector"][1])
    with pytest.raises(ModelError, match="sha256"):
        detector.load()
    embedder = SFaceEmbedder(tmp_path / "missing.onnx", SFACE_FILES["embedder"][1])
    with pytest.raises(ModelError, match="cannot read model file"):
        embedder.load()


def test_unknown_pack():
    with pytest.raises(ModelError, match="unknown model pack"):
        load_pack("no-such-pack")


def test_missing_insightface_pack_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECLUSTER_INSIGHTFACE_ROOT", str(tmp_path))
    import insightface.utils.storage as storage

    def no_network(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(storage, "ensure_available", no_network)
    with pytest.raises(ModelError) as info:
        load_pack("buffalo_l")
    assert str(tmp_path / "models" / "buffalo_l") in str(info.value)


def test_empty_model_folder(tmp_path):
    with pytest.raises(ModelError, match="no .onnx files"):
        load_pack(str(tmp_path))


def test_a_database_with_faces_of_the_removed_int8_pack_still_opens(tmp_path, astronaut):
    """`sface-int8` is no longer offered: its faces stay, `info` and the default scan work, and asking
    for it is one line saying what to do."""
    from tests.conftest import cli_ok, cli_run, jpeg_bytes

    library = tmp_path / "photos"
    library.mkdir()
    (library / "astronaut.jpg").write_bytes(jpeg_bytes(astronaut))
    db = tmp_path / "x.db"
    cli_ok(db, "scan", "-q", "--jobs", "1", str(library))
    with sqlite3.connect(db) as conn:  # what an earlier version's `scan --model sface-int8` left
        conn.execute("UPDATE models SET name = 'sface-int8', fingerprint = fingerprint || ':int8-0123456789abcdef'")
        conn.execute("PRAGMA foreign_keys = OFF")
        tables = conn.execute("SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
                              "WHERE m.type = 'table' AND c.name = 'model'").fetchall()
        for (table,) in tables:
            conn.execute(f"UPDATE {table} SET model = 'sface-int8'")
        conn.execute("UPDATE embeddings SET embedder = 'sface-int8'")  # m010 files a face's scan vector under its pack
    assert "sface-int8" in cli_ok(db, "info").output
    cli_ok(db, "group", "-q", "--model", "sface-int8")  # its faces still group among themselves
    refused = cli_run(db, "scan", "-q", "--jobs", "1", "--model", "sface-int8", str(library))
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "Error: model pack 'sface-int8' is no longer offered: SFace run in int8 lowered the grouping's accuracy "
        "(docs/models.md); its faces stay in the database; scan with --model sface instead"
    ]
    cli_ok(db, "scan", "-q", "--jobs", "1", str(library))
    with sqlite3.connect(db) as conn:
        assert dict(conn.execute("SELECT model, count(*) FROM faces GROUP BY model").fetchall()) == {"sface": 1, "sface-int8": 1}


def test_insightface_packs_without_the_extra_say_how_to_install_it(tmp_path, monkeypatch):
    """`pip install .` leaves insightface out: asking for its pack is one line naming the extra."""
    import sys

    from facecluster.models.insight import insightface_pack

    monkeypatch.setenv("FACECLUSTER_INSIGHTFACE_ROOT", str(tmp_path))
    monkeypatch.setitem(sys.modules, "insightface.utils.storage", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r'pip install "facecluster\[insightface\]"'):
        insightface_pack("buffalo_l", 640, 0.5)
