"""The small interface every model family sits behind.

Like immich's `InferenceModel`: construction is cheap and touches no file;
`load()` happens once (under a lock) on first use; `predict()` does the work.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in that image's pixel coordinates.

    boxes: (n, 4) float32 x1, y1, x2, y2
    scores: (n,) float32 in 0..1
    landmarks: (n, 5, 2) float32: eye, eye, nose, mouth corner, mouth corner,
        in the ArcFace template's order (image-left eye first).
    """

    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        )

    def scaled(self, factor: float) -> Detections:
        """The same detections in an image `factor` times larger."""
        return Detections(self.boxes * factor, self.scores, self.landmarks * factor)


class InferenceModel(ABC):
    """Lazy-loading wrapper: nothing is read from disk until the first predict()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...


class Detector(InferenceModel):
    @abstractmethod
    def _predict(self, rgb: npt.NDArray[np.uint8], prepared: object | None = None) -> Detections: ...

    def prepare(self, rgb: npt.NDArray[np.uint8]) -> object | None:
        """The model's input for `rgb`, made without the model (so any thread may make it ahead); None where
        the detector has no such step."""
        return None

    def predict(self, rgb: npt.NDArray[np.uint8], prepared: object | None = None) -> Detections:
        """Find faces in an RGB uint8 image of shape (h, w, 3); `prepared` is `prepare(rgb)` if made already."""
        self.load()
        return self._predict(rgb, prepared)


class Embedder(InferenceModel):
    dim: int
    # Crops per inference call. Bigger is not faster on CPU: SFace took 18 ms a
    # face one at a time, 23 ms in batches of 16 and 60 ms in batches of 64
    # (cache misses; today's graph: 8.2 ms at 1, 10.8 at 16), so packs set what
    # their measurements support.
    batch_size: int = 8

    @abstractmethod
    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Embed aligned RGB crops (n, 112, 112, 3) into L2-normalised (n, dim) float32."""
        self.load()
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        vectors = np.concatenate(
            [self._predict(crops[i : i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        ).astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class FlipAveraged(Embedder):
    """Another embedder run on each crop and on its mirror image, the two unit vectors averaged (and made
    unit again by `predict`): a face seen from its other side. Registry name: "sface-flip".

    Example:
        vectors = FlipAveraged(sface).predict(crops)
    """

    def __init__(self, inner: Embedder) -> None:
        super().__init__()
        self.inner = inner
        self.dim = inner.dim
        self.batch_size = inner.batch_size

    def _load(self) -> None:
        self.inner.load()

    def _predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        mirrored = np.ascontiguousarray(crops[:, :, ::-1])
        return self.inner.predict(crops) + self.inner.predict(mirrored)


@dataclass
class ModelPack:
    """A detector and an embedder that belong together, and who they are.

    `name` is what the store records per face; `fingerprint` identifies the
    exact weights, so that changed files under the same name are noticed.
    """

    name: str
    detector: Detector
    embedder: Embedder
    fingerprint: str
    licence: str

    def load(self) -> None:
        self.detector.load()
        self.embedder.load()
