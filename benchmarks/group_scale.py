"""Grouping time and peak memory on synthetic clustered embeddings.

Each size runs in a fresh process (so its peak memory is its own) through
`plan_groups`, the same code `facecluster group` runs, on a first grouping:
nothing named yet, every face clustered.

Synthetic faces: identities with a long-tailed number of photos (a few people
with thousands, most with a handful), 128-D unit vectors scattered around
each identity so that same-person distances average about 0.8 and different
people about 1.4, as SFace's do on ../shared/facedata.

    python benchmarks/group_scale.py 10000 100000 1000000
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic(n: int, dim: int = 128, seed: int = 0, spread: float = 0.55):
    rng = np.random.default_rng(seed)
    people = max(1, n // 20)
    weights = 1.0 / np.arange(1, people + 1) ** 0.8  # long tail: Zipf-like photo counts
    truth = rng.choice(people, size=n, p=weights / weights.sum())
    centres = rng.standard_normal((people, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in slices, to keep the generator's own memory small
        t = truth[start : start + 100_000]
        v = centres[t] + rng.standard_normal((len(t), dim)).astype(np.float32) * (spread / np.sqrt(dim))
        x[start : start + len(t)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return x, truth


def one(n: int) -> None:
    from benchmarks.metrics import quality
    from facecluster.grouping import GroupOptions, plan_groups
    from facecluster.store import GroupingInputs

    x, truth = synthetic(n)
    data = GroupingInputs(
        face_ids=np.arange(n, dtype=np.int64), photo_ids=np.arange(n, dtype=np.int64),
        sizes=np.full(n, 100.0), scores=np.full(n, 0.9), person_ids=np.full(n, -1, np.int64),
        embeddings=x, people={}, rejections=set(),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    plan = plan_groups(data, GroupOptions())
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    labels = np.full(n, -1, np.int64)
    for c, rows in enumerate(plan.clusters):
        labels[rows] = c
    q = quality(truth, labels)
    print(f"{n:>9} {seconds:>8.1f} s (CPU {cpu:>6.1f} s) {peak:>8.0f} MB (data {before:>5.0f} MB) {len(plan.clusters):>7} groups "
          f"B3 F {q.bcubed_f:.3f}  unclustered {q.unclustered:.3f}  load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(int(sys.argv[2]))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    print(f"load average {os.getloadavg()[0]:.1f}, 2 cores; wall time, its CPU time, peak RSS of the process")
    print(f"{'faces':>9} {'time':>10} {'':>14} {'peak RSS':>11} {'':>17} {'groups':>7}  quality")
    for n in sizes:
        subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)


if __name__ == "__main__":
    main()
