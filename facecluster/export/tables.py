"""JSON and CSV exports for scripts: every face, with its person, photo, box and date."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from facecluster.export import collect
from facecluster.store import ExportFace, Store


def _face(face: ExportFace) -> dict:
    return {
        "face_id": face.face_id,
        "photo": face.path,
        "bbox": [round(v, 1) for v in face.box],
        "score": round(face.score, 4),
        "taken": face.taken,
    }


def export_json(store: Store, out: TextIO, include_ignored: bool = False) -> int:
    """`{"people": [{"id", "name", "ignored", "faces": [...]}], "unclustered": [...]}`. Returns faces written.

    Example:
        export_json(Store("library.db"), sys.stdout)
    """
    everyone = collect(store, include_ignored)
    document = {
        "people": [
            {"id": p.id, "name": p.name, "ignored": p.ignored, "faces": [_face(f) for f in p.faces]}
            for p in everyone.people
        ],
        "unclustered": [_face(f) for f in everyone.unclustered],
    }
    json.dump(document, out, ensure_ascii=False, indent=1)
    out.write("\n")
    return sum(len(p.faces) for p in everyone.people) + len(everyone.unclustered)


CSV_COLUMNS = ["person_id", "name", "ignored", "face_id", "photo", "x", "y", "w", "h", "score", "taken"]


def export_csv(store: Store, out: TextIO, include_ignored: bool = False) -> int:
    """One row per face; unclustered faces have an empty person_id. Returns rows written.

    Example:
        export_csv(Store("library.db"), open("faces.csv", "w", newline=""))
    """
    everyone = collect(store, include_ignored)
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    groups = [(p.id, p.name, p.ignored, p.faces) for p in everyone.people] + [(None, None, False, everyone.unclustered)]
    for person_id, name, ignored, faces in groups:
        for f in faces:
            writer.writerow([
                "" if person_id is None else person_id, name or "", int(ignored), f.face_id, f.path,
                *(round(v, 1) for v in f.box), round(f.score, 4), f.taken or "",
            ])
            rows += 1
    return rows
