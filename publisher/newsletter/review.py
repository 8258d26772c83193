"""Looking at a digest before it goes: who would get what (dry run), every message
into the outbox (draft), one subscriber's message as a file (preview), and one
message through the real transport to the operator (``--test``). None of them
touches the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.utils import make_msgid
from pathlib import Path

from publisher.delivery.transport import ServerError, Transport, Undeliverable, as_bytes
from publisher.errors import PublisherError
from publisher.newsletter.content import posts_for
from publisher.newsletter.run import DigestRun
from publisher.store.rows import Status, Subscriber
from publisher.text import to_address


def dry_run(run: DigestRun) -> Iterator[str]:
    """Who would get what, without writing anything."""
    for sub in run.readers():
        theirs = posts_for(run.posts, sub.tags)
        if theirs:
            yield f"{sub.email}: {len(theirs)} post(s): " + "; ".join(p.title for p in theirs)
        else:
            yield f"{sub.email}: skipped (no posts{' tagged ' + ', '.join(sub.tags) if sub.tags else ''})"


def draft(run: DigestRun, transport: Transport, now: datetime) -> int:
    """Render every message into the outbox for review; the ledger is not touched."""
    get = run.prepared_for()
    n = 0
    try:
        for sub in run.readers():
            prepared = get(sub)
            if prepared is None:
                continue
            mail = run.mail(sub, prepared, run.message_id_for(sub), now)
            try:
                transport.send(mail, run.sender.addr_spec, to_address(sub.email))
            except ServerError as exc:  # the outbox cannot be written: nor can any draft
                raise PublisherError(
                    f"{exc}; {n} draft(s) written before it",
                    "check [delivery] outbox: a folder you can write",
                ) from None
            n += 1
    finally:
        transport.close()
    return n


def preview(run: DigestRun, email: str, out: Path, now: datetime) -> Path:
    sub = run.store.by_email(email)
    if sub is None:
        raise PublisherError(f"no subscriber {email}", "see `publisher subscribers list`")
    prepared = run.prepared_for()(sub)
    if prepared is None:
        raise PublisherError(
            f"{email} gets no digest for {run.week.label}: no posts for their tags"
        )
    msg = run.message(sub, prepared, run.message_id_for(sub), now)
    if out.suffix == ".html":
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html")
        payload = html.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.write_bytes(payload)
    else:
        out.write_bytes(as_bytes(msg))
    return out


def test(run: DigestRun, transport: Transport, address: str, now: datetime) -> str:
    """The week's digest to ``address`` alone, through ``transport``, its subject
    marked ``[TEST]``; the ledger is untouched. The topics are the subscriber's
    own if ``address`` is one, else every post. Returns the address as sent to."""
    from dataclasses import replace

    from publisher.delivery.transport import PermanentError, TransientError
    from publisher.store.subscribers import normalize_email

    email = normalize_email(address)
    sub = run.store.by_email(email) or Subscriber(0, email, "", (), Status.ACTIVE)
    prepared = run.prepared_for()(sub)
    if prepared is None:
        raise PublisherError(
            f"{email} gets no digest for {run.week.label}: no posts for their tags"
        )
    mail = run.mail(sub, prepared, make_msgid("test", run.sender.domain), now)
    headers = [(k, f"[TEST] {v}" if k == "Subject" else v) for k, v in mail.headers]
    try:
        transport.send(replace(mail, headers=headers), run.sender.addr_spec, to_address(email))
    except (TransientError, PermanentError, ServerError, Undeliverable) as exc:
        raise PublisherError(
            f"the test message to {email} was not accepted: {exc}",
            "check [smtp] (host, port, security, username, PUBLISHER_SMTP_PASSWORD)",
        ) from None
    finally:
        transport.close()
    return to_address(email)
