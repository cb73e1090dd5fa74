"""`scan --embedder NAME`: describe the faces already in the database with another embedder, in place.

Nothing is detected again: each photo is decoded as the scan decoded it (the same
sources, the same size limits; a video's frame by its stored time), each face is
aligned from its STORED landmarks and embedded, and the vector is written to the
`embeddings` table under the embedder's name. Face ids, people, names, answers
("not this person", "not the same person") and the undo history are rows this
never touches. Then the embedder becomes the pack's active one: `group`,
suggestions and `identify` compare its vectors with its own distances
(models/registry.py).

Faces that already have a vector of the embedder are skipped, so an interrupted
run, or a later one after new photos were scanned, does only what is left.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import numpy.typing as npt

from facecluster import config
from facecluster.align import align_faces
from facecluster.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from facecluster.errors import DecodeError
from facecluster.files import open_regular
from facecluster.models import DEFAULT_PACK, Embedder, load_embedder
from facecluster.sources import photo as photo_source
from facecluster.sources import raw as raw_source
from facecluster.sources.video import _quarter_turns, _upright  # the scan's own frame decoding, so the pixels match
from facecluster.store import FaceToEmbed, Store

PHOTOS_PER_COMMIT = 64  # as the scan: a killed run loses at most this many photos' vectors


@dataclass
class ReembedSummary:
    model: str
    embedder: str
    faces: int = 0  # vectors written
    photos: int = 0  # photos (and videos) read
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): their faces got no vector
    missing: int = 0  # faces of the pack still without a vector of the embedder (outside the roots, or failed)
    seconds: float = 0.0


def reembed(store: Store, roots: Sequence[str], embedder: str, model: str = DEFAULT_PACK,
            progress: Callable[[str], None] | None = None) -> ReembedSummary:
    """Give every face of pack `model` under `roots` a vector of `embedder`, then make it the pack's active one.

    Example:
        summary = reembed(store, ["/photos"], "sface-flip"); summary.faces
    """
    model_embedder = load_embedder(embedder)  # an unknown name fails here, before any photo is read
    say = progress or (lambda message: None)
    summary = ReembedSummary(model, embedder)
    started = time.monotonic()
    tops = [os.path.abspath(os.path.expanduser(r)) for r in roots]
    with store.writer(f"scan --embedder {embedder}"), ThreadPoolExecutor(1) as pool:
        todo = store.faces_to_embed(model, embedder, tops)
        say(f"describing {len(todo)} faces with the {embedder} embedder")
        pending: list[tuple[int, npt.NDArray[np.float32]]] = []
        # The next file is decoded in a thread while this one's faces are embedded (Pillow, FFmpeg and
        # onnxruntime all release the GIL); at most two decoded files are held.
        files = [(path, list(faces)) for path, faces in groupby(todo, key=lambda f: f.path)]
        ahead = pool.submit(decoded, *files[0]) if files else None
        for count, (path, _) in enumerate(files, 1):
            current, ahead = ahead, pool.submit(decoded, *files[count]) if count < len(files) else None
            try:
                pending += _embedded(current.result(), model_embedder)
            except (DecodeError, OSError) as e:
                summary.failed.append((path, str(e) if isinstance(e, DecodeError) else f"cannot read file: {e.strerror or e}"))
                continue
            summary.photos += 1
            if count % PHOTOS_PER_COMMIT == 0:
                summary.faces += _save(store, embedder, pending)
                say(f"{embedder}: {summary.faces} of {len(todo)} faces")
        summary.faces += _save(store, embedder, pending)
        with store.transaction():
            store.set_active_embedder(model, embedder)
        summary.missing = store.missing_vectors(model, embedder)
    summary.seconds = time.monotonic() - started
    return summary


def after_scan(store: Store, roots: Sequence[str], model: str, embedder: str | None,
               progress: Callable[[str], None] | None = None) -> ReembedSummary | None:
    """What `scan` does after detecting: with `--embedder NAME`, describe the faces under `roots` with it and make it
    the one in use; without, give the faces just scanned vectors of the embedder in use where that is not the
    pack's own (else `group` would find them without one). None when there was nothing to do.

    Example:
        after_scan(store, ["/photos"], "sface", "sface-flip")
    """
    wanted = embedder or store.active_embedder(model)
    if embedder is None and (wanted == model or store.missing_vectors(model, wanted) == 0):
        return None
    return reembed(store, roots, wanted, model, progress)


def summary_lines(s: ReembedSummary) -> list[str]:
    """The re-embedding's result in words, for stderr.

    Example:
        summary_lines(ReembedSummary("sface", "sface-flip", faces=3, photos=2))[0]
    """
    lines = [f"Described {s.faces} faces in {s.photos} files with the {s.embedder} embedder in {s.seconds:.1f} s; "
             f"{s.embedder} is now the embedder of pack {s.model}."]
    lines += [f"not described: {path}: {reason}" for path, reason in s.failed]
    if s.missing:
        lines.append(f"{s.missing} faces of pack {s.model} have no {s.embedder} vector yet (outside these folders, or not "
                     f"readable): `group` needs them; run `facecluster scan --embedder {s.embedder}` on their folders")
    return lines


def _save(store: Store, embedder: str, pending: list[tuple[int, npt.NDArray[np.float32]]]) -> int:
    with store.transaction():
        written = store.save_vectors(embedder, pending)
    pending.clear()
    return written


def embed_stored_faces(path: str, faces: Sequence[FaceToEmbed], embedder: Embedder) -> list[tuple[int, npt.NDArray[np.float32]]]:
    """(face id, vector) for stored faces of one file, aligned from their stored landmarks.

    Raises DecodeError or OSError where the file cannot be read as it was scanned.

    Example:
        embed_stored_faces("/p/a.jpg", store.faces_to_embed("sface", "sface-flip", ["/p"]), load_embedder("sface-flip"))
    """
    return _embedded(decoded(path, faces), embedder)


def _embedded(images: list[tuple[np.ndarray, float, list[FaceToEmbed]]], embedder: Embedder) -> list[tuple[int, npt.NDArray[np.float32]]]:
    out = []
    for image, scale, group in images:
        marks = np.array([_landmarks(f) for f in group], np.float32).reshape(-1, 5, 2) * scale
        vectors = embedder.predict(align_faces(image, marks))
        out += [(f.face_id, v) for f, v in zip(group, vectors)]
    return out


def vectors_for(path: str, landmarks: Iterable[Sequence[float]], frame_ms: Iterable[int | None], embedder: Embedder,
                kind: str | None = None) -> npt.NDArray[np.float32]:
    """Vectors of `embedder` for faces found in one file (landmarks in displayed pixels): what `identify`
    compares when the database's active embedder is not the pack's own.

    Example:
        vectors_for("/p/a.jpg", [f.landmarks for f in faces], [f.frame_ms for f in faces], load_embedder("sface-flip"))
    """
    faces = [FaceToEmbed(i, 0, path, kind, json.dumps(list(m)), ms, None)
             for i, (m, ms) in enumerate(zip(landmarks, frame_ms))]
    found = dict(embed_stored_faces(path, faces, embedder))
    return np.array([found[f.face_id] for f in faces], np.float32)


def _landmarks(face: FaceToEmbed) -> list[float]:
    marks = json.loads(face.landmarks) if face.landmarks else []
    if len(marks) != 10:
        raise DecodeError(f"face {face.face_id} has no stored landmarks to align it by")
    return marks


def decoded(path: str, faces: Sequence[FaceToEmbed]) -> list[tuple[np.ndarray, float, list[FaceToEmbed]]]:
    """(decoded image, its scale over the displayed size, the faces on it) for each image the faces are on.

    Example:
        image, scale, on_it = decoded("/p/a.jpg", faces)[0]
    """
    return list(_images(path, faces))


def _images(path: str, faces: Sequence[FaceToEmbed]):
    kind = faces[0].kind or "photo"
    if kind == "video" or any(f.frame_ms is not None for f in faces):
        frames = _video_frames(path, {f.frame_ms for f in faces if f.frame_ms is not None})
        for ms, group in groupby(sorted(faces, key=lambda f: f.frame_ms or 0), key=lambda f: f.frame_ms):
            if ms not in frames:
                raise DecodeError(f"the frame at {ms} ms is not in the video any more")
            yield (*frames[ms], list(group))
        return
    _check_unchanged(path, faces[0])
    with open_regular(path) as f:
        data = f.read()
    det_size = faces[0].det_size or config.DETECTION_SIZE
    if kind == "raw":
        still = raw_source.read(data, 0.0, det_size, DEFAULT_MAX_SIDE, DEFAULT_MAX_PIXELS)
    else:
        still = photo_source.read(data, data, 0.0, DEFAULT_MAX_SIDE, DEFAULT_MAX_PIXELS)
    yield still.photo.rgb, still.photo.scale, list(faces)


def _check_unchanged(path: str, face: FaceToEmbed) -> None:
    """Stored landmarks fit only the content that was scanned: a file changed since is refused, not guessed at."""
    if face.size is None:
        return
    st = os.stat(path)
    if st.st_size != face.size or st.st_mtime_ns != face.mtime_ns:
        raise DecodeError("changed since it was scanned: scan it again first")


def _video_frames(path: str, wanted: set[int], max_side: int = DEFAULT_MAX_SIDE) -> dict[int, tuple[np.ndarray, float]]:
    """The keyframes at these times (ms, as the scan numbered them), upright and at most `max_side`, with their scale."""
    import av  # PyAV loads FFmpeg's libraries: only for a database that holds videos

    found: dict[int, tuple[np.ndarray, float]] = {}
    try:
        container = av.open(path, metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise DecodeError(f"not a video FFmpeg can read: {e}") from None
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.skip_frame, ctx.thread_count = "NONKEY", 1
        ctx.options = {"skip_loop_filter": "all"}  # as the scan decodes its keyframes
        base, start = stream.time_base, stream.start_time or 0
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0 or not packet.is_keyframe:
                continue
            for frame in ctx.decode(packet):
                ms = None if frame.pts is None else int(round(float((frame.pts - start) * base) * 1000))
                if ms in wanted and ms not in found:
                    found[ms] = _upright(frame, _quarter_turns(frame, stream), max_side)
            if len(found) == len(wanted):
                break
    except av.FFmpegError as e:
        if not found:
            raise DecodeError(f"broken video data: {e}") from None
    finally:
        container.close()
    return found
