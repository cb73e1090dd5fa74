"""Videos through PyAV (its wheel bundles FFmpeg): a few keyframes, the faces in them, the best of each person.

Sampling is cheap by construction: only keyframes are decoded (the decoder
is told to skip every other frame, and packets between the chosen keyframes
are never handed to it), at most one every STEP_S seconds, spread over the
whole video when it is long (at most MAX_FRAMES), one decoder thread (a
scan already runs a worker per core, and more threads buffer more frames).
Each chosen frame is scaled by FFmpeg to the detector's size, turned upright
by the stream's display matrix (phones record portrait video sideways with a
rotation in the metadata), and its faces detected as a photo's are. Only
faces that may be kept are embedded, from the frame at up to max_side a side:
a face that continues a face of the previous frames (same place, within
LINK_S) is embedded only while its track has fewer than KEEP_PER_MINUTE faces
in this minute or it looks better (score times size) than the worst of them.
Embedding is most of a frame's cost; in a video of people talking most faces
continue one. While every face on screen is such a settled one, frames are
taken SETTLED_STEPS steps apart.

Faces of one person across frames form a track (embedding distance, looser
between frames close in time); of each track at most KEEP_PER_MINUTE faces
per minute of video are kept, the best ones. A person seen in a ten-minute
video is a handful of faces, each with its time in the video.

Hostile files end in a recorded warning, never a hang: a wall-clock limit
per video (MAX_SECONDS), a frame cap, a packet cap, and a second look when
the index claims a length the stream does not have.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from facecluster.errors import DecodeError, short_reason
from facecluster.models.base import Detections
from facecluster.naming_rules import clock
from facecluster.records import Face

EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".mkv", ".avi", ".webm", ".mts", ".m2ts"})

STEP_S = 1.0  # at most one frame a second
# While every face on screen continues a track that needs no more faces this minute, the next frame is
# taken this many steps later: nothing new was being learnt. A person who appears is then found within
# 2 s instead of 1. 1080p benchmark: 60 frames a minute became 38, 1.83 -> 1.33 CPU s (docs/benchmarks.md).
SETTLED_STEPS = 2
MAX_FRAMES = 120  # frames analysed per video; a longer video is sampled more sparsely
MAX_SECONDS = 120.0  # wall-clock limit per video: a hostile file ends in a warning, not a hang
MAX_PACKETS = 2_000_000  # packets demuxed per video (a 10-hour 60 fps video has 2.2 million)
KEEP_PER_MINUTE = 3  # faces kept per track per minute of video
# Tracks: faces (unit embeddings, Euclidean distance) join a track whose faces are this close;
# looser between frames at most TRACK_GAP_S apart (the same person moving), stricter beyond.
TRACK_NEAR, TRACK_FAR, TRACK_GAP_S = 1.0, 0.85, 10.0
# A face continues one of an earlier frame (at most LINK_S before) when its centre has moved less than
# LINK_MOVE of the face's side a second and its size changed by less than LINK_GROWTH times.
LINK_MOVE, LINK_GROWTH, LINK_S = 1.0, 1.5, 2.5
# ... and is embedded while its track has KEEP_PER_MINUTE faces this minute only if this much better than the worst.
BETTER = 1.25

# Detects in one upright RGB frame: (rgb, scale of rgb over the displayed size) -> Detections in rgb's pixels.
Detect = Callable[[np.ndarray, float], Detections]
# Describes (embeds) some of them: (rgb, detections in rgb's pixels, scale) -> faces in displayed pixels.
Describe = Callable[[np.ndarray, Detections, float], list[Face]]


@dataclass
class VideoResult:
    width: int = 0  # displayed (upright) size
    height: int = 0
    duration_s: float | None = None
    taken: str | None = None  # from the container's creation date
    camera: str | None = None
    frames: int = 0  # frames analysed
    described: int = 0  # faces embedded (the rest were detected and passed over: see _FrameAnalysis)
    faces: list[Face] = field(default_factory=list)  # kept faces, each with its frame_ms
    notes: list[str] = field(default_factory=list)  # what the user should know (stopped early, ends early)


def analyse(path: str, detect: Detect, describe: Describe, max_side: int = 2048, det_size: int = 640,
            max_frames: int = MAX_FRAMES, max_seconds: float = MAX_SECONDS) -> VideoResult:
    """The kept faces of one video file, each with its time; DecodeError when FFmpeg cannot read it at all.

    Example:
        result = analyse("/p/clip.mp4", lambda rgb, scale: detect_faces(rgb, pack, scale),
                         lambda rgb, found, scale: faces_from_detections(rgb, found, pack, scale))
    """
    import av  # PyAV loads FFmpeg's libraries: only for a scan that meets a video

    deadline = time.monotonic() + max_seconds
    result = VideoResult()
    found: list[Face] = []
    seen_ms: set[int] = set()
    analyse_frame = _FrameAnalysis(detect, describe, max_side, det_size)
    claimed = _open_and_sample(av, path, analyse_frame, max_frames, deadline, result, found, seen_ms, None)
    end = claimed[1]
    if claimed[0] and end is not None and claimed[0] > 2 * max(end, STEP_S) and result.frames < max_frames:
        # The index claims a length the stream does not have (a truncated or hostile file): the first
        # pass spread its frames over that length; look again over the real one.
        result.notes.append(f"its index claims {clock(claimed[0])} but the video ends at {clock(end)}; read to there")
        _open_and_sample(av, path, analyse_frame, max_frames, deadline, result, found, seen_ms, end)
    result.faces = keep_best(found)
    result.described = analyse_frame.described
    return result


def _open_and_sample(av, path, analyse_frame, max_frames, deadline, result, found, seen_ms, length):
    """One pass over the file: (the length its index claims, the time of its last packet)."""
    try:
        container = av.open(path, metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as e:
        raise DecodeError(f"not a video FFmpeg can read: {_why(e)}") from None
    try:
        streams = container.streams.video
        if not streams:
            raise DecodeError("no video stream in this file")
        stream = streams[0]
        if length is None:
            _describe(container, stream, result)
        claimed = result.duration_s
        span = length if length is not None else claimed
        step = max(STEP_S, span / max_frames) if span and span > 0 else STEP_S
        end = _sample(container, stream, analyse_frame, max_frames, step, deadline, result, found, seen_ms)
        return claimed, end
    finally:
        container.close()


def _sample(container, stream, analyse_frame, max_frames, step, deadline, result, found, seen_ms) -> float | None:
    """Decode chosen keyframes and analyse them; the time of the last packet seen (None: none)."""
    # FFmpeg (PyAV) loads only when a video is read
    import av

    ctx = stream.codec_context
    ctx.skip_frame = "NONKEY"  # the decoder drops every non-key frame it is given
    ctx.thread_count = 1
    # No deblocking: 22 % less CPU per 1080p H.264 keyframe (15.0 -> 11.7 ms), and a keyframe's
    # blocking is slight at phone bitrates; faces are found and embedded alike.
    ctx.options = {"skip_loop_filter": "all"}
    base = stream.time_base
    per_second = float(1 / base) if base else 1.0
    start = stream.start_time or 0
    next_pts, last_pts, packets = None, None, 0  # in the stream's own units: no fraction arithmetic per packet
    last_s = None

    def take(frames) -> bool:
        for frame in frames:
            if frame.pts is None:
                continue
            t = float((frame.pts - start) * base)
            ms = int(round(t * 1000))
            if ms in seen_ms or result.frames >= max_frames:
                continue
            seen_ms.add(ms)
            result.frames += 1
            turns = _quarter_turns(frame, stream)
            if result.frames == 1:  # the displayed size, from the first frame (its rotation may be known only here)
                result.width, result.height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
            found.extend(replace(face, frame_ms=ms) for face in analyse_frame(frame, turns, ms))
        return result.frames < max_frames

    try:
        for packet in container.demux(stream):
            packets += 1
            if time.monotonic() > deadline or packets > MAX_PACKETS:
                result.notes.append(f"stopped reading after {packets} packets and {result.frames} frames "
                                    f"(at {clock(last_s or 0)}): the rest of the video was not looked at")
                return last_s
            pts = packet.pts
            if pts is None or packet.size == 0:
                continue
            if last_pts is None or pts > last_pts:
                last_pts = pts
                last_s = (pts - start) / per_second
            if not packet.is_keyframe or (next_pts is not None and pts < next_pts):
                continue
            more = take(ctx.decode(packet))
            gap = step * (SETTLED_STEPS if analyse_frame.settled else 1)
            next_pts = pts + gap * per_second - per_second / 1000  # a millisecond early: keyframes a step apart qualify
            if not more:
                if not result.duration_s:  # with a known length the frames were spread over all of it
                    result.notes.append(f"read the first {clock(last_s or 0)} only ({max_frames} frames): "
                                        "its length is not in its index")
                return last_s
        take(ctx.decode(None))
    except av.FFmpegError as e:
        result.notes.append(f"broken video data at {clock(last_s or 0)}, read up to there: {_why(e)}")
    return last_s


class _FrameAnalysis:
    """Detect in a small copy of each frame; describe, from a bigger one, only the faces that may be kept."""

    def __init__(self, detect: Detect, describe: Describe, max_side: int, det_size: int) -> None:
        self.detect, self.describe, self.max_side, self.det_size = detect, describe, max_side, det_size
        self.tracks: list[_BoxTrack] = []
        self.described = 0  # faces embedded (for the benchmark)
        self.settled = False  # the last frame held faces, all of them continuing tracks that needed nothing

    def __call__(self, frame, turns: int, ms: int) -> list[Face]:
        self.settled = False
        small, small_scale = _upright(frame, turns, self.det_size)
        found = self.detect(small, small_scale)
        if not len(found):
            return []
        boxes = found.boxes.astype(np.float64) / small_scale  # displayed pixels
        tracks_before = len(self.tracks)
        want = self._worth_describing(boxes, found.scores.astype(np.float64), ms)
        if not want:
            self.settled = len(self.tracks) <= tracks_before  # no face started a track
            return []
        big, big_scale = _upright(frame, turns, self.max_side)
        chosen = Detections(found.boxes[want], found.scores[want], found.landmarks[want]).scaled(big_scale / small_scale)
        self.described += len(want)
        return self.describe(big, chosen, big_scale)

    def _worth_describing(self, boxes: np.ndarray, scores: np.ndarray, ms: int) -> list[int]:
        """Indexes of the detections to embed; every detection moves its box track on."""
        live = [t for t in self.tracks if ms - t.last_ms <= LINK_S * 1000]
        # Movement per second: frames are one or two steps apart.
        pairs = sorted(((_moved(b, t.box) / max(1.0, (ms - t.last_ms) / 1000), i, t) for i, b in enumerate(boxes) for t in live),
                       key=lambda p: p[0])
        linked: dict[int, _BoxTrack] = {}
        used: set[int] = set()
        for moved, i, track in pairs:
            if moved > LINK_MOVE or i in linked or id(track) in used:
                continue
            linked[i] = track
            used.add(id(track))
        want = []
        for i, box in enumerate(boxes):
            goodness = float(scores[i]) * float(min(box[2] - box[0], box[3] - box[1]))
            track = linked.get(i)
            if track is None:
                track = _BoxTrack()
                self.tracks.append(track)
            if track.offer(ms, goodness):
                want.append(i)
            track.box, track.last_ms = box, ms
        self.tracks = [t for t in self.tracks if ms - t.last_ms <= LINK_S * 1000]
        return want


class _BoxTrack:
    """A face followed by where it is, frame to frame: the goodness of the faces embedded so far, per minute."""

    def __init__(self) -> None:
        self.box = np.zeros(4)
        self.last_ms = 0
        self.minutes: dict[int, list[float]] = {}

    def offer(self, ms: int, goodness: float) -> bool:
        kept = self.minutes.setdefault(ms // 60_000, [])
        if len(kept) < KEEP_PER_MINUTE:
            kept.append(goodness)
            return True
        worst = min(kept)
        if goodness > worst * BETTER:
            kept[kept.index(worst)] = goodness
            return True
        return False


def _moved(a: np.ndarray, b: np.ndarray) -> float:
    """How far box a's centre is from box b's, in face sides (infinite where their sizes differ too much)."""
    side_a, side_b = min(a[2] - a[0], a[3] - a[1]), min(b[2] - b[0], b[3] - b[1])
    if side_a <= 0 or side_b <= 0 or max(side_a, side_b) > LINK_GROWTH * min(side_a, side_b):
        return float("inf")
    dx, dy = (a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2
    return float(np.hypot(dx, dy) / max(side_a, side_b))


def _upright(frame, turns: int, side: int) -> tuple[np.ndarray, float]:
    """The frame as RGB, at most `side` a side (scaled by FFmpeg), upright; and its scale."""
    w, h = frame.width, frame.height
    factor = min(1.0, side / max(w, h))
    out_w, out_h = max(2, int(round(w * factor))) & ~1, max(2, int(round(h * factor))) & ~1
    # Area averaging: a 1080p keyframe to 640 px in 2.2 ms; swscale's default (bicubic) took 9.2.
    rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="AREA")
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, turns))
    return rgb, out_w / w


def _quarter_turns(frame, stream) -> int:
    """Counter-clockwise quarter turns that make the frame upright (display matrix, else the old `rotate` tag)."""
    angle = None
    try:
        angle = frame.rotation
    except Exception:  # no display matrix on this frame
        angle = None
    if not angle:
        try:
            # FFmpeg's old "rotate" tag: degrees clockwise.
            angle = -float(stream.metadata.get("rotate", 0) or 0)
        except (TypeError, ValueError):
            angle = 0
    return int(round(angle / 90.0)) % 4


def _describe(container, stream, result: VideoResult) -> None:
    """Displayed size, length, date and camera from the container, before any frame is decoded."""
    ctx = stream.codec_context
    w, h = int(ctx.width or 0), int(ctx.height or 0)
    try:
        rotate = stream.metadata.get("rotate")
        sideways = rotate is not None and int(float(rotate)) % 180 == 90
    except (TypeError, ValueError):
        sideways = False
    result.width, result.height = (h, w) if sideways else (w, h)
    if stream.duration and stream.time_base:
        result.duration_s = float(stream.duration * stream.time_base)
    elif container.duration:
        result.duration_s = container.duration / 1_000_000
    meta = {**{k.lower(): v for k, v in container.metadata.items()}, **{k.lower(): v for k, v in stream.metadata.items()}}
    result.taken = _video_date(meta)
    make = meta.get("com.apple.quicktime.make") or meta.get("com.android.manufacturer") or meta.get("make")
    model = meta.get("com.apple.quicktime.model") or meta.get("com.android.model") or meta.get("model")
    if model:
        result.camera = model if not make or model.lower().startswith(make.split()[0].lower()) else f"{make} {model}"


def _video_date(meta: dict) -> str | None:
    """Local time the video was taken: Apple's own date (local, with its offset), else creation_time (UTC) in local time."""
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        text = meta.get(key)
        if not text:
            continue
        try:
            when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        if when.year < 1971:  # 1904 and 1970: a camera that wrote zero
            continue
        if key != "com.apple.quicktime.creationdate" and when.tzinfo is not None:
            when = when.astimezone()
        return when.replace(tzinfo=None).isoformat(timespec="seconds")
    return None


def keep_best(faces: list[Face], per_minute: int = KEEP_PER_MINUTE) -> list[Face]:
    """The faces worth keeping from one video: per track (one person), the best `per_minute` in each minute.

    Faces are put into tracks frame by frame, in time order: a face joins the
    track whose faces are nearest (at most TRACK_NEAR when the track was seen
    within TRACK_GAP_S, TRACK_FAR otherwise), one face per track per frame;
    a face no track takes starts one. "Best" is the quality score, then the
    detection score times the face's size.

    Example:
        kept = keep_best(faces_with_frame_ms)
    """
    if not faces:
        return []
    ordered = sorted(faces, key=lambda f: (f.frame_ms or 0))
    tracks: list[_Track] = []
    i = 0
    while i < len(ordered):
        t = ordered[i].frame_ms or 0
        frame = [f for f in ordered[i:] if (f.frame_ms or 0) == t]
        i += len(frame)
        pairs = []
        for fi, face in enumerate(frame):
            vector = np.asarray(face.embedding, np.float32)
            for ti, track in enumerate(tracks):
                d = track.distance(vector)
                limit = TRACK_NEAR if t - track.last_ms <= TRACK_GAP_S * 1000 else TRACK_FAR
                if d <= limit:
                    pairs.append((d, fi, ti))
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        for _, fi, ti in sorted(pairs):
            if fi in taken_faces or ti in taken_tracks:
                continue
            taken_faces.add(fi)
            taken_tracks.add(ti)
            tracks[ti].add(frame[fi])
        for fi, face in enumerate(frame):
            if fi not in taken_faces:
                tracks.append(_Track(face))
    kept = []
    for track in tracks:
        by_minute: dict[int, list[Face]] = {}
        for face in track.faces:
            by_minute.setdefault((face.frame_ms or 0) // 60_000, []).append(face)
        for minute_faces in by_minute.values():
            kept += sorted(minute_faces, key=_goodness, reverse=True)[:per_minute]
    return sorted(kept, key=lambda f: ((f.frame_ms or 0), f.box))


class _Track:
    """One person's faces across frames."""

    def __init__(self, face: Face) -> None:
        self.faces: list[Face] = []
        self.vectors: list[np.ndarray] = []
        self.last_ms = 0
        self.add(face)

    def add(self, face: Face) -> None:
        self.faces.append(face)
        self.vectors.append(np.asarray(face.embedding, np.float32))
        self.last_ms = face.frame_ms or 0

    def distance(self, vector: np.ndarray) -> float:
        # The nearest of the track's recent faces: a person turning their head drifts away from how they began.
        recent = np.stack(self.vectors[-8:])
        return float(np.min(np.linalg.norm(recent - vector, axis=1)))


def _goodness(face: Face) -> tuple[float, float]:
    return (face.quality if face.quality is not None else 0.0, face.score * face.size)


def _why(e: BaseException) -> str:
    return short_reason(e)
