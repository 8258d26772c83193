"""Several senders, one digest (PostgreSQL): rows claimed in batches, under a lease.

Each ``digest --send`` (or scheduler) claims the next rows of the digest with
``SELECT … FOR UPDATE SKIP LOCKED``, so two senders never take the same row,
and marks each ``sending`` only while it still holds it (``Ledger`` with an
owner). A claim is free for another sender once its holder's database session
is gone (a killed process: at once) or its lease ran out (a hung one: the
lease is renewed every third of its length while the holder lives). A
sender never claims a row twice in one run, so a row it deferred waits for
the next run, as with one sender. Plain SQL on PostgreSQL: procrastinate
would bring a worker process, its own schema and a job per message where one
UPDATE … RETURNING claims a batch.

SQLite has one writer: one sender at a time (``Ledger.sending``), with its
connections inside that process.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import Extract

from publisher.store.rows import TO_SEND, Delivery, DeliveryStatus
from publisher.store.schema import deliveries

#: Seconds a claim holds without renewal.
LEASE_SECONDS = 60.0


def _db_now() -> Extract:
    """The database's clock: senders on several machines need not agree on time."""
    return sa.extract("epoch", sa.func.clock_timestamp())


class Claims:
    """This sender's claims on one digest: taken in batches, renewed, released at the end."""

    def __init__(self, engine: Engine, lease: float = LEASE_SECONDS) -> None:
        self.engine, self.lease = engine, lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._conn = engine.connect()  # its session stands for this sender while it lives
        self._lock = threading.Lock()  # the workers claim, the heartbeat renews
        self.backend = self._conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
        self._conn.commit()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renewing, daemon=True)
        self._heartbeat.start()

    def rows(self, digest_id: int, batch: int) -> Iterator[Delivery]:
        """The digest's rows to send that no live sender holds, ``batch`` at a time."""
        while claimed := self.take(digest_id, batch):
            yield from claimed

    def take(self, digest_id: int, batch: int) -> list[Delivery]:
        c = deliveries.c
        live = sa.select(sa.text("pid")).select_from(sa.text("pg_stat_activity"))
        free = sa.or_(c.claimed_by == "", c.lease_until < _db_now(), c.claim_backend.not_in(live))
        pick = (
            sa.select(c.id)
            .where(c.digest_id == digest_id)
            .where(c.status.in_([s.value for s in TO_SEND]))
            .where(c.claimed_by != self.owner)  # not twice in one run
            .where(free)
            .order_by(c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            deliveries.update()
            .where(c.id.in_(pick.scalar_subquery()))
            .values(
                claimed_by=self.owner,
                claim_backend=self.backend,
                lease_until=_db_now() + self.lease,
            )
            .returning(c.id, c.subscriber_id, c.status, c.attempts, c.message_id)
        )
        with self._lock:
            rows = self._conn.execute(stmt).all()
            self._conn.commit()
        return [
            Delivery(r.id, r.subscriber_id, DeliveryStatus(r.status), r.attempts, r.message_id)
            for r in sorted(rows, key=lambda r: r.id)
        ]

    def _renewing(self) -> None:
        c = deliveries.c
        renew = (
            deliveries.update()
            .where(c.claimed_by == self.owner)
            .where(c.status.in_([s.value for s in TO_SEND]))
            .values(lease_until=_db_now() + self.lease)
        )
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                try:
                    self._conn.execute(renew)
                    self._conn.commit()
                except sa.exc.SQLAlchemyError:  # the session is lost: so are the claims,
                    return  # and ``Ledger.mark_sending`` refuses what this sender held

    def release(self) -> None:
        """Let go of every row still to send (stopped early, or deferred): the next run,
        or another sender, takes them at once."""
        self._stop.set()
        self._heartbeat.join()
        c = deliveries.c
        with self._lock:
            try:
                self._conn.execute(
                    deliveries.update()
                    .where(c.claimed_by == self.owner)
                    .where(c.status.in_([s.value for s in TO_SEND]))
                    .values(claimed_by="", claim_backend=0, lease_until=0.0)
                )
                self._conn.commit()
            finally:
                self._conn.close()
