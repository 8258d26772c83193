"""A file touched whenever state changes what the site shows (a digest went out).

Builds read its mtime instead of opening the database, so a build with
nothing to do stays cheap and still notices a newly sent digest.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def stamp_path(url: str) -> Path:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///")).with_suffix(".stamp")
    return Path("var") / "state.stamp"


def touch_stamp(url: str) -> None:
    path = stamp_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(datetime.now().isoformat(), encoding="utf-8")
