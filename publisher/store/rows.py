"""Rows of the state database as plain values, and what a build makes of them.

Apart from ``state`` and ``ledger`` (SQLAlchemy Core) so that a build can read
them and work out its posts' ``updated`` dates without importing SQLAlchemy
(see ``build_state``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PostVersion:
    """A post's content hash and ``updated`` date, as the last build that saw it left them."""

    content_hash: str
    updated: datetime


@dataclass(frozen=True)
class DigestRecord:
    """A digest as the ledger records it: its week and the posts it carried."""

    id: int
    week: str
    created: str
    post_ids: tuple[str, ...]


def resolve_updated(
    posts: Iterable[tuple[str, str, datetime]],
    known: dict[str, PostVersion],
    now: datetime,
) -> tuple[dict[str, datetime], list[tuple[str, PostVersion]]]:
    """(id, content hash, published) -> updated dates, and the rows to save.

    A post seen for the first time was last updated when it was published; a
    post whose content changed since the last build was updated ``now``.
    """
    updated: dict[str, datetime] = {}
    changed: list[tuple[str, PostVersion]] = []
    for pid, digest, published in posts:
        old = known.get(pid)
        if old is not None and old.content_hash == digest:
            updated[pid] = old.updated
            continue
        when = published if old is None else max(now, published)
        updated[pid] = when
        changed.append((pid, PostVersion(digest, when)))
    return updated, changed
