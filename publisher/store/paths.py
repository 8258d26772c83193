"""A file touched whenever state changes what the site shows (a digest went out).

Builds read its mtime instead of opening the database, so a build with
nothing to do stays cheap and still notices a newly sent digest.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path


def sqlite_file(url: str) -> Path | None:
    """The state database's file, when it is one (SQLite, not in memory)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def shown_url(url: str) -> str:
    """The state URL as messages may show it: a password in it becomes ``***``."""
    return re.sub(r"(://[^/:@]*):[^/]*@", r"\1:***@", url, count=1)


def beside_state(url: str, suffix: str, otherwise: str) -> Path:
    """A path beside the state database's file (its name with ``suffix``), or
    ``var/<otherwise>`` for a database that is not a file."""
    db = sqlite_file(url)
    return db.with_suffix(suffix) if db is not None else Path("var") / otherwise


def stamp_path(url: str) -> Path:
    return beside_state(url, ".stamp", "state.stamp")


def touch_stamp(url: str) -> None:
    path = stamp_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(datetime.now().isoformat(), encoding="utf-8")
