"""Rows of the state database as plain values, their statuses, and what a build makes of them.

Apart from the modules that hold SQL (SQLAlchemy Core) so that a build, the
command line and the delivery loop can use them without importing SQLAlchemy
(see ``site.state_helper``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class PostVersion:
    """A post's content hash and ``updated`` date, as the last build that saw it left them."""

    content_hash: str
    updated: datetime


@dataclass(frozen=True)
class DigestRecord:
    """A digest as the ledger records it: its week and the posts it carried."""

    id: int
    week: str
    created: str
    post_ids: tuple[str, ...]


def resolve_updated(
    posts: Iterable[tuple[str, str, datetime]],
    known: dict[str, PostVersion],
    now: datetime,
) -> tuple[dict[str, datetime], list[tuple[str, PostVersion]]]:
    """(id, content hash, published) -> updated dates, and the rows to save.

    A post seen for the first time was last updated when it was published; a
    post whose content changed since the last build was updated ``now``.
    """
    updated: dict[str, datetime] = {}
    changed: list[tuple[str, PostVersion]] = []
    for pid, digest, published in posts:
        old = known.get(pid)
        if old is not None and old.content_hash == digest:
            updated[pid] = old.updated
            continue
        when = published if old is None else max(now, published)
        updated[pid] = when
        changed.append((pid, PostVersion(digest, when)))
    return updated, changed


class Status(StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed (double opt-in)
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    #: reported our mail as spam (an ARF report, a provider's notice): never mailed
    #: again unless they sign up again themselves
    COMPLAINED = "complained"


#: Statuses an import never lifts (see ``SubscriberStore.import_csv``).
SUPPRESSED = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    tags: tuple[str, ...]  # empty = every post
    status: Status
    bounces: int = 0
    updated: str = ""  # when the row last changed (ISO 8601)
    cadence: str = "weekly"  # or "monthly"
    #: consent: how they joined ("form", "import FILE", "command"), when they confirmed
    source: str = ""
    confirmed: str = ""
    created: str = ""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # handed to the transport; no answer recorded yet
    SENT = "sent"
    SKIPPED = "skipped"  # nothing for this subscriber this week, or no longer subscribed
    DEFERRED = "deferred"  # transient failures used up this run's attempts; retried next run
    FAILED = "failed"  # permanent (5xx) failure


TO_SEND = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


class ClaimLost(Exception):
    """Another sender took this row over (this one's lease ran out, or its database
    session was lost): it must not be sent from here."""


@dataclass(frozen=True)
class Delivery:
    id: int
    subscriber_id: int
    status: DeliveryStatus
    attempts: int
    message_id: str
