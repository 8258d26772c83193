"""One error type the user sees, and the per-item problems collected on the way.

Following click's habit: anything raised as :class:`PublisherError` is a
message for the user (with an exit code and the next step to take); any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class PublisherError(Exception):
    """A failure the user can act on: what went wrong, and what to do next."""

    exit_code = 1

    def __init__(self, message: str, remedy: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.remedy}" if self.remedy else self.message


class ConfigError(PublisherError):
    """Bad configuration: exit 2 like other usage errors."""

    exit_code = 2


class InputError(PublisherError):
    """The archives failed normalization; nothing was written."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One problem at one place, printed as ``FILE:LINE: error|warning: message``."""

    file: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity.value}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def log_problems(log: logging.Logger, problems: Iterable[Problem]) -> None:
    """Each problem as its own line (``FILE:LINE: severity: message``), at its level."""
    for p in problems:
        log.log(logging.ERROR if p.is_error else logging.WARNING, "%s", p)


def error(file: str, line: int, message: str) -> Problem:
    return Problem(file, line, Severity.ERROR, message)


def warning(file: str, line: int, message: str) -> Problem:
    return Problem(file, line, Severity.WARNING, message)
