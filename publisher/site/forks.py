"""What crosses back from a forked process (a render worker, the state helper): its
failure, as parts that pickle, raised again in the build as it was."""

from __future__ import annotations

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
