"""The scan's work outside the two models: the same results, made in the stream's helper threads."""

import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import facecluster.faces as faces_module
import facecluster.scan_file as scan_file
from facecluster.crawl import CrawlEntry, crawl
from facecluster.errors import ModelError
from facecluster.models import load_pack
from facecluster.quality import thumb_quality
from facecluster.faces import face_thumbnail, find_faces
from facecluster.scan_file import _prepare_file, analyse_stream
from facecluster.scan_options import ScanOptions
from tests.conftest import jpeg_bytes


@pytest.fixture(scope="module")
def pack():
    options = ScanOptions(jobs=1)
    return load_pack(options.model, options.det_size, options.det_threshold)


def same_faces(a, b) -> bool:
    return len(a) == len(b) and all(
        fa.box == fb.box and fa.landmarks == fb.landmarks and fa.score == fb.score and fa.size == fb.size
        and np.array_equal(fa.embedding, fb.embedding) and fa.thumb == fb.thumb and fa.quality == fb.quality
        for fa, fb in zip(a, b)
    )


def test_faces_made_in_a_thread_are_the_faces_made_inline(pack, t1):
    rgb = t1[::2, ::2]  # a strided view, as decoded photos are not
    with ThreadPoolExecutor(1) as pool:
        threaded = find_faces(rgb, pack, 0.5, pool)
    inline = find_faces(rgb, pack, 0.5)
    assert len(inline) >= 2 and same_faces(inline, threaded)
    # Stored boxes and landmarks are in full-size pixels: twice the decoded image's.
    detected = {round(float(x1) * 2, 1) for x1 in pack.detector.predict(rgb).boxes[:, 0]}
    for face in inline:
        assert all(type(v) is float for v in (*face.box, *face.landmarks, face.score, face.size))
        assert face.box[0] in detected
        # The quality is the one filling an older database computes from what is stored.
        assert face.quality == thumb_quality(face.thumb, [round(v, 2) for v in face.landmarks], face.size, face.score)


def test_thumbnail_bytes_are_those_of_a_plain_pillow_crop(astronaut):
    # The crop is made contiguous before Pillow sees it (much faster): the JPEG must not change.
    box = np.array([170.5, 40.25, 290.0, 190.75], np.float32)
    side = 150.5 * 1.4  # the longer side, with the margin
    cx, cy = (170.5 + 290.0) / 2, (40.25 + 190.75) / 2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(512, cx + side / 2)), int(min(512, cy + side / 2))
    crop = Image.fromarray(astronaut[top:bottom, left:right])
    crop.thumbnail((128, 128), Image.Resampling.LANCZOS)
    expected = io.BytesIO()
    crop.save(expected, "JPEG", quality=82, optimize=True)
    assert face_thumbnail(astronaut, box) == expected.getvalue()
    assert max(Image.open(io.BytesIO(face_thumbnail(astronaut, box))).size) == 128


@pytest.mark.parametrize("in_memory", [10**9, 3000])
def test_prepare_keeps_the_whole_file_or_its_head_and_hashes_all_of_it(tmp_path, astronaut, monkeypatch, in_memory):
    content = jpeg_bytes(astronaut[::8, ::8])  # a few KB: several chunks of 1000 bytes
    path = tmp_path / "a.jpg"
    path.write_bytes(content)
    monkeypatch.setattr(scan_file, "READ_CHUNK", 1000)
    monkeypatch.setattr(scan_file, "IN_MEMORY_BYTES", in_memory)
    ready = _prepare_file(CrawlEntry(str(path), len(content), 0), ScanOptions(jobs=1), frozenset())
    assert ready.facts.sha256 == hashlib.sha256(content).hexdigest() and ready.facts.size == len(content)
    assert ready.data == content[:in_memory]
    assert ready.photo.rgb.shape == (64, 64, 3)  # decoded from the open file where only the head was kept


def test_stream_makes_thumbnails_in_its_faces_thread(tmp_path, astronaut, monkeypatch, pack):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(astronaut))
    threads = []
    real = faces_module._thumbs_and_quality

    def spy(*args):
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(faces_module, "_thumbs_and_quality", spy)
    entries = list(crawl([str(tmp_path)]))
    [result] = analyse_stream([(e, frozenset()) for e in entries], pack, ScanOptions(jobs=1))
    assert len(result.faces) == 1 and threads and all(name.startswith("facecluster-faces") for name in threads)


def test_an_embedder_that_cannot_load_is_a_fatal_result(tmp_path, astronaut, monkeypatch):
    # It loads in the faces thread, where a failure is swallowed: it must show again at first use.
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(astronaut))
    broken = load_pack("sface")

    def fail():
        raise ModelError("the embedder file is damaged")

    monkeypatch.setattr(broken.embedder, "_load", fail)
    entries = list(crawl([str(tmp_path)]))
    [result] = analyse_stream([(e, frozenset()) for e in entries], broken, ScanOptions(jobs=1))
    assert result.fatal == "the embedder file is damaged"


def test_decode_keeps_pillow_blocks_for_the_next_photo_and_never_lowers_the_setting(astronaut, monkeypatch):
    import facecluster.decode as decode_module

    saved = Image.core.get_blocks_max()
    try:
        kept = decode_module.PILLOW_BLOCKS_KEPT
        for before, after in ((0, kept), (kept + 12, kept + 12)):
            Image.core.set_blocks_max(before)
            monkeypatch.setattr(decode_module, "_blocks_set", False)
            first = decode_module.decode(jpeg_bytes(astronaut)).rgb
            assert Image.core.get_blocks_max() == after
            # Reused (dirty) blocks: the next photos decode to the same pixels all the same.
            decode_module.decode(jpeg_bytes(astronaut[::-1]))
            assert np.array_equal(decode_module.decode(jpeg_bytes(astronaut)).rgb, first)
    finally:
        Image.core.set_blocks_max(saved)


def test_detector_input_made_ahead_detects_the_same(tmp_path, t1, pack):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(t1))
    ready = _prepare_file(CrawlEntry(str(path), path.stat().st_size, 0), ScanOptions(jobs=1), frozenset(), pack.detector.prepare)
    assert ready.detector_input is not None
    ahead = find_faces(ready.photo.rgb, pack, ready.photo.scale, None, ready.detector_input)
    assert len(ahead) == 6 and same_faces(ahead, find_faces(ready.photo.rgb, pack, ready.photo.scale))


def test_stream_makes_detector_input_in_the_decode_thread_only(tmp_path, t1, monkeypatch, pack):
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(t1[:, ::-1] if i % 2 else t1))
    made_in = []
    real_prepare = pack.detector.prepare

    def prepare(rgb):
        made_in.append(threading.current_thread().name)
        return real_prepare(rgb)

    monkeypatch.setattr(pack.detector, "prepare", prepare)
    entries = list(crawl([str(tmp_path)]))
    results = list(analyse_stream([(e, frozenset()) for e in entries], pack, ScanOptions(jobs=1)))
    assert [len(r.faces) for r in results] == [6, 6, 6]
    # Ahead in the decode thread where it was not waited for, else by the detector itself in the stream's thread.
    assert len(made_in) == 3 and all(n.startswith("facecluster-decode") or n == threading.current_thread().name for n in made_in)


def test_the_decode_thread_leaves_the_detector_input_to_a_stream_that_waits_for_it(pack, astronaut):
    calls = []
    ahead = scan_file._Prefetch(iter([]), ScanOptions(jobs=1), lambda rgb: calls.append(1) or "input")
    try:
        assert ahead._prepare_unless_waited_for(astronaut) == "input"
        ahead._waited_for.set()  # what take() sets while it blocks on an unfinished photo
        assert ahead._prepare_unless_waited_for(astronaut) is None and calls == [1]
    finally:
        ahead.close()


def test_a_photo_too_small_for_a_face_gets_no_detector_input(tmp_path, pack):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8), "white").save(path)
    ready = _prepare_file(CrawlEntry(str(path), path.stat().st_size, 0), ScanOptions(jobs=1), frozenset(), pack.detector.prepare)
    assert ready.detector_input is None and find_faces(ready.photo.rgb, pack, ready.photo.scale) == []
