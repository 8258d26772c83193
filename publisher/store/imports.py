"""Subscriber exports of other services, recognised by their header row: Mailchimp
(its subscribed, unsubscribed and cleaned files), Substack, Buttondown and
listmonk. Each row becomes (email, name, tags, status); people a service had as
unsubscribed, cleaned or blocklisted stay suppressed here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

from publisher.errors import PublisherError
from publisher.store.rows import Status


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    tags: tuple[str, ...]
    status: Status


#: What a row becomes: a person, or why it is left out.
Reader = Callable[[dict[str, str]], "Person | str"]


@dataclass(frozen=True)
class Format:
    name: str
    #: header cells (compared case-insensitively) that identify it, all present
    needs: tuple[str, ...]
    #: the columns it reads: any other is ignored (with one warning)
    uses: tuple[str, ...]
    read: Reader


def _tags(cell: str) -> tuple[str, ...]:
    """A list cell as services write it: ``"a","b"``, ``a, b`` or ``a;b``."""
    if '"' in cell:
        row = next(csv.reader(io.StringIO(cell)), [])
        return tuple(t.strip() for t in row if t.strip())
    for sep in (";", "|", ","):
        if sep in cell:
            return tuple(t.strip() for t in cell.split(sep) if t.strip())
    return (cell.strip(),) if cell.strip() else ()


def _mailchimp(row: dict[str, str]) -> Person | str:
    if row.get("clean_time"):
        status = Status.BOUNCED  # "cleaned": addresses that bounced
    elif row.get("unsub_time"):
        status = Status.UNSUBSCRIBED
    else:
        status = Status.ACTIVE
    name = " ".join(p for p in (row.get("first name", ""), row.get("last name", "")) if p)
    return Person(row["email address"], name, _tags(row.get("tags", "")), status)


def _substack(row: dict[str, str]) -> Person | str:
    off = row.get("email_disabled", "").strip().lower() in ("true", "1", "yes")
    status = Status.UNSUBSCRIBED if off else Status.ACTIVE
    return Person(row["email"], row.get("name", ""), (), status)


def _buttondown(row: dict[str, str]) -> Person | str:
    kind = (row.get("subscriber_type") or row.get("type") or "regular").strip().lower()
    if kind in ("unactivated", "pending"):
        return "never confirmed their address at Buttondown: left out"
    status = {
        "unsubscribed": Status.UNSUBSCRIBED,
        "removed": Status.UNSUBSCRIBED,
        "undeliverable": Status.BOUNCED,
        "spammy": Status.COMPLAINED,
    }.get(kind, Status.ACTIVE)
    return Person(row["email"], row.get("name", ""), _tags(row.get("tags", "")), status)


def _listmonk(row: dict[str, str]) -> Person | str:
    state = row.get("status", "enabled").strip().lower()
    status = Status.ACTIVE if state == "enabled" else Status.UNSUBSCRIBED  # disabled, blocklisted
    return Person(row["email"], row.get("name", ""), (), status)


FORMATS = (
    Format(
        "Mailchimp",
        ("email address",),
        ("email address", "first name", "last name", "tags", "unsub_time", "clean_time"),
        _mailchimp,
    ),
    Format(
        "Substack",
        ("email", "active_subscription"),
        ("email", "name", "email_disabled", "active_subscription"),
        _substack,
    ),
    Format(
        "Buttondown",
        ("email", "subscriber_type"),
        ("email", "name", "tags", "subscriber_type", "type"),
        _buttondown,
    ),
    Format(
        "Buttondown", ("email", "type", "creation_date"), ("email", "tags", "type"), _buttondown
    ),
    Format(
        "listmonk",
        ("uuid", "email", "status"),
        ("uuid", "email", "name", "status", "attributes"),
        _listmonk,
    ),
)

KNOWN = "Mailchimp (subscribed, unsubscribed, cleaned), Substack, Buttondown, listmonk"


def recognise(header: list[str]) -> Format | None:
    cells = {c.strip().lower() for c in header}
    return next((f for f in FORMATS if set(f.needs) <= cells), None)


def ignored(fmt: Format, header: list[str]) -> list[str]:
    """The header's columns ``fmt`` does not read."""
    return [c for c in header if c.strip() and c.strip().lower() not in fmt.uses]


def foreign(header: list[str], name: str) -> Format | None:
    """Another service's export, by its header row; ``None`` for our own columns (or
    no header). A header this knows nothing of is an error naming what it knows."""
    if any("@" in cell for cell in header) or not any(c.strip() for c in header):
        return None  # a data row: no header
    fmt = recognise(header)
    if fmt is None and header[0].strip().lower() in EMAIL_HEADERS and len(header) <= 6:
        return None  # ours: email,name,tags[,status[,bounces[,cadence]]]
    if fmt is None:
        shown = ", ".join(c.strip() for c in header[:8]) + (", …" if len(header) > 8 else "")
        raise PublisherError(
            f"{name}:1: columns {shown}: not a subscriber list this knows; nothing was imported",
            "use email,name,tags[,status[,bounces]] (a header row is optional), or an "
            f"export of {KNOWN}",
        )
    return fmt


def row_error(row: list[str], status: str, bounces: str, cadence: str = "") -> str:
    """What is wrong with an import row's shape, or ``""``."""
    if len(row) > 6:
        what = f"{len(row)} columns"
    elif cadence and cadence not in ("weekly", "monthly"):
        what = f"cadence {row[5]!r}"
    elif bounces and not bounces.isdigit():
        what = f"bounces {bounces!r}"
    elif status and status not in Status.__members__.values():
        what = f"status {row[3]!r}"
    else:
        return ""
    return (
        f"{what}; expected email,name,tags[,status[,bounces[,cadence]]] with a status of "
        f"{', '.join(Status)} (quote names or tags that contain commas)"
    )


#: The first cells a header row may have (compared case-insensitively).
EMAIL_HEADERS = ("email", "e-mail", "address")


def _delimiter(first_line: str) -> str:
    """``,`` unless a header row says otherwise: Excel writes ``;`` where the decimal
    mark is a comma (much of Europe) and tabs as 'Unicode text'. Only a header is
    trusted: in a row, ``;`` also separates tags."""
    head = first_line.strip().lower()
    for d in (";", "\t"):
        if d in head and "," not in head and head.split(d)[0].strip() in EMAIL_HEADERS:
            return d
    return ","


def csv_rows(stream: TextIO) -> Iterator[tuple[int, list[str]]]:
    start = stream.tell()
    delimiter = _delimiter(stream.readline())
    stream.seek(start)
    reader = csv.reader(stream, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise PublisherError(
                f"line {reader.line_num}: bad CSV: {exc}", "fix the quoting"
            ) from None
        yield reader.line_num, row
