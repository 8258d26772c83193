"""The delivery ledger: what was planned, sent, skipped or failed, per (digest, subscriber).

State changes are recorded after the effect: a row becomes ``sent`` only
after the server accepted the message. A row left ``sending`` by a crash is
sent again on the next run, with the same Message-ID. The ``sent`` mark rides
in the same transaction as the next write (usually the next ``sending``), one
commit a message instead of two; so at any moment at most one message is
delivered but not recorded, as before.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.errors import PublisherError
from publisher.store.locks import exclusive
from publisher.store.paths import shown_url, sqlite_file
from publisher.store.rows import TO_SEND, ClaimLost, Delivery, DeliveryStatus, DigestRecord
from publisher.store.schema import deliveries, digests
from publisher.store.subscribers import count_bounce

# The two updates made per message, built once (statement construction and
# cache-key generation cost more than the SQLite update itself).
_SENDING = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("did"))
    .values(status=DeliveryStatus.SENDING.value, attempts=deliveries.c.attempts + 1)
)
#: ``_SENDING`` for a sender that shares the digest (see ``claims``): only a row it holds.
_SENDING_CLAIMED = _SENDING.where(deliveries.c.claimed_by == sa.bindparam("owner"))
_SENT = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("did"))
    .values(status=DeliveryStatus.SENT.value, sent_at=sa.bindparam("at"), error="")
)


class Ledger:
    def __init__(self, engine: Engine, owner: str = "") -> None:
        """``owner``: the sender's claim name, when several share the digest (see
        ``claims``): a row is then marked ``sending`` only while it holds it."""
        self.engine, self.owner = engine, owner
        self._conn: sa.Connection | None = None
        self._unsaved_sent: dict[str, object] | None = None  # written with the next update

    def another(self) -> Ledger:
        """The ledger over a connection of its own (a send's other workers')."""
        return Ledger(self.engine, self.owner)

    def _writer(self) -> sa.Connection:
        """One connection kept for the per-message updates of a send (each still
        its own committed transaction), rather than one checked out per update."""
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        if self._unsaved_sent is not None:
            self._run(None, {})
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def sending(self) -> Iterator[None]:
        """On SQLite, hold the send lock: one sender at a time, whoever runs it.

        The ledger alone cannot tell a row another live process is sending from
        one a crash left ``sending`` (which the next run must send again), so two
        runs at once (a cron ``digest --send`` and the scheduler's job, say)
        would each send every message. The lock is an ``flock`` on a file beside
        the database (see ``locks``): it goes with its holder, so a killed
        sender's rerun never waits. A second sender is refused (exit 3).

        On PostgreSQL several senders share a digest instead, each holding the
        rows it claimed (see ``claims``): no lock.
        """
        if self.engine.dialect.name == "postgresql":
            yield
            return
        url = shown_url(self.engine.url.render_as_string(hide_password=False))
        busy = PublisherError(
            f"another process is sending digests from this state database ({url})",
            "let it finish (a run it leaves unfinished is completed by the next one)",
            exit_code=3,
        )
        db = sqlite_file(str(self.engine.url))
        if db is None:  # in memory: this process's alone
            yield
            return

        def refuse() -> None:
            raise busy

        with exclusive(db.with_name(db.name + ".sending"), refuse):
            yield

    def digest(self, week: str) -> DigestRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(digests).where(digests.c.week == week)).first()
        return (
            DigestRecord(row.id, row.week, row.created, tuple(json.loads(row.post_ids)))
            if row
            else None
        )

    def plan(
        self,
        week: str,
        post_ids: list[str],
        rows: list[tuple[int, DeliveryStatus, str, str]],
        now: datetime,
    ) -> DigestRecord:
        """Record the digest and one ledger row per subscriber, in one transaction.

        ``rows`` are (subscriber id, status, Message-ID, note). If the week was
        already planned (a rerun, or another process won the race), that plan stands.
        """
        stamp = now.isoformat()
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(
                    digests.insert().values(week=week, created=stamp, post_ids=json.dumps(post_ids))
                ).inserted_primary_key
                assert inserted is not None
                digest_id = inserted[0]
                if rows:
                    conn.execute(
                        deliveries.insert(),
                        [
                            {
                                "digest_id": digest_id,
                                "subscriber_id": sid,
                                "status": status.value,
                                "attempts": 0,
                                "message_id": mid,
                                "created": stamp,
                                "error": note,
                            }
                            for sid, status, mid, note in rows
                        ],
                    )
        except sa.exc.IntegrityError:
            pass
        record = self.digest(week)
        assert record is not None
        return record

    def by_message_id(self, message_id: str) -> tuple[int, int] | None:
        """(digest id, subscriber id) of the delivery that sent ``message_id``
        (with or without its angle brackets), for returns that name it."""
        mid = message_id.strip()
        mid = mid if mid.startswith("<") else f"<{mid}>"
        query = sa.select(deliveries.c.digest_id, deliveries.c.subscriber_id).where(
            deliveries.c.message_id == mid
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row.digest_id, row.subscriber_id) if row else None

    def to_send(self, digest_id: int) -> list[Delivery]:
        query = (
            sa.select(deliveries)
            .where(deliveries.c.digest_id == digest_id)
            .where(deliveries.c.status.in_([s.value for s in TO_SEND]))
            .order_by(deliveries.c.id)
        )
        with self.engine.connect() as conn:
            return [
                Delivery(r.id, r.subscriber_id, DeliveryStatus(r.status), r.attempts, r.message_id)
                for r in conn.execute(query)
            ]

    def _set(self, delivery_id: int, **values: object) -> None:
        self._run(deliveries.update().where(deliveries.c.id == delivery_id).values(**values), {})

    def _run(self, stmt: sa.Executable | None, params: dict[str, object]) -> int:
        """Run ``stmt`` (after the unsaved ``sent`` mark) and commit; its row count."""
        conn = self._writer()
        count = 0
        try:
            if self._unsaved_sent is not None:
                conn.execute(_SENT, self._unsaved_sent)
            if stmt is not None:
                count = conn.execute(stmt, params).rowcount
            conn.commit()
            self._unsaved_sent = None
        except BaseException:
            conn.rollback()
            raise
        return count

    def mark_sending(self, delivery_id: int) -> None:
        if not self.owner:
            self._run(_SENDING, {"did": delivery_id})
        elif not self._run(_SENDING_CLAIMED, {"did": delivery_id, "owner": self.owner}):
            raise ClaimLost(f"delivery {delivery_id} was taken over by another sender")

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """Written with the next update or at ``close()``: never later than the next send starts."""
        if self._unsaved_sent is not None:
            self._run(None, {})
        self._unsaved_sent = {"did": delivery_id, "at": now.isoformat()}

    def mark_skipped(self, delivery_id: int, why: str) -> None:
        self._set(delivery_id, status=DeliveryStatus.SKIPPED.value, error=why)

    def mark_deferred(self, delivery_id: int, why: str) -> None:
        self._set(delivery_id, status=DeliveryStatus.DEFERRED.value, error=why)

    def mark_undeliverable(self, delivery_id: int, why: str) -> None:
        """Failed before any attempt (an address this sender cannot write): no bounce."""
        self._set(delivery_id, status=DeliveryStatus.FAILED.value, error=why)

    def mark_failed(self, delivery_id: int, subscriber_id: int, why: str) -> int:
        """Record a permanent failure, counted against its subscriber; returns their
        count of failures (what it means is the lifecycle's: see ``Lifecycle.bounce``)."""
        self.close()
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id)
                .values(status=DeliveryStatus.FAILED.value, error=why)
            )
            return count_bounce(conn, subscriber_id)

    def counts(self, digest_id: int) -> Counter[str]:
        query = (
            sa.select(deliveries.c.status, sa.func.count())
            .where(deliveries.c.digest_id == digest_id)
            .group_by(deliveries.c.status)
        )
        with self.engine.connect() as conn:
            return Counter({status: n for status, n in conn.execute(query)})

    def sent_digests(self) -> list[DigestRecord]:
        """Digests planned to go out, oldest first, for the web archive: a digest's
        web copy is published once it is planned, before its first message (which
        links to it) goes."""
        query = sa.select(digests).order_by(digests.c.week)
        with self.engine.connect() as conn:
            return [
                DigestRecord(r.id, r.week, r.created, tuple(json.loads(r.post_ids)))
                for r in conn.execute(query)
            ]
