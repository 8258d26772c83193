"""The subscription lifecycle: sign-up, confirmation, rejoining, topics, leaving.

Every move between ``Status`` values that a person makes happens here (a
bounce is the ledger's, in the same transaction as the failed delivery), so
the web routes only parse forms and call these, and the rules read in one
place:

- anyone can fill in the sign-up form, so a sign-up never changes an address
  that is active, unsubscribed or bounced: it only mails its owner a link;
- a ``confirm`` link moves a pending subscription to active, and nothing else
  (replayed after an unsubscribe, it does not bring it back);
- a ``rejoin`` link, mailed to an address that had left, names the row as it
  was then (``rejoin <updated>``): it works once, and never after the row
  changed again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import Message

from jinja2 import Environment

from publisher.newsletter.mime import build_plain
from publisher.newsletter.tokens import Purpose
from publisher.settings import SiteSettings
from publisher.store.rows import SUPPRESSED, Status, Subscriber
from publisher.store.subscribers import SubscriberStore, clean_tags
from publisher.templating import render
from publisher.text import to_address

REJOIN = f"{Purpose.REJOIN} "
#: How long a confirmation link works.
CONFIRM_HOURS = 48


@dataclass(frozen=True)
class Invitation:
    """A link to mail after a sign-up: whom to, and the purpose its token carries."""

    subscriber: Subscriber
    purpose: str


def rejoin_purpose(sub: Subscriber) -> str:
    return f"{REJOIN}{sub.updated}"


def is_rejoin(purpose: str) -> bool:
    return purpose.startswith(REJOIN)


class Lifecycle:
    """The moves a person makes, on the subscriber store."""

    def __init__(self, store: SubscriberStore) -> None:
        self.store = store

    def sign_up(
        self, address: str, name: str, tags: Iterable[str], now: datetime, cadence: str = "weekly"
    ) -> Invitation | None:
        """What to mail after the form: a confirmation for a new or pending address, a
        rejoin link for one that left, nothing for one already active."""
        existing = self.store.by_email(address)
        if existing is not None and existing.status in SUPPRESSED:
            # left as it is until its owner confirms: anyone can fill in the form
            return Invitation(existing, rejoin_purpose(existing))
        if existing is None or existing.status is not Status.ACTIVE:
            sub, _ = self.store.add(
                address,
                name,
                list(tags),
                status=Status.PENDING,
                now=now,
                source="form",
                cadence=cadence,
            )
            return Invitation(sub, Purpose.CONFIRM)
        return None

    @staticmethod
    def may_confirm(sub: Subscriber, purpose: str) -> bool:
        """Whether a verified link with ``purpose`` may still act on ``sub``."""
        if is_rejoin(purpose):
            return purpose == rejoin_purpose(sub) and sub.status in SUPPRESSED
        return sub.status is Status.PENDING

    def confirm(self, sub: Subscriber, purpose: str, now: datetime) -> None:
        """Active, with the time of consent recorded (see ``subscribers show``)."""
        if is_rejoin(purpose):
            self.store.add(sub.email, status=Status.ACTIVE, now=now)  # and no bounces
        else:
            self.store.set_status(sub.id, Status.ACTIVE, now)
        self.store.set_confirmed(sub.id, now)
        if self.store.secret:  # fresh consent: an address erased before is theirs again
            from publisher.store.people import unforget

            unforget(self.store.engine, sub.email, self.store.secret)

    def resubscribe(self, sub: Subscriber, now: datetime) -> None:
        """From the preferences page or the undo after unsubscribing: the link came
        to this address, so its owner chose (one step, as a confirmation is)."""
        self.store.set_status(sub.id, Status.ACTIVE, now)
        self.store.set_confirmed(sub.id, now)

    def choose_cadence(self, sub: Subscriber, cadence: str, now: datetime) -> None:
        if cadence in ("weekly", "monthly"):
            self.store.set_cadence(sub.id, cadence, now)

    def unsubscribe(self, sub: Subscriber, now: datetime) -> None:
        self.store.set_status(sub.id, Status.UNSUBSCRIBED, now)

    def returned(self, subscriber_id: int, kind: str, limit: int, now: datetime) -> str:
        """What a return that came back by mail (or webhook) does; returns what was
        done, for the log. ``kind`` is a ``ReturnKind`` value:

        - a hard bounce marks the address bounced at once;
        - a soft one counts towards ``limit``, as a 5xx during sending does;
        - a complaint unsubscribes, as ``complained`` (never mailed again unless
          they sign up again themselves);
        - an unsubscribe mail unsubscribes.
        """
        sub = self.store.get(subscriber_id)
        if sub is None:
            return "no such subscriber"
        if kind == "hard-bounce":
            self.store.set_status(sub.id, Status.BOUNCED, now)
            return "marked bounced"
        if kind == "soft-bounce":
            count = self.store.count_bounce(sub.id)
            if self.bounce(sub.id, count, limit, now):
                return f"marked bounced ({count} failures)"
            return f"counted ({count} of {limit})"
        if kind == "complaint":
            self.store.set_status(sub.id, Status.COMPLAINED, now)
            return "unsubscribed (complained)"
        if kind == "unsubscribe":
            self.store.set_status(sub.id, Status.UNSUBSCRIBED, now)
            return "unsubscribed"
        return "recorded"

    def bounce(self, subscriber_id: int, bounces: int, limit: int, now: datetime) -> bool:
        """After a message to them failed for good (their ``bounces``-th time): at
        ``limit`` the address is marked bounced, and gets no more mail until its
        owner signs up again. Returns whether it now is."""
        if bounces < limit:
            return False
        self.store.set_status(subscriber_id, Status.BOUNCED, now)
        return True

    def choose_topics(
        self, sub: Subscriber, tags: Iterable[str], known: set[str], now: datetime
    ) -> Subscriber:
        """Keep the topics that exist; returns the subscriber as it now is."""
        self.store.set_tags(sub.id, clean_tags(t for t in tags if t in known), now)
        return self.store.get(sub.id) or sub


def confirmation_mail(
    env: Environment,
    site: SiteSettings,
    sender: Address,
    sub: Subscriber,
    confirm_url: str,
    msg_id: str,
    now: datetime,
) -> Message:
    """The one-part mail that carries a confirmation (or rejoin) link. Anyone can
    fill in the form with anyone's address, so it carries no text a stranger
    typed: not the name given (nor in ``To:``), only the site's own words."""
    text = render(env, "confirm.txt.j2", site=site, hours=CONFIRM_HOURS, confirm_url=confirm_url)
    return build_plain(
        sender=sender,
        to_email=to_address(sub.email),
        to_name="",
        subject=f"Confirm your subscription to {site.title}",
        text=text,
        msg_id=msg_id,
        date=now,
    )
