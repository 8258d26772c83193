"""The build's forked processes (render workers, the state helper): they end with
the build, and what crosses back from them is their failure, as parts that
pickle, raised again in the build as it was.

A build killed with ``kill -9`` cannot tell its children: each asks the kernel
to kill it when its parent dies (Linux's ``PR_SET_PDEATHSIG``), and checks it
was not orphaned before asking. The build's lock file is closed in every child
at the fork (``store.locks``), so no orphan could hold it anyway.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from typing import NoReturn

from publisher.errors import PublisherError

#: An exception as picklable parts, to cross from a forked process (see ``portable``).
Portable = tuple[type[PublisherError] | None, str, str, int]


def portable(exc: BaseException) -> Portable:
    """``exc`` as parts another process can raise again (``raise_portable``): a
    PublisherError keeps its class, remedy and exit code; anything else is a bug
    and travels as its traceback."""
    if isinstance(exc, PublisherError):
        return type(exc), exc.message, exc.remedy, exc.exit_code
    return None, "".join(traceback.format_exception(exc)), "", 1


def raise_portable(parts: Portable, where: str) -> NoReturn:
    """Raise what ``portable`` sent: the user's error as it was, a bug as a
    RuntimeError saying ``where`` it happened."""
    kind, message, remedy, exit_code = parts
    if kind is None:
        raise RuntimeError(f"{where} failed:\n{message}")
    raise kind(message, remedy, exit_code)


_PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> None:
    """In a forked child: be killed when ``parent`` dies, and exit now if it has."""
    if sys.platform.startswith("linux"):
        # the process's own symbols hold libc's prctl (find_library would run ldconfig)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # died before the request: nobody to work for
        os._exit(1)
