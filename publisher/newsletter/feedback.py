"""``publisher mailbox``: read what came back and act on it, each message once.

Every message is classified (``returns.classify``), recorded by its Message-ID
(a mailbox read twice counts each once) against its ledger row, and handed to
the lifecycle; what was recognised is marked processed in the mailbox (see
``delivery.mailbox``), what was not is left where it is and listed.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from publisher.delivery.mailbox import Source
from publisher.newsletter.lifecycle import Lifecycle
from publisher.newsletter.returns import Return, ReturnKind, classify
from publisher.settings import Settings
from publisher.store.returns import ReturnsLog
from publisher.store.subscribers import SubscriberStore

log = logging.getLogger(__name__)


@dataclass
class FeedbackSummary:
    counts: Counter[str] = field(default_factory=Counter)
    repeated: int = 0
    #: Messages left in the mailbox: (key, subject, why).
    unrecognised: list[tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        done = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items())) or "nothing"
        return (
            f"processed: {done}; {self.repeated} seen before; "
            f"{len(self.unrecognised)} unrecognised (left in the mailbox)"
        )


def open_feedback(settings: Settings) -> Feedback:
    """The ``Feedback`` of the command line and the scheduler: the state database, and
    the secret that signed the VERP addresses and links (the development one only
    where mail goes to the outbox)."""
    from publisher.newsletter.tokens import secret_from_env
    from publisher.store.schema import open_engine

    engine = open_engine(settings.state.url)
    secret = secret_from_env(allow_dev=settings.delivery.method == "outbox")
    return Feedback(
        ReturnsLog(engine), SubscriberStore(engine), secret, settings.delivery.bounce_limit
    )


class Feedback:
    """Acts on returns: records each once and lets the lifecycle decide."""

    def __init__(self, log_: ReturnsLog, store: SubscriberStore, secret: str, limit: int) -> None:
        self.returns, self.lifecycle = log_, Lifecycle(store)
        self.secret, self.limit = secret, limit

    def act(self, ret: Return, now: datetime) -> str | None:
        """Record ``ret`` and act on it; ``None`` when it was recorded before."""
        if not self.returns.record(
            ret.message_id, ret.kind, ret.subscriber_id, ret.digest_id, ret.detail, now
        ):
            return None
        if ret.subscriber_id is None or ret.kind == ReturnKind.DELAYED:
            return "recorded"
        return self.lifecycle.returned(ret.subscriber_id, ret.kind, self.limit, now)

    def read(self, source: Source, now: datetime) -> FeedbackSummary:
        summary = FeedbackSummary()
        try:
            for key, raw in source.messages():
                msg = email.message_from_bytes(raw, policy=email.policy.compat32)
                ret = classify(msg, raw, self.secret)
                if ret.kind == ReturnKind.UNRECOGNISED:
                    summary.unrecognised.append((key, str(msg.get("Subject", "")), ret.detail))
                    continue
                done = self.act(ret, now)
                if done is None:
                    summary.repeated += 1
                else:
                    summary.counts[ret.kind] += 1
                    log.info(
                        "return %s: %s for subscriber %s: %s",
                        ret.message_id,
                        ret.kind,
                        ret.subscriber_id,
                        done,
                    )
                source.processed(key)
        finally:
            source.close()
        return summary
