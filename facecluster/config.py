"""Where things live, and the defaults with the evidence that chose them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from facecluster.errors import FaceclusterError

DB_ENV = "FACECLUSTER_DB"
DB_FILENAME = "facecluster.db"

# Scan defaults. Evidence: docs/benchmarks.md.
DETECTION_SIZE = 640  # YuNet input, longer side in pixels
DETECTION_THRESHOLD = 0.6  # YuNet score; OpenCV's own default
# Boxes smaller than this (shorter side, full-size pixels) are not stored or embedded. Not 16 as it was,
# because in the library run none of the 164 faces under 20 px (146 of groups/' 836) ever joined a
# group (the quality score rates them 0), and grouping without them gave the same BCubed F
# (benchmarks/quality.py --skip-below 20); each cost an embedding. docs/benchmarks.md.
MIN_FACE_PIXELS = 20
# Two boxes on one photo are the same face found again (another detector, other detection
# settings, a rebuilt database) when their intersection over union reaches this.
SAME_FACE_IOU = 0.5
THUMB_SIZE = 128  # stored face thumbnail, pixels a side
BATCH_PHOTOS = 64  # photos per database transaction while scanning
# Bounds on scan options: --det-size 20000 took 15.9 GB. Photos are decoded to at
# most 2048 px a side (decode.DEFAULT_MAX_SIDE), so a larger detector input only
# upsamples; below 160 px a face must fill a large part of the photo to be found.
DETECTION_SIZE_RANGE = (160, 2048)
# Each worker holds its own model sessions (about 300 MB) and runs one thread:
# more workers than 4 per core only cost memory.
JOBS_PER_CORE_MAX = 4
LOCK_WAIT_ENV = "FACECLUSTER_LOCK_WAIT"
LOCK_WAIT_SECONDS = 10.0  # a second writer waits this long for the first ($FACECLUSTER_LOCK_WAIT)

# Group defaults. Evidence: docs/quality.md (benchmarks/quality.py on ../shared/facedata).
MIN_GROUP_FACES = 2  # the smallest group (people seen two to four times get groups from the strict small-group pass)
HDBSCAN_MIN_CLUSTER = 5  # HDBSCAN min_cluster_size: the first, main clustering
HDBSCAN_MIN_SAMPLES = 3
AGGLOMERATIVE_THRESHOLD = 1.0  # average-linkage cut, Euclidean distance of unit vectors
MIN_CLUSTER_FACE_PIXELS = 24  # quality gate: shorter box side
MIN_CLUSTER_SCORE = 0.6  # quality gate: detection score (YuNet's own threshold; the quality score weighs it)
MIN_CLUSTER_QUALITY = 0.5  # quality gate: facecluster.quality score; faces below never seed or form a group
# The distances grouping, suggestions and `identify` use belong to the embedder that made the vectors:
# facecluster/models/registry.py (Distances), with the evidence that chose them.


def data_dir() -> Path:
    """The platform's per-user data folder for facecluster."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "facecluster"


def default_db_path() -> Path:
    """$FACECLUSTER_DB if set, else facecluster.db in the user's data folder."""
    env = os.environ.get(DB_ENV)
    return Path(env).expanduser() if env else data_dir() / DB_FILENAME


def lock_wait_seconds() -> float:
    """How long a second writer waits for the first: $FACECLUSTER_LOCK_WAIT, else LOCK_WAIT_SECONDS.

    Read when a lock is taken, not at import, so a bad value is one clear
    message from the command that needs it rather than an import-time crash.

    Example:
        deadline = time.monotonic() + lock_wait_seconds()
    """
    text = os.environ.get(LOCK_WAIT_ENV)
    if text is None or not text.strip():
        return LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0:  # also catches NaN
        raise FaceclusterError(f"{LOCK_WAIT_ENV} must be a number of seconds (0 or more), not {text!r}")
    return seconds


def default_jobs() -> int:
    """One worker process per core (each model session runs one thread)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
