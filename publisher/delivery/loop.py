"""The delivery loop: messages from the ledger to a transport, each change recorded after it.

It talks to a ``Ledger`` and a ``Transport`` (both Protocols); it holds no SQL
and no SMTP, and is tested with neither. Transient failures (4xx, dropped
connections) are retried with exponential backoff; permanent ones (5xx) are
recorded and count towards a bounce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from publisher.delivery.transport import (
    Mail,
    PermanentError,
    ServerBusy,
    ServerError,
    TransientError,
    Transport,
    Undeliverable,
    Unreachable,
)
from publisher.store.rows import ClaimLost


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
    def another(self) -> Ledger:
        """The same ledger over a connection of its own, for another worker."""
        ...


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
    #: rows another sender took over before this one sent them (see ``store.claims``)
    taken: int = 0
    stopped: bool = False
    #: Why the run stopped before the end, when the server was the cause.
    reason: str = ""
    #: How long the messages took, for the rate (see ``__str__``).
    seconds: float = 0.0

    def add(self, other: Summary) -> None:
        """Count ``other`` (a worker's) in; its reason, if this has none yet."""
        for name in ("sent", "skipped", "failed", "retried", "deferred", "bounced", "taken"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped = self.stopped or other.stopped
        self.reason = self.reason or other.reason

    def __str__(self) -> str:
        text = (
            f"sent {self.sent}, skipped {self.skipped}, failed {self.failed}, "
            f"retried {self.retried}, deferred {self.deferred}"
        )
        if self.bounced:
            text += f", {self.bounced} subscriber(s) now marked bounced"
        if self.taken:
            text += f", {self.taken} taken over by another sender"
        if self.sent and self.seconds:
            text += f"; {self.sent / self.seconds:.1f} messages/s"
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
    connections: int = 1,
) -> Summary:
    """Send each message, recording each state change after it happened.

    A message's own failure (a 4xx tried ``max_attempts`` times, a 5xx) is
    recorded and the run goes on. A failure of the server (unreachable, or
    a 421 after every attempt; a refused login or sender) stops the run at
    once: the message is deferred and the rest are left for the next run,
    instead of each being tried (and failed, and counted as its subscriber's
    bounce) in turn.

    With ``connections`` > 1, as many workers take the next message in turn,
    each with its own connection (``transport.another()``) and ledger
    connection (``ledger.another()``); at most that many messages are in
    flight at once. A fault of the server seen by one stops them all.
    """
    summary = summary or Summary()
    retry = _Retry(max_attempts, backoff, sleep)
    started = time.monotonic()

    def one(ledger: Ledger, transport: Transport, item: Outgoing, into: Summary) -> None:
        _one(ledger, transport, item, now, retry, bounce_limit, into)
        on_progress()

    workers = _Workers(iter(outgoing), should_stop, summary, one)
    with ExitStack() as opened:  # every connection is closed, however the run ends

        def keep(pair: tuple[Ledger, Transport]) -> tuple[Ledger, Transport]:
            opened.callback(pair[0].close)
            opened.callback(pair[1].close)  # (the transport first: last in, first out)
            return pair

        pairs = [keep((ledger, transport))]
        if connections > 1:
            # one connection proves the server first: a server that is down or refuses
            # the login costs one message's attempts, not one a connection
            workers.work(ledger, transport, first=True)
        if workers.halt.is_set() or connections <= 1:
            workers.work(ledger, transport)
        else:
            pairs += [keep((ledger.another(), transport.another())) for _ in range(connections - 1)]
            _run_all(workers.work, pairs, workers.halt)
    if summary.reason:
        summary.stopped = True
    summary.seconds = time.monotonic() - started
    return summary


class _Workers:
    """What a send's workers share: the messages still to take, the summary they add
    to, and ``halt``, set when one of them met a fault of the server."""

    def __init__(
        self,
        items: Iterator[Outgoing],
        should_stop: Callable[[], bool],
        summary: Summary,
        one: Callable[[Ledger, Transport, Outgoing, Summary], None],
    ) -> None:
        self.items, self.should_stop, self.summary, self.one = items, should_stop, summary, one
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def take(self) -> Outgoing | None:
        with self.lock:
            if self.halt.is_set():
                return None
            if self.should_stop():
                self.summary.stopped = True
                self.halt.set()
                return None
            return next(self.items, None)

    def work(self, ledger: Ledger, transport: Transport, first: bool = False) -> None:
        """Send until there is nothing left (or, ``first``, until one is sent)."""
        mine = Summary()
        try:
            while (item := self.take()) is not None:
                self.one(ledger, transport, item, mine)
                if mine.reason:
                    self.halt.set()
                if first and mine.sent:
                    return
        finally:
            with self.lock:
                self.summary.add(mine)


def _run_all(
    work: Callable[[Ledger, Transport], None],
    pairs: list[tuple[Ledger, Transport]],
    halt: threading.Event,
) -> None:
    """Run ``work`` once per pair, in threads; the first exception stops the others
    (after their message in flight) and is raised here."""
    failures: list[BaseException] = []

    def guarded(ledger: Ledger, transport: Transport) -> None:
        try:
            work(ledger, transport)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            failures.append(exc)
            halt.set()

    threads = [threading.Thread(target=guarded, args=pair, daemon=True) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def _one(
    ledger: Ledger,
    transport: Transport,
    item: Outgoing,
    now: Callable[[], datetime],
    retry: _Retry,
    bounce_limit: int,
    summary: Summary,
) -> None:
    try:
        mail = item.build()
    except Undeliverable as exc:  # this row alone; the others go on
        ledger.mark_undeliverable(item.delivery.id, str(exc))
        summary.failed += 1
        return
    if mail is None:
        ledger.mark_skipped(item.delivery.id, "no longer subscribed")
        summary.skipped += 1
        return
    _send_one(ledger, transport, item, mail, now, retry, bounce_limit, summary)


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
            elif isinstance(exc, ServerBusy):
                summary.reason = f"the server kept answering {exc}"
            return
        except ClaimLost:  # another sender holds it now: it is theirs to send
            summary.taken += 1
            return
        except Undeliverable as exc:  # the server cannot take this address: this row alone
            ledger.mark_undeliverable(row, str(exc))
            summary.failed += 1
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
