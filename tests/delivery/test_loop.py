"""The delivery loop on its own: an in-memory ledger and transport stand for the
Protocols it talks to, so these tests need neither SQL nor SMTP (the real ones are
exercised in tests/newsletter and tests/store)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from publisher.delivery.loop import Outgoing, deliver
from publisher.delivery.transport import (
    Mail,
    PermanentError,
    ServerBusy,
    ServerError,
    TransientError,
    Unreachable,
)

NOW = datetime(2019, 2, 18, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    id: int
    subscriber_id: int


@dataclass
class Ledger:
    """Every mark, in order, as (what, row id)."""

    marks: list[tuple[str, int]] = field(default_factory=list)
    bounce_after: int = 99
    failures: dict[int, int] = field(default_factory=dict)
    closed: bool = False

    def mark_sending(self, delivery_id: int) -> None:
        self.marks.append(("sending", delivery_id))

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        self.marks.append(("sent", delivery_id))

    def mark_skipped(self, delivery_id: int, why: str) -> None:
        self.marks.append(("skipped", delivery_id))

    def mark_deferred(self, delivery_id: int, why: str) -> None:
        self.marks.append(("deferred", delivery_id))

    def mark_undeliverable(self, delivery_id: int, why: str) -> None:
        self.marks.append(("undeliverable", delivery_id))

    def mark_failed(
        self, delivery_id: int, subscriber_id: int, why: str, bounce_limit: int
    ) -> bool:
        self.marks.append(("failed", delivery_id))
        self.failures[subscriber_id] = self.failures.get(subscriber_id, 0) + 1
        return self.failures[subscriber_id] >= bounce_limit

    def close(self) -> None:
        self.closed = True

    def another(self) -> Ledger:
        return self  # one list of marks for every worker


@dataclass(frozen=True)
class Text:
    body: bytes

    def wire(self, eight_bit: bool) -> bytes:
        return self.body


@dataclass
class Transport:
    """Accepts every message, or answers each recipient with the next of its faults."""

    faults: dict[str, list[Exception]] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    closed: bool = False

    def send(
        self,
        mail: Mail,
        sender: str,
        recipient: str,
        handing_over: Callable[[], None],
        envid: str = "",
    ) -> None:
        handing_over()
        queue = self.faults.get(recipient, [])
        if queue:
            raise queue.pop(0)
        self.accepted.append(recipient)

    def close(self) -> None:
        self.closed = True

    def another(self) -> Transport:
        return self


def outgoing(*recipients: str, skip: str = "") -> list[Outgoing]:
    def build(r: str) -> Callable[[], Mail | None]:
        return lambda: None if r == skip else Text(r.encode())

    return [Outgoing(Row(i, i), "from@x.test", r, build(r)) for i, r in enumerate(recipients, 1)]


def run(ledger: Ledger, transport: Transport, items: list[Outgoing], **kw: object):  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    summary = deliver(
        ledger,
        transport,
        items,
        now=lambda: NOW,
        max_attempts=3,
        bounce_limit=2,
        backoff=1.0,
        sleep=sleeps.append,
        **kw,  # type: ignore[arg-type]
    )
    return summary, sleeps


def test_each_row_is_sending_before_it_is_handed_over_and_sent_after() -> None:
    ledger, transport = Ledger(), Transport()
    summary, _ = run(ledger, transport, outgoing("a@x.test", "b@x.test"))
    assert ledger.marks == [("sending", 1), ("sent", 1), ("sending", 2), ("sent", 2)]
    assert transport.accepted == ["a@x.test", "b@x.test"] and summary.sent == 2
    assert ledger.closed and transport.closed


def test_a_transient_failure_is_retried_with_backoff_then_deferred() -> None:
    ledger = Ledger()
    transport = Transport({"a@x.test": [TransientError("421 busy")] * 3})
    summary, sleeps = run(ledger, transport, outgoing("a@x.test", "b@x.test"))
    assert sleeps == [1.0, 2.0]  # doubling, none after the last attempt
    assert ("deferred", 1) in ledger.marks and ("sent", 2) in ledger.marks
    assert (summary.retried, summary.deferred, summary.sent) == (2, 1, 1)


def test_a_transient_failure_that_clears_is_sent() -> None:
    ledger = Ledger()
    transport = Transport({"a@x.test": [TransientError("451 try later")]})
    summary, sleeps = run(ledger, transport, outgoing("a@x.test"))
    assert ledger.marks[-1] == ("sent", 1) and sleeps == [1.0] and summary.sent == 1


def test_permanent_failures_count_towards_a_bounce() -> None:
    ledger = Ledger()
    # two digests' worth of 550s for one subscriber: the second one bounces them
    transport = Transport({"a@x.test": [PermanentError("550 no such user")] * 2})
    items = outgoing("a@x.test") + [
        Outgoing(Row(7, 1), "from@x.test", "a@x.test", lambda: Text(b""))
    ]
    summary, sleeps = run(ledger, transport, items)
    assert summary.failed == 2 and summary.bounced == 1 and sleeps == []


@pytest.mark.parametrize(
    "fault", [ServerError("535 login refused"), Unreachable("connection refused")]
)
def test_a_fault_of_the_server_stops_the_run_and_blames_nobody(fault: Exception) -> None:
    ledger = Ledger()
    transport = Transport({"a@x.test": [fault] * 3})
    summary, _ = run(ledger, transport, outgoing("a@x.test", "b@x.test"))
    assert summary.stopped and summary.reason == str(fault)
    assert ("deferred", 1) in ledger.marks and not any(m[1] == 2 for m in ledger.marks)
    assert summary.failed == 0 and summary.bounced == 0 and ledger.closed


def test_a_row_with_nothing_to_send_is_skipped_and_should_stop_is_heard() -> None:
    ledger, transport = Ledger(), Transport()
    summary, _ = run(ledger, transport, outgoing("a@x.test", "b@x.test", skip="a@x.test"))
    assert ledger.marks[0] == ("skipped", 1) and summary.skipped == 1 and summary.sent == 1
    ledger, transport = Ledger(), Transport()
    summary, _ = run(ledger, transport, outgoing("a@x.test"), should_stop=lambda: True)
    assert summary.stopped and ledger.marks == [] and transport.accepted == []


def test_a_421_that_persists_stops_the_run_after_one_message() -> None:
    """A server answering 421 to everything used to be tried for every message,
    ``max_attempts`` times each (two hours for 500 subscribers): it now stops the
    run once one message has had its attempts, saying why."""
    ledger = Ledger()
    transport = Transport({"a@x.test": [ServerBusy("421 4.7.0 busy")] * 3})
    summary, sleeps = run(ledger, transport, outgoing("a@x.test", "b@x.test", "c@x.test"))
    assert summary.reason == "the server kept answering 421 4.7.0 busy" and summary.stopped
    assert (summary.deferred, summary.sent) == (1, 0) and len(sleeps) == 2
    assert transport.accepted == [] and ("sending", 2) not in ledger.marks


@dataclass
class Together(Transport):
    """After its first message, holds each send until ``width`` sends are in at once."""

    width: int = 4
    barrier: threading.Barrier = field(init=False)
    sends: int = 0

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.width, timeout=5)

    def send(self, mail, sender, recipient, handing_over, envid=""):  # type: ignore[no-untyped-def]
        self.sends += 1
        if self.sends > 1:
            self.barrier.wait()  # broken, and raised, unless ``width`` are in flight
        super().send(mail, sender, recipient, handing_over, envid)


def test_connections_send_at_once_after_the_first_proves_the_server() -> None:
    ledger, transport = Ledger(), Together(width=4)
    items = outgoing(*(f"r{i}@x.test" for i in range(9)))
    summary, _ = run(ledger, transport, items, connections=4)
    assert summary.sent == 9 and sorted(transport.accepted) == sorted(i.recipient for i in items)
    assert transport.accepted[0] == "r0@x.test"  # alone, before the others opened


def test_a_server_fault_on_one_connection_stops_every_connection() -> None:
    ledger = Ledger()
    transport = Transport({"r1@x.test": [ServerError("535 login refused")]})
    items = outgoing(*(f"r{i}@x.test" for i in range(40)))
    summary, _ = run(ledger, transport, items, connections=4)
    assert summary.reason == "535 login refused" and summary.stopped
    # the workers each finish the message in hand, and take no other
    assert summary.sent + summary.deferred <= 1 + 4 and summary.deferred == 1


@pytest.mark.parametrize("connections", [1, 4])
def test_connections_are_closed_when_the_ledger_fails(connections: int) -> None:
    """A fault of the state database mid-send is raised, and the connections the run
    opened are closed all the same (the first connection's too, while it proves the
    server alone)."""

    class Broken(Ledger):
        def mark_sending(self, delivery_id: int) -> None:
            raise RuntimeError("database is gone")

    ledger, transport = Broken(), Transport()
    with pytest.raises(RuntimeError, match="database is gone"):
        run(ledger, transport, outgoing("a@x.test", "b@x.test"), connections=connections)
    assert ledger.closed and transport.closed
