"""The review server: `facecluster review`, an interactive page over the database.

app.py holds the security (a per-run token, POST-only changes, 127.0.0.1
only) and the server's life; routes.py parses each request, calls one core
function (people.py, suggestions.py, grouping) and renders a template. No SQL
and no decisions here, as in cli/.
"""

from facecluster.web.app import create_app, serve

__all__ = ["create_app", "serve"]
