"""SFace embedding: time a face and verification accuracy, float against int8, in one run.

Aligned crops (the largest face of each photo, found and aligned by the real
pack) of the labelled sets celeb5 + lfw_subset + celebrity17 in
../shared/facedata; every pair of them is a same-person or different-person
pair. Printed per variant: ms a face (one intra-op thread, one face a call,
the minimum of --repeat passes over --timed crops, the variants' passes
interleaved), ROC AUC, verification accuracy (the best threshold's mean of the
same-pair and different-pair accuracies, i.e. on balanced classes), and the
cosine between each face's embedding and the float one from before this change.

Variants: `fp32-expand` (the first float path: PRelu expanded to
Relu/Sub/Mul/Add, weights folded by onnxruntime), `fp32-dwprelu` (the float
graph of facecluster.models.sface.float_graph, PRelu as two depthwise Convs;
what int8 is built from), `fp32 1/photo` and `fp32 12/photo` (what the `sface`
pack runs, sface.runtime_graph: PRelu folded into the next layer, the last
Gemm run once per photo; fed photos of 1 face and of 12 faces) and `int8`
(the rejected int8 build, benchmarks/sface_int8.py; not in the product).

    python benchmarks/embed_speed.py
    taskset -c 0 python benchmarks/embed_speed.py --repeat 7
    python benchmarks/embed_speed.py --threads 2

--write-ranges recalibrates the int8 activation ranges (min/max of each
tensor averaged over the calibration faces: every face of celebrity_extras,
bbt, dlib_johns, walking_dead, face_recognition_examples, openface_examples,
facenet_pytorch_singletons and up to 12 a photo of groups/; none of them is in
the verification sets) and rewrites benchmarks/sface_int8_ranges.py.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sface_int8, run as a script from anywhere

from facecluster.align import align_faces  # noqa: E402
from facecluster.decode import decode  # noqa: E402
from facecluster.models import SFACE_FILES, load_pack, sface_model_dir  # noqa: E402
from facecluster.models import onnx as onnx_util  # noqa: E402
from facecluster.models.sface import float_graph  # noqa: E402
from facecluster.models.sface_graph import repair_block_quantized  # noqa: E402
from sface_int8 import int8_key, quantize  # noqa: E402

FACEDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "facedata"
VERIFY_SETS = ("celeb5_opencv_course", "lfw_subset_krasserm", "celebrity17_kaggle_via_macfaceswap")
CALIBRATION_SETS = (
    "celebrity_extras_macfaceswap", "bbt_faceapi", "dlib_johns", "walking_dead_opencv4nodejs",
    "face_recognition_examples", "openface_examples", "facenet_pytorch_singletons", "groups",
)
RANGES_FILE = Path(__file__).resolve().parent / "sface_int8_ranges.py"


def crops_of(sets, root: Path, all_faces_of: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops and 'set/identity' labels: the largest face a photo (up to 12 a photo in all_faces_of)."""
    detector = load_pack("sface").detector
    crops, labels = [], []
    for name in sets:
        with open(root / name / "MANIFEST.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        for row in rows:
            rgb = decode((root / name / row["file"]).read_bytes()).rgb
            found = detector.predict(rgb)
            if len(found) == 0:
                continue
            if name in all_faces_of:
                keep = list(range(min(len(found), 12)))
            else:
                areas = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
                keep = [int(np.argmax(areas))]
            crops.append(align_faces(rgb, found.landmarks[keep]))
            labels += [f"{name}/{row['identity']}"] * len(keep)
    return np.concatenate(crops), np.array(labels)


def expand_prelu(model_bytes: bytes) -> bytes:
    """Rewrite every PRelu(x, a) as Relu(x) + a * (x - Relu(x)), which is exact.

    onnxruntime's CPU PRelu with a (C, 1, 1) slope falls back to generic
    broadcasting and took 60% of SFace's time; the four plain element-wise
    ops cut SFace from 24 to 18 ms a face here. Superseded for SFace by
    `sface_graph.prelu_as_depthwise`; kept here as the `fp32-expand` baseline.
    """
    model = onnx.load_from_string(model_bytes)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        relu, negative, scaled = f"{y}/relu", f"{y}/negative", f"{y}/scaled"
        nodes += [
            helper.make_node("Relu", [x], [relu]),
            helper.make_node("Sub", [x, relu], [negative]),
            helper.make_node("Mul", [negative, slope], [scaled]),
            helper.make_node("Add", [relu, scaled], [y]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


def blob(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop[None].transpose(0, 3, 1, 2), dtype=np.float32)


def one_at_a_time(session):
    """A variant that runs a plain graph one face a call."""
    name = session.get_inputs()[0].name
    return lambda crops: np.concatenate([session.run(None, {name: blob(c)})[0].reshape(1, -1) for c in crops])


def per_photo(embedder, faces: int):
    """A variant that runs the pack's embedder the way a scan does: a photo's `faces` faces a call."""
    return lambda crops: np.concatenate([embedder.predict(crops[i : i + faces]) for i in range(0, len(crops), faces)])


def embed(run, crops: np.ndarray) -> np.ndarray:
    out = run(crops)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def ms_per_face(variants: dict, crops: np.ndarray, repeat: int) -> dict[str, float]:
    """The fastest of `repeat` passes over `crops` per variant, passes interleaved so that
    other work on the machine slows every variant alike."""
    for run in variants.values():
        run(crops[:12])
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for label, run in variants.items():
            start = time.perf_counter()
            run(crops)
            best[label] = min(best[label], (time.perf_counter() - start) / len(crops) * 1000)
    return best


def verification(embeddings: np.ndarray, labels: np.ndarray) -> tuple[float, float, int, int]:
    """(ROC AUC, best balanced accuracy, same pairs, different pairs) over every pair."""
    upper = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    score = (embeddings @ embeddings.T)[upper]
    order = np.argsort(-score, kind="stable")
    same_sorted = same[order]
    tp = np.cumsum(same_sorted) / same.sum()  # same pairs accepted, threshold just below each score
    fp = np.cumsum(~same_sorted) / (~same).sum()
    auc = float(np.trapezoid(np.concatenate([[0], tp]), np.concatenate([[0], fp])))
    balanced = float(np.max((tp + (1 - fp)) / 2))
    return auc, balanced, int(same.sum()), int((~same).sum())


def write_ranges(graph: bytes, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.crops = iter(calibration)

        def get_next(self):
            crop = next(self.crops, None)
            return None if crop is None else {"data": blob(crop)}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sface_float.onnx"
        path.write_bytes(graph)
        calibrator = create_calibrator(
            path, sorted(set(QLinearOpsRegistry) | set(QDQRegistry)), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax, extra_options={"moving_average": True},
        )
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
    lines = [
        '"""Activation ranges for int8 SFace (generated by benchmarks/embed_speed.py --write-ranges; do not edit).',
        "",
        f"Per tensor of facecluster.models.sface.float_graph: the min and max over {len(calibration)} aligned faces of",
        "../shared/facedata (sets not used for verification), each averaged over the faces.",
        '"""',
        "",
        "RANGES: dict[str, tuple[float, float]] = {",
    ]
    for name in sorted(data.data):
        lo, hi = data.data[name].range_value
        lines.append(f"    {name!r}: ({float(np.asarray(lo).reshape(-1)[0])!r}, {float(np.asarray(hi).reshape(-1)[0])!r}),")
    lines.append("}")
    tmp_file = RANGES_FILE.with_suffix(".py.tmp")
    tmp_file.write_text("\n".join(lines) + "\n")
    os.replace(tmp_file, RANGES_FILE)
    print(f"wrote {len(data.data)} ranges from {len(calibration)} faces to {RANGES_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facedata", default=str(FACEDATA))
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of each session")
    parser.add_argument("--timed", type=int, default=60, help="crops in one timed pass")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the fastest is reported")
    parser.add_argument("--write-ranges", action="store_true", help="recalibrate the int8 activation ranges")
    args = parser.parse_args()
    root = Path(args.facedata)
    if not root.is_dir():
        sys.exit(f"facedata not found: {root}")

    folder = sface_model_dir()
    name, sha = SFACE_FILES["embedder"]
    shipped = onnx_util.read_verified(folder / name, sha)
    graph = float_graph(shipped)
    if args.write_ranges:
        calibration, _ = crops_of(CALIBRATION_SETS, root, all_faces_of=("groups",))
        write_ranges(graph, calibration)
        return

    from sface_int8_ranges import RANGES  # written by --write-ranges: read only once it is there

    start = time.perf_counter()
    int8 = quantize(graph, RANGES)
    build_s = time.perf_counter() - start
    crops, labels = crops_of(VERIFY_SETS, root)
    before = onnx_util.make_dims_dynamic(expand_prelu(repair_block_quantized(shipped)), {0: "batch"})
    pack = load_pack("sface")
    pack.embedder.threads = args.threads
    variants = {
        "fp32-expand": one_at_a_time(onnx_util.session(before, args.threads)),
        "fp32-dwprelu": one_at_a_time(onnx_util.session(graph, args.threads)),
        "fp32 1/photo": per_photo(pack.embedder, 1),
        "fp32 12/photo": per_photo(pack.embedder, 12),
        "int8": one_at_a_time(onnx_util.session(int8, args.threads, fold_qdq=False)),
    }
    reference = embed(variants["fp32-expand"], crops)
    print(f"faces {len(crops)} of {len(set(labels))} people ({', '.join(VERIFY_SETS)}); threads {args.threads}; "
          f"cpu affinity {sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    print(f"int8 build {build_s:.1f} s (key {int8_key(sha, RANGES)[:40]}...)")
    print(f"{'variant':14s} {'ms/face':>8s} {'ROC AUC':>8s} {'accuracy':>9s} {'cos min':>8s} {'cos p1':>8s} {'cos mean':>9s}")
    baseline = None
    timings = ms_per_face(variants, crops[: args.timed], args.repeat)
    for label, run in variants.items():
        vectors = embed(run, crops)
        auc, accuracy, n_same, n_diff = verification(vectors, labels)
        baseline = baseline if baseline is not None else accuracy
        cos = (vectors * reference).sum(axis=1)
        ms = timings[label]
        print(f"{label:14s} {ms:8.2f} {auc:8.5f} {accuracy * 100:8.2f}% {cos.min():8.4f} {np.percentile(cos, 1):8.4f} {cos.mean():9.4f}"
              f"   accuracy {100 * (accuracy - baseline):+.2f} points")
    print(f"pairs: {n_same} same-person, {n_diff} different-person")


if __name__ == "__main__":
    main()
