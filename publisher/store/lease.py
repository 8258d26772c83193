"""The scheduler's lease: one acting scheduler per state database.

A row renewed by heartbeat; a scheduler that died stops renewing it, and
another may take it once it is ``LEASE_SECONDS`` old.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from publisher.errors import PublisherError
from publisher.store.schema import scheduler_lease

LEASE_SECONDS = 90
HEARTBEAT_SECONDS = 20


class Lease:
    def __init__(self, engine: sa.Engine, owner: str) -> None:
        self.engine, self.owner = engine, owner

    def acquire(self) -> None:
        """Take the lease if it is free, stale or ours, in one statement that two
        schedulers starting together cannot both win: an update of a stale (or our)
        row, else an insert of the only row, which the primary key lets one make.
        (Reading the row first and then writing let both start, on SQLite and on
        PostgreSQL alike.)"""
        now = time.time()
        lease = scheduler_lease.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                scheduler_lease.update()
                .where(lease.id == 1)
                .where(sa.or_(lease.owner == self.owner, lease.heartbeat <= now - LEASE_SECONDS))
                .values(owner=self.owner, heartbeat=now)
            ).rowcount
        if taken == 1:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(scheduler_lease.insert().values(id=1, owner=self.owner, heartbeat=now))
            return
        except sa.exc.IntegrityError:  # another scheduler holds it (or took it just now)
            pass
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(scheduler_lease)).first()
        who = f"{row.owner}, last seen {now - row.heartbeat:.0f} s ago" if row else "just started"
        raise PublisherError(
            f"another scheduler ({who}) is running against this database",
            "stop it first, or wait "
            f"{LEASE_SECONDS} s after it died; only one scheduler may send digests",
            exit_code=3,
        )

    def renew(self) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                scheduler_lease.update()
                .where(scheduler_lease.c.owner == self.owner)
                .values(heartbeat=time.time())
            ).rowcount
        return n == 1

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(scheduler_lease.delete().where(scheduler_lease.c.owner == self.owner))
