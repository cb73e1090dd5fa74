"""Clustering quality against known identities. Pure functions.

Noise (label -1) counts as a cluster of its own for every face: an
unclustered face is "right" about itself and misses the rest of its person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Quality:
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    unclustered: float  # share of faces labelled -1


def _singletons(pred: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    pred = np.asarray(pred, np.int64).copy()
    noise = pred < 0
    pred[noise] = pred.max(initial=-1) + 1 + np.arange(noise.sum())
    return pred


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def quality(truth: npt.ArrayLike, pred: npt.ArrayLike) -> Quality:
    """BCubed and pairwise precision/recall/F of `pred` against `truth` labels.

    Example:
        quality([0, 0, 1], [5, 5, -1]).bcubed_f  # 1.0
    """
    truth = np.unique(np.asarray(truth), return_inverse=True)[1].astype(np.int64)
    raw = np.asarray(pred, np.int64)
    pred = np.unique(_singletons(raw), return_inverse=True)[1].astype(np.int64)
    n = len(truth)
    if n == 0:
        return Quality(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0)
    # Contingency counts: faces with truth t in predicted cluster c.
    pairs, joint = np.unique(truth * (pred.max() + 1) + pred, return_counts=True)
    t_of, c_of = np.divmod(pairs, pred.max() + 1)
    size_t = np.bincount(truth)
    size_c = np.bincount(pred)
    # BCubed: each face's precision = |same truth in its cluster| / |cluster|, averaged over faces.
    precision = float((joint * joint / size_c[c_of]).sum() / n)
    recall = float((joint * joint / size_t[t_of]).sum() / n)
    together = float((joint * (joint - 1)).sum() / 2)
    pred_pairs = float((size_c * (size_c - 1)).sum() / 2)
    true_pairs = float((size_t * (size_t - 1)).sum() / 2)
    pp = together / pred_pairs if pred_pairs else 1.0
    pr = together / true_pairs if true_pairs else 1.0
    return Quality(precision, recall, _f(precision, recall), pp, pr, _f(pp, pr), float((raw < 0).mean()))
