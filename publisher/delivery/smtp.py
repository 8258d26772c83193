"""SMTP transport: a reused connection (STARTTLS, implicit TLS or plain), pipelined
where offered (RFC 2920), and a rate limit shared with its sibling connections."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from publisher.delivery.transport import (
    Mail,
    PermanentError,
    ServerBusy,
    ServerError,
    TransientError,
    Undeliverable,
    Unreachable,
    nothing,
)
from publisher.settings import SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _WireData:
    """``smtplib`` for messages already in CRLF wire form (``Mail.wire``), to addresses
    already validated, with RFC 2920 PIPELINING where the server offers it.

    smtplib dot-stuffs with a multi-line regex and re-parses both addresses
    with ``email.utils.parseaddr`` for every message, and nothing overlaps
    the wait for the server's reply. A byte replace does the same stuffing
    (RFC 5321 4.5.2: a line starting with "." gets another).

    ``meanwhile`` runs once the MAIL command is sent, while the server answers
    it: the ledger's commit for the message overlaps that round trip instead of
    adding to it (nothing of the message can have been accepted yet).
    """

    meanwhile: Callable[[], None] | None = None
    _utf8 = False  # this transaction's MAIL asked for SMTPUTF8

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        return self._envelope("mail", "from", sender, options)

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        return self._envelope("rcpt", "to", recip, options)

    def _envelope(
        self, cmd: str, word: str, address: str, options: Sequence[str]
    ) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        if cmd == "mail":
            self._utf8 = "SMTPUTF8" in options
        smtp.send(_command(cmd, word, address, options, self._utf8))
        self._meanwhile(cmd)
        return smtp.getreply()

    def _meanwhile(self, cmd: str) -> None:
        if cmd == "mail" and self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        return self._content(msg)

    def _content(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        raw = msg.encode("ascii") if isinstance(msg, str) else bytes(msg)  # bytes: no copy
        body = raw.replace(b"\n.", b"\n..")
        if body.startswith(b"."):
            body = b"." + body
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body + b".\r\n")
        return smtp.getreply()

    def pipelined(
        self, sender: str, recipient: str, msg: bytes, options: Sequence[str] = ()
    ) -> None:
        """One message in two round trips (RFC 2920): MAIL, RCPT and DATA in one
        write, their replies read in turn; then the content. Raises as
        ``sendmail`` does.

        Every reply of the group is read (3.1: a refused RCPT does not mean the
        DATA was refused). An accepted DATA after a refused MAIL or RCPT gets a
        lone "." (the server then refuses the empty message); a refused DATA, a
        RSET. A 421 closes the connection, as ``sendmail`` does.
        """
        smtp: smtplib.SMTP = self  # type: ignore[assignment]
        utf8 = "SMTPUTF8" in options
        group = _command("mail", "from", sender, options, utf8)
        group += _command("rcpt", "to", recipient, (), utf8) + b"DATA\r\n"
        smtp.send(group)
        self._meanwhile("mail")
        replies = [smtp.getreply() for _ in range(3)]
        (mail_code, mail_text), (rcpt_code, rcpt_text), (data_code, data_text) = replies
        if 421 in (mail_code, rcpt_code, data_code):
            code, text = next(r for r in replies if r[0] == 421)
            smtp.close()
            raise smtplib.SMTPResponseException(code, text)
        envelope_ok = mail_code == 250 and rcpt_code in (250, 251)
        if data_code == 354 and envelope_ok:
            code, text = self._content(msg)
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            return
        if data_code == 354:
            smtp.send(b".\r\n")
            smtp.getreply()
        else:
            smtp.rset()
        if mail_code != 250:
            raise smtplib.SMTPSenderRefused(mail_code, mail_text, sender)
        if not envelope_ok:
            raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_text)})
        raise smtplib.SMTPDataError(data_code, data_text)


def _command(cmd: str, word: str, address: str, options: Sequence[str], utf8: bool) -> bytes:
    """``MAIL FROM:<a> OPTS`` or ``RCPT TO:<a>``, CRLF-ended; UTF-8 only in a
    transaction with SMTPUTF8 (RFC 6531), and never an address that could end
    the line or the path."""
    if any(c in address for c in "\r\n<> ") or not (utf8 or address.isascii()):
        raise smtplib.SMTPResponseException(553, f"{address!r} is not a plain address")
    line = f"{cmd.upper()} {word.upper()}:<{address}>" + "".join(f" {o}" for o in options)
    return line.encode("utf-8") + b"\r\n"


class _Smtp(_WireData, smtplib.SMTP):
    pass


class _SmtpSsl(_WireData, smtplib.SMTP_SSL):
    pass


class RateLimit:
    """``rate_per_second`` shared by every connection of a send: each message takes
    the next free slot, whichever connection sends it."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            self.sleep(at - now)


class SmtpTransport:
    """One connection reused for many messages, reopened after a drop; pipelined
    where the server offers it. ``another()`` opens a sibling connection that
    shares the rate limit (see ``delivery.loop``: one per ``[smtp] connections``)."""

    def __init__(
        self,
        cfg: SmtpSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rate: RateLimit | None = None,
    ) -> None:
        self.cfg = cfg
        self.conn: smtplib.SMTP | None = None
        self.eight_bit = False  # the server offers 8BITMIME (RFC 6152)
        self.dsn = False  # the server offers DSN (RFC 3461)
        self.pipelining = False  # the server offers PIPELINING (RFC 2920)
        self.smtputf8 = False  # the server offers SMTPUTF8 (RFC 6531)
        self.rate = rate or RateLimit(cfg.rate_per_second, clock, sleep)

    def another(self) -> SmtpTransport:
        return SmtpTransport(self.cfg, rate=self.rate)

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
            self.pipelining = conn.has_extn("pipelining")
            self.smtputf8 = conn.has_extn("smtputf8")
        except smtplib.SMTPAuthenticationError as exc:
            raise ServerError(
                f"SMTP login as {cfg.username!r} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unreachable(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from None
        return conn

    def _options(self, recipient: str, envid: str) -> list[str]:
        """MAIL FROM parameters; ``Undeliverable`` for an address this server cannot take."""
        options = ["BODY=8BITMIME"] if self.eight_bit else []
        if not recipient.isascii():  # (its domain is in IDNA already: the local part)
            if not (self.smtputf8 and self.eight_bit):
                raise Undeliverable(
                    f"{recipient}: an address with letters other than a-z before the @ "
                    f"needs SMTPUTF8, which {self.cfg.host} does not offer"
                )
            options.append("SMTPUTF8")
        if envid and self.dsn:  # RFC 3461: returns carry our id and headers only
            options += ["RET=HDRS", f"ENVID={_xtext(envid)}"]
        return options

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

        self.rate.wait()
        try:
            if self.conn is None:
                self.conn = self._connect()
            options = self._options(recipient, envid)
            data = mail.wire(self.eight_bit)
            conn: Any = self.conn
            conn.meanwhile = once
            if self.pipelining:
                conn.pipelined(sender, recipient, data, options)
            else:
                conn.sendmail(sender, [recipient], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._by_code(code, text) from None
        except smtplib.SMTPSenderRefused as exc:
            if 400 <= exc.smtp_code < 500:
                raise self._by_code(exc.smtp_code, exc.smtp_error) from None
            raise ServerError(
                f"the server refused the sender {_text(exc.sender)}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise self._by_code(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.conn = None  # reconnect on the next attempt
            raise TransientError(f"connection lost: {exc}") from None
        except Undeliverable:
            raise
        except BaseException:
            self._drop()  # e.g. the ledger failed mid-command: the session is out of step
            raise
        finally:
            if self.conn is not None:
                self.conn.meanwhile = None  # type: ignore[attr-defined]
            once()  # every attempt is recorded, also one that failed before MAIL

    def _by_code(self, code: int, text: bytes | str) -> Exception:
        if code == 421:  # RFC 5321 3.8: the server is closing the connection
            self._drop()
            return ServerBusy(f"{code} {_text(text)}")
        return _by_code(code, text)

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
