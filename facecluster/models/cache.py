"""Model graphs built on the user's machine from verified weights, cached and verified again.

Rewriting SFace's shipped file into the graph we run takes longer than
loading it (0.8 s of numpy and protobuf work), and every
scan worker (local or on a Dask cluster) pays it at start. So the result is
written once to the cache folder with a record beside it: what it was built
from (`key`: the shipped file's sha256 and the recipe), its own sha256, and the
onnxruntime version. Every load checks all three; a missing, corrupt, stale or
half-written entry is rebuilt and replaced (both files written atomically,
the graph first, so a crash between the two leaves a record that does not
match). Where the folder cannot be written, the graph is built in memory each
time: slower, never wrong.

The folder: $FACECLUSTER_MODEL_CACHE, else the platform's per-user cache
(`~/.cache/facecluster/models` on Linux). Everything in it is ours and can be
deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from facecluster.atomic import write_atomic
from facecluster.errors import FaceclusterError

CACHE_ENV = "FACECLUSTER_MODEL_CACHE"


def cache_dir() -> Path:
    """$FACECLUSTER_MODEL_CACHE, else the platform's per-user cache folder.

    Example:
        cache_dir()  # PosixPath('/home/ann/.cache/facecluster/models')
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "cache"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "facecluster" / "models"


def cached(name: str, key: str, build: Callable[[], bytes], folder: Path | None = None) -> bytes:
    """The bytes `build()` makes for `key`: from the cache when its record and sha256 check out,
    else built now and cached.

    `name` is the file's stem (one entry per name and key); `key` must change
    whenever what `build` makes would.

    Example:
        graph = cached("sface_fp32", f"{sha}:{RECIPE}", lambda: runtime_graph(shipped))
    """
    if folder is None:
        try:
            folder = cache_dir()
        except (RuntimeError, KeyError):  # no home folder to be found (HOME unset, no passwd entry)
            return build()
    stem = f"{name}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    model_path, meta_path = folder / f"{stem}.onnx", folder / f"{stem}.json"
    data = _read(model_path, meta_path, key)
    if data is not None:
        return data
    data = build()
    meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "onnxruntime": _ort_version()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(model_path, data)
        write_atomic(meta_path, json.dumps(meta, indent=1) + "\n")
    except (OSError, FaceclusterError):
        pass  # a read-only or full cache folder costs a rebuild per load, nothing else
    return data


def _read(model_path: Path, meta_path: Path, key: str) -> bytes | None:
    try:
        meta = json.loads(meta_path.read_text())
        data = model_path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("onnxruntime") != _ort_version():
        return None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None  # corrupt or half-written: rebuilt and replaced by the caller
    return data


def _ort_version() -> str:
    # onnxruntime is heavy: loaded only when a cache key needs its version
    import onnxruntime

    return onnxruntime.__version__
