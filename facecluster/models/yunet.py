"""OpenCV Zoo YuNet face detector (2023mar, MIT) on onnxruntime."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facecluster.models import cache
from facecluster.models import onnx as onnx_util
from facecluster.models import sface_graph
from facecluster.models.base import Detections, Detector

STRIDES = (8, 16, 32)
# Change RECIPE whenever the load-time rewrite changes: it is part of the cache key.
RECIPE = "repair-dynamic-hw-v1"


class YuNetDetector(Detector):
    """YuNet at a chosen input size.

    The image is resized (down or up) so that its longer side is `input_size`,
    and padded to a multiple of 32; the graph's fixed 640x640 input is made
    dynamic at load.
    """

    def __init__(
        self,
        path: Path,
        sha256: str | None,
        input_size: int = 640,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        threads: int = 1,
    ) -> None:
        super().__init__()
        self.path, self.sha256 = path, sha256
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.threads = threads
        self._session = None

    def _load(self) -> None:
        shipped = onnx_util.read_verified(self.path, self.sha256)
        # Cached like SFace's graphs: the repair needs the onnx package, whose import alone
        # is most of a cold worker's 0.1 s here.
        data = cache.cached(
            "yunet", f"{self.sha256 or hashlib.sha256(shipped).hexdigest()}:{RECIPE}",
            lambda: onnx_util.make_dims_dynamic(sface_graph.repair_block_quantized(shipped), {2: "height", 3: "width"}),
        )
        self._session = onnx_util.session(data, self.threads)
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [o.name for o in self._session.get_outputs()]

    def prepare(self, rgb: npt.NDArray[np.uint8]) -> _Input:
        """The network's input for `rgb`: resized, BGR, padded (no model needed; any thread)."""
        # OpenCV is a large native library: loaded where an image is first resized
        import cv2

        h, w = rgb.shape[:2]
        # Small photos are enlarged too: YuNet's landmarks are markedly better on
        # bigger faces (celeb5, median 238x300 px: BCubed F 0.932 -> 0.983).
        scale = self.input_size / max(h, w)
        if scale != 1.0:
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            resized = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interpolation)
        else:
            resized = rgb
        rh, rw = resized.shape[:2]
        ph, pw = _round_up(rh, 32), _round_up(rw, 32)
        # YuNet was trained on BGR 0..255 without normalisation.
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :rh, :rw] = resized[:, :, ::-1].transpose(2, 0, 1)
        return _Input(blob, scale, rh, rw)

    def _predict(self, rgb: npt.NDArray[np.uint8], prepared: _Input | None = None) -> Detections:
        prepared = self.prepare(rgb) if prepared is None else prepared
        blob, scale, rh, rw = prepared.blob, prepared.scale, prepared.height, prepared.width
        ph, pw = blob.shape[2:]
        outputs = dict(zip(self._output_names, self._session.run(None, {self._input_name: blob})))
        found = decode_yunet(outputs, ph, pw, self.score_threshold)
        keep = nms(found.boxes, found.scores, self.nms_threshold)
        found = Detections(found.boxes[keep], found.scores[keep], found.landmarks[keep])
        # Boxes that reach into the padding are clipped to the real image.
        boxes = found.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, rw)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, rh)
        return Detections(boxes, found.scores, found.landmarks).scaled(1.0 / scale)


@dataclass(frozen=True)
class _Input:
    """What `prepare` makes: the padded blob, the resize factor and the resized image's size."""

    blob: npt.NDArray[np.float32]
    scale: float
    height: int
    width: int


def _round_up(n: int, m: int) -> int:
    return ((n + m - 1) // m) * m


def decode_yunet(outputs: dict[str, np.ndarray], height: int, width: int, score_threshold: float) -> Detections:
    """Anchor-free decoding of YuNet's cls/obj/bbox/kps heads (as OpenCV's FaceDetectorYN does)."""
    boxes, scores, marks = [], [], []
    for stride in STRIDES:
        rows, cols = height // stride, width // stride
        cls = outputs[f"cls_{stride}"].reshape(-1).clip(0, 1)
        obj = outputs[f"obj_{stride}"].reshape(-1).clip(0, 1)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= score_threshold)[0]
        if idx.size == 0:
            continue
        r, c = np.divmod(idx, cols)
        anchor = np.stack([c, r], axis=1).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"].reshape(rows * cols, 4)[idx]
        kps = outputs[f"kps_{stride}"].reshape(rows * cols, 5, 2)[idx]
        centre = (anchor + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:]) * stride
        boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
        marks.append((kps + anchor[:, None, :]) * stride)
        scores.append(score[idx])
    if not scores:
        return Detections.empty()
    return Detections(
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(marks).astype(np.float32),
    )


def nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.intp)
