"""Soak the whole system: the review page, the command line in parallel, and kill -9, for N minutes.

A small library (a few dozen photos of real people from ../shared/facedata, copied to a temporary
folder at run time) is scanned and grouped. Then, until the time is up:

- a `facecluster review` process serves the page, and a browser thread takes random actions on it
  (name a group, ignore or show one again, take a face out, undo, load pages and thumbnails);
- up to `--parallel` command-line processes run at once: `name`, `group`, `scan` (photos are added
  to the library and moved away as it runs, so scans have work), `export --json/--csv/--html/--xmp`,
  `names --export`, `backup`, `people`, `show`;
- every few seconds one of them, or now and then the review server, is killed with SIGKILL (the
  process alone, not its group: its workers must go by themselves).

After each kill: `PRAGMA integrity_check` is ok, no photo, face or name is there twice, faces match
what their scan recorded, and nothing of the killed process's session still runs. At the end (after
a last round of every command, with no kills): the same, plus every acknowledged action (a command
that exited 0, a click whose page said it was done) is in the action log exactly once, each
person's name is the one its last name action gave, no process of ours is left, and no temporary
file of ours is left anywhere.

    python benchmarks/soak.py --minutes 10 [--photos 40] [--parallel 3] [--seed 1] [--report soak.json] [--facedata DIR]

Exit status 0 when every check held, 1 otherwise; the counts are printed (and written to --report).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACEDATA = ROOT.parent / "shared" / "facedata"
SOURCES = ["lfw_subset_krasserm", "celeb5_opencv_course", "dlib_johns"]  # folders of people, a few photos each
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def pick_photos(facedata: Path, count: int, per_person: int = 5) -> list[Path]:
    """`count` photos, `per_person` of each person in turn, in a fixed order."""
    people = [p for source in SOURCES if (facedata / source).is_dir() for p in sorted((facedata / source).iterdir()) if p.is_dir()]
    chosen: list[Path] = []
    for person in people:
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)[:per_person]
        if len(photos) >= 3:
            chosen += photos
        if len(chosen) >= count:
            break
    return chosen[:count]


@dataclass
class Ack:
    """An action the system said was done: it must be in the action log."""

    kind: str  # name, ignore, unignore, remove, undo
    via: str  # cli or page
    name: str | None = None
    person: int | None = None
    face: int | None = None


@dataclass
class Running:
    process: subprocess.Popen
    command: str
    args: list[str]
    started: float
    ack: Ack | None = None
    log: Path | None = None


@dataclass
class Tally:
    cli: Counter = field(default_factory=Counter)  # "name ok", "scan killed", "group busy", ...
    page: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    checks: int = 0
    problems: list[str] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    log_rows: int = 0
    temporary_left: int = 0


class Page:
    """The review page as a browser uses it."""

    def __init__(self, url: str) -> None:
        self.base = url.split("/?")[0]
        self.token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.opener.open(url, timeout=30).read()

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode("utf-8", "replace")

    def post(self, path: str, **form: str) -> tuple[str, str]:
        """(category, message) the page shows after the change: done or error."""
        data = urllib.parse.urlencode({"token": self.token, **form}).encode()
        with self.opener.open(self.base + path, data=data, timeout=30) as response:
            page = response.read().decode("utf-8", "replace")
        found = re.findall(r'<p class="message (\w+)" role="status">(.*?)</p>', page, re.S)
        return found[0] if found else ("none", "")


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="facecluster-soak-"))
        self.library = self.tmp / "library"
        self.reserve = self.tmp / "reserve"  # photos waiting to be added, or moved away for a while
        self.out = self.tmp / "out"
        self.logs = self.tmp / "logs"
        self.db = self.tmp / "faces.db"
        self.tally = Tally()
        self.running: list[Running] = []
        self.sessions: set[int] = set()  # every session we started: nothing of them may outlive the run
        self.server: subprocess.Popen | None = None
        self.page: Page | None = None
        self.server_up = threading.Event()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counter = 0
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "FACECLUSTER_LOCK_WAIT": "5", "PYTHONUNBUFFERED": "1"}

    # ---- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        photos = pick_photos(self.args.facedata, self.args.photos + self.args.photos // 2)
        if len(photos) < self.args.photos:
            raise SystemExit(f"not enough photos under {self.args.facedata}")
        for folder in (self.library / "a", self.library / "b", self.reserve, self.out, self.logs):
            folder.mkdir(parents=True)
        for i, photo in enumerate(photos):
            if i < self.args.photos:
                target = self.library / ("a" if i % 2 else "b") / f"{photo.parent.name}_{photo.name}"
            else:
                target = self.reserve / f"{photo.parent.name}_{photo.name}"
            shutil.copy(photo, target)
        for args in (["scan", "-q", "--jobs", "2", str(self.library)], ["group", "-q"]):
            done = subprocess.run(self.cli(args), env=self.env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise SystemExit(f"setup {' '.join(args)} failed: {done.stderr}")

    def cli(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "facecluster", "--db", str(self.db), *args]

    def unique(self, via: str) -> str:
        with self.lock:
            self.counter += 1
            return f"Soak {via} {self.counter}"

    # ---- the database, read from outside -------------------------------------------------------

    def query(self, sql: str, args=()) -> list:
        with closing(sqlite3.connect(self.db, timeout=30)) as conn:  # closed at once: never a lingering lock
            return conn.execute(sql, args).fetchall()

    def check_database(self, when: str) -> None:
        """Integrity, and nothing twice: photos, faces, names; faces as their scan recorded."""
        self.tally.checks += 1
        problems = []
        with closing(sqlite3.connect(self.db, timeout=30)) as conn:
            q = conn.execute
            result = q("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:
                problems.append(f"integrity_check: {result[:3]}")
            if q("PRAGMA foreign_key_check").fetchall():
                problems.append("foreign_key_check failed")
            paths = q("SELECT count(*), count(DISTINCT path) FROM photos").fetchone()
            if paths[0] != paths[1]:
                problems.append(f"photos twice: {paths}")
            faces = q("SELECT count(*) FROM (SELECT 1 FROM faces GROUP BY photo_id, model, x, y, w, h HAVING count(*) > 1)").fetchone()
            if faces[0]:
                problems.append(f"{faces[0]} faces twice")
            names = q("SELECT name FROM people WHERE name IS NOT NULL GROUP BY lower(name) HAVING count(*) > 1").fetchall()
            if names:
                problems.append(f"names twice: {names}")
            mismatched = q(
                "SELECT s.photo_id FROM photo_scans s LEFT JOIN faces f ON f.photo_id = s.photo_id AND f.model = s.model "
                "GROUP BY s.photo_id, s.model HAVING count(f.id) != max(s.faces)"
            ).fetchall()
            if mismatched:
                problems.append(f"faces not as scanned for photos {mismatched[:5]}")
        self.tally.problems += [f"{when}: {p}" for p in problems]

    # ---- processes ---------------------------------------------------------------------------

    def session_alive(self, sid: int) -> list[int]:
        """Processes (not zombies) in session `sid`."""
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                alive.append(int(entry.name))
        return alive

    def wait_session_gone(self, sid: int, what: str) -> None:
        deadline = time.monotonic() + 30
        while self.session_alive(sid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.session_alive(sid)
        if left:
            self.tally.problems.append(f"orphans of a killed {what}: {left}")
            for pid in left:
                os.kill(pid, signal.SIGKILL)

    def start_server(self) -> None:
        with open(self.logs / f"server-{time.time():.3f}.err", "w") as log:
            self.server = subprocess.Popen(self.cli(["review", "--no-browser"]), env=self.env, stdout=subprocess.PIPE,
                                           stderr=log, text=True, start_new_session=True)
        self.sessions.add(self.server.pid)
        url = self.server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit("the review server did not start")
        self.page = Page(url)
        self.server_up.set()

    def launch(self) -> None:
        """One random command in its own process."""
        roll = self.rng.random()
        ack = None
        people = [r[0] for r in self.query("SELECT id FROM people WHERE NOT ignored")]
        if roll < 0.30 and people:
            name, person = self.unique("cli"), self.rng.choice(people)
            command, args, ack = "name", ["name", str(person), name], Ack("name", "cli", name=name, person=person)
        elif roll < 0.40:
            command, args = "group", ["group", "-q"]
        elif roll < 0.55:
            self.shuffle_library()
            command, args = "scan", ["scan", "-q", "--jobs", "2", str(self.library)]
        elif roll < 0.75:
            kind = self.rng.choice(["json", "csv", "html", "xmp"])
            target = {"json": self.out / "people.json", "csv": self.out / "faces.csv", "html": self.out / "site", "xmp": None}[kind]
            command = f"export {kind}"
            args = ["export", f"--{kind}"] + ([str(target), "--force"] if target else [])
        elif roll < 0.85:
            if self.rng.random() < 0.5:
                command, args = "backup", ["backup", "--force", str(self.out / "backup.db")]
            else:
                command, args = "names --export", ["names", "--export", str(self.out / "names.json"), "--force"]
        else:
            command, args = "people", ["people", "--all"]
            if people and self.rng.random() < 0.5:
                command, args = "show", ["show", str(self.rng.choice(people))]
        log = self.logs / f"{len(self.running)}-{time.time():.3f}.err"
        with open(log, "w") as stream:
            process = subprocess.Popen(self.cli(args), env=self.env, stdout=subprocess.DEVNULL, stderr=stream,
                                       start_new_session=True)
        self.sessions.add(process.pid)
        self.running.append(Running(process, command, args, time.monotonic(), ack, log))

    def shuffle_library(self) -> None:
        """Give the next scan work: add a photo or two from the reserve, or move one away for a while."""
        waiting = sorted(self.reserve.iterdir())
        here = sorted(self.library.rglob("*.*"))
        here = [p for p in here if p.suffix.lower() in PHOTO_SUFFIXES]
        if waiting and (self.rng.random() < 0.7 or len(here) < self.args.photos // 2):
            for photo in self.rng.sample(waiting, min(2, len(waiting))):
                shutil.move(photo, self.library / self.rng.choice("ab") / photo.name)
        elif here:
            shutil.move(self.rng.choice(here), self.reserve)

    def reap(self) -> None:
        for run in list(self.running):
            code = run.process.poll()
            if code is None:
                continue
            self.running.remove(run)
            error = run.log.read_text(errors="replace") if run.log else ""
            if "Traceback" in error:
                self.tally.problems.append(f"traceback from {run.command}: {error[-500:]}")
            if code == 0:
                self.tally.cli[f"{run.command}: ok"] += 1
                if run.ack:
                    self.tally.acks.append(run.ack)
            elif code == -signal.SIGKILL:
                self.tally.cli[f"{run.command}: killed"] += 1
            elif code == 1 and "in use by" in error:
                self.tally.cli[f"{run.command}: busy (another command held the database)"] += 1
            elif code == 1 and ("no group" in error or "sidecar" in error):
                self.tally.cli[f"{run.command}: refused ({error.strip()[:60]})"] += 1
            else:
                self.tally.cli[f"{run.command}: exit {code}"] += 1
                self.tally.problems.append(f"{run.command} exited {code}: {error.strip()[-300:]}")

    def kill_one(self) -> None:
        if self.server is not None and self.rng.random() < 0.15:
            self.server_up.clear()
            self.server.kill()
            self.server.wait()
            self.tally.kills["review server"] += 1
            self.wait_session_gone(self.server.pid, "review server")
            self.check_database("after killing the review server")
            self.start_server()
            return
        busy = [r for r in self.running if r.process.poll() is None]
        if not busy:
            return
        victim = self.rng.choice(busy)
        victim.process.kill()  # the process alone: its scan workers must end by themselves
        victim.process.wait()
        self.tally.kills[victim.command] += 1
        self.wait_session_gone(victim.process.pid, victim.command)
        self.check_database(f"after killing {victim.command}")

    # ---- the browser ---------------------------------------------------------------------------

    def browse(self) -> None:
        rng = random.Random(self.args.seed + 1)
        while not self.stop.is_set():
            if not self.server_up.wait(timeout=1):
                continue
            page = self.page
            try:
                shown = sorted({int(n) for n in re.findall(r'href="/person/(\d+)"', page.get("/"))})
                hidden = sorted({int(n) for n in re.findall(r'href="/person/(\d+)"', page.get("/?show=ignored"))})
                self.tally.page["GET / and /?show=ignored"] += 1
                roll = rng.random()
                if hidden and (not shown or roll < 0.15):
                    target = rng.choice(hidden)
                    self.act(page, "unignore", Ack("unignore", "page", person=target), "/ignore", person=str(target), undo="1")
                    continue
                if not shown:
                    self.act(page, "undo", Ack("undo", "page"), "/undo")
                    continue
                person = rng.choice(shown)
                html = page.get(f"/person/{person}")
                faces = sorted({int(n) for n in re.findall(r'/thumb/(\d+)', html)})
                for face in faces[:6]:
                    page.get(f"/thumb/{face}")
                self.tally.page["GET a person and its thumbnails"] += 1
                if roll < 0.55:
                    name = self.unique("page")
                    self.act(page, "name", Ack("name", "page", name=name, person=person), "/name", person=str(person), name=name)
                elif roll < 0.65:
                    self.act(page, "ignore", Ack("ignore", "page", person=person), "/ignore", person=str(person))
                elif roll < 0.85 and faces:
                    face = rng.choice(faces)
                    self.act(page, "remove", Ack("remove", "page", face=face), "/remove", face=str(face))
                else:
                    self.act(page, "undo", Ack("undo", "page"), "/undo")
            except Exception as e:  # the server killed under us: that request was never acknowledged
                if self.server_up.is_set() and not self.stop.is_set():
                    status = getattr(e, "code", None)
                    if status is not None and status >= 500:
                        self.tally.problems.append(f"HTTP {status} from the review page")
                self.tally.page[f"request failed ({type(e).__name__})"] += 1

    def act(self, page: Page, label: str, ack: Ack, path: str, **form: str) -> None:
        category, message = page.post(path, **form)
        if category == "done":
            self.tally.page[f"{label}: done"] += 1
            self.tally.acks.append(ack)
        elif "in use by" in message:
            self.tally.page[f"{label}: busy (a command held the database)"] += 1
        else:
            self.tally.page[f"{label}: refused"] += 1

    # ---- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        started = time.monotonic()
        self.setup()
        self.start_server()
        browser = threading.Thread(target=self.browse, daemon=True)
        browser.start()
        deadline = time.monotonic() + self.args.minutes * 60
        next_kill = time.monotonic() + self.rng.expovariate(1 / self.args.kill_every)
        while time.monotonic() < deadline:
            self.reap()
            while len(self.running) < self.args.parallel:
                self.launch()
            if time.monotonic() >= next_kill:
                self.kill_one()
                next_kill = time.monotonic() + self.rng.expovariate(1 / self.args.kill_every)
            time.sleep(0.05)
        self.stop.set()
        browser.join(timeout=120)
        for run in self.running:  # let the last ones finish: no kill now
            run.process.wait(timeout=900)
        self.reap()
        self.server.send_signal(signal.SIGINT)
        if self.server.wait(timeout=60) != 130:
            self.tally.problems.append("the review server did not stop with 130 on Ctrl-C")
        self.settle()
        self.final_checks()
        return self.report(time.monotonic() - started)

    def settle(self) -> None:
        """Every command once more, with no kills: they clean what the killed ones left."""
        for photo in list(self.reserve.iterdir()):
            shutil.move(photo, self.library / "a" / photo.name)
        for args in (["scan", "-q", "--jobs", "2", str(self.library)], ["group", "-q"], ["export", "--xmp"],
                     ["export", "--html", str(self.out / "site"), "--force", "--json", str(self.out / "people.json"),
                      "--csv", str(self.out / "faces.csv")],
                     ["names", "--export", str(self.out / "names.json"), "--force"],
                     ["backup", "--force", str(self.out / "backup.db")]):
            done = subprocess.run(self.cli(args), env=self.env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                self.tally.problems.append(f"final {' '.join(args[:2])} exited {done.returncode}: {done.stderr[-300:]}")

    def final_checks(self) -> None:
        self.check_database("at the end")
        log = self.query("SELECT id, kind, summary, undone_at FROM actions ORDER BY id")
        by_kind = Counter(kind for _, kind, _, _ in log)
        undone = sum(1 for *_, u in log if u)
        acked = Counter(a.kind for a in self.tally.acks)
        for ack in self.tally.acks:
            if ack.kind != "name":
                continue
            rows = [r for r in log if r[1] == "name" and (r[2] == f"Named group {ack.person} {ack.name}"
                                                          or r[2].endswith(f" to {ack.name} (#{ack.person})"))]
            if len(rows) != 1:
                self.tally.problems.append(f"acknowledged: {ack.via} named {ack.person} {ack.name!r}; in the log {len(rows)} times")
        for kind in ("ignore", "unignore", "remove"):
            if by_kind[kind] < acked[kind]:
                self.tally.problems.append(f"{acked[kind]} {kind} actions acknowledged, {by_kind[kind]} in the log")
        if undone < acked["undo"]:
            self.tally.problems.append(f"{acked['undo']} undos acknowledged, {undone} actions undone in the log")
        # Each person's name is the one its last name action (not undone) gave.
        names = dict(self.query("SELECT id, name FROM people"))
        last: dict[int, tuple[str, bool]] = {}
        for _, kind, summary, undone_at in log:
            named = re.fullmatch(r"Named group (?P<person>\d+) (?P<name>.*)", summary)
            renamed = re.fullmatch(r"Renamed .* to (?P<name>.*) \(#(?P<person>\d+)\)", summary)
            found = named or renamed
            if kind == "name" and found:
                last[int(found["person"])] = (found["name"], undone_at is not None)
            elif kind in ("unset", "merge"):
                self.tally.problems.append(f"unexpected action in the log: {summary}")
        for person, (name, was_undone) in last.items():
            if not was_undone and person in names and names[person] != name:
                self.tally.problems.append(f"person {person} is {names[person]!r}, its last name action said {name!r}")
        self.tally.log_rows = len(log)
        alive = {sid: self.session_alive(sid) for sid in self.sessions}
        left = {sid: pids for sid, pids in alive.items() if pids}
        if left:
            self.tally.problems.append(f"processes left: {left}")
        temporary = [str(p) for p in self.tmp.rglob(".fc-*")]
        if temporary:
            self.tally.problems.append(f"temporary files left: {temporary}")
        self.tally.temporary_left = len(temporary)

    def report(self, seconds: float) -> dict:
        counts = self.query(
            "SELECT (SELECT count(*) FROM photos), (SELECT count(*) FROM faces), "
            "(SELECT count(*) FROM people WHERE name IS NOT NULL), (SELECT count(*) FROM people WHERE ignored)"
        )[0]
        return {
            "minutes": self.args.minutes,
            "seconds": round(seconds, 1),
            "photos at the start": self.args.photos,
            "command runs": sum(self.tally.cli.values()),
            "commands": dict(sorted(self.tally.cli.items())),
            "page requests": dict(sorted(self.tally.page.items())),
            "kills": dict(sorted(self.tally.kills.items())),
            "kills in all": sum(self.tally.kills.values()),
            "database checks": self.tally.checks,
            "acknowledged actions": dict(Counter(f"{a.kind} ({a.via})" for a in self.tally.acks)),
            "action log rows": self.tally.log_rows,
            "temporary files left": self.tally.temporary_left,
            "final database": dict(zip(["photos", "faces", "named", "ignored"], counts)),
            "problems": self.tally.problems,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--photos", type=int, default=40, help="photos in the library at the start (half as many more are added)")
    parser.add_argument("--parallel", type=int, default=3, help="command-line processes at once")
    parser.add_argument("--kill-every", type=float, default=6.0, help="mean seconds between two kills")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="also write the counts here, as JSON")
    parser.add_argument("--facedata", type=Path, default=FACEDATA, help="the labelled photos (default: ../shared/facedata)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (library, database, logs)")
    args = parser.parse_args()
    if not args.facedata.is_dir():
        print(f"needs the labelled photos at {args.facedata} (--facedata)", file=sys.stderr)
        return 2
    soak = Soak(args)
    try:
        result = soak.run()
    finally:
        for run in soak.running:
            if run.process.poll() is None:
                run.process.kill()
        if soak.server is not None and soak.server.poll() is None:
            soak.server.kill()
        if not args.keep:
            shutil.rmtree(soak.tmp, ignore_errors=True)
        else:
            print(f"kept: {soak.tmp}", file=sys.stderr)
    text = json.dumps(result, indent=1)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
