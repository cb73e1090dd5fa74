"""JSON and CSV exports for scripts: every face, with its person, photo, box and date.

Both are always valid UTF-8: a photo path whose bytes are not UTF-8 is written
with those bytes as `\\xNN` (the form the terminal output uses too). CSV cells
that a spreadsheet would run as a formula (starting with = + - @ tab or
carriage return, the OWASP rule) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from facecluster.export import collect
from facecluster.naming_rules import portable_path
from facecluster.store import ExportFace, Store

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _face(face: ExportFace) -> dict:
    return {
        "face_id": face.face_id,
        "photo": portable_path(face.path),
        "bbox": [round(v, 1) for v in face.box],
        "score": round(face.score, 4),
        "taken": face.taken,
        "taken_source": face.taken_source,
        # A video's face: seconds into the video of its frame (stills have no such key).
        **({"frame_time": face.frame_ms / 1000} if face.frame_ms is not None else {}),
    }


def export_json(store: Store, out: TextIO, include_ignored: bool = False) -> int:
    """`{"people": [{"id", "name", "ignored", "faces": [...]}], "unclustered": [...]}`. Returns faces written.

    Example:
        export_json(Store("library.db"), sys.stdout)
    """
    everyone = collect(store, include_ignored)
    document = {
        "people": [
            {"id": p.id, "name": portable_path(p.name) if p.name else None, "ignored": p.ignored, "faces": [_face(f) for f in p.faces]}
            for p in everyone.people
        ],
        "unclustered": [_face(f) for f in everyone.unclustered],
    }
    json.dump(document, out, ensure_ascii=False, indent=1)
    out.write("\n")
    return sum(len(p.faces) for p in everyone.people) + len(everyone.unclustered)


# frame_time: seconds into the video of a video face's frame; empty for stills.
CSV_COLUMNS = ["person_id", "name", "ignored", "face_id", "photo", "x", "y", "w", "h", "score", "taken", "taken_source",
               "frame_time"]


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a would-be formula gets a leading apostrophe.

    Example:
        safe_cell('=HYPERLINK("http://x")') == "'=HYPERLINK(\\"http://x\\")"
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


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
                "" if person_id is None else person_id, safe_cell(portable_path(name or "")), int(ignored), f.face_id,
                safe_cell(portable_path(f.path)), *(round(v, 1) for v in f.box), round(f.score, 4),
                safe_cell(f.taken or ""), f.taken_source or "", "" if f.frame_ms is None else f.frame_ms / 1000,
            ])
            rows += 1
    return rows
