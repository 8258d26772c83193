"""What is held about one person, and erasing it on request (UK GDPR articles 15,
17 and 20: access, erasure, portability).

An erased address is kept only as a keyed hash (HMAC-SHA256 with
``PUBLISHER_SECRET``), so that it stays suppressed: a later import of an old
list, or a command, does not take it for consent; a sign-up through the form
must be confirmed again, which clears the hash (fresh consent).
"""

from __future__ import annotations

import hashlib
import hmac
import mailbox
from datetime import datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.store.rows import Subscriber
from publisher.store.schema import deliveries, digests, forgotten, returns, subscribers
from publisher.text import to_address


def address_hash(address: str, secret: str) -> str:
    key = address.strip().casefold().encode("utf-8")
    return hmac.new(secret.encode("utf-8"), key, hashlib.sha256).hexdigest()


def is_forgotten(conn: sa.Connection, address: str, secret: str) -> bool:
    query = sa.select(forgotten.c.address_hash).where(
        forgotten.c.address_hash == address_hash(address, secret)
    )
    return conn.execute(query).first() is not None


def unforget(engine: Engine, address: str, secret: str) -> None:
    """The person confirmed a sign-up again: their consent is fresh."""
    with engine.begin() as conn:
        conn.execute(
            forgotten.delete().where(forgotten.c.address_hash == address_hash(address, secret))
        )


def person_record(engine: Engine, sub: Subscriber) -> dict[str, Any]:
    """Everything the state database holds about ``sub``: what ``subscribers show``
    prints and the preferences page's "download my data" gives."""
    with engine.connect() as conn:
        sent = conn.execute(
            sa.select(deliveries, digests.c.week)
            .join(digests, digests.c.id == deliveries.c.digest_id)
            .where(deliveries.c.subscriber_id == sub.id)
            .order_by(digests.c.week)
        ).all()
        came_back = conn.execute(
            sa.select(returns).where(returns.c.subscriber_id == sub.id).order_by(returns.c.received)
        ).all()
    return {
        "subscriber": {
            "email": sub.email,
            "name": sub.name,
            "topics": list(sub.tags) or "every post",
            "cadence": sub.cadence,
            "status": sub.status.value,
            "bounces": sub.bounces,
            "joined": sub.created,
            "joined_by": sub.source or "unknown (before consent was recorded)",
            "confirmed": sub.confirmed or None,
            "last_changed": sub.updated,
        },
        "deliveries": [
            {
                "digest": r.week,
                "status": r.status,
                "attempts": r.attempts,
                "message_id": r.message_id,
                "planned": r.created,
                "sent": r.sent_at,
                "error": r.error,
                "came_back": r.returned,
            }
            for r in sent
        ],
        "returns": [
            {"kind": r.kind, "received": r.received, "detail": r.detail, "message_id": r.message_id}
            for r in came_back
        ],
    }


def forget(engine: Engine, sub: Subscriber, secret: str, now: datetime) -> dict[str, int]:
    """Erase ``sub`` from the state database (their row, ledger rows, returns),
    keeping their address's keyed hash; in one transaction. Counts what went."""
    with engine.begin() as conn:
        gone_returns = conn.execute(
            returns.delete().where(returns.c.subscriber_id == sub.id)
        ).rowcount
        gone_rows = conn.execute(
            deliveries.delete().where(deliveries.c.subscriber_id == sub.id)
        ).rowcount
        conn.execute(subscribers.delete().where(subscribers.c.id == sub.id))
        if not is_forgotten(conn, sub.email, secret):
            conn.execute(
                forgotten.insert().values(
                    address_hash=address_hash(sub.email, secret), at=now.isoformat()
                )
            )
    return {"ledger rows": gone_rows, "returns": gone_returns}


def purge_outbox(outbox: Path, address: str) -> int:
    """Remove the outbox's copies of mail to ``address`` (drafts, mail the outbox
    method delivered); how many went."""
    if not (outbox / "cur").is_dir():
        return 0
    box = mailbox.Maildir(outbox, create=False)
    wanted = _wire_forms(address)
    gone = 0
    for key in list(box.keys()):
        try:
            to = box.get_message(key).get_all("To", [])
        except (OSError, KeyError):
            continue
        if wanted & {addr.casefold() for _, addr in getaddresses([str(v) for v in to])}:
            box.remove(key)
            gone += 1
    box.close()
    return gone


def _wire_forms(address: str) -> set[str]:
    """The address as stored and as mail carries it (see ``to_address``), casefolded:
    a copy is the person's only if its ``To`` address is one of these, whole."""
    return {address.casefold(), to_address(address).casefold()}
