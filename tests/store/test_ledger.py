"""The ledger on a real database (SQLite, PostgreSQL): what another process sees after
each step."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from publisher.store.ledger import Ledger
from publisher.store.rows import DeliveryStatus
from publisher.store.schema import deliveries, open_engine
from publisher.store.subscribers import SubscriberStore

NOW = datetime.fromisoformat("2026-11-23T07:00:00+00:00")


def statuses(url: str) -> list[str]:
    """Read through a separate engine, as a process started after a crash would."""
    engine = open_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.status).order_by(deliveries.c.id)).scalars()
        out = list(rows)
    engine.dispose()
    return out


def test_sent_is_committed_with_the_next_sending_so_one_message_at_most_is_unrecorded(
    state_url: str,
) -> None:
    url = state_url
    store = SubscriberStore(open_engine(url))
    ids = [store.add(f"{n}@example.org", "", (), now=NOW)[0].id for n in ("a", "b")]
    ledger = Ledger(open_engine(url))
    rows = [(i, DeliveryStatus.PENDING, f"<{i}@x>", "") for i in ids]
    digest = ledger.plan("2019-W07", [], rows, NOW)
    first, second = ledger.to_send(digest.id)
    ledger.mark_sending(first.id)
    assert statuses(url) == ["sending", "pending"]
    ledger.mark_sent(first.id, NOW)
    # a kill here would leave the first row 'sending': it is the one message a rerun repeats
    assert statuses(url) == ["sending", "pending"]
    ledger.mark_sending(second.id)
    assert statuses(url) == ["sent", "sending"]  # one transaction, never both 'sending'
    ledger.mark_sent(second.id, NOW)
    ledger.close()
    assert statuses(url) == ["sent", "sent"]
    assert [d.id for d in Ledger(open_engine(url)).to_send(digest.id)] == []
