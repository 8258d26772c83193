"""Claims on a shared digest, on a real PostgreSQL: disjoint batches, a dead sender's
rows free at once, a hung one's once its lease runs out, and a row taken over is
never marked ``sending`` by the sender that lost it."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.store.claims import Claims
from publisher.store.ledger import Ledger
from publisher.store.rows import ClaimLost, DeliveryStatus
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore

NOW = datetime.fromisoformat("2026-11-23T07:00:00+00:00")


@pytest.fixture
def planned(request: pytest.FixtureRequest) -> tuple[Engine, int]:
    """A digest of 10 rows to send, on PostgreSQL: (engine, digest id)."""
    from tests.helpers.postgres import fresh_database

    server = request.getfixturevalue("postgres_server")
    test = hashlib.blake2b(request.node.nodeid.encode(), digest_size=6).hexdigest()
    engine = open_engine(fresh_database(server, f"t{test}_claims"))
    store = SubscriberStore(engine)
    ids = [store.add(f"r{n}@example.org", "", (), now=NOW)[0].id for n in range(10)]
    rows = [(i, DeliveryStatus.PENDING, f"<{i}@x>", "") for i in ids]
    return engine, Ledger(engine).plan("2019-W07", [], rows, NOW).id


def test_two_senders_take_disjoint_batches_and_nothing_twice(planned: tuple[Engine, int]) -> None:
    engine, digest = planned
    a, b = Claims(engine), Claims(engine)
    try:
        first, second = a.take(digest, 4), b.take(digest, 4)
        assert len(first) == len(second) == 4
        assert not {d.id for d in first} & {d.id for d in second}
        rest = list(a.rows(digest, 4))  # a's own rows are not taken again in its run
        assert len(rest) == 2 and not {d.id for d in rest} & {d.id for d in first + second}
    finally:
        a.release()
        b.release()


def test_a_dead_senders_rows_are_free_at_once(planned: tuple[Engine, int]) -> None:
    engine, digest = planned
    dead = Claims(engine)
    held = {d.id for d in dead.take(digest, 10)}
    dead._stop.set()
    dead._conn.invalidate()  # its session ends, as when its process is killed
    successor = Claims(engine)
    try:
        deadline = time.monotonic() + 5
        taken: set[int] = set()
        while not taken and time.monotonic() < deadline:  # (the backend exits just after)
            taken = {d.id for d in successor.take(digest, 10)}
        assert taken == held
    finally:
        successor.release()


def test_a_hung_senders_rows_are_taken_once_its_lease_runs_out(
    planned: tuple[Engine, int],
) -> None:
    engine, digest = planned
    hung = Claims(engine, lease=0.5)
    hung._stop.set()  # it renews no more (stopped, swapping, partitioned)
    (row, *_) = hung.take(digest, 10)
    other = Claims(engine)
    try:
        assert other.take(digest, 10) == []  # the lease still holds
        time.sleep(0.6)
        assert row.id in {d.id for d in other.take(digest, 10)}
        with pytest.raises(ClaimLost):
            Ledger(engine, hung.owner).mark_sending(row.id)  # its late send is refused
        Ledger(engine, other.owner).mark_sending(row.id)
        with engine.connect() as conn:
            status = conn.execute(sa.text(f"SELECT status FROM deliveries WHERE id = {row.id}"))
            assert status.scalar_one() == "sending"
    finally:
        other.release()
