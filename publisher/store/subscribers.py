"""Subscribers: validated addresses, tag choices and status, kept in the state database."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine

from publisher.errors import Problem, PublisherError, error, warning
from publisher.store.imports import (
    EMAIL_HEADERS,
    Format,
    Person,
    csv_rows,
    foreign,
    ignored,
    row_error,
)
from publisher.store.rows import SUPPRESSED, Status, Subscriber
from publisher.store.schema import subscribers as table

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_TAG_SPLIT = re.compile(r"[;|,]")
#: A name is a greeting, not a letter: longer ones are cut (they go into mail headers).
MAX_NAME = 100


def count_bounce(conn: sa.Connection, subscriber_id: int) -> int:
    """In ``conn``'s transaction: one more failure against the subscriber; their count."""
    conn.execute(
        table.update().where(table.c.id == subscriber_id).values(bounces=table.c.bounces + 1)
    )
    count: int = conn.execute(
        sa.select(table.c.bounces).where(table.c.id == subscriber_id)
    ).scalar_one()
    return count


def normalize_email(text: str) -> str:
    """Syntax check only (no DNS): the address as email-validator normalizes it."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise PublisherError(
            f"'{text}' is not a valid email address: {exc}", "check the address for typos"
        ) from None


def clean_name(name: str) -> str:
    """Names go into mail headers: no line breaks or control characters, bounded length."""
    return " ".join(_CONTROL.sub(" ", name).split())[:MAX_NAME]


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for tag in tags:
        t = " ".join(_CONTROL.sub(" ", tag).split())
        if t:
            seen.setdefault(t.casefold(), t)
    return tuple(sorted(seen.values(), key=str.casefold))


def _row(r: sa.Row[Any]) -> Subscriber:
    return Subscriber(
        r.id,
        r.email,
        r.name,
        tuple(json.loads(r.tags)),
        Status(r.status),
        r.bounces,
        r.updated,
        r.cadence,
        r.source,
        r.confirmed,
        r.created,
    )


class Forgotten(PublisherError):
    """The address was erased on its owner's request: adding it is no consent."""


class SubscriberStore:
    def __init__(self, engine: Engine, secret: str = "") -> None:
        """``secret``: ``PUBLISHER_SECRET``, with which erased addresses are kept
        (see ``people``); without it, they cannot be recognised."""
        self.engine = engine
        self.secret = secret

    def add(
        self,
        email: str,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        status: Status = Status.ACTIVE,
        now: datetime,
        revive: bool = True,
        bounces: int = 0,
        source: str = "command",
        cadence: str | None = None,
    ) -> tuple[Subscriber, bool]:
        """Add or update by address (case-insensitive); returns (subscriber, created).

        ``name`` and ``tags`` left ``None`` keep an existing subscriber's (a new one
        gets no name and every post). With ``revive`` false, an unsubscribed or
        bounced subscriber is left as it is unless ``status`` is one of those too:
        only they can sign up again. ``source`` (how they joined) is recorded for a
        new subscriber only; ``cadence`` left ``None`` keeps theirs (new: weekly).
        """
        address = normalize_email(email)
        values: dict[str, str] = {
            "email": address,
            "status": status.value,
            "updated": now.isoformat(),
        }
        if name is not None:
            values["name"] = clean_name(name)
        if tags is not None:
            values["tags"] = json.dumps(list(clean_tags(tags)), ensure_ascii=False)
        if cadence is not None:
            values["cadence"] = cadence
        with self.engine.begin() as conn:
            key = address.casefold()
            row = conn.execute(sa.select(table).where(table.c.email_key == key)).first()
            if row is None and status is not Status.PENDING and not revive:
                self._refuse_forgotten(conn, address)
            if row is None:
                new = {"name": "", "tags": "[]", "source": source} | values
                conn.execute(
                    table.insert().values(
                        email_key=key, created=now.isoformat(), bounces=bounces, **new
                    )
                )
                created = True
            elif not revive and row.status in SUPPRESSED and status not in SUPPRESSED:
                return _row(row), False
            else:
                if row.status == Status.ACTIVE and status == Status.PENDING:
                    values["status"] = Status.ACTIVE.value  # never downgrade a confirmed address
                conn.execute(
                    table.update().where(table.c.id == row.id).values(bounces=bounces, **values)
                )
                created = False
            row = conn.execute(sa.select(table).where(table.c.email_key == key)).one()
        return _row(row), created

    def _refuse_forgotten(self, conn: sa.Connection, address: str) -> None:
        """A sign-up (pending) goes on: it must be confirmed. Anything else is not
        consent from someone who asked to be forgotten."""
        from publisher.store.people import is_forgotten

        if self.secret and is_forgotten(conn, address, self.secret):
            raise Forgotten(
                f"{address} was erased at its owner's request: left out",
                "only they can sign up again (or, at their word, add it with --resubscribe)",
            )

    def get(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == subscriber_id)).first()
        return _row(row) if row else None

    def by_email(self, email: str) -> Subscriber | None:
        key = normalize_email(email).casefold()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.email_key == key)).first()
        return _row(row) if row else None

    def all(self, status: Status | None = None) -> list[Subscriber]:
        query = sa.select(table).order_by(table.c.email_key)
        if status is not None:
            query = query.where(table.c.status == status.value)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def set_status(self, subscriber_id: int, status: Status, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.id == subscriber_id)
                .values(status=status.value, updated=now.isoformat())
            )

    def set_tags(self, subscriber_id: int, tags: Iterable[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.id == subscriber_id)
                .values(
                    tags=json.dumps(list(clean_tags(tags)), ensure_ascii=False),
                    updated=now.isoformat(),
                )
            )

    def set_cadence(self, subscriber_id: int, cadence: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.id == subscriber_id)
                .values(cadence=cadence, updated=now.isoformat())
            )

    def set_confirmed(self, subscriber_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update().where(table.c.id == subscriber_id).values(confirmed=now.isoformat())
            )

    def count_bounce(self, subscriber_id: int) -> int:
        """One more failure counted against the subscriber (a soft bounce that came
        back by mail); returns their count."""
        with self.engine.begin() as conn:
            return count_bounce(conn, subscriber_id)

    def remove(self, email: str, now: datetime) -> bool:
        """Unsubscribe (the row stays so the delivery ledger keeps its history)."""
        sub = self.by_email(email)
        if sub is None:
            return False
        self.set_status(sub.id, Status.UNSUBSCRIBED, now)
        return True

    def import_csv(
        self, stream: TextIO, name: str, now: datetime
    ) -> tuple[int, int, list[Problem]]:
        """Rows ``email,name,tags`` (tags separated by ``;``), and optionally a
        ``status`` column as ``export_csv`` writes it; a header row is optional.
        Or another service's export, recognised by its header (see ``imports``).

        A bad row is reported (an error) with its line number and skipped; good
        rows go in. An import never re-subscribes anyone who unsubscribed or
        bounced, as mail services refuse to: an old list imported again would
        mail people who asked to stop. Such rows are left as they are, with a
        warning; a ``status`` of unsubscribed or bounced does apply, so an export
        imported into a new database keeps who must not be mailed.
        """
        counts = [0, 0]  # added, updated
        problems: list[Problem] = []
        rows = csv_rows(stream)
        first = next(rows, None)
        if first is None:
            return 0, 0, problems
        fmt = foreign(first[1], name)
        if fmt is not None:
            self._import_foreign(fmt, first[1], rows, name, now, counts, problems)
            return counts[0], counts[1], problems
        for line, row in [first, *rows]:
            if not row or not any(cell.strip() for cell in row):
                continue
            if line == 1 and row[0].strip().lower() in EMAIL_HEADERS:
                continue
            given = row[3].strip().lower() if len(row) > 3 else ""
            count = row[4].strip() if len(row) > 4 else ""
            cadence = row[5].strip().lower() if len(row) > 5 else ""
            if wrong := row_error(row, given, count, cadence):
                problems.append(error(name, line, wrong))
                continue
            tags = _TAG_SPLIT.split(row[2]) if len(row) > 2 else []
            person = Person(row[0], row[1] if len(row) > 1 else "", tuple(tags),
                            Status(given) if given else Status.ACTIVE)  # fmt: skip
            self._import_one(
                person, int(count or 0), name, line, now, counts, problems, cadence or None
            )
        return counts[0], counts[1], problems

    def _import_foreign(
        self,
        fmt: Format,
        header: list[str],
        rows: Iterator[tuple[int, list[str]]],
        name: str,
        now: datetime,
        counts: list[int],
        problems: list[Problem],
    ) -> None:
        keys = [c.strip().lower() for c in header]
        if extra := ignored(fmt, header):
            shown = ", ".join(extra[:6]) + (f" and {len(extra) - 6} more" if len(extra) > 6 else "")
            problems.append(warning(name, 1, f"{fmt.name} export: columns ignored: {shown}"))
        for line, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            got = fmt.read(dict(zip(keys, (c.strip() for c in row), strict=False)))
            if isinstance(got, str):
                problems.append(warning(name, line, got))
                continue
            self._import_one(got, 0, name, line, now, counts, problems)

    def _import_one(
        self,
        person: Person,
        bounces: int,
        name: str,
        line: int,
        now: datetime,
        counts: list[int],
        problems: list[Problem],
        cadence: str | None = None,
    ) -> None:
        try:
            sub, created = self.add(
                person.email,
                person.name,
                person.tags,
                status=person.status,
                now=now,
                revive=False,
                bounces=bounces,
                source=f"import {name}",
                cadence=cadence,
            )
        except Forgotten as exc:
            problems.append(warning(name, line, exc.message))
            return
        except PublisherError as exc:
            problems.append(error(name, line, exc.message))
            return
        if sub.status in SUPPRESSED and person.status not in SUPPRESSED:
            problems.append(
                warning(
                    name,
                    line,
                    f"{sub.email} is {sub.status.value}: left as is (an import never "
                    "re-subscribes anyone; they can sign up again themselves)",
                )
            )
            return
        counts[0 if created else 1] += 1

    def export_csv(self, out: TextIO) -> int:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name", "tags", "status", "bounces", "cadence"])
        subs = self.all()
        for s in subs:
            row = [s.email, s.name, ";".join(s.tags), s.status.value, s.bounces, s.cadence]
            writer.writerow(row)
        return len(subs)
