"""Questions about the library and names in and out: photos, identify, info, names."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.text import Text

from facecluster.atomic import check_new_file
from facecluster.cli.command import command, open_store
from facecluster.cli.output import _printable, _records, err, out
from facecluster.identify import identify
from facecluster.imports import FORMATS, import_any
from facecluster.names import export_names
from facecluster.naming_rules import plural, portable_path
from facecluster.queries import PhotoQuery, find_photos


@command("photos")
@click.option("--with", "with_all", multiple=True, metavar="NAME", help="Photos with this person (repeatable: with all of them).")
@click.option("--any", "with_any", multiple=True, metavar="NAME", help="Photos with at least one of these people (repeatable).")
@click.option("--without", multiple=True, metavar="NAME", help="Leave out photos with this person (repeatable).")
@click.option("--only", is_flag=True, help="Nobody else recognisable in the photo: no other named person or group.")
@click.option("--from", "taken_from", metavar="DATE", help="Taken on or after DATE (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--to", "taken_to", metavar="DATE", help="Taken on or before DATE (the whole year, month or day).")
@click.option("--under", metavar="FOLDER", help="Only photos under FOLDER.")
@click.option("--videos/--no-videos", "videos", default=None, help="Only videos, or leave videos out (default: both).")
@click.option("-0", "--null", "null", is_flag=True, help="End each path with a NUL byte instead of a newline (for xargs -0).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each photo with its faces, boxes and people.")
@click.pass_context
def photos_command(ctx, with_all, with_any, without, only, taken_from, taken_to, under, videos, null, as_json):
    """List the photos that match a question about who is in them.

    Paths go to stdout, one per line (whole, never cut), and the count to
    stderr. Names are matched ignoring case; a group number works too.

    Example:

    \b
        facecluster photos --with Alice --with Bob --from 2019
        facecluster photos --with Alice --only -0 | xargs -0 open
    """
    if null and as_json:
        raise click.UsageError("choose one of -0 and --json")
    store = open_store(ctx, write=False)
    query = PhotoQuery(tuple(with_all), tuple(with_any), tuple(without), only, taken_from, taken_to, under, videos)
    results = find_photos(store, query, with_faces=as_json)
    if as_json:
        click.echo(json.dumps([{
            "photo_id": r.photo.id, "path": portable_path(r.photo.path), "taken": r.photo.taken,
            "taken_source": r.photo.taken_source,
            "faces": [{"face_id": f.face_id, "person_id": f.person_id, "name": f.name, "ignored": f.ignored,
                       "model": f.model, "bbox": [round(v, 1) for v in f.box], "score": round(f.score, 4)} for f in r.faces],
        } for r in results], ensure_ascii=False, indent=1))
    else:
        _paths([r.photo.path for r in results], null)
    err.print(plural(len(results), "photo"))


@command("identify")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--model", default="sface", show_default=True, help="Which pack's named people to match against.")
@click.option("--add", is_flag=True, help="Also add the photos to the library (as scan would).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def identify_command(ctx, photos, model, add, as_json):
    """Say who is in PHOTOS, by the named people, without adding them to the library.

    Each face gets its box, the nearest named person and how sure that is:
    "very likely", "possible" or "unknown". Works on photos anywhere, not
    only in the scanned folders. With --add the photos are stored too, and
    the next `group` lets their faces join the people they match.

    Example:

    \b
        facecluster identify ~/Downloads/party.jpg
        facecluster identify --json new/*.jpg | jq '.[].faces[].name'
    """
    store = open_store(ctx, write=add)
    found = identify(store, list(photos), model=model, add=add)
    if as_json:
        click.echo(json.dumps([{
            "path": portable_path(p.path), "error": p.error, "added": p.added,
            "faces": [{
                "bbox": [round(v, 1) for v in f.box], "score": round(f.score, 4), "likelihood": f.wording,
                "person_id": f.best.person_id if f.best and f.wording != "unknown" else None,
                "name": f.best.name if f.best and f.wording != "unknown" else None,
                "nearest": None if f.best is None else {
                    "person_id": f.best.person_id, "name": f.best.name, "distance": round(f.best.distance, 3)},
                "runner_up": None if f.runner_up is None else {
                    "person_id": f.runner_up.person_id, "name": f.runner_up.name, "distance": round(f.runner_up.distance, 3)},
            } for f in p.faces],
        } for p in found], ensure_ascii=False, indent=1))
    else:
        rows = []
        for p in found:
            if p.error:
                continue
            for i, f in enumerate(p.faces, 1):
                who = _printable(f.best.name) if f.best and f.wording != "unknown" else "-"
                distance = f"{f.best.distance:.2f}" if f.best else "-"
                if f.wording == "unknown" and f.best:
                    distance += f" (nearest: {_printable(f.best.name)})"
                rows.append([str(i), ", ".join(f"{v:.0f}" for v in f.box), who, f.wording, distance, _printable(p.path)])
        _records(["face", "box (x, y, w, h)", "who", "likelihood", "distance", "photo"], rows, right=("face",))
    failed = [p for p in found if p.error]
    for p in failed:
        err.print(f"not read: {escape(_printable(p.path))}: {escape(_printable(p.error or ''))}")
    faces = sum(len(p.faces) for p in found)
    summary = f"{plural(faces, 'face')} in {plural(len(found) - len(failed), 'photo')}"
    if add:
        added, known = sum(p.added for p in found), sum(p.known for p in found)
        summary += f"; {added} added to the library, {known} already there"
        if added:
            summary += "; run facecluster group to let the new faces join their people"
    err.print(summary + ".")
    if failed:
        raise click.ClickException(f"{plural(len(failed), 'photo')} could not be read (listed above)")


def _paths(paths: list[str], null: bool) -> None:
    """Paths as they are on disk: their own bytes, so `xargs` opens the very files.

    On a terminal they are shown escaped instead (a name could hold escape sequences); a path
    holding a newline cannot be one line: it is escaped, with a hint to use -0.
    """
    if not null and out.is_terminal:
        for path in paths:
            out.print(Text(_printable(path)))
        return
    sys.stdout.flush()
    stream = sys.stdout.buffer
    broken = 0
    for path in paths:
        if not null and "\n" in path:
            broken += 1
            stream.write(_printable(path).encode("utf-8") + b"\n")
            continue
        stream.write(os.fsencode(path) + (b"\0" if null else b"\n"))
    stream.flush()
    if broken:
        err.print(f"{plural(broken, 'path holds', 'paths hold')} a newline and {'is' if broken == 1 else 'are'} shown "
                  "escaped; use -0 to get every path exactly")


@command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def info_command(ctx, as_json):
    """Show where the database is, its size, what it holds and its schema version.

    Example:

    \b
        facecluster info
    """
    path = Path(ctx.find_root().obj)
    if not path.exists():  # say where it would be; a read-only command never creates it
        if as_json:
            click.echo(json.dumps({"path": str(path.absolute()), "exists": False}, indent=2))
        else:
            where = f"{_printable(str(path.absolute()))} (not created yet: facecluster scan creates it)"
            _records(["what", "value"], [["database", where]], header=False)
        return
    info = open_store(ctx, write=False).info()
    if as_json:
        click.echo(json.dumps({"exists": True, **dataclasses.asdict(info), "path": portable_path(info.path)},
                              ensure_ascii=False, indent=2))
        return
    lines = [
        ("database", _printable(info.path)),
        ("size", f"{_size(info.bytes)} ({info.bytes} bytes, with the write-ahead log)"),
        ("schema", f"{info.schema or '-'} ({plural(info.migrations, 'migration')} applied; SQLite {info.sqlite})"),
        ("photos", f"{info.photos} read, {info.failed} failed"),
        ("faces", f"{info.faces} ({info.unclustered} in no group)"),
        ("people", f"{info.named} named, {plural(info.groups, 'unnamed group')}, {info.ignored} ignored"),
    ]
    for pack in info.packs:
        lines.append(("model pack", f"{pack.name}: {plural(pack.faces, 'face')}, {pack.dim}-d embeddings, "
                                    f"licence {pack.licence}, first used {pack.first_used[:10]}, "
                                    f"sha256 {pack.fingerprint[:12]}, embedder in use {pack.embedder}"))
    if not info.packs:
        lines.append(("model pack", "none yet (facecluster scan records the pack it uses)"))
    _records(["what", "value"], [list(line) for line in lines], header=False)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"  # pragma: no cover


@command("names")
@click.option("--export", "export_file", metavar="FILE", help="Write every name and its faces' keys to FILE ('-' for stdout).")
@click.option("--import", "import_file", metavar="FILE", type=click.Path(path_type=Path),
              help="Give faces names from FILE: a name file, a Picasa .picasa.ini, a Google Takeout sidecar, "
                   "or a folder of either.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="With --import: what FILE is (auto: tell from its name and content).")
@click.option("--contacts", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="With --import of Picasa files: Picasa's contacts.xml, for the names of its contact ids.")
@click.option("--force", is_flag=True, help="With --export: replace FILE if it exists.")
@click.pass_context
def names_command(ctx, export_file, import_file, fmt, contacts, force):
    """Save names in a file that survives a rebuild or a model change, and load them back (or from Picasa, Google Takeout).

    Faces are keyed by their photo's content hash and their box, so the
    names find their faces again after the database is rebuilt from scratch
    or the photos are scanned with another model pack. An existing FILE is
    never replaced without --force.

    Example:

    \b
        facecluster names --export names.json
        facecluster --db new.db names --import names.json
        facecluster names --import ~/Takeout
    """
    if bool(export_file) == bool(import_file):
        raise click.UsageError("choose one of --export FILE or --import FILE")
    if force and import_file:
        raise click.UsageError("--force goes with --export")
    if export_file and (contacts or ctx.get_parameter_source("fmt") is click.core.ParameterSource.COMMANDLINE):
        raise click.UsageError("--format and --contacts go with --import")
    if export_file and export_file != "-":
        check_new_file(Path(export_file), force, ctx.find_root().obj)
    store = open_store(ctx, write=import_file is not None)
    if export_file:
        document = export_names(store, None if export_file == "-" else Path(export_file), force=force)
        if export_file == "-":
            click.echo(json.dumps(document, ensure_ascii=False, indent=1))
        else:
            faces = sum(len(p["faces"]) for p in document["people"])
            err.print(f"Wrote {plural(len(document['people']), 'name')} ({plural(faces, 'face')}) "
                      f"to {escape(_printable(export_file))}.")
        return
    summary = import_any(store, import_file, fmt, contacts)
    for reason, count in sorted(summary.left_out.items()):
        err.print(f"left out: {count} {escape(reason)}")
    for name, reason in sorted(summary.refused.items()):
        err.print(f"not imported: {escape(_printable(name))}: {escape(reason)}")
    for name, count in sorted(summary.named.items()):
        err.print(f"  {escape(_printable(name))}: {plural(count, 'face')}")
    err.print(
        f"Imported {plural(len(summary.named), 'name')} for {plural(sum(summary.named.values()), 'face')}; "
        f"{summary.unchanged} had that name already, {summary.not_found} not in this database, "
        f"{summary.conflicts} already named otherwise."
    )
