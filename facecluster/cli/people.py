"""The people and the corrections: list, show, name, ignore, remove, suggest, merge, different, give,
not-a-person, add-face and undo."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.text import Text

from facecluster.cli.command import command, open_store
from facecluster.cli.output import _printable, _records, err, out
from facecluster.drawn import DrawError, add_face, parse_box
from facecluster.naming_rules import clock, parse_id, plural, portable_path
from facecluster.people import (
    answer_same,
    give_faces,
    ignore_person,
    list_people,
    merge_people,
    name_person,
    not_a_person,
    remove_faces,
    resolve,
    show_person,
    unclustered,
    undo_last,
)
from facecluster.store import Store
from facecluster.suggestions import same_person_pairs, suggest


@command("people")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of lines.")
@click.option("--all", "include_ignored", is_flag=True, help="Include ignored groups.")
@click.pass_context
def people_command(ctx, as_json, include_ignored):
    """List the people and groups found.

    Named people first, then unnamed groups by size. Ignored groups are
    hidden unless --all. Piped, it prints one tab-separated line per person.

    Example:

    \b
        facecluster people --json
    """
    store = open_store(ctx, write=False)
    rows = list_people(store, include_ignored=include_ignored)
    if as_json:
        click.echo(json.dumps([
            {"id": p.id, "name": p.name, "faces": p.faces, "photos": p.photos, "ignored": p.ignored,
             "first": p.first_taken, "last": p.last_taken}
            for p in rows
        ], ensure_ascii=False, indent=2))
        return
    err.print(Text(plural(len(rows), "person or group", "people and groups")))
    records = []
    for p in rows:
        label = _printable(p.name) if p.name else "(unnamed)"
        records.append([
            str(p.id), label + (" (ignored)" if p.ignored else ""), str(p.faces), str(p.photos),
            (p.first_taken or "")[:10], (p.last_taken or "")[:10], _printable(p.sample_path or ""),
        ])
    _records(["id", "name", "faces", "photos", "first", "last", "sample"], records, right=("id", "faces", "photos"))
    err.print(Text(f"{plural(unclustered(store), 'face is', 'faces are')} not in any group."))


@command("name")
@click.argument("target")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove the name: the person becomes an unnamed group again.")
@click.pass_context
def name_command(ctx, target, name, unset):
    """Name group TARGET (a number, or a person's current name).

    Naming a second group with a name already taken (in any case) merges it
    into that person. Renaming a person renames it everywhere.

    Example:

    \b
        facecluster name 12 "Alice"
    """
    if unset and name is not None:
        raise click.UsageError(f"NAME ('{_printable(name)}') and --unset conflict: give one of them")
    if not unset and name is None:
        raise click.UsageError("give a NAME, or --unset to remove the name")
    store = open_store(ctx)
    result = name_person(store, target, None if unset else name)
    if result.merged_from is not None:
        out.print(Text(f"Merged group {result.merged_from} into {_printable(result.name)} (#{result.person_id}): "
                       f"{plural(result.faces_moved, 'face')} moved."))
    elif result.name is None:
        out.print(Text(f"Group {result.person_id} has no name now (was {_printable(result.previous_name or '-')})."))
    elif result.previous_name and result.previous_name != result.name:
        out.print(Text(f"Renamed {_printable(result.previous_name)} to {_printable(result.name)} (#{result.person_id})."))
    else:
        out.print(Text(f"Group {result.person_id} is {_printable(result.name)}."))


@command("show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def show_command(ctx, target, as_json):
    """Show the photos of one person or group: face id, date, face box and path.

    Piped, it prints one tab-separated line per face.

    Example:

    \b
        facecluster show Alice
    """
    store = open_store(ctx, write=False)
    person, faces = show_person(store, target)
    if as_json:
        click.echo(json.dumps({
            "id": person.id, "name": person.name, "ignored": person.ignored,
            "faces": [{"face_id": f.face_id, "photo": portable_path(f.path), "taken": f.taken,
                       "bbox": [round(v, 1) for v in f.box],
                       **({"frame_time": f.frame_ms / 1000} if f.frame_ms is not None else {})} for f in faces],
        }, ensure_ascii=False, indent=2))
        return
    who = _printable(person.name) if person.name else "Unnamed group"
    err.print(Text(f"{who} (#{person.id}){' (ignored)' if person.ignored else ''}: {plural(len(faces), 'face')}"))
    _records(
        ["face", "taken", "box (x, y, w, h)", "photo"],
        [[str(f.face_id), (f.taken or "")[:19], ", ".join(f"{v:.0f}" for v in f.box),
          _printable(f.path) + (f" @ {clock(f.frame_ms / 1000)}" if f.frame_ms is not None else "")] for f in faces],
        right=("face",),
    )


@command("ignore")
@click.argument("target")
@click.option("--undo", is_flag=True, help="Bring an ignored group back.")
@click.pass_context
def ignore_command(ctx, target, undo):
    """Hide group TARGET (strangers): its faces are never offered again.

    Example:

    \b
        facecluster ignore 7
    """
    store = open_store(ctx)
    person = ignore_person(store, target, undo=undo)
    out.print(Text(f"{_who(person.id, person.name, start=True)} is {'ignored' if person.ignored else 'shown again'}."))


class FaceId(click.ParamType):
    """A face id as `show` prints it: a positive whole number SQLite can hold."""

    name = "face_id"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        face_id = parse_id(text)
        if face_id is not None:
            return face_id
        self.fail(f"'{_printable(text)}' is not a face id (face ids are the numbers facecluster show lists)", param, ctx)


@command("remove")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.pass_context
def remove_command(ctx, face_ids):
    """Take faces out of their person: "this face is not this person".

    A removed face never rejoins that person by itself. Face ids are shown
    by `facecluster show`.

    Example:

    \b
        facecluster remove 1234 1240
    """
    store = open_store(ctx)
    done = remove_faces(store, list(face_ids))
    names: dict[int, str | None] = {}
    for face_id, person in done:
        if person is None:
            out.print(Text(f"Face {face_id} was not in a group: nothing to remove it from."))
            continue
        if person not in names:
            names[person] = resolve(store, f"#{person}").name
        out.print(Text(f"Face {face_id} removed from {_who(person, names[person])}."))


@command("suggest")
@click.option("--for", "target", metavar="TARGET", help="Suggestions for one person or group: groups and faces that may be them.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many suggestions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def suggest_command(ctx, target, limit, as_json):
    """Questions worth answering, most likely first, with how likely each is.

    Without --for: "same person?" pairs of people or groups (answer with
    `merge` or `different`). With --for: the unnamed groups and the faces in
    no group that may be that person (answer with `merge`, `give` or
    `different`). Nothing less likely than "possible" is listed.

    \b
    Example:
        facecluster suggest
        facecluster suggest --for Alice
    """
    store = open_store(ctx, write=False)
    if target is None:
        pairs = same_person_pairs(store, limit)
        if as_json:
            click.echo(json.dumps([dataclasses.asdict(p) for p in pairs], indent=2))
            return
        if not pairs:
            err.print("Nothing likely to ask: no two groups look alike.")
            return
        err.print(f"{plural(len(pairs), 'question')} worth asking")
        _records(["likelihood", "same person?", "distance"],
                 [[p.likelihood, f"{_pair_label(store, p.a)} and {_pair_label(store, p.b)}", f"{p.distance:.2f}"] for p in pairs])
        return
    found = suggest(store, target, limit)
    if as_json:
        click.echo(json.dumps({"id": found.person.id, "name": found.person.name,
                               "groups": [{"group": g.b, "distance": g.distance, "likelihood": g.likelihood} for g in found.groups],
                               "faces": [{"face_id": f.face_id, "distance": f.distance, "likelihood": f.likelihood}
                                         for f in found.faces]}, ensure_ascii=False, indent=2))
        return
    who = _who(found.person.id, found.person.name)
    if not found.groups and not found.faces:
        err.print(Text(f"Nothing looks likely to be {who}."))
        return
    _records(["likelihood", "candidate", "distance"],
             [[g.likelihood, f"group {g.b}", f"{g.distance:.2f}"] for g in found.groups]
             + [[f.likelihood, f"face {f.face_id}", f"{f.distance:.2f}"] for f in found.faces])


def _pair_label(store: Store, person_id: int) -> str:
    person = resolve(store, f"#{person_id}")
    return _printable(person.name) if person.name else f"group {person_id}"


@command("merge")
@click.argument("targets", nargs=-1, required=True)
@click.option("--name", help="Name the merged person.")
@click.pass_context
def merge_command(ctx, targets, name):
    """Merge groups (numbers or names) into one person: "yes, the same person".

    The faces go to the named one among them (or to NAME), else to the largest
    group. Two differently named people are never merged.

    \b
    Example:
        facecluster merge 12 31 --name Alice
    """
    result = merge_people(open_store(ctx), list(targets), name)
    out.print(Text(f"Merged into {_who(result.person_id, result.name)}: {plural(result.faces_moved, 'face')} moved."))


@command("different")
@click.argument("first")
@click.argument("second")
@click.pass_context
def different_command(ctx, first, second):
    """Say two people or groups are not the same person; grouping and suggestions remember it.

    \b
    Example:
        facecluster different Alice 12
    """
    out.print(Text(answer_same(open_store(ctx), first, second, yes=False) + "."))


@command("give")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.option("--to", "target", required=True, metavar="TARGET", help="A group number, a name, or a new name for a new person.")
@click.pass_context
def give_command(ctx, face_ids, target):
    """Put faces with a person for good (a new name makes a new person of them).

    \b
    Example:
        facecluster give 1234 1240 --to Alice
    """
    result = give_faces(open_store(ctx), list(face_ids), target)
    out.print(Text(f"{plural(result.faces_moved, 'face')} now with {_who(result.person_id, result.name)}."))


@command("not-a-person")
@click.argument("face_ids", nargs=-1, required=True, type=FaceId())
@click.pass_context
def not_a_person_command(ctx, face_ids):
    """Mark faces as no person at all (a cartoon, a statue, a poster): never grouped again.

    \b
    Example:
        facecluster not-a-person 1234
    """
    out.print(Text(not_a_person(open_store(ctx), list(face_ids)) + "."))


class Box(click.ParamType):
    """A face's box as x,y,w,h in the photo's pixels."""

    name = "box"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return parse_box(value)
        except DrawError as e:
            self.fail(_printable(str(e)), param, ctx)


@command("add-face")
@click.argument("photo")
@click.option("--box", required=True, type=Box(), metavar="X,Y,W,H",
              help="The face's box in the photo's pixels, upright and full size: left, top, width, height (20 or more).")
@click.option("--name", metavar="TARGET", help="Give the face to this person: a name, a new name (a new person), or a group number.")
@click.option("--model", help="Model pack (default: the pack of the photo's other faces, else sface).")
@click.pass_context
def add_face_command(ctx, photo, box, name, model):
    """Add a face the detector missed: a box on a scanned photo becomes a face like any other.

    PHOTO is a photo's path as scanned, or the id of a face on that photo. The
    detector looks again inside the box (else the face is aligned from the box
    alone); the face is embedded, saved with the photo (removed with it,
    exported in XMP) and, with --name, given to that person.

    \b
    Example:
        facecluster add-face ~/Pictures/party.jpg --box 812,240,96,110 --name Alice
    """
    face = add_face(open_store(ctx), photo, box, name, model)
    how = "found again by the detector in the box" if face.detected else "aligned from the box alone: the detector found no face in it"
    given = f", given to {_who(face.person_id, face.name)}" if face.person_id is not None else ", in no group"
    out.print(Text(f"Face {face.face_id} added to {_printable(face.photo)} ({how}){given}."))


@command("undo")
@click.pass_context
def undo_command(ctx):
    """Undo the last correction (from the command line or the review page).

    \b
    Example:
        facecluster undo
    """
    out.print(Text(f"Undone: {undo_last(open_store(ctx))}."))


def _who(person_id: int, name: str | None, start: bool = False) -> str:
    """ "Alice (#3)", or "group 3" ("Group 3" to `start` a sentence)."""
    return f"{_printable(name)} (#{person_id})" if name else f"{'Group' if start else 'group'} {person_id}"
