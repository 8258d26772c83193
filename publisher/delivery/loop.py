"""Delivery: transports (Maildir outbox, SMTP) and the loop that feeds them from the ledger.

The loop talks to a ledger and a ``Transport``; it holds no SQL and no SMTP.
Transient failures (4xx, dropped connections) are retried with exponential
backoff; permanent ones (5xx) are recorded and count towards a bounce.
"""

from __future__ import annotations

import contextlib
import mailbox
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol

from publisher.errors import PublisherError
from publisher.store.ledger import Delivery, Ledger
from publisher.newsletter.mime import Mail
from publisher.settings import SmtpSettings


class TransientError(Exception):
    """Try again later: 4xx reply, dropped connection, timeout."""


class PermanentError(Exception):
    """Do not try again: a 5xx reply to this message or its recipient."""


class Unreachable(TransientError):
    """No connection to the server (refused, timed out, TLS failed): no message can go."""


class ServerError(Exception):
    """The server refuses the login or the sender: no message can go until the
    settings are fixed, and it is no recipient's fault (never counted as a bounce)."""


def _nothing() -> None:
    pass


class Transport(Protocol):
    def send(
        self, mail: Mail, sender: str, recipient: str, handing_over: Callable[[], None] = _nothing
    ) -> None:
        """Deliver one message. ``handing_over`` is called once per call, before any
        part of the message could be accepted (the ledger marks the row ``sending``
        there), also when the attempt fails earlier."""
        ...

    def close(self) -> None: ...


class OutboxTransport:
    """A Maildir any mail client can open; the default, and the place for --draft."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise PublisherError(
                f"outbox {path}: cannot open it as a Maildir: {exc.strerror or exc}",
                "check [delivery] outbox: a folder you can write, or a path where one can be made",
            ) from None

    def send(
        self, mail: Mail, sender: str, recipient: str, handing_over: Callable[[], None] = _nothing
    ) -> None:
        handing_over()
        try:
            self.box.add(mail.wire(eight_bit=True))  # mail clients read 8bit files
        except OSError as exc:  # a full disk, a file where the folder must be: every message
            raise ServerError(f"outbox {self.path}: cannot store the message: {exc}") from None

    def close(self) -> None:
        self.box.close()


class _WireData:
    """``smtplib`` for messages already in CRLF wire form (``Mail.wire``), to addresses
    already validated.

    smtplib dot-stuffs with a multi-line regex (~0.1 ms per 16 KB digest) and
    re-parses both addresses with ``email.utils.parseaddr`` for every message;
    nothing overlaps the wait for the server's reply, so at 500 messages a
    second that was a tenth of the time. A byte replace does the same
    stuffing (RFC 5321 4.5.2: a line starting with "." gets another).

    ``meanwhile`` runs once the MAIL command is sent, while the server answers
    it: the ledger's commit for the message overlaps that round trip instead of
    adding to it (nothing of the message can have been accepted yet).
    """

    meanwhile: Callable[[], None] | None = None

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        return self._envelope("mail", "from", sender, options)

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        return self._envelope("rcpt", "to", recip, options)

    def _envelope(
        self, cmd: str, word: str, address: str, options: Sequence[str]
    ) -> tuple[int, bytes]:
        if any(c in address for c in "\r\n<> ") or not address.isascii():
            raise smtplib.SMTPResponseException(553, f"{address!r} is not a plain address")
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        smtp.putcmd(cmd, f"{word}:<{address}>" + "".join(f" {o}" for o in options))
        if cmd == "mail" and self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return smtp.getreply()

    def data(self, msg: bytes) -> tuple[int, bytes]:  # type: ignore[override]
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        body = msg.replace(b"\n.", b"\n..")
        if body.startswith(b"."):
            body = b"." + body
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body + b".\r\n")
        return smtp.getreply()


class _Smtp(_WireData, smtplib.SMTP):
    pass


class _SmtpSsl(_WireData, smtplib.SMTP_SSL):
    pass


class SmtpTransport:
    """One connection reused for many messages, reopened after a drop; a rate limit."""

    def __init__(
        self,
        cfg: SmtpSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.conn: smtplib.SMTP | None = None
        self.eight_bit = False  # the server offers 8BITMIME (RFC 6152)
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        try:
            if cfg.security == "tls":
                conn: smtplib.SMTP = _SmtpSsl(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                conn = _Smtp(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if cfg.username:
                conn.login(cfg.username, cfg.password)
            conn.ehlo_or_helo_if_needed()
            self.eight_bit = conn.has_extn("8bitmime")
        except smtplib.SMTPAuthenticationError as exc:
            raise ServerError(
                f"SMTP login as {cfg.username!r} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unreachable(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from None
        return conn

    def send(
        self, mail: Mail, sender: str, recipient: str, handing_over: Callable[[], None] = _nothing
    ) -> None:
        called = False

        def once() -> None:
            nonlocal called
            if not called:
                called = True
                handing_over()

        if self.cfg.rate_per_second:
            wait = self.next_at - self.clock()
            if wait > 0:
                self.sleep(wait)
            self.next_at = max(self.clock(), self.next_at) + 1 / self.cfg.rate_per_second
        try:
            if self.conn is None:
                self.conn = self._connect()
            data = mail.wire(self.eight_bit)
            options = ["BODY=8BITMIME"] if self.eight_bit else []
            self.conn.meanwhile = once  # type: ignore[attr-defined]
            self.conn.sendmail(sender, [recipient], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _by_code(code, text) from None
        except smtplib.SMTPSenderRefused as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
            raise ServerError(
                f"the server refused the sender {_text(exc.sender)}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.conn = None  # reconnect on the next attempt
            raise TransientError(f"connection lost: {exc}") from None
        except BaseException:
            self._drop()  # e.g. the ledger failed mid-command: the session is out of step
            raise
        finally:
            if self.conn is not None:
                self.conn.meanwhile = None  # type: ignore[attr-defined]
            once()  # every attempt is recorded, also one that failed before MAIL

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
            self.conn = None


def _text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _by_code(code: int, text: bytes | str) -> Exception:
    if 400 <= code < 500:
        return TransientError(f"{code} {_text(text)}")
    return PermanentError(f"{code} {_text(text)}")


@dataclass
class Summary:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    bounced: int = 0
    stopped: bool = False
    #: Why the run stopped before the end, when the server was the cause.
    reason: str = ""

    def __str__(self) -> str:
        text = (
            f"sent {self.sent}, skipped {self.skipped}, failed {self.failed}, "
            f"retried {self.retried}, deferred {self.deferred}"
        )
        if self.bounced:
            text += f", {self.bounced} subscriber(s) now marked bounced"
        if self.reason:
            return text + f" (stopped: {self.reason}; the rest wait for the next run)"
        return text + (" (stopped early)" if self.stopped else "")


@dataclass(frozen=True)
class Outgoing:
    delivery: Delivery
    sender: str
    recipient: str
    build: Callable[[], Mail | None]  # None: skip (e.g. unsubscribed since planning)


def deliver(
    ledger: Ledger,
    transport: Transport,
    outgoing: Iterable[Outgoing],
    *,
    now: Callable[[], datetime],
    max_attempts: int,
    bounce_limit: int,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[], None] = lambda: None,
    summary: Summary | None = None,
) -> Summary:
    """Send each message, recording each state change after it happened.

    A message's own failure (a 4xx tried ``max_attempts`` times, a 5xx) is
    recorded and the run goes on. A failure of the server (unreachable after
    every attempt, a refused login or sender) stops the run at once: the
    message is deferred and the rest are left for the next run, instead of
    each being tried (and failed, and counted as its subscriber's bounce) in turn.
    """
    summary = summary or Summary()
    try:
        for item in outgoing:
            if should_stop():
                summary.stopped = True
                break
            mail = item.build()
            if mail is None:
                ledger.mark_skipped(item.delivery.id, "no longer subscribed")
                summary.skipped += 1
                on_progress()
                continue
            for attempt in range(1, max_attempts + 1):
                try:
                    transport.send(
                        mail,
                        item.sender,
                        item.recipient,
                        partial(ledger.mark_sending, item.delivery.id),
                    )
                except TransientError as exc:
                    if attempt == max_attempts:
                        ledger.mark_deferred(item.delivery.id, str(exc))
                        summary.deferred += 1
                        if isinstance(exc, Unreachable):
                            summary.stopped, summary.reason = True, str(exc)
                            return summary
                        break
                    summary.retried += 1
                    sleep(backoff * 2 ** (attempt - 1))
                    continue
                except ServerError as exc:
                    ledger.mark_deferred(item.delivery.id, str(exc))
                    summary.deferred += 1
                    summary.stopped, summary.reason = True, str(exc)
                    return summary
                except PermanentError as exc:
                    summary.failed += 1
                    if ledger.mark_failed(
                        item.delivery.id, item.delivery.subscriber_id, str(exc), bounce_limit
                    ):
                        summary.bounced += 1
                    break
                ledger.mark_sent(item.delivery.id, now())
                summary.sent += 1
                break
            on_progress()
    finally:
        transport.close()
        ledger.close()
    return summary
