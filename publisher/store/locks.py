"""Locks between processes that go with their holder: an ``flock`` on a file.

A lock a killed process held is free at once (the kernel drops it with the
process), so nothing waits out a timeout or trusts a stale pid file. A forked
child would share the lock (``flock`` belongs to the open file, which a fork
copies) and keep it past its parent's death, so every child closes its copy
at the fork. Not POSIX (no ``fcntl``): no lock, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


#: The lock files this process holds open (see ``_close_in_child``).
_HELD: set[BinaryIO] = set()


def _close_in_child() -> None:
    """After a fork, in the child: close the copies of the parent's lock files."""
    for held in list(_HELD):
        held.close()  # the parent's copy, and its lock, stay
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


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
        _HELD.add(held)
        try:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_busy()
                fcntl.flock(held, fcntl.LOCK_EX)
            yield  # closing the file releases the lock
        finally:
            _HELD.discard(held)
