"""A real SMTP server (aiosmtpd) on loopback that records what it accepts.

``replies`` scripts answers per recipient: a list of SMTP replies consumed in
order (e.g. ["451 4.3.0 try later"] then the default 250).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class _DsnSMTP(SMTP):
    """aiosmtpd, taking RFC 3461's MAIL FROM parameters when the recorder offers DSN
    (they stay in the envelope's mail options, for the tests to read)."""

    def _getparams(self, params):  # type: ignore[no-untyped-def]
        found = super()._getparams(params)
        if found is not None and getattr(self.event_handler, "dsn", False):
            found.pop("RET", None)
            found.pop("ENVID", None)
        return found


@dataclass
class Recorder:
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    #: each accepted message's envelope: (MAIL FROM, its options)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    always: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: Once this many messages are in, hold every next one until ``released`` is set.
    hold_after: int | None = None
    released: threading.Event = field(default_factory=threading.Event)
    eight_bit: bool = True  # offer 8BITMIME (RFC 6152), as aiosmtpd and most servers do
    #: The reply to MAIL FROM for every sender (e.g. a relay refusing ours), if set.
    mail_reply: str | None = None
    #: offer DSN (RFC 3461): RET and ENVID are then taken on MAIL FROM
    dsn: bool = False
    #: offer SMTPUTF8 (RFC 6531), as aiosmtpd does
    smtputf8: bool = True
    #: offer PIPELINING (RFC 2920); aiosmtpd reads commands as they come either way
    pipelining: bool = False
    #: whether each accepted message came with SMTPUTF8
    utf8_envelopes: list[bool] = field(default_factory=list)
    #: the client address and port of each accepted message's connection
    peers: list[object] = field(default_factory=list)
    #: called as each message is accepted, its answer kept in ``seen`` (what the
    #: world looked like when the message arrived)
    look: Callable[[], object] | None = None
    seen: list[object] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:  # noqa: N802
        session.host_name = hostname
        kept = [r for r in responses if self.eight_bit or "8BITMIME" not in r]
        kept = [r for r in kept if self.smtputf8 or "SMTPUTF8" not in r]
        if self.dsn:
            kept.insert(-1, "250-DSN")
        if self.pipelining:
            kept.insert(-1, "250-PIPELINING")
        return kept

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:  # noqa: N802
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        rcpt = envelope.rcpt_tos[0].lower()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            await asyncio.to_thread(self.released.wait, 60)
        with self.lock:
            if rcpt in self.always:
                return self.always[rcpt]
            if self.replies.get(rcpt):
                return self.replies[rcpt].pop(0)
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            self.messages.append(msg)  # type: ignore[arg-type]
            self.raw.append(envelope.original_content)
            self.envelopes.append((envelope.mail_from, list(envelope.mail_options)))
            self.utf8_envelopes.append(bool(envelope.smtp_utf8))
            self.peers.append(session.peer)
            if self.look is not None:
                self.seen.append(self.look())
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _DsnController(Controller):
    def factory(self):  # type: ignore[no-untyped-def]
        return _DsnSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(self) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.controller = _DsnController(self.recorder, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class ScriptedSmtp:
    """A bare SMTP server on loopback that offers PIPELINING and answers a
    transaction's MAIL, RCPT and DATA only once all three have arrived: a client
    that waits for each reply before the next command hangs (and times out).

    ``script`` holds each transaction's three replies in turn (then every
    transaction gets 250, 250, 354); ``lines`` is every command line received,
    and ``contents`` each message's content as received (a lone "." is b"").
    """

    def __init__(self, script: list[tuple[str, str, str]] | None = None) -> None:
        self.script = list(script or [])
        self.lines: list[str] = []
        self.contents: list[bytes] = []
        self.sessions = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedSmtp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.sessions += 1
            with conn, conn.makefile("rb") as f:
                conn.sendall(b"220 scripted ESMTP\r\n")
                self._session(conn, f)

    def _session(self, conn: socket.socket, f) -> None:  # type: ignore[no-untyped-def]
        while line := f.readline():
            cmd = line.decode().strip()
            self.lines.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == "MAIL":
                group = [f.readline().decode().strip() for _ in range(2)]
                self.lines.extend(group)
                mail, rcpt, data = self.script.pop(0) if self.script else ("250", "250", "354")
                conn.sendall(f"{mail} m\r\n{rcpt} r\r\n{data} d\r\n".encode())
                if mail.startswith("421") or rcpt.startswith("421"):
                    return
                if data.startswith("354"):
                    content = b""
                    while (chunk := f.readline()) != b".\r\n":
                        content += chunk
                    self.contents.append(content)
                    ok = mail.startswith("250") and rcpt.startswith("25")
                    conn.sendall(b"250 queued\r\n" if ok else b"554 no valid recipients\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:  # RSET, NOOP
                conn.sendall(b"250 OK\r\n")
