"""YuNet's decoding and NMS, with hand-made head outputs."""

import numpy as np

from facecluster.models.yunet import decode_yunet, nms


def heads(height, width):
    out = {}
    for stride in (8, 16, 32):
        n = (height // stride) * (width // stride)
        out[f"cls_{stride}"] = np.zeros((1, n, 1), np.float32)
        out[f"obj_{stride}"] = np.zeros((1, n, 1), np.float32)
        out[f"bbox_{stride}"] = np.zeros((1, n, 4), np.float32)
        out[f"kps_{stride}"] = np.zeros((1, n, 10), np.float32)
    return out


def test_decode_one_anchor():
    out = heads(64, 64)
    # stride 16: 4x4 grid; anchor at row 1, col 2 -> index 6
    out["cls_16"][0, 6, 0] = 0.81
    out["obj_16"][0, 6, 0] = 1.0
    out["bbox_16"][0, 6] = [0.5, 0.5, np.log(2.0), np.log(1.0)]
    out["kps_16"][0, 6, :2] = [0.25, 0.75]
    found = decode_yunet(out, 64, 64, score_threshold=0.5)
    assert len(found) == 1
    np.testing.assert_allclose(found.scores, [0.9], atol=1e-6)  # sqrt(0.81 * 1.0)
    # centre ((2 + .5) * 16, (1 + .5) * 16) = (40, 24); size (32, 16)
    np.testing.assert_allclose(found.boxes[0], [24, 16, 56, 32], atol=1e-4)
    np.testing.assert_allclose(found.landmarks[0, 0], [(2 + 0.25) * 16, (1 + 0.75) * 16], atol=1e-4)


def test_decode_below_threshold_is_empty():
    out = heads(32, 32)
    out["cls_8"][0, 0, 0] = 0.3
    out["obj_8"][0, 0, 0] = 0.3
    assert len(decode_yunet(out, 32, 32, score_threshold=0.5)) == 0


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]


def test_nms_keeps_disjoint():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    assert sorted(nms(boxes, np.array([0.5, 0.6], np.float32), 0.3).tolist()) == [0, 1]
