"""The SMTP transport against servers on loopback: RFC 2920 pipelining and its error
rules (a scripted server that answers only whole groups), connections sharing one
rate limit, SMTPUTF8 (aiosmtpd)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from publisher.delivery.smtp import RateLimit, SmtpTransport
from publisher.delivery.transport import (
    MessageMail,
    PermanentError,
    ServerBusy,
    TransientError,
)
from publisher.settings import SmtpSecurity, SmtpSettings
from tests.helpers.smtp import ScriptedSmtp


def _mail(n: int) -> MessageMail:
    msg = EmailMessage()
    msg["Subject"] = f"message {n}"
    msg.set_content(f"Body {n}.\n.a line that starts with a dot\n")
    return MessageMail(msg)


def _transport(port: int, **kw: object) -> SmtpTransport:
    cfg = SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, timeout=5.0)
    return SmtpTransport(cfg, **kw)  # type: ignore[arg-type]


def test_pipelining_sends_the_envelope_in_one_group_and_the_content_after() -> None:
    """The server answers only once MAIL, RCPT and DATA are all in: a client that
    waited for each reply would time out here. Two messages, one connection."""
    with ScriptedSmtp() as server:
        t = _transport(server.port)
        handed: list[int] = []
        for n in (1, 2):
            t.send(_mail(n), "from@x.test", f"r{n}@x.test", lambda n=n: handed.append(n))
        t.close()
    assert handed == [1, 2] and server.sessions == 1
    assert [ln.split(":")[0] for ln in server.lines if ln[:4] in ("MAIL", "RCPT", "DATA")] == [
        "MAIL FROM",
        "RCPT TO",
        "DATA",
    ] * 2
    assert b"\r\n..a line that starts with a dot\r\n" in server.contents[0]  # dot-stuffed


def test_a_refused_recipient_with_an_accepted_data_gets_a_lone_dot() -> None:
    """RFC 2920 3.1: a refused RCPT does not mean DATA was refused; an accepted DATA
    is ended with a lone "." (no content), and the session goes on in step."""
    with ScriptedSmtp([("250", "550 5.1.1", "354")]) as server:
        t = _transport(server.port)
        with pytest.raises(PermanentError, match="550"):
            t.send(_mail(1), "from@x.test", "gone@x.test")
        t.send(_mail(2), "from@x.test", "ok@x.test")
        t.close()
    assert server.contents[0] == b"" and b"Body 2." in server.contents[1]
    assert server.sessions == 1


def test_a_refused_data_resets_the_transaction() -> None:
    with ScriptedSmtp([("250", "250", "451 4.3.0")]) as server:
        t = _transport(server.port)
        with pytest.raises(TransientError, match="451"):
            t.send(_mail(1), "from@x.test", "a@x.test")
        t.send(_mail(2), "from@x.test", "a@x.test")
        t.close()
    assert "rset" in server.lines and len(server.contents) == 1


def test_a_421_drops_the_connection_and_says_the_server_is_busy() -> None:
    with ScriptedSmtp([("421 4.7.0 too busy", "503", "503")]) as server:
        t = _transport(server.port)
        with pytest.raises(ServerBusy, match="421 4.7.0 too busy"):
            t.send(_mail(1), "from@x.test", "a@x.test")
        assert t.conn is None
        t.send(_mail(2), "from@x.test", "a@x.test")  # a new connection
        t.close()
    assert server.sessions == 2


def test_connections_share_one_rate_limit() -> None:
    """Two connections at 10 messages a second: every message takes the next slot of
    one clock, whichever connection sends it."""
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))

    rate = RateLimit(10, lambda: clock[0], sleep)
    for _ in range(4):
        rate.wait()
    assert slept == [0.1, 0.2, 0.3]  # the first at once, then 0.1 s apart
    cfg = SmtpSettings(rate_per_second=10)
    first = SmtpTransport(cfg)
    assert first.another().rate is first.rate
