"""The review page and the command line on one database at once: nothing corrupted, nothing lost.

Each review request opens its own store while the server holds one more open. A process
that opened and closed any descriptor of the database file beside those connections
(once, `open()` read its header) dropped all of that process's POSIX locks on it: the next
command in a terminal then believed it was the last user, checkpointed and deleted the
`-wal` and `-shm` files under the server, and the database ended "malformed" within a
few rounds. Here a real server process and real command processes take turns.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from tests.test_reliability import named_library

ROUNDS = 200
GROUP_EVERY = 25  # a `group` in the terminal between two clicks, this often
FRESH_EVERY = 20  # a brand-new `python -m facecluster` process this often; the other rounds use one long-lived terminal

# A "terminal": runs one facecluster command line per input line, each in the CLI's own way (it
# opens the database, acts, closes it), and answers with its exit status and output. A separate
# process, so SQLite sees two processes exactly as with two commands typed in a shell, without
# paying a second of interpreter start-up per round.
TERMINAL = r"""
import json, sys
from click.testing import CliRunner
from facecluster.cli import cli
for line in sys.stdin:
    result = CliRunner().invoke(cli, json.loads(line))
    print(json.dumps({"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}), flush=True)
"""


class Terminal:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.process = subprocess.Popen([sys.executable, "-c", TERMINAL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=_env())

    def run(self, *args: str, fresh: bool = False) -> dict:
        """One command; `fresh`: in a new `python -m facecluster` process of its own."""
        command = ["--db", str(self.db), *args]
        if fresh:
            done = subprocess.run([sys.executable, "-m", "facecluster", *command], capture_output=True, text=True,
                                  env=_env(), timeout=300)
            result = {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        else:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            result = json.loads(self.process.stdout.readline())
        assert result["code"] == 0, (args, result)
        return result

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


class Page:
    """The review page as a browser uses it: the printed address once, then the cookie."""

    def __init__(self, url: str) -> None:
        self.base = url.split("/?")[0]
        self.token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.get(url)

    def get(self, path: str) -> str:
        url = path if path.startswith("http") else self.base + path
        with self.opener.open(url, timeout=60) as response:  # a 500 raises HTTPError: the test fails there
            return response.read().decode()

    def post(self, path: str, **form: str) -> str:
        """A change; returns the message the page shows after it, which must say it was done."""
        data = urllib.parse.urlencode({"token": self.token, **form}).encode()
        with self.opener.open(self.base + path, data=data, timeout=60) as response:
            page = response.read().decode()
        messages = re.findall(r'<p class="message (\w+)" role="status">(.*?)</p>', page, re.S)
        assert messages and messages[0][0] == "done", (path, form, messages)
        return messages[0][1]


def browse(page: Page, people: list[int], stop: threading.Event, loaded: list) -> None:
    """Load the index and the people's pages with their thumbnails until told to stop; `loaded`
    gets the number of thumbnails per page, or the error that ended the browsing."""
    try:
        while not stop.is_set():
            for path in ["/", *(f"/person/{p}" for p in people)]:
                html = page.get(path)
                thumbs = re.findall(r'src="(/thumb/\d+)"', html)
                for thumb in thumbs:
                    page.opener.open(page.base + thumb, timeout=60).read()
                loaded.append(len(thumbs))
    except Exception as e:  # the main thread reports it
        loaded.append(e)


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "FACECLUSTER_LOCK_WAIT": "30"}


@pytest.mark.slow
def test_review_page_and_terminal_together_never_corrupt_or_lose_anything(tmp_path, astronaut, t1_path):
    _library, db = named_library(tmp_path, astronaut, t1_path, copies=4)
    with closing(sqlite3.connect(db)) as conn:  # closed: an open connection here would hide the bug
        ids = dict(conn.execute("SELECT name, id FROM people WHERE name IS NOT NULL").fetchall())
        actions_before = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    eileen, david = ids["Eileen"], ids["David"]
    server = subprocess.Popen([sys.executable, "-m", "facecluster", "--db", str(db), "review", "--no-browser"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    terminal = Terminal(db)
    page_writes = terminal_writes = groups = 0
    stop, browsing = threading.Event(), []
    try:
        url = server.stdout.readline().strip()  # printed once the server listens
        page = Page(url)
        # A browser does not wait for the terminal: pages and their thumbnails load all the time.
        browser = threading.Thread(target=browse, args=(Page(url), [eileen, david], stop, browsing))
        browser.start()
        for i in range(ROUNDS):
            fresh = i % FRESH_EVERY == 0
            assert not (browsing and isinstance(browsing[-1], Exception)), (i, browsing[-1])
            page.post("/name", person=str(eileen), name=f"Eileen {i}")  # a click
            page_writes += 1
            if i % 2 == 0:  # the terminal writes ...
                terminal.run("name", str(david), f"David {i}", fresh=fresh)
                terminal_writes += 1
            else:  # ... or reads what the click just wrote
                shown = json.loads(terminal.run("show", "--json", str(eileen), fresh=fresh)["stdout"])
                assert shown["name"] == f"Eileen {i}", i
            # The page reads what the terminal wrote last.
            assert f"David {i - i % 2}" in page.get(f"/person/{david}"), i
            if i % GROUP_EVERY == GROUP_EVERY - 1:
                # The first `group` in a fresh process; the rest in the terminal, which has loaded
                # hdbscan and scikit-learn already (two seconds a process): a separate process all the same.
                terminal.run("group", "-q", "--min-faces", "3", fresh=groups == 0)
                groups += 1
    finally:
        stop.set()
        if "browser" in locals():
            browser.join(timeout=120)
        terminal.close()
        server.terminate()
        server.wait(timeout=60)
    assert "Traceback" not in server.stderr.read()
    assert browsing and all(isinstance(n, int) for n in browsing), browsing[-3:]  # every page the browser loaded worked
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = dict(conn.execute("SELECT id, name FROM people WHERE name IS NOT NULL").fetchall())
        logged = conn.execute("SELECT count(*) FROM actions WHERE kind = 'name'").fetchone()[0]
        actions = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    assert names == {eileen: f"Eileen {ROUNDS - 1}", david: f"David {ROUNDS - 2}"}
    assert (page_writes, terminal_writes, groups) == (ROUNDS, ROUNDS // 2, ROUNDS // GROUP_EVERY)
    assert actions - actions_before == logged - 2 == page_writes + terminal_writes  # every acknowledged change, once
