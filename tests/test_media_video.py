"""Videos: keyframe sampling, rotation, tracks, the keep rule, hostile files, and real faces end to end.

Every video is encoded at test time with PyAV (tests/mediagen.py). The
sampling tests hand video.analyse a stand-in for the face models that records
what it was given, so they need no models and no labelled photos.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster.errors import DecodeError
from facecluster.naming_rules import clock
from facecluster.models.base import Detections
from facecluster.records import Face
from facecluster.sources import video
from tests.conftest import cli_ok, in_facedata
from tests.mediagen import encode_video

PEOPLE = {  # three people of celeb5, one photo each
    "Madonna": "celeb5_opencv_course/Madonna/train_1.jpg",
    "Jerry_Seinfeld": "celeb5_opencv_course/Jerry_Seinfeld/train_1.jpg",
    "Elton_John": "celeb5_opencv_course/Elton_John/train_1.jpg",
}


def recorder():
    """A stand-in for the face detector: records each frame's shape and scale, finds nothing."""
    seen = []

    def detect(rgb, scale):
        seen.append((rgb.shape, round(scale, 3)))
        return Detections.empty()

    return seen, detect


def nothing(rgb, found, scale):
    raise AssertionError("nothing was found, so nothing is described")


def grey_scene(seconds: float):
    return [(0, seconds, np.full((200, 150, 3), 200, np.uint8))]


# ---- sampling, no models -------------------------------------------------------------


def test_keyframes_at_most_one_a_second_upright_and_scaled(tmp_path):
    # Keyframes every half second: at most one a second is analysed.
    clip = encode_video(tmp_path / "a.mp4", grey_scene(6), seconds=6, fps=10, gop=5)
    seen, detect = recorder()
    result = video.analyse(str(clip), detect, nothing)
    assert result.frames == len(seen) == 6
    assert (result.width, result.height, result.duration_s) == (640, 360, pytest.approx(6.0, abs=0.2))
    # A phone held upright: sideways frames, turned by the display matrix.
    portrait = encode_video(tmp_path / "p.mov", grey_scene(3), size=(360, 640), seconds=3, rotation=-90)
    seen, detect = recorder()
    result = video.analyse(str(portrait), detect, nothing, det_size=320)
    assert {s for s in seen} == {((320, 180, 3), 0.5)}  # upright (taller than wide), scaled by FFmpeg to the detector's size
    assert (result.width, result.height) == (360, 640)


def test_a_long_video_is_sampled_over_its_whole_length_within_the_cap(tmp_path):
    clip = encode_video(tmp_path / "long.mp4", grey_scene(40), size=(64, 48), seconds=40, fps=5)
    times = []
    result = video.analyse(str(clip), lambda rgb, scale: times.append(len(times)) or Detections.empty(), nothing, max_frames=10)
    assert result.frames == 10
    assert not result.notes


def repeated_keyframe(path: Path, keyframes: int, spacing: Fraction, codec: str = "mjpeg") -> Path:
    """A video of `keyframes` keyframes, `spacing` seconds apart: one tiny frame encoded once, muxed again and again."""
    import av

    options = {"movflags": "+faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = 64, 64
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.time_base = spacing
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24").reformat(format=stream.pix_fmt)
        frame.pts, frame.time_base = 0, spacing
        packet = (list(stream.encode(frame)) + list(stream.encode(None)))[0]
        for i in range(keyframes):
            packet.stream = stream
            packet.time_base = spacing
            packet.pts = packet.dts = i
            packet.duration = 1
            container.mux(packet)
    return path


def test_hostile_videos_end_in_a_warning_or_a_failure_never_a_hang(tmp_path):
    clip = encode_video(tmp_path / "ok.mp4", grey_scene(8), seconds=8)
    data = clip.read_bytes()

    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # index first (faststart): the samples stop halfway
    seen, detect = recorder()
    result = video.analyse(str(truncated), detect, nothing)
    assert 1 <= result.frames < 8
    assert any("index claims 0:08 but the video ends at" in n for n in result.notes), result.notes

    no_index = encode_video(tmp_path / "tail.mp4", grey_scene(4), seconds=4, faststart=False)
    (tmp_path / "no_index.mp4").write_bytes(no_index.read_bytes()[:-2000])  # the index at the end is cut off
    with pytest.raises(DecodeError, match="not a video FFmpeg can read"):
        video.analyse(str(tmp_path / "no_index.mp4"), recorder()[1], nothing)

    # An index (at the front) for 10 hours of a keyframe a second, and the data of its first 20 seconds.
    whole = repeated_keyframe(tmp_path / "whole.mp4", 36_000, Fraction(1, 1), codec="libx264").read_bytes()
    mdat = whole.index(b"mdat")
    ten_hours = tmp_path / "ten_hours.mp4"
    ten_hours.write_bytes(whole[: mdat + 4 + (len(whole) - mdat - 4) * 20 // 36_000])
    seen, detect = recorder()
    result = video.analyse(str(ten_hours), detect, nothing)
    assert result.duration_s == pytest.approx(36000, abs=1)
    # Spread over 10 hours the first pass saw one frame; a second look over the real length sees them all.
    assert 15 <= result.frames <= 21, result.notes
    assert any(n.startswith("its index claims 10:00:00 but the video ends at 0:") for n in result.notes), result.notes

    flood = repeated_keyframe(tmp_path / "flood.mkv", 100_000, Fraction(1, 100))
    seen, detect = recorder()
    result = video.analyse(str(flood), detect, nothing)
    assert result.frames == len(seen) == video.MAX_FRAMES  # 1,000 seconds of keyframes: the cap, spread over it

    seen, detect = recorder()
    result = video.analyse(str(flood), detect, nothing, max_seconds=0.0)
    assert result.frames == 0 and "stopped reading after 1 packets" in result.notes[0]


# ---- tracks and the keep rule ----------------------------------------------------------


def face(ms: int, vector, quality: float = 0.5, x: float = 0.0) -> Face:
    v = np.asarray(vector, np.float32)
    return Face(box=(x, 0, 50, 50), landmarks=(0.0,) * 10, score=0.9, size=50, embedding=v / np.linalg.norm(v),
                thumb=b"", quality=quality, frame_ms=ms)


def test_keep_best_three_per_person_per_minute():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=128), rng.normal(size=128)
    faces = []
    for s in range(0, 150):  # A throughout 2.5 minutes, a little different each second
        faces.append(face(s * 1000, a + rng.normal(scale=0.15, size=128), quality=0.3 + (s % 7) / 10))
    for s in range(10, 20):  # B for ten seconds, in the same frames as A
        faces.append(face(s * 1000, b + rng.normal(scale=0.15, size=128), x=100))
    kept = video.keep_best(faces)
    of_a = [f for f in kept if f.box[0] == 0]
    of_b = [f for f in kept if f.box[0] == 100]
    assert len(of_b) == 3
    assert [sum(1 for f in of_a if f.frame_ms // 60000 == m) for m in range(3)] == [3, 3, 3]
    assert all(f.quality == pytest.approx(0.9) for f in of_a)  # the best of each minute


# ---- real faces, end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def people(facedata: Path) -> dict[str, np.ndarray]:
    return {name: np.asarray(Image.open(in_facedata(rel)).convert("RGB")) for name, rel in PEOPLE.items()}


WINDOWS = {"Madonna": (0, 70), "Jerry_Seinfeld": (5, 15), "Elton_John": (40, 55)}


@pytest.mark.slow
@pytest.mark.facedata
def test_every_person_found_with_times_and_at_most_three_per_minute(tmp_path, people):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name, rgb in people.items():
        Image.fromarray(rgb).save(lib / f"{name}.jpg")
    scenes = [(a, b, people[name]) for name, (a, b) in WINDOWS.items()]
    # A phone video held upright (sideways frames, rotated by metadata), 70 s, three people at different times.
    encode_video(lib / "VID_1.mp4", scenes, size=(720, 1280), seconds=70, fps=5, rotation=-90)
    # HEVC where the bundled FFmpeg can encode it (PyAV's wheels carry libx265), else H.264 again.
    import av

    hevc = "libx265" if "libx265" in av.codecs_available else "libx264"
    encode_video(lib / "VID_2.mkv", [(0, 6, people["Jerry_Seinfeld"])], seconds=6, fps=5, codec=hevc)
    db = tmp_path / "lib.db"
    result = cli_ok(db, "scan", "-j", "1", str(lib))
    assert "Read 2 videos, 3 photos." in result.output

    with sqlite3.connect(db) as conn:
        stills = {Path(p).stem: np.frombuffer(e, "<f4") for p, e in conn.execute(
            "SELECT p.path, f.embedding FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.kind = 'photo'")}
        moving = conn.execute("SELECT p.path, f.frame_ms, f.embedding FROM faces f JOIN photos p ON p.id = f.photo_id "
                              "WHERE p.kind = 'video'").fetchall()
        sizes = dict(conn.execute("SELECT substr(path, -9), width || 'x' || height FROM photos WHERE kind = 'video'"))
    assert sizes == {"VID_1.mp4": "720x1280", "VID_2.mkv": "640x360"}
    names = list(stills)
    matrix = np.stack([stills[n] for n in names])
    found: dict[tuple[str, str], list[int]] = {}
    for path, ms, blob in moving:
        distances = np.linalg.norm(matrix - np.frombuffer(blob, "<f4"), axis=1)
        assert distances.min() < 1.0, (path, ms)  # every kept face is one of the three
        found.setdefault((Path(path).name, names[int(distances.argmin())]), []).append(ms)
    assert set(found) == {("VID_1.mp4", n) for n in WINDOWS} | {("VID_2.mkv", "Jerry_Seinfeld")}
    for (clip, name), times in found.items():
        start, end = WINDOWS[name] if clip == "VID_1.mp4" else (0, 6)
        assert all(start * 1000 <= t < end * 1000 for t in times), (clip, name, times)
        for minute in {t // 60000 for t in times}:
            assert 1 <= sum(1 for t in times if t // 60000 == minute) <= 3, (clip, name, times)

    cli_ok(db, "export", "--json", str(tmp_path / "faces.json"))
    exported = json.loads((tmp_path / "faces.json").read_text())
    times = [f["frame_time"] for f in exported["unclustered"] if "VID_" in f["photo"]]
    assert len(times) == len(moving) and all(isinstance(t, float) for t in times)

    # The HTML export shows a video face's time and links to the video at that time.
    cli_ok(db, "export", "--html", str(tmp_path / "site"))
    pages = "".join(p.read_text() for p in (tmp_path / "site").glob("*.html"))
    first = min(t for (clip, _), ts in found.items() if clip == "VID_2.mkv" for t in ts)
    assert f'../lib/VID_2.mkv#t={first / 1000:g}"' in pages and f"▶ {clock(first / 1000)} · " in pages

    # show carries the frame time: in its lines after the path, in --json as frame_time.
    cli_ok(db, "group")
    with sqlite3.connect(db) as conn:
        person = conn.execute("SELECT f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE '%VID_1.mp4' "
                              "AND f.person_id IS NOT NULL GROUP BY f.person_id ORDER BY count(*) DESC").fetchone()[0]
    shown = json.loads(cli_ok(db, "show", str(person), "--json").stdout)
    in_video = [f for f in shown["faces"] if f["photo"].endswith("VID_1.mp4")]
    assert in_video and all(isinstance(f["frame_time"], float) for f in in_video)
    assert all("frame_time" not in f for f in shown["faces"] if not f["photo"].endswith(("VID_1.mp4", "VID_2.mkv")))
    lines = cli_ok(db, "show", str(person)).stdout
    assert f"VID_1.mp4 @ {clock(in_video[0]['frame_time'])}" in lines
    # A video's faces are regions of frames: no sidecar is written for the video, the stills get theirs.
    cli_ok(db, "name", str(person), "Someone")
    # photos --videos / --no-videos: the videos with Someone, and the stills alone.
    videos = cli_ok(db, "photos", "--with", "Someone", "--videos").stdout.splitlines()
    stills = cli_ok(db, "photos", "--with", "Someone", "--no-videos").stdout.splitlines()
    both = cli_ok(db, "photos", "--with", "Someone").stdout.splitlines()
    assert videos and all(Path(p).name.startswith("VID_") for p in videos)
    assert stills and not any(Path(p).name.startswith("VID_") for p in stills)
    assert sorted(both) == sorted(videos + stills)
    cli_ok(db, "export", "--xmp")
    assert not list(lib.glob("VID_*.xmp")) and list(lib.glob("*.jpg.xmp"))

    no_video = cli_ok(tmp_path / "other.db", "scan", "-j", "1", "--no-video", str(lib))
    assert "Read " not in no_video.output and "\nSkipped 1 sidecar file, 2 videos (--no-video).\n" in no_video.output


def test_grouping_sees_each_frame_of_a_video_as_its_own_photo(store):
    """"A person once per photo" becomes "once per frame": faces of one video in different frames may be one person."""
    from facecluster.records import PhotoFacts

    store.register_model("sface", "x", 128, "test")
    v = np.ones(128, np.float32) / np.sqrt(128)
    faces = [face(0, v), face(0, v, x=100), face(1000, v), face(2000, v)]
    video_id = store.save_photo(PhotoFacts("/p/clip.mp4", 1, 0, sha256="a", kind="video"), faces, "sface", None)
    photo_id = store.save_photo(PhotoFacts("/p/a.jpg", 1, 0, sha256="b"), [replace(face(0, v), frame_ms=None)], "sface", None)
    inputs = store.grouping_inputs("sface")
    ids = inputs.photo_ids.tolist()
    assert ids[0] == ids[1] != ids[2] != ids[3] and len({ids[0], ids[2], ids[3]}) == 3  # two faces in one frame, three frames
    assert ids[4] == photo_id and photo_id not in ids[:4] and video_id not in ids[:4]


def test_a_scan_of_hostile_media_records_each_and_leaves_no_process(tmp_path, fake_models):  # no faces: fake models
    import multiprocessing

    lib = tmp_path / "lib"
    lib.mkdir()
    data = encode_video(tmp_path / "ok.mp4", grey_scene(8), seconds=8).read_bytes()
    (lib / "truncated.mp4").write_bytes(data[: len(data) // 2])
    cut = encode_video(tmp_path / "tail.mp4", grey_scene(4), seconds=4, faststart=False).read_bytes()
    (lib / "no_index.mov").write_bytes(cut[:-2000])
    repeated_keyframe(lib / "flood.mkv", 100_000, Fraction(1, 100))
    (lib / "refused.ARW").write_bytes(b"II*\x00" + bytes(4000))
    (lib / "empty.mp4").write_bytes(b"")
    db = tmp_path / "lib.db"

    result = cli_ok(db, "scan", "-j", "2", str(lib))

    assert "truncated.mp4: its index claims 0:08 but the video ends at" in result.output
    assert "no_index.mov\tnot a video FFmpeg can read: " in result.stdout
    assert "refused.ARW\tLibRaw cannot read this RAW file" in result.stdout
    assert "empty.mp4\tnot a video FFmpeg can read: " in result.stdout
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT substr(path, length(?) + 2), status FROM photos", [str(lib)]))
    assert statuses == {"truncated.mp4": "ok", "no_index.mov": "failed", "flood.mkv": "ok", "refused.ARW": "failed",
                        "empty.mp4": "failed"}
    assert multiprocessing.active_children() == []


def test_once_every_face_on_screen_is_settled_frames_are_taken_two_steps_apart(tmp_path):
    clip = encode_video(tmp_path / "still.mp4", grey_scene(20), size=(320, 240), seconds=20, fps=5)
    times, described = [], []
    box = np.array([[100.0, 60.0, 180.0, 160.0]], np.float32)

    def detect(rgb, scale):  # the same face in the same place in every frame
        times.append(len(times))
        return Detections(box * scale, np.array([0.9], np.float32), np.zeros((1, 5, 2), np.float32))

    def describe(rgb, found, scale):
        described.append(len(times))
        return [face(0, np.ones(128))]

    result = video.analyse(str(clip), detect, describe)
    # 0, 1, 2 s: the track's first three faces this minute; at 3 s nothing new, so 5, 7, ... 19.
    assert len(described) == 3 and result.frames == len(times) == 4 + 8
