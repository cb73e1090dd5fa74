"""The review server's application and its life: security checks, one store per request, serving.

Security model: the server listens on 127.0.0.1 only, and every request must
carry the random token printed at start (in the first URL, then in an
HttpOnly, SameSite=Strict cookie), so other local users and other web pages
cannot use it; every change is a POST that must also carry the token in its
form (no cross-site request forgery), and photos are served by face id, only
from the paths the database holds.
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, abort, current_app, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from facecluster.store import Store
from facecluster.web.context import TOKEN_FIELD
from facecluster.pages import configure
from facecluster.web.routes import bp

HOST = "127.0.0.1"  # never another interface: the page can change the user's data
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost"})  # a Host header naming another site is a DNS rebinding attempt


def create_app(db_path: str | Path, token: str | None = None, cookie: str = "facecluster-review") -> Flask:
    """The review application for one database; `token` is made up when not given.

    Example:
        app = create_app("library.db", token="secret"); app.test_client().get("/?token=secret")
    """
    app = Flask(__name__)
    app.config.update(
        DB=str(db_path),
        TOKEN=token or secrets.token_urlsafe(32),
        TOKEN_COOKIE=cookie,
        SECRET_KEY=secrets.token_bytes(32),  # signs the message shown after a change; dies with the process
        SESSION_COOKIE_NAME=cookie + "-session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    configure(app.jinja_env)  # the same escaping and helpers as the static export's pages (pages.py)

    app.before_request(check_token)
    app.after_request(security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
    app.teardown_appcontext(close_store)
    app.register_blueprint(bp)
    return app


def check_token():
    """Every request: at 127.0.0.1, with this run's key (its first from the printed address, then a cookie)."""
    if request.host.rsplit(":", 1)[0] not in ALLOWED_HOSTS:
        abort(403, "this page answers only at 127.0.0.1")
    expected, cookie = current_app.config["TOKEN"], current_app.config["TOKEN_COOKIE"]
    given = request.args.get(TOKEN_FIELD)
    if given is not None and request.method == "GET" and same_token(given, expected):
        # The token leaves the address bar (and the history) for a cookie only this browser holds.
        args = request.args.copy()
        args.pop(TOKEN_FIELD)
        query = urlencode(list(args.items(multi=True)))
        response = redirect(request.path + ("?" + query if query else ""), 303)
        response.set_cookie(cookie, expected, httponly=True, samesite="Strict", path="/")
        return response
    if not same_token(request.cookies.get(cookie), expected):
        abort(403, "open the address that `facecluster review` printed: it carries this run's key")
    if request.method == "POST" and not same_token(request.form.get(TOKEN_FIELD), expected):
        abort(403, "this change did not come from the review page (no key in the form)")
    if request.method not in ("GET", "HEAD", "POST"):
        abort(405)


def security_headers(response):
    """Every response: nothing but this page's own files, never framed, never cached."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def http_error(e: HTTPException):
    """400, 403, 404, 405, 413 ...: a page that says what was wrong, in the page's words."""
    if e.code is None or e.code < 400:  # not an error (a redirect Werkzeug raised): as it is
        return e
    return error_page(e.code, e.name, e.description), e.code


def unexpected(e: Exception):
    """Anything else is a bug or a broken database: the details (with the traceback) go to the
    server's log, on the terminal that runs `facecluster review`; the page gets one friendly line."""
    current_app.logger.error("%s %s failed", request.method, request.path, exc_info=e)  # the path, never the query: it may hold the key
    if isinstance(e, sqlite3.Error):
        reason = f"The database could not be read or written ({e}). Nothing was half done: try again."
    else:
        reason = "Something went wrong on the review server. Nothing was half done: try again."
    return error_page(500, "Something went wrong", reason + " The details are in the terminal running facecluster review."), 500


def close_store(exc):
    """The request's store, if it opened one, is closed with the request."""
    store = g.pop("store", None)
    if store is not None:
        store.close()


def same_token(given: str | None, expected: str) -> bool:
    """Whether a request carries this run's key, compared in constant time. Whatever a query, cookie
    or form holds (text that is not ASCII included) is compared as bytes, so no value can make the
    comparison itself fail."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def error_page(code: int, title: str, reason: str | None) -> str:
    """The friendly error page; a plain one where even the template cannot be shown."""
    try:
        return render_template("error.html", code=code, title=title, reason=reason)
    except Exception:  # noqa: BLE001 - the page of last resort must not fail in turn
        return f"<!doctype html><title>{code}</title><h1>{code}</h1><p><a href=\"/\">Back to the people</a></p>"


def review_server(db_path: str | Path, port: int = 0):
    """A review server listening on 127.0.0.1 (not yet serving), and its address with the token.

    `port` 0 takes a free one. The database is opened (and migrated) once here,
    so the requests only read and write, and a database that cannot be opened
    fails before any browser opens.

    Example:
        server, url = review_server("library.db"); server.serve_forever()
    """
    # Werkzeug's server: only `review` serves, so importing the app starts nothing
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:  # no line per request: the first one holds the token
            pass

    # Held open while the server lives: each request opens and closes its own store, and without
    # this one the last of them to close would delete the -wal and -shm files under the next one.
    keeper = Store(db_path, readonly=True)  # a missing database is an error here, not a new empty one
    token = secrets.token_urlsafe(32)
    try:
        server = make_server(HOST, port, None, threaded=True, request_handler=QuietHandler)
    except BaseException:
        keeper.close()
        raise
    closing, owner = server.server_close, threading.get_ident()

    def server_close() -> None:
        closing()
        if threading.get_ident() == owner:  # Werkzeug also calls this from the serving thread; SQLite wants this one
            keeper.close()

    server.server_close = server_close
    port = server.server_address[1]
    # Cookies ignore ports: a name per port keeps two reviews (two databases) apart.
    server.app = create_app(db_path, token, cookie=f"facecluster-review-{port}")
    return server, f"http://{HOST}:{port}/?{TOKEN_FIELD}={token}"


def serve(db_path: str | Path, port: int = 0, open_browser: bool = True,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the review page on 127.0.0.1 until Ctrl-C (KeyboardInterrupt, raised to the caller).

    `ready` gets the address with its token once the server listens.

    Example:
        serve("library.db", 8765, open_browser=False, ready=print)
    """
    server, url = review_server(db_path, port)
    if ready:
        ready(url)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever()  # Werkzeug's returns (swallowing the KeyboardInterrupt) on Ctrl-C
    finally:
        # Requests still running are threads of this process: a write in flight either commits
        # or rolls back with its transaction, and the writer lock (an OS lock) goes with the process.
        server.server_close()
    raise KeyboardInterrupt  # nothing else stops it: tell the caller it was Ctrl-C
