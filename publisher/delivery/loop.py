"""The delivery loop: messages from the ledger to a transport, each change recorded after it.

It talks to a ``Ledger`` and a ``Transport`` (both Protocols); it holds no SQL
and no SMTP, and is tested with neither. Transient failures (4xx, dropped
connections) are retried with exponential backoff; permanent ones (5xx) are
recorded and count towards a bounce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from publisher.delivery.transport import (
    Mail,
    PermanentError,
    ServerError,
    TransientError,
    Transport,
    Undeliverable,
    Unreachable,
)


class Ledger(Protocol):
    """What the loop records; ``publisher.store.ledger.Ledger`` keeps it in SQL."""

    def mark_sending(self, delivery_id: int) -> None: ...
    def mark_sent(self, delivery_id: int, now: datetime) -> None: ...
    def mark_skipped(self, delivery_id: int, why: str) -> None: ...
    def mark_deferred(self, delivery_id: int, why: str) -> None: ...
    def mark_undeliverable(self, delivery_id: int, why: str) -> None: ...
    def mark_failed(
        self, delivery_id: int, subscriber_id: int, why: str, bounce_limit: int
    ) -> bool: ...
    def close(self) -> None: ...


class Row(Protocol):
    """A ledger row to send, as far as the loop reads it."""

    @property
    def id(self) -> int: ...
    @property
    def subscriber_id(self) -> int: ...


@dataclass
class Summary:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    bounced: int = 0
    stopped: bool = False
    #: Why the run stopped before the end, when the server was the cause.
    reason: str = ""

    def __str__(self) -> str:
        text = (
            f"sent {self.sent}, skipped {self.skipped}, failed {self.failed}, "
            f"retried {self.retried}, deferred {self.deferred}"
        )
        if self.bounced:
            text += f", {self.bounced} subscriber(s) now marked bounced"
        if self.reason:
            return text + f" (stopped: {self.reason}; the rest wait for the next run)"
        return text + (" (stopped early)" if self.stopped else "")


@dataclass(frozen=True)
class Outgoing:
    delivery: Row
    sender: str
    recipient: str
    build: Callable[[], Mail | None]  # None: skip (e.g. unsubscribed since planning)
    #: the DSN envelope id (RFC 3461 ENVID) to ask returns to carry, if any
    envid: str = ""


def deliver(
    ledger: Ledger,
    transport: Transport,
    outgoing: Iterable[Outgoing],
    *,
    now: Callable[[], datetime],
    max_attempts: int,
    bounce_limit: int,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[], None] = lambda: None,
    summary: Summary | None = None,
) -> Summary:
    """Send each message, recording each state change after it happened.

    A message's own failure (a 4xx tried ``max_attempts`` times, a 5xx) is
    recorded and the run goes on. A failure of the server (unreachable after
    every attempt, a refused login or sender) stops the run at once: the
    message is deferred and the rest are left for the next run, instead of
    each being tried (and failed, and counted as its subscriber's bounce) in turn.
    """
    summary = summary or Summary()
    retry = _Retry(max_attempts, backoff, sleep)
    try:
        for item in outgoing:
            if should_stop():
                summary.stopped = True
                break
            try:
                mail = item.build()
            except Undeliverable as exc:  # this row alone; the others go on
                ledger.mark_undeliverable(item.delivery.id, str(exc))
                summary.failed += 1
                on_progress()
                continue
            if mail is None:
                ledger.mark_skipped(item.delivery.id, "no longer subscribed")
                summary.skipped += 1
            else:
                _send_one(ledger, transport, item, mail, now, retry, bounce_limit, summary)
                if summary.reason:
                    summary.stopped = True
                    return summary
            on_progress()
    finally:
        transport.close()
        ledger.close()
    return summary


@dataclass(frozen=True)
class _Retry:
    attempts: int
    backoff: float
    sleep: Callable[[float], None]


def _send_one(
    ledger: Ledger,
    transport: Transport,
    item: Outgoing,
    mail: Mail,
    now: Callable[[], datetime],
    retry: _Retry,
    bounce_limit: int,
    summary: Summary,
) -> None:
    """One message, tried up to ``retry.attempts`` times; the outcome is recorded in
    the ledger and counted in ``summary`` (its ``reason`` set when the server failed)."""
    row = item.delivery.id
    for attempt in range(1, retry.attempts + 1):
        try:
            transport.send(
                mail, item.sender, item.recipient, partial(ledger.mark_sending, row), item.envid
            )
        except TransientError as exc:
            if attempt < retry.attempts:
                summary.retried += 1
                retry.sleep(retry.backoff * 2 ** (attempt - 1))
                continue
            ledger.mark_deferred(row, str(exc))
            summary.deferred += 1
            if isinstance(exc, Unreachable):
                summary.reason = str(exc)
            return
        except ServerError as exc:
            ledger.mark_deferred(row, str(exc))
            summary.deferred += 1
            summary.reason = str(exc)
            return
        except PermanentError as exc:
            summary.failed += 1
            if ledger.mark_failed(row, item.delivery.subscriber_id, str(exc), bounce_limit):
                summary.bounced += 1
            return
        ledger.mark_sent(row, now())
        summary.sent += 1
        return
