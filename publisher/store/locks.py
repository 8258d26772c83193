"""Locks between processes that go with their holder: an ``flock`` on a file.

A lock a killed process held is free at once (the kernel drops it with the
process), so nothing waits out a timeout or trusts a stale pid file. Not POSIX
(no ``fcntl``): no lock, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


@contextmanager
def exclusive(path: Path, on_busy: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    If another process holds it, ``on_busy()`` runs: raising refuses, returning
    waits for the lock.
    """
    if fcntl is None:
        yield
        return
    with open(path, "ab") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_busy()
            fcntl.flock(held, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
