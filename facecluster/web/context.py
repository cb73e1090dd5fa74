"""What a request shares with the app and the routes: its store, and the field that carries the run's key.

Like the Flask tutorial's `db.py`: the app factory (app.py) imports the routes,
and both import this module, so neither imports the other.
"""

from __future__ import annotations

from flask import current_app, g

from facecluster.store import Store

LOCK_WAIT = 2.0  # seconds a click waits for a scan or group in another terminal before it says so
TOKEN_FIELD = "token"


def open_store() -> Store:
    """This request's store: opened on first use, closed when the request ends (one per thread).

    Example:
        facts = open_store().info()
    """
    if "store" not in g:
        g.store = Store(current_app.config["DB"])
        g.store.lock_wait = LOCK_WAIT
    return g.store
