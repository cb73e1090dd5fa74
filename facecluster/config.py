"""Where things live, and the defaults with the evidence that chose them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DB_ENV = "FACECLUSTER_DB"
DB_FILENAME = "facecluster.db"

# Scan defaults. Evidence: docs/benchmarks.md.
DETECTION_SIZE = 640  # YuNet input, longer side in pixels
DETECTION_THRESHOLD = 0.6  # YuNet score; OpenCV's own default
MIN_FACE_PIXELS = 16  # boxes smaller than this (shorter side, full-size pixels) are noise
THUMB_SIZE = 128  # stored face thumbnail, pixels a side
BATCH_PHOTOS = 64  # photos per database transaction while scanning
LOCK_WAIT_SECONDS = float(os.environ.get("FACECLUSTER_LOCK_WAIT", "10"))  # a second writer waits this long for the first

# Group defaults. Evidence: docs/quality.md (benchmarks/quality.py on ../shared/facedata).
MIN_GROUP_FACES = 5  # HDBSCAN min_cluster_size: the smallest group
HDBSCAN_MIN_SAMPLES = 3
AGGLOMERATIVE_THRESHOLD = 1.0  # average-linkage cut, Euclidean distance of unit vectors
MIN_CLUSTER_FACE_PIXELS = 24  # quality gate: shorter box side
MIN_CLUSTER_SCORE = 0.7  # quality gate: detection score
JOIN_DISTANCE = 1.0  # a new face joins a named person whose faces are this close (benchmarks/join_distance.py)


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


def default_jobs() -> int:
    """One worker process per core (each model session runs one thread)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
