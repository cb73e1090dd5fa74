"""Embeddings -> cluster labels. Pure functions: arrays in, arrays out.

Plain `hdbscan.HDBSCAN` on 128-D vectors is quadratic in practice (35 s for
20,000 faces, 308 s for 50,000 on two cores), so grouping works on a sparse
k-nearest-neighbour graph instead:

1. `neighbours.knn`: each face's k nearest neighbours (exact in blocks for
   small sets, faiss's inverted file for large ones).
2. `hdbscan_labels`: HDBSCAN on that sparse distance graph (its components
   joined at the largest possible distance, since hdbscan refuses a
   disconnected sparse graph).
3. `one_face_per_photo`: a person appears once per photo.

Labels are -1 for noise (unclustered), else 0..n_clusters-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from facecluster.neighbours import Neighbours, knn, knn_across, knn_graph, knn_of

Labels = npt.NDArray[np.int64]


def members_by_label(labels: Labels) -> list[npt.NDArray[np.intp]]:
    """Row indices of each cluster 0..max, in one sort (not one scan per cluster)."""
    clustered = np.flatnonzero(labels >= 0)
    if clustered.size == 0:
        return []
    order = clustered[np.argsort(labels[clustered], kind="stable")]
    bounds = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    return [order[bounds[c] : bounds[c + 1]] for c in range(int(labels.max()) + 1)]


def connect_components(graph: sp.csr_matrix, far: float = 2.0) -> sp.csr_matrix:
    """Join the graph's connected components with edges of length `far`.

    hdbscan refuses a disconnected sparse graph. 2.0 is the largest distance
    between unit vectors, so these edges sit at the very top of the hierarchy,
    which is what "not connected" means.
    """
    count, component = connected_components(graph, directed=False)
    if count <= 1:
        return graph
    first = np.unique(component, return_index=True)[1]  # one face of each component
    rows, cols = first[1:], np.full(count - 1, first[0])
    links = sp.csr_matrix((np.full(count - 1, far, np.float32), (rows, cols)), shape=graph.shape)
    return graph.maximum(links).maximum(links.T).tocsr()


def hdbscan_labels(
    x: npt.NDArray[np.float32], min_cluster_size: int = 5, min_samples: int = 3, k: int = 15,
    neighbours: Neighbours | None = None,
) -> Labels:
    """HDBSCAN (Euclidean) over the sparse k-NN distance graph of `x`.

    `neighbours`: `knn(x, k)` when the caller has it already (grouping reuses it for attaching
    left-out faces: one search of a million faces instead of two).

    Example:
        labels = hdbscan_labels(x, min_cluster_size=5, min_samples=3)
    """
    n = len(x)
    if n < max(min_cluster_size, 2):
        return np.full(n, -1, np.int64)
    ids, dist = neighbours if neighbours is not None else knn(x, max(k, min_samples + 1))
    graph = connect_components(knn_graph(ids, dist, n))
    # Core distance as hdbscan's sparse path defines it: the (min_samples+1)-th
    # nearest other face. The k-NN lists are sorted, so it is one column.
    core = dist[:, min(min_samples, dist.shape[1] - 1)].astype(np.float64)
    del ids, dist
    return hdbscan_on_graph(graph, np.minimum(core, 2.0), min_cluster_size)


def hdbscan_on_graph(graph: sp.csr_matrix, core: npt.NDArray[np.float64], min_cluster_size: int) -> Labels:
    """HDBSCAN's tree and cluster selection over a connected sparse distance graph.

    The same steps as `hdbscan.HDBSCAN(metric="precomputed")` on a sparse
    matrix (mutual reachability, minimum spanning tree, single linkage,
    condensed tree, excess of mass), but with CSR arrays throughout: hdbscan's
    own sparse path goes through a LIL matrix of Python objects, which needed
    over 6 GB for a million faces.
    """
    try:
        # hdbscan's compiled internals load when grouping runs, not on import
        from hdbscan._hdbscan_linkage import label
        from hdbscan.hdbscan_ import _tree_to_labels
    except ImportError:  # a future hdbscan without these: the public, hungrier path
        import hdbscan

        model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1, metric="precomputed")
        return model.fit(graph).labels_.astype(np.int64)
    upper = sp.triu(graph, k=1).tocoo()
    reach = np.maximum(upper.data.astype(np.float64), np.maximum(core[upper.row], core[upper.col]))
    mutual = sp.csr_matrix((reach, (upper.row, upper.col)), shape=graph.shape)
    del upper, reach
    tree = minimum_spanning_tree(mutual).tocoo()
    del mutual
    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    single_linkage = label(edges)
    labels = _tree_to_labels(None, single_linkage, min_cluster_size)[0]
    return labels.astype(np.int64)


def split_merged(
    labels: Labels, x: npt.NDArray[np.float32], min_cluster_size: int = 5, min_samples: int = 3,
    coverage: float = 0.8,
) -> Labels:
    """Look again inside each cluster for two people merged into one.

    Look-alikes (siblings, Angelina Jolie and Megan Fox) can sit in one branch
    of the global hierarchy that HDBSCAN keeps whole. Clustered on their own,
    with core distances from their own neighbourhood, they separate. A split is
    kept only when the parts are real groups covering `coverage` of the
    members; the rest of the members become noise. Measured on celebrity17:
    BCubed F 0.967 -> 0.982, no change on the other sets (docs/quality.md).
    """
    out = np.full(len(labels), -1, np.int64)
    next_label = 0
    for members in members_by_label(labels):
        if len(members) == 0:
            continue
        inner = hdbscan_labels(x[members], min_cluster_size, min_samples) if len(members) >= 2 * min_cluster_size else None
        if inner is not None and inner.max() >= 1 and (inner >= 0).mean() > coverage:
            for c in range(int(inner.max()) + 1):
                out[members[inner == c]] = next_label
                next_label += 1
        else:
            out[members] = next_label
            next_label += 1
    return out


def agglomerative_labels(x: npt.NDArray[np.float32], threshold: float, min_cluster_size: int = 2, k: int = 15) -> Labels:
    """Average-linkage agglomerative clustering, Euclidean, cut at `threshold`.

    Restricted to the k-NN graph (sklearn's `connectivity`), which keeps memory
    linear instead of the n^2 of a full distance matrix. Clusters smaller than
    `min_cluster_size` become noise.
    """
    # scikit-learn is slow to import; only the agglomerative method needs it
    from sklearn.cluster import AgglomerativeClustering

    n = len(x)
    if n < 2:
        return np.full(n, -1, np.int64)
    ids, dist = knn(x, k)
    connectivity = knn_graph(ids, dist, n)
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, linkage="average", metric="euclidean",
        connectivity=connectivity,
    )
    labels = model.fit_predict(x).astype(np.int64)
    return drop_small(labels, min_cluster_size)


def drop_small(labels: Labels, min_size: int) -> Labels:
    """Clusters under `min_size` members become noise; the rest renumbered 0.. by size."""
    out = np.full(len(labels), -1, np.int64)
    groups = [m for m in members_by_label(labels) if len(m) >= min_size]
    groups.sort(key=len, reverse=True)  # stable: ties keep label order
    for new, members in enumerate(groups):
        out[members] = new
    return out


def one_face_per_photo(labels: Labels, photo_ids: npt.NDArray[np.int64], x: npt.NDArray[np.float32]) -> Labels:
    """Within each cluster keep, per photo, only the face closest to the cluster's centre.

    A person appears once in a photo, so two faces of one photo in one cluster
    mean one of them is someone else (often a sibling or a reflection).
    """
    out = labels.copy()
    for members in members_by_label(labels):
        photos = photo_ids[members]
        if len(np.unique(photos)) == len(photos):
            continue
        centre = x[members].mean(axis=0)
        seen: set[int] = set()
        for m in members[np.argsort(-(x[members] @ centre), kind="stable")]:
            if int(photo_ids[m]) in seen:
                out[m] = -1
            seen.add(int(photo_ids[m]))
    return out


def match_groups(old: dict[int, set[int]], new: list[set[int]]) -> dict[int, int]:
    """Which new cluster (by index) keeps which old group number.

    Pairs are taken greedily by overlap, largest first; a pair matches when the
    shared faces are more than half of the smaller of the two. Each old number
    and each new cluster is used at most once.
    """
    pairs = []
    for index, members in enumerate(new):
        for number, old_members in old.items():
            shared = len(members & old_members)
            if shared and 2 * shared > min(len(members), len(old_members)):
                pairs.append((shared, -number, index, number))
    pairs.sort(reverse=True)
    taken_old: set[int] = set()
    result: dict[int, int] = {}
    for _, _, index, number in pairs:
        if index not in result and number not in taken_old:
            result[index] = number
            taken_old.add(number)
    return result


def anchor_votes(
    x: npt.NDArray[np.float32],
    photos: npt.NDArray[np.int64],
    anchor_x: npt.NDArray[np.float32],
    anchor_person: npt.NDArray[np.int64],
    anchor_photos: npt.NDArray[np.int64],
    threshold: float,
    k: int = 5,
    votes: int = 3,
    block: int = 2048,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The person a real majority of each face's nearest anchors name; -1 for none. Also the nearest anchor's distance.

    Anchors are faces the user put with a person (named, merged, accepted,
    imported). Among a face's `k` nearest anchors from other photos (a face in
    its own photo is someone else), the nearest must lie within `threshold`,
    and its person must hold at least `votes` of the k, or, for a person with
    fewer anchors than that, every one of them and at least two: one close
    face is never a majority of one.

    Example:
        winner, nearest = anchor_votes(x, photos, ax, aperson, aphotos, threshold=1.0)
    """
    n = len(x)
    winner = np.full(n, -1, np.int64)
    nearest = np.full(n, np.inf)
    if n == 0 or len(anchor_x) == 0:
        return winner, nearest
    persons, counts = np.unique(anchor_person, return_counts=True)
    need = dict(zip(persons.tolist(), np.maximum(np.minimum(counts, votes), 2).tolist()))
    # A few more than k, so that k remain once the anchors in the face's own photo are left out.
    ids, dist = knn_across(x, anchor_x, k + 8, block=block)
    for row in range(n):
        ok = ids[row] >= 0
        ok[ok] &= anchor_photos[ids[row][ok]] != photos[row]
        near, d = ids[row][ok][:k], dist[row][ok][:k]
        if len(near) == 0 or not d[0] <= threshold:
            continue
        voters = anchor_person[near]
        person = int(voters[0])
        if int((voters == person).sum()) >= need[person]:
            winner[row], nearest[row] = person, float(d[0])
    return winner, nearest


def one_join_per_photo(
    rows: npt.NDArray[np.intp], person: npt.NDArray[np.int64], distance: npt.NDArray[np.float64],
    photos: npt.NDArray[np.int64], taken: set[tuple[int, int]],
) -> npt.NDArray[np.bool_]:
    """Which proposed joins (row -> person) to keep: none where the person is already in the photo
    (`taken` holds (photo, person) pairs), and of two faces of one photo proposed for one person, the nearer.

    Example:
        keep = one_join_per_photo(np.array([0, 1]), np.array([7, 7]), np.array([0.5, 0.6]), np.array([3, 3]), set())
    """
    keep = np.zeros(len(rows), bool)
    best: dict[tuple[int, int], int] = {}
    for j, (row, who) in enumerate(zip(rows.tolist(), person.tolist())):
        key = (int(photos[row]), who)
        if key in taken:
            continue
        if key not in best or distance[j] < distance[best[key]]:
            best[key] = j
    keep[list(best.values())] = True
    return keep


# ---- after clustering: trim, small groups, attach (evidence: docs/quality.md) ------------------


@dataclass(frozen=True)
class AttachRule:
    """When a left-out face joins a group, by the vote of its nearest grouped faces.

    Among its `k` nearest grouped faces (other photos), at least `votes` are in
    one group, the nearest of all is one of them, and every one of them lies
    within that group's own reach: `ratio` times the group's typical distance
    from a member to its k-th nearest fellow member (90th percentile), but
    never less than `floor` nor more than `cap`. A loose group (a person seen
    over decades) reaches farther than a tight one (a look-alike's face sits
    1.0 from a tight group of 0.75).
    """

    k: int = 5
    votes: int = 3
    ratio: float = 1.3
    floor: float = 1.0
    cap: float = 1.15


class Fellows:
    """How far each member of a group lies from its nearest fellow members, searched once per membership.

    Trimming, the small-group merge and attaching each ask, group by group, for
    the distance from every member to its k-th nearest fellow. Most groups keep
    the same members from one step to the next, so one search per membership
    serves all three (tens of thousands of groups at a million faces).
    `x` is the array the labels index; memberships are sorted row arrays, as
    `members_by_label` gives them.
    """

    def __init__(self, x: npt.NDArray[np.float32], k: int = 5) -> None:
        self.x, self.k = x, k
        self._found: dict[bytes, npt.NDArray[np.float32]] = {}

    def kth(self, members: npt.NDArray[np.intp], k: int) -> npt.NDArray[np.float32]:
        """Each member's distance to its k-th nearest fellow (the last there is, in a group of k or fewer)."""
        key = np.asarray(members, np.int64).tobytes()
        dist = self._found.get(key)
        if dist is None or dist.shape[1] < min(k, len(members) - 1):
            dist = knn(self.x[members], min(max(k, self.k), len(members) - 1))[1]
            self._found[key] = dist
        return dist[:, min(k, len(members) - 1) - 1]


def trim_loose(
    labels: Labels, x: npt.NDArray[np.float32], k: int = 4, limit: float = 1.06, fellows: Fellows | None = None,
) -> Labels:
    """Members whose k-th nearest fellow member is farther than `limit` become noise.

    HDBSCAN with a minimum of five drags people seen two to four times into the
    nearest real group (two George W. Bush photos into Madonna's). Such an
    intruder has fewer than k close fellows. Run after `one_face_per_photo`
    (so no two members share a photo); members trimmed by mistake come back
    through `attach_faces`.

    Example:
        labels = trim_loose(labels, x)
    """
    fellows = fellows if fellows is not None else Fellows(x, k)
    out = labels.copy()
    for members in members_by_label(labels):
        if len(members) >= 2:
            out[members[fellows.kth(members, k) > limit]] = -1
    return out


def group_reach(
    labels: Labels, x: npt.NDArray[np.float32], k: int = 5, q: float = 0.9, fellows: Fellows | None = None,
) -> npt.NDArray[np.float64]:
    """Per label: the `q` quantile of its members' distance to their k-th nearest fellow member (NaN if under 2)."""
    fellows = fellows if fellows is not None else Fellows(x, k)
    groups = members_by_label(labels)
    reach = np.full(len(groups), np.nan)
    for c, members in enumerate(groups):
        if len(members) >= 2:
            reach[c] = float(np.quantile(fellows.kth(members, k), q))
    return reach


# How many nearest faces a left-out face looks among for its grouped neighbours: found once for
# every face (exact up to 20,000 faces, the inverted-file index beyond), so attaching stays
# linear in the library's size.
ATTACH_SEARCH = 15


def _proposals(
    labels: Labels, photos: npt.NDArray[np.int64], candidates: npt.NDArray[np.intp], neighbours: Neighbours,
    rule: AttachRule, reach: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """For each candidate row: the group its vote picks under `rule` (-1 for none) and its nearest distance there.

    The voters are the first `rule.k` grouped faces, from other photos (a face in
    its own photo is someone else), in the candidate's nearest-neighbour list.
    """
    winner = np.full(len(candidates), -1, np.int64)
    nearest = np.full(len(candidates), np.inf)
    ids, dist = neighbours
    if len(candidates) == 0 or not (labels >= 0).any():
        return winner, nearest
    limit = np.clip(rule.ratio * np.nan_to_num(reach, nan=np.inf), rule.floor, rule.cap)
    for j, row in enumerate(candidates.tolist()):
        near = ids[row]
        ok = near >= 0
        near, d = near[ok], dist[row][ok]
        keep = (labels[near] >= 0) & (photos[near] != photos[row])
        votes, d = labels[near[keep]][: rule.k], d[keep][: rule.k]
        if len(votes) < rule.votes:
            continue
        group = int(votes[0])  # the nearest grouped face decides which group is asked
        mine = votes == group
        if mine.sum() < rule.votes or d[mine].max() > limit[group]:
            continue
        winner[j], nearest[j] = group, float(d[0])
    return winner, nearest


def _apply(labels: Labels, photos: npt.NDArray[np.int64], rows, winner, nearest) -> Labels:
    """Give rows their winners, keeping one face per group per photo (the nearest)."""
    out = labels.copy()
    taken = {(int(p), int(g)) for p, g in zip(photos[labels >= 0].tolist(), labels[labels >= 0].tolist())}
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for row, group, d in zip(np.asarray(rows).tolist(), winner.tolist(), nearest.tolist()):
        key = (int(photos[row]), group)
        if group < 0 or key in taken:
            continue
        if key not in best or d < best[key][0]:
            best[key] = (d, row)
    for (_, group), (_, row) in best.items():
        out[row] = group
    return out


def attach_faces(
    labels: Labels, x: npt.NDArray[np.float32], photos: npt.NDArray[np.int64], eligible: npt.NDArray[np.bool_],
    rule: AttachRule = AttachRule(), iterations: int = 3, neighbours: Neighbours | None = None,
    fellows: Fellows | None = None,
) -> Labels:
    """Unclustered eligible faces join a group when `rule` says the evidence is strong.

    Repeated up to `iterations` times (a face may be voted in by faces that
    joined in the round before); each group's reach is measured once, on the
    clustering's own members, so that joined faces do not widen it.

    Example:
        labels = attach_faces(labels, x, photo_ids, np.ones(len(x), bool))
    """
    out = labels.copy()
    reach = group_reach(labels, x, rule.k, fellows=fellows)
    neighbours = neighbours if neighbours is not None else knn_of(x, np.flatnonzero((labels < 0) & eligible), ATTACH_SEARCH)
    for _ in range(iterations):
        candidates = np.flatnonzero((out < 0) & eligible)
        winner, nearest = _proposals(out, photos, candidates, neighbours, rule, reach)
        if not (winner >= 0).any():
            break
        out = _apply(out, photos, candidates, winner, nearest)
    return out


def merge_small_groups(
    labels: Labels, x: npt.NDArray[np.float32], photos: npt.NDArray[np.int64], below: int,
    rule: AttachRule = AttachRule(), neighbours: Neighbours | None = None, fellows: Fellows | None = None,
) -> Labels:
    """A group of fewer than `below` faces joins a bigger group when every member would, unanimously.

    The strict small-group pass also finds the harder photos of well-known
    people (two of Madonna's in one small group). Each member is asked as if it
    were left out, with all k nearest votes required (a kate_winslet trio won
    3 and 4 of 5 votes for Madonna's loose group; Madonna's own pair 5 of 5).

    Example:
        labels = merge_small_groups(labels, x, photo_ids, below=5)
    """
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    small = np.flatnonzero((sizes > 0) & (sizes < below))
    if len(small) == 0:
        return labels
    in_small = np.isin(labels, small)
    big_only = np.where(in_small, -1, labels)
    strict = AttachRule(rule.k, rule.k, rule.ratio, rule.floor, rule.cap)
    rows = np.flatnonzero(in_small)
    neighbours = neighbours if neighbours is not None else knn_of(x, rows, ATTACH_SEARCH)
    winner, _ = _proposals(big_only, photos, rows, neighbours, strict, group_reach(big_only, x, rule.k, fellows=fellows))
    vote = dict(zip(rows.tolist(), winner.tolist()))
    out = labels.copy()
    for group in small.tolist():
        members = np.flatnonzero(labels == group)
        targets = {vote[int(m)] for m in members}
        if len(targets) != 1 or -1 in targets:
            continue
        target = targets.pop()
        if np.isin(photos[members], photos[out == target]).any():
            continue  # would put a person twice in one photo
        out[members] = target
    return out


def strict_small_groups(
    labels: Labels, x: npt.NDArray[np.float32], photos: npt.NDArray[np.int64], eligible: npt.NDArray[np.bool_],
    distance: float = 0.85, min_size: int = 2, max_size: int = 4, k: int = 10,
) -> Labels:
    """New groups of `min_size` to `max_size` faces among the unclustered eligible ones.

    Complete linkage cut at `distance`: every two faces of a small group are
    that close, and all come from different photos. Merges follow the k-NN
    graph (sklearn's `connectivity`). A merge at most `distance` apart joins
    faces linked by a k-NN edge no longer than `distance`, so the linkage runs
    on each connected component of those short edges alone: the same groups
    as one run over all the faces, but a million-face library's quarter of a
    million left-out faces no longer go through one quadratic-memory run (14
    minutes and 7.6 GB when it did). New labels follow the existing ones.

    Example:
        labels = strict_small_groups(labels, x, photo_ids, passes)
    """
    out = labels.copy()
    rows = np.flatnonzero((labels < 0) & eligible)
    if len(rows) < max(min_size, 2):
        return out
    ids, dist = knn(x[rows], min(k, len(rows) - 1))
    connectivity = knn_graph(ids, dist, len(rows))
    short = connectivity.copy()
    short.data[short.data > distance] = 0  # the edges short enough for a merge
    short.eliminate_zeros()
    count, component = connected_components(short, directed=False)
    order = np.argsort(component, kind="stable")
    bounds = np.searchsorted(component[order], np.arange(count + 1))
    next_label = int(labels.max(initial=-1)) + 1
    for c in range(count):
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) < min_size:
            continue
        for group in _complete_linkage(x[rows[members]], connectivity[members][:, members], distance):
            chosen = members[group]
            if min_size <= len(chosen) <= max_size and len(np.unique(photos[rows[chosen]])) == len(chosen):
                out[rows[chosen]] = next_label
                next_label += 1
    return out


def _complete_linkage(x: npt.NDArray[np.float32], connectivity: sp.csr_matrix, distance: float) -> list[npt.NDArray[np.intp]]:
    """Complete-linkage clusters (index arrays) of a few faces, merging along `connectivity`, cut at `distance`.

    Greedy like scikit-learn's: the two connected clusters whose farthest members are nearest merge
    first, while that distance is within `distance`. Written out for the small components that are
    nearly all of them (a scikit-learn call costs milliseconds each); big ones go to scikit-learn.
    """
    n = len(x)
    if n > 64:
        from sklearn.cluster import AgglomerativeClustering  # scikit-learn is slow to import; only large components need it

        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance, linkage="complete", metric="euclidean", connectivity=connectivity,
        )
        return members_by_label(model.fit_predict(x).astype(np.int64))
    d = np.sqrt(np.maximum(2.0 - 2.0 * (x @ x.T), 0.0)).astype(np.float64)
    linked = connectivity.toarray() > 0
    clusters = {i: [i] for i in range(n)}
    while True:
        best, pair = np.inf, None
        keys = sorted(clusters)
        for a_i, a in enumerate(keys):
            for b in keys[a_i + 1 :]:
                if not linked[np.ix_(clusters[a], clusters[b])].any():
                    continue
                far = d[np.ix_(clusters[a], clusters[b])].max()
                if far < best:
                    best, pair = far, (a, b)
        if pair is None or best > distance:
            return [np.array(sorted(m), np.intp) for m in clusters.values()]
        a, b = pair
        clusters[a] += clusters.pop(b)
