"""The default pack on real faces, checked against OpenCV's own implementation."""


import numpy as np
import pytest

from facecluster.align import align_faces
from facecluster.errors import ModelError
from facecluster.models import SFACE_FILES, load_pack, sface_model_dir
from facecluster.models import onnx as onnx_util
from facecluster.models.sface import SFaceEmbedder
from facecluster.models.yunet import YuNetDetector


@pytest.fixture(scope="module")
def pack():
    p = load_pack("sface")
    p.load()
    return p


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
    after = onnx.load_from_string(onnx_util.repair_block_quantized(det))
    assert per_tensor_block_size(after) == 0
    assert len(after.graph.initializer) == len(before.graph.initializer)
    assert len(onnx.load_from_string(rec).graph.input) == 175
    assert [i.name for i in onnx.load_from_string(onnx_util.repair_block_quantized(rec)).graph.input] == ["data"]


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
