"""One HTML renderer: the Jinja templates of the review page (facecluster/web/templates), also the
pages of the static export.

Here, not in the web package, so that the export loads jinja2 and never Flask.
The review server (web/app.py) renders them through Flask, with forms and links
to its own routes. The export (export/html.py) renders the same templates
through `site_environment`: a plain jinja2 Environment, no Flask app and no
request, with `static` set, so the pages carry no forms and their links
(`url_for`, given by the export) are relative file names that work from
file://. Both show values the same way (`configure`): every value escaped,
file names that are not UTF-8 shown as \\xNN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from facecluster.naming_rules import clock, plural
from facecluster.store import ExportFace

TEMPLATES = Path(__file__).resolve().parent / "web" / "templates"
STATIC = Path(__file__).resolve().parent / "web" / "static"


def shown(value):
    """Every value a template writes, made writable: the bytes of a file name that are not UTF-8
    (kept by Python as lone surrogates, which no page can carry) are shown as \\xNN, as the command
    line shows them.

    Example:
        shown("caf\\udce9.jpg") == "caf\\\\xe9.jpg"
    """
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no byte: its code point
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return Markup(text) if isinstance(value, Markup) else text


def face_when(face: ExportFace) -> tuple[str, str]:
    """What a face's card says about when it was taken (and where in its video), and the longer note
    for its tooltip.

    Example:
        face_when(face)  # ("▶ 0:03 · 2019-07-01", "at 0:03 in the video · taken 2019-07-01T10:00:00")
    """
    if not face.taken:
        when, note = "date unknown", "date unknown"
    elif face.taken_source == "exif":
        when, note = face.taken[:10], f"taken {face.taken[:19]}"
    else:  # no date in the photo: the scan fell back to the file's time, which is when it was copied, not taken
        when, note = f"file date {face.taken[:10]}", f"no date in the photo; file date {face.taken[:19]}"
    if face.frame_ms is not None:  # a video's face: where in the video, before the date
        at = clock(face.frame_ms / 1000)
        when, note = f"▶ {at} · {when}", f"at {at} in the video · {note}"
    return when, note


def configure(env: Environment) -> Environment:
    """What both front-ends' templates need: escaping, the \\xNN rule, plural() and face_when().

    Example:
        configure(app.jinja_env)
    """
    env.autoescape = True  # every template, whatever its name: names and paths are the user's
    env.finalize = shown
    env.globals.update(plural=plural, face_when=face_when, static=False)
    return env


def site_environment(url_for: Callable[..., str]) -> Environment:
    """The templates for a static site: `static` set, and `url_for(endpoint, **values)` answering with
    the site's relative file names. Undefined names are errors: a page of the site never renders half.

    Example:
        site_environment(site.url_for).get_template("index.html").render(page=page, ...)
    """
    env = configure(Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=True))
    env.globals.update(static=True, url_for=url_for)
    return env
