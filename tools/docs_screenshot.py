"""Rebuild docs/screenshot-index.png (the HTML export) and docs/screenshot-review.png
(`facecluster review`) of a small demo library.

The demo library is made from pictures that ship inside installed packages
(scikit-image's astronaut, NASA, public domain; insightface's t1.jpg), never
from ../shared/facedata.

    python tools/docs_screenshot.py            # both
    python tools/docs_screenshot.py review     # only docs/screenshot-review.png
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from skimage import data

    work = Path(tempfile.mkdtemp())
    library = work / "library"
    library.mkdir()
    astronaut = Image.fromarray(data.astronaut())
    for i in range(6):  # six different photos of one person: crops, light, mirror
        img = astronaut.crop((i * 8, i * 5, 512 - i * 6, 512 - i * 4))
        img = ImageEnhance.Brightness(img).enhance(0.8 + 0.08 * i)
        if i % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(library / f"astronaut_{i}.jpg", quality=90)
    t1 = Path(list(importlib.util.find_spec("insightface").submodule_search_locations)[0]) / "data/images/t1.jpg"
    shutil.copy(t1, library / "friends.jpg")
    friends = Image.open(t1).convert("RGB")
    for i in range(5):  # one of the six friends, in five more "photos"
        img = friends.crop((380 + i * 6, 180 + i * 4, 660 - i * 5, 500 - i * 3))
        ImageEnhance.Contrast(img).enhance(0.85 + 0.07 * i).save(library / f"friend_{i}.jpg", quality=90)
    db = work / "demo.db"
    run = [sys.executable, "-m", "facecluster", "--db", str(db)]
    subprocess.run(run + ["scan", "-q", str(library)], check=True)
    subprocess.run(run + ["group", "-q", "--min-faces", "4"], check=True)
    subprocess.run(run + ["name", "1", "Eileen Collins"], check=True)
    subprocess.run(run + ["export", "--html", str(work / "site")], check=True)
    which = sys.argv[1:] or ["index", "review"]
    if "index" in which:
        out = ROOT / "docs" / "screenshot-index.png"
        screenshot((work / "site" / "index.html").as_uri(), out, work / "profile")
        print(out)
    if "review" not in which:
        return
    review = ROOT / "docs" / "screenshot-review.png"
    screenshot_review(db, review, work / "profile-review")
    print(review)


def screenshot(url: str, out: Path, profile: Path, size: str = "1000,600") -> None:
    subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
         f"--window-size={size}", "--hide-scrollbars", f"--screenshot={out}", url],
        check=True, capture_output=True,
    )


def screenshot_review(db: Path, out: Path, profile: Path) -> None:
    """The review page of the demo library, served by the real server on 127.0.0.1 for one request."""
    import threading

    from facecluster.web.app import review_server

    server, url = review_server(db)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        screenshot(url, out, profile, size="1000,640")  # the token URL answers with the page, through its cookie
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
