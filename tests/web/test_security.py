"""``serve`` under attack: a hostile visitor's tries, each answered as it must be."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from publisher.newsletter.tokens import DEV_SECRET, Token, sign
from publisher.site.build import build
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.web.app import create_app
from tests.helpers import SECRET, SEEDS, smtp_settings
from tests.helpers.smtp import SmtpServer, free_port
from tests.helpers.webserver import LiveServer


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_up(c: httpx.Client, email: str, **extra: str) -> httpx.Response:
    form = c.get("subscribe")
    return c.post("subscribe", data={"csrf": _csrf(form.text), "email": email, **extra})


def test_serve_needs_the_secret_unless_it_is_a_dev_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer
) -> None:
    from publisher.errors import PublisherError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    s = smtp_settings(tmp_path, smtp.port)
    with pytest.raises(PublisherError, match="PUBLISHER_SECRET is not set"):
        create_app(s)
    app = create_app(s, dev=True)
    assert app.state.app.secret == DEV_SECRET


def test_a_sign_up_answers_alike_and_at_once_whatever_the_address(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    """Known, unknown, unsubscribed: the same status and page, given while the relay
    still holds every message (nothing waits for it), and the relay's refusal
    changes nothing either."""
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    now = datetime.now(UTC)
    store.add("known@example.org", now=now)
    store.add("gone@example.org", now=now)
    store.remove("gone@example.org", now)
    smtp.recorder.hold_after = 0  # the relay takes nothing until released
    try:
        with httpx.Client(base_url=server.url, timeout=5) as c:
            answers = [
                _sign_up(c, email)
                for email in ("known@example.org", "new@example.org", "gone@example.org")
            ]
    finally:
        smtp.recorder.released.set()
    assert {(r.status_code, r.text) for r in answers} == {(200, answers[0].text)}
    assert len({tuple(sorted(r.headers.keys())) for r in answers}) == 1
    server.settle()
    smtp.recorder.mail_reply = "550 5.7.1 sender refused"
    with httpx.Client(base_url=server.url) as c:
        refused = _sign_up(c, "another@example.org")
    assert (refused.status_code, refused.text) == (200, answers[0].text)


def test_bad_input_gets_a_4xx_never_a_500(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    with httpx.Client(base_url=server.url) as c:
        bad = _sign_up(c, "not an address")
        assert bad.status_code == 400 and "valid email address" in bad.text

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"a" * 1024

        chunked = c.post(
            "subscribe",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 413
        for payload in (b'{"a": 1}', b'["unsubscribe", "1", 0]', b"[1, 2, 3]", b'"x"'):
            raw = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
            mac = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
            token = raw + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
            r = c.get(f"unsubscribe?token={token}")
            assert r.status_code == 400 and "This link does not work" in r.text, payload


def test_an_idn_domain_is_mailed_in_idna(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    with httpx.Client(base_url=server.url) as c:
        assert _sign_up(c, "reader@bücher.example").status_code == 200
    server.settle()
    (mail,) = smtp.recorder.messages
    assert mail["To"].addresses[0].domain in ("xn--bcher-kva.example", "bücher.example")
    assert "xn--bcher-kva.example" in str(mail["To"])


def test_the_host_a_client_sends_never_reaches_a_redirect_or_a_page(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    evil = {"Host": "evil.example"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/.", headers=evil)  # a folder: redirected to its slash
    r = conn.getresponse()
    r.read()
    location = r.getheader("Location") or ""
    assert r.status in (301, 302, 307, 308) and location.startswith(server.url), location
    assert "evil.example" not in location
    with httpx.Client(base_url=server.url) as c:
        preview = c.get("all.atom", headers={**evil, "Sec-Fetch-Dest": "document"})
        assert preview.status_code == 200 and "evil.example" not in preview.text
        page = c.get("subscribe", headers=evil)
        assert "evil.example" not in page.text


def test_a_form_token_works_only_with_its_own_cookie(site) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    with httpx.Client(base_url=server.url) as mallory, httpx.Client(base_url=server.url) as victim:
        token = _csrf(mallory.get("subscribe").text)
        victim.get("subscribe")  # the victim has a form cookie of its own
        r = victim.post("subscribe", data={"csrf": token, "email": "victim@example.org"})
        assert r.status_code == 403
        assert "set-cookie" in mallory.get("subscribe").headers or mallory.cookies
        null = mallory.post(
            "subscribe",
            data={"csrf": _csrf(mallory.get("subscribe").text), "email": "m@example.org"},
            headers={"Origin": "null"},
        )
        assert null.status_code == 403
    no_cookie = httpx.post(
        server.url + "subscribe", data={"csrf": token, "email": "victim@example.org"}
    )
    assert no_cookie.status_code == 403
    server.settle()
    assert store.by_email("victim@example.org") is None and store.by_email("m@example.org") is None


def test_the_form_cookie_is_httponly_and_strict(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    cookie = httpx.get(server.url + "subscribe").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "set-cookie" not in httpx.get(server.url + "all.atom").headers  # static: none


def test_a_locked_database_blocks_nothing_else_and_answers_503(site) -> None:  # type: ignore[no-untyped-def]
    """Another process holds the SQLite write lock: static files are served at once,
    and a page that needs the database answers 503 with Retry-After when it has
    waited long enough, instead of holding the event loop (and every request)."""
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("locked@example.org", now=datetime.now(UTC))
    token = sign(Token("preferences", sub.id), SECRET)
    db = s.state.url.removeprefix("sqlite:///")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answers: dict[str, httpx.Response] = {}

        def save_topics() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                page = c.get(f"preferences?token={token}")  # reads: WAL lets them through
                answers["form"] = page
                answers["save"] = c.post(
                    f"preferences?token={token}",
                    data={"csrf": _csrf(page.text), "tag": ["digital"], "action": "save"},
                )

        t = threading.Thread(target=save_topics)
        t.start()
        static = httpx.get(server.url + "all.atom", timeout=1.5)  # while the POST waits
        assert static.status_code == 200
        t.join(30)
        assert answers["save"].status_code == 503
        assert answers["save"].headers["retry-after"] == "5"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.get(sub.id).tags == ()  # nothing half-done


def test_rate_limits_count_the_client_behind_a_trusted_proxy(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)

    def serve(extra: str) -> LiveServer:
        port = free_port()
        s = smtp_settings(tmp_path, smtp.port, base_url=f"http://127.0.0.1:{port}/", extra=extra)
        build(s, [SEEDS], Path("site"))
        server = LiveServer(create_app(s))
        server.port = port
        server.server.config.port = port
        return server

    def codes(server: LiveServer) -> list[int]:
        """Seven sign-ups, each from another client as X-Forwarded-For says."""
        with httpx.Client(base_url=server.url) as c:
            return [
                c.post(
                    "subscribe",
                    data={"csrf": _csrf(c.get("subscribe").text), "email": f"p{i}@example.org"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                ).status_code
                for i in range(7)
            ]

    with serve('[web]\ntrusted_proxies = ["127.0.0.1"]\n') as trusted:
        assert codes(trusted) == [200] * 7  # seven clients behind the proxy
    with serve("") as untrusted:  # the header is anyone's to send: not believed
        assert codes(untrusted) == [200] * 5 + [429, 429]


def test_nobody_can_flood_an_address_or_lock_its_owner_out(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    """A stranger signs an address up again and again: one confirmation mail goes,
    its link stands, and the owner can still confirm with it."""
    _, server = site
    with httpx.Client(base_url=server.url) as stranger:
        for _ in range(4):
            assert _sign_up(stranger, "owner@example.org", name="Eve").status_code == 200
    server.settle()
    (mail,) = smtp.recorder.messages
    body = mail.get_content()
    assert "Eve" not in body and "Eve" not in str(mail["To"])  # no stranger's words
    link = re.search(r"(http://\S+/confirm\?token=\S+)", body).group(1)
    with httpx.Client(base_url=server.url) as owner:
        page = owner.get(link)
        r = owner.post(link, data={"csrf": _csrf(page.text)})
    assert "You are subscribed" in r.text


def test_a_display_name_that_looks_encoded_is_shown_as_typed() -> None:
    import email
    import email.policy

    from publisher.newsletter.mime import digest_headers, parse_sender

    headers = dict(
        digest_headers(
            sender=parse_sender("Blog <d@example.org>"),
            to_email="r@example.org",
            to_name="=?utf-8?q?Your_bank?=",
            subject="s",
            msg_id="<m@example.org>",
            date=datetime(2019, 2, 18, tzinfo=UTC),
            list_id="l <l.example.org>",
            unsubscribe_https="https://example.org/u",
            unsubscribe_mailto="mailto:d@example.org",
        )
    )
    parsed = email.message_from_string(f"To: {headers['To']}\n\n", policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "=?utf-8?q?Your_bank?="
