"""Typed records passed between the pipeline stages and the store."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Face:
    """One detected face, in the photo's full displayed-size pixel coordinates."""

    box: tuple[float, float, float, float]  # x, y, w, h
    landmarks: tuple[float, ...]  # 10 numbers: five (x, y) points
    score: float
    size: float  # the box's shorter side, in pixels
    embedding: npt.NDArray[np.float32]  # L2-normalised
    thumb: bytes  # JPEG, about THUMB_SIZE pixels a side
    label: str | None = None  # the name an XMP face region in the photo gives it
    quality: float | None = None  # facecluster.quality score, 0..1 (None: not computed)
    frame_ms: int | None = None  # a video's face: the time of its frame in the video (None: a still)


@dataclass(frozen=True)
class PhotoFacts:
    """What one file turned out to be, whether or not it could be decoded."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    taken: str | None = None
    taken_source: str | None = None
    camera: str | None = None
    error: str | None = None  # set when the file could not be read as a photo
    kind: str | None = None  # what the file is: photo, motion (a Motion Photo's still), raw, video (sources/)


@dataclass(frozen=True)
class FileResult:
    """A worker's answer for one file.

    `reused` means the content hash was already scanned with this pack, so no
    detection ran: the faces come from the photo with the same content.
    `fatal` carries a model failure that must stop the whole scan.
    """

    facts: PhotoFacts
    faces: list[Face] = field(default_factory=list)
    reused: bool = False
    fatal: str | None = None
    note: str | None = None  # something the user should know that did not stop the file (an unreadable sidecar)
