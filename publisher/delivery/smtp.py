"""SMTP transport: one reused connection (STARTTLS, implicit TLS or plain), a rate limit."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from publisher.delivery.transport import (
    Mail,
    PermanentError,
    ServerError,
    TransientError,
    Unreachable,
    nothing,
)
from publisher.settings import SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _WireData:
    """``smtplib`` for messages already in CRLF wire form (``Mail.wire``), to addresses
    already validated.

    smtplib dot-stuffs with a multi-line regex and re-parses both addresses
    with ``email.utils.parseaddr`` for every message, and nothing overlaps
    the wait for the server's reply. A byte replace does the same stuffing
    (RFC 5321 4.5.2: a line starting with "." gets another).

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

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        raw = msg.encode("ascii") if isinstance(msg, str) else bytes(msg)  # bytes: no copy
        body = raw.replace(b"\n.", b"\n..")
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
        self.dsn = False  # the server offers DSN (RFC 3461)
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
            self.dsn = conn.has_extn("dsn")
        except smtplib.SMTPAuthenticationError as exc:
            raise ServerError(
                f"SMTP login as {cfg.username!r} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unreachable(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from None
        return conn

    def send(
        self,
        mail: Mail,
        sender: str,
        recipient: str,
        handing_over: Callable[[], None] = nothing,
        envid: str = "",
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
            if envid and self.dsn:  # RFC 3461: returns carry our id and headers only
                options += ["RET=HDRS", f"ENVID={_xtext(envid)}"]
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


def _xtext(value: str) -> str:
    """RFC 3461 4: xtext, printable ASCII but "+" and "=" as +XX."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)


def _text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _by_code(code: int, text: bytes | str) -> Exception:
    if 400 <= code < 500:
        return TransientError(f"{code} {_text(text)}")
    return PermanentError(f"{code} {_text(text)}")
