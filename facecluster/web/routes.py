"""The review's pages and actions: parse the request, call one core function, render.

GET pages only read. Every change is a POST (checked for the run's token in
app.py) that calls the same function as the CLI command doing it, then
redirects back with a message: the message says what was done, or why not
(a scan holding the database, an unknown group, a bad name).
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from facecluster import config
from facecluster.drawn import add_face
from facecluster.errors import FaceclusterError
from facecluster.grouping import GroupOptions, regroup
from facecluster.naming_rules import parse_id, plural
from facecluster.models import DEFAULT_PACK
from facecluster.people import (
    NothingToDo,
    answer_same,
    answer_suggestion,
    face_detail,
    faces_page,
    give_faces,
    ignore_person,
    known_names,
    merge_people,
    name_person,
    not_a_person,
    people_page,
    recent_actions,
    remove_faces,
    undo_last,
)
from facecluster.people import unclustered as count_unclustered
from facecluster.queries import faces_by_year
from facecluster.suggestions import group_cards, same_person_page, suggest
from facecluster.web.context import TOKEN_FIELD, open_store
from facecluster.web.photos import photo_with_box
from facecluster.thumbs import square_thumbnail

bp = Blueprint("review", __name__)

CARDS_PER_PAGE = 100
FACES_PER_PAGE = 200
THUMB_CACHE = "private, max-age=3600"  # a face's crop never changes; an hour bounds a stale one after a rescan


@bp.app_context_processor
def common():
    """What every review page needs besides pages.configure's helpers: the form key, the last action (for the undo button)."""
    last = None
    try:
        actions = recent_actions(open_store(), 1)
        last = actions[0] if actions and actions[0].undone_at is None else None
    except (FaceclusterError, sqlite3.Error):  # the page (or the error page) is still shown, without the undo button
        pass
    return {"token": current_app.config["TOKEN"], "token_field": TOKEN_FIELD, "last_action": last,
            "min_faces": config.MIN_GROUP_FACES}


def _number(value: str | None, default: int | None = None) -> int:
    """A positive whole number from a form or query, else a 400 page."""
    if value is None or value == "":
        if default is not None:
            return default
        abort(400, "a number is missing")
    number = parse_id(value)
    if number is None:
        abort(400, f"{value.strip()[:40]!r} is not a number")
    return number


def _back(default: str = "/") -> str:
    """Where to go after a change: the page it was made on, never another site.

    Only a path on this server: "/" then printable ASCII with no space and no backslash. Browsers
    drop tabs and newlines from a Location and read a backslash as a slash, so "/<tab>/evil.example"
    or "/<backslash>evil.example" would leave for evil.example; the page's own links hold neither.
    """
    target = request.form.get("next") or default
    safe = (target.startswith("/") and not target.startswith("//") and target.isascii() and target.isprintable()
            and " " not in target and "\\" not in target)
    return target if safe else default


def _act(action, default: str = "/"):
    """Run one core call; its message (or its refusal) is shown on the page the user returns to."""
    try:
        message = action()
        if isinstance(message, tuple):  # the page the user was on is gone (merged away): go where its faces went
            message, default = message
            flash(message, "done")
            return redirect(default, 303)
        flash(message, "done")
    except NothingToDo as e:  # already so: said, as the command says it
        flash(str(e), "done")
    except FaceclusterError as e:  # StoreBusy included: a scan or group holds the database
        flash(str(e), "error")
    return redirect(_back(default), 303)


# ---- pages ---------------------------------------------------------------------------------


@bp.get("/")
def index():
    store = open_store()
    show = request.args.get("show", "all")
    if show not in ("all", "named", "unnamed", "ignored"):
        abort(400, "show must be all, named, unnamed or ignored")
    page = people_page(store, _number(request.args.get("page"), 1), CARDS_PER_PAGE, show)
    return render_template("index.html", page=page, show=show, names=known_names(store), unclustered=count_unclustered(store))


@bp.get("/person/<int:person_id>")
def person(person_id: int):
    store = open_store()
    try:
        found, page = faces_page(store, str(person_id), _number(request.args.get("page"), 1), FACES_PER_PAGE)
    except FaceclusterError as e:
        abort(404, str(e))
    return render_template("person.html", person=found, page=page, names=known_names(store), years=faces_by_year(store, found.id))


@bp.get("/unclustered")
def unclustered():
    store = open_store()
    _, page = faces_page(store, None, _number(request.args.get("page"), 1), FACES_PER_PAGE)
    return render_template("person.html", person=None, page=page, names=known_names(store))


@bp.get("/person/<int:person_id>/suggestions")
def suggestions(person_id: int):
    try:
        found = suggest(open_store(), str(person_id))
    except FaceclusterError as e:
        abort(404, str(e))
    return render_template("suggestions.html", person=found.person, groups=found.groups, suggestions=found.faces,
                           cards=group_cards(open_store(), [g.b for g in found.groups]))


@bp.get("/face/<int:face_id>")
def face(face_id: int):
    try:
        found, owner = face_detail(open_store(), face_id)
    except FaceclusterError as e:
        abort(404, str(e))
    return render_template("face.html", face=found, person=owner)


@bp.get("/thumb/<int:face_id>")
def thumb(face_id: int):
    store = open_store()
    data, face = store.thumb(face_id), store.face_row(face_id)
    if data is None or face is None:
        abort(404, f"no face {face_id}")
    if not data:  # a face whose crop could not be made
        return current_app.send_static_file("no-face.svg")
    # Square, as the export writes it: a crop cut short at the photo's edge gets grey bands, not a cropped face.
    shown = square_thumbnail(data, face)
    response = current_app.response_class(shown, mimetype="image/jpeg")
    response.headers["Cache-Control"] = THUMB_CACHE
    response.set_etag(f"{face_id}-{len(data)}" + ("" if shown is data else "-p"))  # -p: not the crop an older page got
    return response.make_conditional(request)


@bp.get("/photo/<int:face_id>")
def photo(face_id: int):
    """The photo of a face with its box drawn: only photos the database knows, by face id, never by path."""
    try:
        found, _ = face_detail(open_store(), face_id)
        data = photo_with_box(found)
    except FaceclusterError as e:
        abort(404, str(e))
    response = current_app.response_class(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = THUMB_CACHE
    return response


@bp.get("/history")
def history():
    return render_template("history.html", actions=recent_actions(open_store(), 50))


# ---- actions (POST only, token checked in app.py) --------------------------------------------


@bp.post("/name")
def name():
    target = str(_number(request.form.get("person")))

    def run():
        result = name_person(open_store(), target, request.form.get("name", ""))
        if result.merged_from is not None:
            moved = plural(result.faces_moved, "face")
            return (f"Merged group {result.merged_from} into {result.name} (#{result.person_id}): {moved} moved.",
                    url_for("review.person", person_id=result.person_id))
        if result.previous_name and result.previous_name != result.name:
            return f"Renamed {result.previous_name} to {result.name}."
        return f"Group {result.person_id} is {result.name}."

    return _act(run, url_for("review.person", person_id=int(target)))


@bp.post("/unset")
def unset():
    target = str(_number(request.form.get("person")))

    def run():
        result = name_person(open_store(), target, None)
        return f"Group {result.person_id} has no name now (was {result.previous_name or '-'})."

    return _act(run)


@bp.post("/merge")
def merge():
    targets = [str(_number(v)) for v in request.form.getlist("person")]
    typed = request.form.get("name", "").strip() or None

    def run():
        result = merge_people(open_store(), targets, typed)
        who = f"{result.name} (#{result.person_id})" if result.name else f"group {result.person_id}"
        return f"Merged {plural(len(targets), 'group')} into {who}: {plural(result.faces_moved, 'face')} moved."

    return _act(run)


@bp.post("/remove")
def remove():
    faces = [_number(v) for v in request.form.getlist("face")]

    def run():
        if not faces:
            raise FaceclusterError("select the faces that are not this person first")
        done = [face for face, person in remove_faces(open_store(), faces) if person is not None]
        if not done:
            raise NothingToDo("Those faces are in no group: nothing to do.")
        return f"Took {plural(len(done), 'face')} out: they will not rejoin this person."

    return _act(run)


@bp.post("/ignore")
def ignore():
    target = str(_number(request.form.get("person")))
    undo = request.form.get("undo") == "1"

    def run():
        person = ignore_person(open_store(), target, undo=undo)
        return f"Group {person.id} is {'ignored' if person.ignored else 'shown again'}."

    return _act(run)


@bp.post("/answer")
def answer():
    target = str(_number(request.form.get("person")))
    face_id = _number(request.form.get("face"))
    if request.form.get("answer") not in ("yes", "no"):
        abort(400, "answer must be yes or no")
    return _act(lambda: answer_suggestion(open_store(), target, face_id, request.form["answer"] == "yes") + ".")


@bp.post("/undo")
def undo():
    return _act(lambda: f"Undone: {undo_last(open_store())}.")


@bp.post("/group")
def group():
    try:
        options = GroupOptions(model=request.form.get("model") or DEFAULT_PACK,
                               min_faces=_number(request.form.get("min_faces"), config.MIN_GROUP_FACES))
        result = regroup(open_store(), options)
    except FaceclusterError as e:
        flash(str(e), "error")
        return redirect(_back(), 303)
    return render_template("changes.html", result=result)


# ---- suggestions, faces in no group, drawn faces ---------------------------------------------------


@bp.get("/suggestions")
def same_person():
    """ "Same person?": pairs of people or groups that look alike, most likely first."""
    return render_template("same_person.html", page=same_person_page(open_store()))


@bp.post("/same")
def same():
    """The answer to "are these two the same person?": yes merges them, no is remembered (a cannot-link)."""
    first, second = str(_number(request.form.get("a"))), str(_number(request.form.get("b")))
    if request.form.get("answer") not in ("yes", "no"):
        abort(400, "answer must be yes or no")
    return _act(lambda: answer_same(open_store(), first, second, request.form["answer"] == "yes") + ".")


def _faces() -> list[int]:
    """The face ids ticked in the form; a message (not a 400) when none is, as a click on an empty selection."""
    faces = [_number(v) for v in request.form.getlist("face")]
    if not faces:
        raise FaceclusterError("select some faces first")
    return faces


@bp.post("/give")
def give():
    """Put the ticked faces with a person: a name, a new name (a new person) or a group number."""
    target = request.form.get("to", "")

    def run():
        result = give_faces(open_store(), _faces(), target)
        who = f"{result.name} (#{result.person_id})" if result.name else f"group {result.person_id}"
        return f"Gave {plural(result.faces_moved, 'face')} to {who}."

    return _act(run)


@bp.post("/not-a-person")
def not_person():
    """The ticked faces are no person at all (a cartoon, a statue, a poster): never grouped again."""
    return _act(lambda: not_a_person(open_store(), _faces()) + ".")


def _coordinate(field: str) -> float:
    """One number of a drawn box (photo pixels), else a 400 page."""
    text = (request.form.get(field) or "").strip()
    try:
        value = float(text)
    except ValueError:
        abort(400, f"{field} must be a number of pixels")
    if value != value or value in (float("inf"), float("-inf")):
        abort(400, f"{field} must be a number of pixels")
    return value


@bp.post("/draw")
def draw():
    """A face the detector missed, drawn on the photo of face `face`: saved as a face of that photo."""
    face_id = _number(request.form.get("face"))
    box = tuple(_coordinate(field) for field in ("x", "y", "w", "h"))
    name = request.form.get("name", "").strip() or None

    def run():
        drawn = add_face(open_store(), face_id, box, name)
        how = "found by the detector in your box" if drawn.detected else "aligned from your box alone (the detector saw no face in it)"
        given = f", given to {drawn.name or f'group {drawn.person_id}'}" if drawn.person_id is not None else ", in no group"
        return f"Added face {drawn.face_id}, {how}{given}.", url_for("review.face", face_id=drawn.face_id)

    return _act(run, url_for("review.face", face_id=face_id))
