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
def exclusive(path: Path, on_busy: Callable[[], None], *, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    If another process holds it, ``on_busy()`` runs: raising refuses, returning
    waits for the lock. With ``remove``, the holder deletes the file as it lets
    go (whether the block ended well or not), so no lock file outlives its
    use. A process that was waiting on the deleted file then finds that the
    path no longer names the file it locked, and locks the path anew: never
    two holders at once.
    """
    if fcntl is None:
        yield
        return
    while True:
        with open(path, "ab") as held:
            _HELD.add(held)
            try:
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    on_busy()
                    fcntl.flock(held, fcntl.LOCK_EX)
                if remove and not _still_at(held, path):
                    continue  # its holder removed it meanwhile: lock the one there now
                try:
                    yield  # closing the file releases the lock
                finally:
                    if remove:
                        path.unlink(missing_ok=True)  # while still held: see above
                return
            finally:
                _HELD.discard(held)


def _still_at(held: BinaryIO, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(held.fileno())
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)
