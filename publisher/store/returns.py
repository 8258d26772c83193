"""What came back: each return recorded once, by its Message-ID, against its ledger row."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.store.schema import deliveries, returns


class ReturnsLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        message_id: str,
        kind: str,
        subscriber_id: int | None,
        digest_id: int | None,
        detail: str,
        now: datetime,
    ) -> bool:
        """Record a return; ``False`` when one with this Message-ID was recorded
        before (the same mailbox read twice): nothing is done again."""
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(returns.c.message_id).where(returns.c.message_id == message_id)
            ).first():
                return False
            conn.execute(
                returns.insert().values(
                    message_id=message_id,
                    kind=kind,
                    subscriber_id=subscriber_id,
                    digest_id=digest_id,
                    received=now.isoformat(),
                    detail=detail[:2000],
                )
            )
            if digest_id is not None and subscriber_id is not None:
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.digest_id == digest_id)
                    .where(deliveries.c.subscriber_id == subscriber_id)
                    .values(returned=f"{kind}: {detail}"[:2000])
                )
        return True

    def since(self, when: str) -> int:
        """How many returns were recorded since ``when`` (ISO 8601)."""
        query = sa.select(sa.func.count()).select_from(returns).where(returns.c.received >= when)
        with self.engine.connect() as conn:
            count: int = conn.execute(query).scalar_one()
        return count

    def of(self, subscriber_id: int) -> list[tuple[str, str, str]]:
        """A subscriber's returns as (received, kind, detail), oldest first."""
        query = (
            sa.select(returns.c.received, returns.c.kind, returns.c.detail)
            .where(returns.c.subscriber_id == subscriber_id)
            .order_by(returns.c.received)
        )
        with self.engine.connect() as conn:
            return [(r.received, r.kind, r.detail) for r in conn.execute(query)]
