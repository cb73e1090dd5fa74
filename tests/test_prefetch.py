"""Decode overlapped with inference: the prefetching stream, task sizes, and JPEG draft scales."""

import numpy as np
import pytest
from PIL import Image

import facecluster.scan_file as scan_file
from facecluster.crawl import crawl
from facecluster.decode import decode, draft_scale
from facecluster.models import load_pack
from facecluster.distributed import CHUNK_FILES, chunk_size, in_chunks
from facecluster.scan_file import analyse_file, analyse_stream
from facecluster.scan_options import ScanOptions
from tests.conftest import jpeg_bytes


@pytest.mark.parametrize(("w", "h", "scale"), [
    (7360, 4912, 4),  # 36 MP: was drafted to 1/2 then reduced by 2; the decoder now does all of it
    (6988, 4664, 4),
    (4032, 3024, 2),  # 12 MP: 1/2, as before
    (5184, 3880, 1),  # a shrink of 3: the decoder cannot, reduce() does
    (8256, 5504, 2),  # a shrink of 6: 1/2 in the decoder, 3 by reduce()
    (16000, 12000, 8),
    (2048, 1000, 1),
    (624, 416, 1),
])
def test_draft_scale(w, h, scale):
    assert draft_scale(w, h, 2048) == scale


def test_full_draft_gives_the_same_size_as_before(astronaut):
    # 920 x 612 to at most 256 a side: drafted to 1/4 now, 1/2 then reduce(2) before; the same 230 x 153.
    big = np.asarray(Image.fromarray(astronaut).resize((920, 612)))
    photo = decode(jpeg_bytes(big), max_side=256)
    assert draft_scale(920, 612, 256) == 4
    assert photo.rgb.shape == (153, 230, 3) and photo.width == 920 and photo.height == 612
    assert photo.scale == 230 / 920


def test_chunks():
    assert list(in_chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(in_chunks([], 3)) == []
    # tiny items fill a task up to `fill` bytes (at most `most` items); a big one is a task alone
    sizes = [10, 10, 10, 10, 100, 10, 10]
    assert list(in_chunks(sizes, 1, weight=lambda s: s, fill=30)) == [[10, 10, 10], [10, 100], [10, 10]]
    assert list(in_chunks([1] * 5, 1, weight=lambda s: s, fill=100, most=2)) == [[1, 1], [1, 1], [1]]
    assert list(in_chunks([500, 500], 1, weight=lambda s: s, fill=30)) == [[500], [500]]
    assert chunk_size(9, 2) == 1  # few files: every worker still gets several tasks
    assert chunk_size(24, 2) == 3
    assert chunk_size(100_000, 8) == CHUNK_FILES


def test_stream_prefetches_one_photo_ahead_and_gives_the_same_results(tmp_path, astronaut, monkeypatch):
    for i in range(5):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(np.roll(astronaut, 7 * i, axis=1)))  # five different files
    (tmp_path / "5.jpg").write_bytes(b"not an image")
    entries = sorted(crawl([str(tmp_path)]), key=lambda e: e.path)
    options = ScanOptions(jobs=1)
    pack = load_pack(options.model, options.det_size, options.det_threshold)
    alone = [analyse_file(e, pack, options, frozenset()) for e in entries]

    events = []
    real_prepare, real_finish = scan_file._prepare_file, scan_file._finish

    def prepare(entry, *args):
        events.append(("prepare", entry.path))
        return real_prepare(entry, *args)

    def finish(ready, *args):
        # Prefetch depth one: when photo i goes into the models, at most photo i+1 has been read.
        i = [e.path for e in entries].index(ready.entry.path)
        assert sum(kind == "prepare" for kind, _ in events) <= i + 2
        events.append(("finish", ready.entry.path))
        return real_finish(ready, *args)

    monkeypatch.setattr(scan_file, "_prepare_file", prepare)
    monkeypatch.setattr(scan_file, "_finish", finish)
    streamed = list(analyse_stream([(e, frozenset()) for e in entries], pack, options))
    assert [p for kind, p in events if kind == "prepare"] == [e.path for e in entries]  # each read once, in order
    assert [r.facts.path for r in streamed] == [e.path for e in entries]
    for a, b in zip(alone, streamed):
        assert a.facts == b.facts and len(a.faces) == len(b.faces)
        for fa, fb in zip(a.faces, b.faces):
            assert fa.box == fb.box and np.array_equal(fa.embedding, fb.embedding)
    assert streamed[-1].facts.error.startswith("not an image in a format facecluster reads (JPEG, PNG")
