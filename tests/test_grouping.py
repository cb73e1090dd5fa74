"""plan_groups on hand-made arrays: the invariants, the quality gate, user decisions; and real faces."""

import csv
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from facecluster.errors import UsageProblem
from facecluster.grouping import GroupOptions, plan_groups
from benchmarks.metrics import quality
from facecluster.store import GroupingInputs, PersonRow
from tests.conftest import cli_ok, cli_run


def people(counts, dim=32, spread=0.03, seed=0):
    """Unit vectors: len(counts) well-separated people, counts[i] faces each."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim, dtype=np.float32)[: len(counts)]
    x = np.concatenate([c + rng.normal(0, spread, (n, dim)).astype(np.float32) for c, n in zip(centres, counts)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.repeat(np.arange(len(counts)), counts)


def inputs(x, photos=None, qualities=None, person_ids=None, known=None, rejections=None):
    n = len(x)
    return GroupingInputs(
        face_ids=np.arange(1, n + 1, dtype=np.int64),
        photo_ids=np.arange(n, dtype=np.int64) if photos is None else np.asarray(photos, np.int64),
        sizes=np.full(n, 100.0), scores=np.full(n, 0.95),
        person_ids=np.full(n, -1, np.int64) if person_ids is None else np.asarray(person_ids, np.int64),
        embeddings=x, people=known or {}, rejections=rejections or set(),
        qualities=None if qualities is None else np.asarray(qualities, np.float64),
    )


def check_invariants(plan, data, minimum):
    for rows in plan.clusters:
        assert len(rows) >= minimum, rows
        assert len(set(data.photo_ids[rows].tolist())) == len(rows), rows  # nobody twice in a photo
        assert not plan.decided[rows].any()


@pytest.mark.parametrize("field", ["min_face_size", "min_score", "threshold", "join_distance", "min_quality"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_options_reject_nan_and_infinity(field, value):
    with pytest.raises(UsageProblem):
        GroupOptions(**{field: value}).check()


def test_options_defaults_pass():
    GroupOptions().check()
    GroupOptions(min_faces=5, min_quality=0, min_score=0, min_face_size=0).check()


def test_cli_refuses_nan_option(tmp_path):
    result = cli_run(tmp_path / "x.db", "group", "--min-size", "nan")
    assert result.exit_code == 2
    assert "--min-size" in result.output


def test_no_group_under_the_minimum_after_one_face_per_photo():
    """Five faces of which two share a photo: one face per photo leaves four, under a minimum of five."""
    x, truth = people([5, 12])
    photos = np.arange(len(x))
    photos[4] = photos[3]
    data = inputs(x, photos)
    plan = plan_groups(data, GroupOptions(min_faces=5))
    check_invariants(plan, data, 5)
    assert [sorted(set(truth[rows])) for rows in plan.clusters] == [[1]]


@pytest.mark.parametrize("minimum", [2, 3, 5])
def test_invariants_on_a_crowded_library(minimum):
    """Many people, many shared photos, some faces of poor quality: every group obeys the rules."""
    rng = np.random.default_rng(1)
    x, truth = people([2, 3, 4, 6, 9, 15, 1, 1, 2, 30], spread=0.08)
    photos = rng.integers(0, len(x) // 2, len(x))
    qualities = rng.choice([0.2, 0.9], len(x), p=[0.2, 0.8])
    data = inputs(x, photos, qualities)
    plan = plan_groups(data, GroupOptions(min_faces=minimum))
    check_invariants(plan, data, minimum)
    labels = np.full(len(x), -1)
    for c, rows in enumerate(plan.clusters):
        labels[rows] = c
    assert quality(truth, labels).bcubed_precision == 1.0


def test_low_quality_faces_never_form_a_group_but_may_join_one():
    x, truth = people([10, 8, 10])  # two people, so HDBSCAN has a choice to make (docs/quality.md, known limit)
    qualities = np.where(truth == 1, 0.1, 1.0)  # person 1: eight blurred faces
    qualities[[0, 1]] = 0.1  # two of person 0's faces are blurred too
    data = inputs(x, qualities=qualities)
    plan = plan_groups(data, GroupOptions())
    check_invariants(plan, data, 2)
    assert sorted(sorted(rows) for rows in plan.clusters) == [list(range(10)), list(range(18, 28))]
    # the two blurred faces of person 0 joined their person; person 1's never formed a group
    assert sorted(plan.attached) == [0, 1]
    assert not plan.passes[truth == 1].any()


def test_small_people_get_groups_only_below_five():
    x, truth = people([2, 3, 12, 9])
    data = inputs(x)
    small = plan_groups(data, GroupOptions())
    assert sorted(len(rows) for rows in small.clusters) == [2, 3, 9, 12]
    big = plan_groups(data, GroupOptions(min_faces=5))
    assert sorted(len(rows) for rows in big.clusters) == [9, 12]


def test_named_ignored_and_refused_faces_behave_as_before():
    x, truth = people([8, 8, 6, 12])
    person_ids = np.full(len(x), -1)
    person_ids[:6] = 7  # six of person 0's faces are named Ann; two new ones are not yet
    person_ids[8:14] = 8  # six of person 1's faces are in an ignored group
    known = {7: PersonRow(7, "sface", "Ann", False), 8: PersonRow(8, "sface", None, True)}
    rejections = {(7, 7)}  # face id 7 (row 6) was removed from Ann
    data = inputs(x, person_ids=person_ids, known=known, rejections=rejections)
    plan = plan_groups(data, GroupOptions())
    check_invariants(plan, data, 2)
    assert (7, 7) not in {(r + 1, p) for r, p in plan.joined}
    assert (7, 7) in {(r, p) for r, p in plan.joined}  # row 7 (face id 8) joins Ann
    assert {p for _, p in plan.joined} <= {7, 8}
    grouped = {r for rows in plan.clusters for r in rows}
    assert not grouped & set(range(6)) and not grouped & set(range(8, 14))
    assert any(set(rows) == set(range(22, 34)) for rows in plan.clusters)


# ---- real faces ------------------------------------------------------------------------------------


def identities(root):
    out = {}
    for manifest in root.glob("*/MANIFEST.tsv"):
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                out[str((manifest.parent / row["file"]).resolve())] = (manifest.parent.name, row.get("identity") or "")
    return out


@pytest.mark.facedata
def test_mixed_library_groups_real_people(facedata, tmp_path):
    """celeb5 + bbt + the multi-person group photos in one database: precise groups, few left out."""
    library = tmp_path / "library"
    for name in ("celeb5_opencv_course", "bbt_faceapi", "groups"):
        shutil.copytree(facedata / name, library / name)
    db = tmp_path / "library.db"
    cli_ok(db, "scan", "-q", str(library))
    cli_ok(db, "group", "-q")
    known = identities(library)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT f.photo_id, p.path, f.size, COALESCE(f.person_id, -1) FROM faces f JOIN photos p ON p.id = f.photo_id"
        ).fetchall()
    largest = {}
    for photo, path, size, person in rows:
        if photo not in largest or size > largest[photo][1]:
            largest[photo] = (path, size, person)
    truth, labels = [], []
    for path, _, person in largest.values():
        folder, who = known.get(str(Path(path).resolve()), ("", ""))
        if folder != "groups" and who:
            truth.append(who)
            labels.append(person)
    assert len(truth) > 140
    q = quality(truth, labels)
    assert q.bcubed_precision >= 0.99, q
    assert q.bcubed_f >= 0.95, q
    with sqlite3.connect(db) as conn:
        sizes = conn.execute("SELECT count(*) FROM faces WHERE person_id IS NOT NULL GROUP BY person_id").fetchall()
        twice = conn.execute(
            "SELECT count(*) FROM faces WHERE person_id IS NOT NULL GROUP BY person_id, photo_id HAVING count(*) > 1"
        ).fetchall()
    assert min(s for (s,) in sizes) >= 2 and not twice
    for person in set(labels) - {-1}:  # no group mixes three people
        assert len({w for w, p in zip(truth, labels) if p == person}) <= 2, person
