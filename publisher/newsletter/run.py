"""``publisher digest``: plan a week's digest, render it, and deliver it through the ledger.

I/O and the clock live here (and in the CLI); content, mime and the delivery
loop stay testable on their own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import Message
from pathlib import Path

from publisher.delivery.loop import Outgoing, Summary, deliver
from publisher.delivery.outbox import OutboxTransport
from publisher.delivery.smtp import SmtpTransport
from publisher.delivery.transport import Transport, as_bytes
from publisher.errors import PublisherError, log_problems
from publisher.newsletter.content import (
    PREFERENCES_MARK,
    UNSUBSCRIBE_MARK,
    DigestRenderer,
    Rendered,
    posts_for,
    week_posts,
)
from publisher.newsletter.guards import check_links_for_a_relay
from publisher.newsletter.lifecycle import Lifecycle
from publisher.newsletter.mime import (
    EightBitBody,
    build_message,
    digest_headers,
    mailto_unsubscribe,
    message_id,
    parse_sender,
    prepare_8bit,
    wire_8bit,
)
from publisher.newsletter.progress import progress_bar
from publisher.newsletter.returns import verp_sender, verp_tag
from publisher.newsletter.tokens import Purpose, Token, secret_from_env, sign
from publisher.settings import Settings
from publisher.source.load import load_stream
from publisher.source.posts import Post
from publisher.store.ledger import Ledger
from publisher.store.paths import touch_stamp
from publisher.store.rows import TO_SEND, Delivery, DeliveryStatus, Status, Subscriber
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.text import slugify, to_address
from publisher.weeks import Period

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 0  # unsubscribe links in mail never expire (RFC 8058 clients may be slow)


@dataclass
class DigestRun:
    """Everything one digest command needs, opened once."""

    settings: Settings
    week: Period  # a week or a month: the subscribers of that cadence get it
    posts: list[Post]
    ledger: Ledger
    store: SubscriberStore
    renderer: DigestRenderer
    secret: str
    sender: Address  # parsed once, not per message

    def readers(self) -> list[Subscriber]:
        """The active subscribers of this period's cadence (weekly or monthly)."""
        return [s for s in self.store.all(Status.ACTIVE) if s.cadence == self.week.cadence]

    def message_id_for(self, sub: Subscriber) -> str:
        return message_id(self.week.label, sub.id, self.sender.domain)

    def tag_key(self, sub: Subscriber) -> tuple[str, ...]:
        return tuple(sorted({slugify(t, "tag") for t in sub.tags}))

    def prepared_for(self) -> Callable[[Subscriber], Prepared | None]:
        """Render and lay out once per distinct tag choice; None when the choice has no posts."""
        cache: dict[tuple[str, ...], Prepared | None] = {}
        growth = self.mark_growth()
        lock = threading.Lock()  # the send's connections ask from their threads

        def get(sub: Subscriber) -> Prepared | None:
            key = self.tag_key(sub)
            with lock:
                if key not in cache:
                    theirs = posts_for(self.posts, sub.tags)
                    if theirs:
                        r = self.renderer.render(self.week, theirs, sub.tags)
                        cache[key] = Prepared(r, prepare_8bit(r.text, r.html, growth))
                    else:
                        cache[key] = None
                return cache[key]

        return get

    def links(self, sub_id: int) -> tuple[str, str, str]:
        base = self.settings.site.base_url
        unsub = sign(Token(Purpose.UNSUBSCRIBE, sub_id, TOKEN_LIFETIME), self.secret)
        prefs = sign(Token(Purpose.PREFERENCES, sub_id, TOKEN_LIFETIME), self.secret)
        return f"{base}unsubscribe?token={unsub}", f"{base}preferences?token={prefs}", unsub

    def mark_growth(self) -> dict[str, int]:
        """How much longer a personal link is than its mark, at most (ids below 10^15)."""
        unsub, prefs, _ = self.links(10**15)
        return {
            UNSUBSCRIBE_MARK: len(unsub) - len(UNSUBSCRIBE_MARK),
            PREFERENCES_MARK: len(prefs) - len(PREFERENCES_MARK),
        }

    def headers(
        self,
        sub: Subscriber,
        rendered: Rendered,
        msg_id: str,
        now: datetime,
        unsub_url: str,
        token: str,
    ) -> list[tuple[str, str]]:
        return digest_headers(
            sender=self.sender,
            to_email=to_address(sub.email),
            to_name=sub.name,
            subject=rendered.subject,
            msg_id=msg_id,
            date=now,
            list_id=f"{self.settings.site.title} weekly digest <digest.{self.sender.domain}>",
            unsubscribe_https=unsub_url,
            unsubscribe_mailto=mailto_unsubscribe(self.sender, token),
            feedback_id=f"{self.week.label}:digest:{self.sender.domain}:publisher",
        )

    def mail(self, sub: Subscriber, prepared: Prepared, msg_id: str, now: datetime) -> DigestMail:
        unsub_url, prefs_url, token = self.links(sub.id)
        headers = self.headers(sub, prepared.rendered, msg_id, now, unsub_url, token)
        return DigestMail(
            headers, prepared, {UNSUBSCRIBE_MARK: unsub_url, PREFERENCES_MARK: prefs_url}
        )

    def message(self, sub: Subscriber, prepared: Prepared, msg_id: str, now: datetime) -> Message:
        """The 7-bit ``Message`` form (previews)."""
        return self.mail(sub, prepared, msg_id, now).message()


@dataclass(frozen=True)
class Prepared:
    """One distinct digest: rendered, and laid out for 8bit transfer."""

    rendered: Rendered
    body: EightBitBody


@dataclass(frozen=True)
class DigestMail:
    """One subscriber's digest, serialized only when the transport says how."""

    headers: list[tuple[str, str]]
    prepared: Prepared
    fill: dict[str, str]

    def message(self) -> Message:
        html, text = self.prepared.rendered.personal(
            self.fill[UNSUBSCRIBE_MARK], self.fill[PREFERENCES_MARK]
        )
        return build_message(self.headers, text, html)

    def wire(self, eight_bit: bool) -> bytes:
        if eight_bit:
            return wire_8bit(self.headers, self.prepared.body, self.fill)
        return as_bytes(self.message())


@dataclass(frozen=True)
class _Recorder:
    """The ledger as the delivery loop records into it, with the lifecycle deciding
    what a failed message makes of its subscriber (see ``Lifecycle.bounce``)."""

    ledger: Ledger
    lifecycle: Lifecycle
    now: Callable[[], datetime]

    def mark_sending(self, delivery_id: int) -> None:
        self.ledger.mark_sending(delivery_id)

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        self.ledger.mark_sent(delivery_id, now)

    def mark_skipped(self, delivery_id: int, why: str) -> None:
        self.ledger.mark_skipped(delivery_id, why)

    def mark_deferred(self, delivery_id: int, why: str) -> None:
        self.ledger.mark_deferred(delivery_id, why)

    def mark_undeliverable(self, delivery_id: int, why: str) -> None:
        self.ledger.mark_undeliverable(delivery_id, why)

    def mark_failed(
        self, delivery_id: int, subscriber_id: int, why: str, bounce_limit: int
    ) -> bool:
        bounces = self.ledger.mark_failed(delivery_id, subscriber_id, why)
        return self.lifecycle.bounce(subscriber_id, bounces, bounce_limit, self.now())

    def close(self) -> None:
        self.ledger.close()

    def another(self) -> _Recorder:
        return _Recorder(self.ledger.another(), self.lifecycle, self.now)


def open_run(settings: Settings, week: Period, *, real_delivery: bool) -> DigestRun:
    stream = load_stream(settings)
    if stream.errors:
        log_problems(log, stream.problems)
        raise PublisherError(
            f"{len(stream.errors)} error(s) in the archives: no digest is sent from a broken source",
            "fix them (see `publisher check`), then run the digest again",
        )
    if real_delivery:
        check_links_for_a_relay(settings)
    engine = open_engine(settings.state.url)
    secret = secret_from_env(allow_dev=not real_delivery)
    ledger = Ledger(engine)
    record = ledger.digest(week.label)
    posts = week_posts(stream.posts, week)
    if record is not None:  # a rerun: the planned posts, whatever the archives say now
        by_id = {p.id: p for p in stream.posts}
        posts = [by_id[i] for i in record.post_ids if i in by_id]
    renderer = DigestRenderer(settings)
    renderer.subject(week, posts)  # a subject naming what is not there fails before any plan
    return DigestRun(
        settings,
        week,
        posts,
        ledger,
        SubscriberStore(engine),
        renderer,
        secret,
        parse_sender(settings.digest.sender),
    )


def transport_for(settings: Settings, outbox: Path | None = None) -> Transport:
    if outbox is not None or settings.delivery.method == "outbox":
        return OutboxTransport(outbox or Path(settings.delivery.outbox))
    return SmtpTransport(settings.smtp)


def plan(run: DigestRun, now: datetime) -> int:
    """Create the ledger for the week (once); returns the digest id."""
    existing = run.ledger.digest(run.week.label)
    if existing is not None:
        return existing.id
    rows = []
    for sub in run.readers():
        theirs = posts_for(run.posts, sub.tags)
        status = DeliveryStatus.PENDING if theirs else DeliveryStatus.SKIPPED
        rows.append(
            (
                sub.id,
                status,
                run.message_id_for(sub),
                "" if theirs else "no posts for this subscriber's tags",
            )
        )
    digest_id = run.ledger.plan(run.week.label, [p.id for p in run.posts], rows, now).id
    touch_stamp(run.settings.state.url)  # the site publishes the digest's web copy
    return digest_id


def send(
    run: DigestRun,
    transport: Transport,
    now: Callable[[], datetime],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = False,
    planned: Callable[[], None] = lambda: None,
) -> Summary:
    """Plan the week's digest (once) and deliver what is left of it, holding the
    send lock (see ``Ledger.sending``) so that no other run sends meanwhile.
    ``planned`` runs between the two: the caller publishes the digest's web
    copy there, which every message links to."""
    with run.ledger.sending():
        return _send(run, transport, now, should_stop, progress, planned)


def _send(
    run: DigestRun,
    transport: Transport,
    now: Callable[[], datetime],
    should_stop: Callable[[], bool],
    progress: bool,
    planned: Callable[[], None],
) -> Summary:
    digest_id = plan(run, now())
    planned()
    counts = run.ledger.counts(digest_id)
    summary = Summary(skipped=counts.get(DeliveryStatus.SKIPPED.value, 0))
    left = sum(counts.get(s.value, 0) for s in TO_SEND)
    # the outbox is a folder: one writer
    connections = run.settings.smtp.connections if isinstance(transport, SmtpTransport) else 1
    cfg = run.settings.delivery
    with _rows(run, digest_id, connections) as (todo, ledger), ExitStack() as stack:
        on_progress: Callable[[], None] = lambda: None  # noqa: E731
        if progress and left > 20:
            on_progress = stack.enter_context(progress_bar(run.week.label, left))
        try:
            return deliver(
                _Recorder(ledger, Lifecycle(run.store), now),
                transport,
                _outgoing(run, digest_id, todo, now),
                now=now,
                max_attempts=cfg.max_attempts,
                bounce_limit=cfg.bounce_limit,
                backoff=cfg.retry_backoff,
                should_stop=should_stop,
                on_progress=on_progress,
                summary=summary,
                connections=connections,
            )
        finally:
            touch_stamp(run.settings.state.url)  # the site's digest archive may have changed


@contextmanager
def _rows(
    run: DigestRun, digest_id: int, connections: int
) -> Iterator[tuple[Iterable[Delivery], Ledger]]:
    """The rows this run sends, and the ledger that marks them: on PostgreSQL the
    rows it claims as it goes (several senders share the digest: see
    ``store.claims``), elsewhere every row left (the send lock held)."""
    engine = run.ledger.engine
    if engine.dialect.name != "postgresql":
        yield run.ledger.to_send(digest_id), run.ledger
        return
    from publisher.store.claims import Claims

    claims = Claims(engine)
    try:
        yield claims.rows(digest_id, batch=4 * connections), Ledger(engine, claims.owner)
    finally:
        claims.release()


def _outgoing(
    run: DigestRun, digest_id: int, todo: Iterable[Delivery], now: Callable[[], datetime]
) -> Iterator[Outgoing]:
    """Each row to send as the delivery loop takes it: whom to, from which (VERP)
    sender, and how to make its message when its turn comes."""
    get = run.prepared_for()
    bounce_to = run.settings.digest.bounce_address
    people = {s.id: s for s in run.store.all()}  # one query, not one per message
    for d in todo:
        sub = people.get(d.subscriber_id)

        def build(sub: Subscriber | None = sub, d: Delivery = d) -> DigestMail | None:
            if sub is None or sub.status is not Status.ACTIVE:
                return None
            prepared = get(sub)
            return None if prepared is None else run.mail(sub, prepared, d.message_id, now())

        sender, envid = run.sender.addr_spec, ""
        if bounce_to:  # VERP: whatever comes back names this delivery, signed
            sender = verp_sender(bounce_to, digest_id, d.subscriber_id, run.secret)
            envid = verp_tag(digest_id, d.subscriber_id, run.secret)
        yield Outgoing(d, sender, to_address(sub.email) if sub else "", build, envid)
