"""One output file of a build, as ``SiteListing`` lists it: where it goes, the key of
what it is made from, and how to render it (see ``artifacts``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from publisher.site.feeds import FeedDoc, Piece


@dataclass(frozen=True)
class Artifact:
    path: str
    key: str
    render: Callable[[], bytes | Sequence[Piece]]  # see ``OutputWriter.write``
    #: Render order: feed documents by their newest post, newest first, then the rest.
    order: tuple[int, float] = (1, 0.0)
    #: Listed only: its key is unchanged (see ``artifacts``), the file stays as it is.
    keep: bool = False
    #: How many posts the file shows.
    shows: int = 1
    #: The feed document this file is, in format ``fmt`` (``None``: not a feed).
    doc: FeedDoc | None = None
    fmt: str = ""


def kept(path: str) -> Artifact:
    """A file listed only: its inputs did not change, it stays as it is."""
    return Artifact(path, "", _unrendered, keep=True)


def same(data: bytes) -> bytes:
    return data


def _unrendered() -> bytes:
    raise AssertionError("a kept file is never rendered")


def bind(
    fn: Callable[..., bytes | Sequence[Piece]], *args: object
) -> Callable[[], bytes | Sequence[Piece]]:
    return lambda: fn(*args)
