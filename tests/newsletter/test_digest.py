"""Digests delivered to a real SMTP server (aiosmtpd on loopback), never a mock."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from publisher.config import load_settings
from publisher.errors import ConfigError, PublisherError
from publisher.newsletter.run import open_run, send
from publisher.newsletter.tokens import TokenError, verify
from publisher.settings import Settings
from publisher.site.build import build
from publisher.store.ledger import Ledger
from publisher.store.rows import Status
from publisher.store.schema import deliveries, open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.weeks import parse_week
from tests.helpers import GOLDEN, SECRET, SEEDS, smtp_settings, write
from tests.helpers.smtp import SmtpServer

NOW = datetime.fromisoformat("2026-11-23T07:00:00+00:00")
DIGITISATION = "Digitisation, and the Children’s Services Ofsted"


def _cfg(tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    return smtp_settings(
        tmp_path,
        smtp.port,
        extra='[digest]\nfrom = "Staff blog <digest@blog.example.org>"\n',
        state_url=url,
    )


@pytest.fixture
def cfg(tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """State in a SQLite file."""
    return _cfg(tmp_path, smtp, monkeypatch, "")


@pytest.fixture
def cfg_any_db(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, state_url: str
) -> Settings:
    """State in a SQLite file, then on a real PostgreSQL server: for the tests of
    sending each message once, which rest on the database's transactions."""
    return _cfg(tmp_path, smtp, monkeypatch, state_url)


def subscribe(cfg: Settings, email: str, name: str = "", tags: tuple[str, ...] = ()) -> int:
    store = SubscriberStore(open_engine(cfg.state.url))
    return store.add(email, name, tags, now=NOW)[0].id


def run_week(cfg: Settings, week: str):
    from publisher.delivery.smtp import SmtpTransport

    run = open_run(cfg, parse_week(week, cfg.site.tzinfo), real_delivery=True)
    return send(run, SmtpTransport(cfg.smtp), lambda: NOW)


def test_week_07_digest_arrives_complete(cfg: Settings, smtp: SmtpServer) -> None:
    sid = subscribe(cfg, "Alice@Example.org", "Alice Ärger")
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.failed) == (1, 0)
    (msg,) = smtp.recorder.messages
    assert msg["To"].addresses[0].addr_spec == "Alice@example.org"
    assert msg["To"].addresses[0].display_name == "Alice Ärger"
    assert msg["From"] == "Staff blog <digest@blog.example.org>"
    assert "week of 11 February 2019" in msg["Subject"]
    assert msg["Date"] and msg["Message-ID"].endswith("@blog.example.org>")  # the sender's domain
    assert msg["List-Id"] == "Staff blog weekly digest <digest.blog.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https.startswith("http://127.0.0.1:8000/unsubscribe?token=") and mailto.startswith(
        "mailto:"
    )
    token = https.split("token=")[1]
    assert verify(token, SECRET, "unsubscribe", now=0).subscriber == sid
    assert "alice" not in https.lower()  # the address never travels in the link
    assert msg.get_content_type() == "multipart/alternative"
    text, html = [part.get_content_type() for part in msg.iter_parts()]
    assert (text, html) == ("text/plain", "text/html")
    text_body = msg.get_body(("plain",)).get_content()
    html_body = msg.get_body(("html",)).get_content()
    assert (
        DIGITISATION in text_body
        and "Digitisation, and the Children’s Services Ofsted" in html_body
    )
    assert "<style" not in html_body and 'style="' in html_body  # CSS inlined
    assert len(html_body.encode()) < 100_000
    assert "img" not in html_body  # no tracking pixel
    # every site link in the message resolves to a file the build wrote
    build(cfg, [SEEDS], Path("site"))
    links = set(re.findall(r'href="(http://127\.0\.0\.1:8000/[^"]*)"', html_body))
    links |= set(re.findall(r"(http://127\.0\.0\.1:8000/\S+)", text_body))
    site_links = {u for u in links if "token=" not in u}
    assert any(
        u.endswith("digitisation-and-the-childrens-services-ofsted.html") for u in site_links
    )
    for url in site_links:
        assert (Path("site") / url.removeprefix("http://127.0.0.1:8000/")).is_file(), url


def test_per_tag_filtering_and_skips(cfg: Settings, smtp: SmtpServer) -> None:
    subscribe(cfg, "all@example.org")
    subscribe(cfg, "thanks@example.org", tags=("thanks",))
    subscribe(cfg, "digital@example.org", tags=("Digital",))
    # 2018-W21: only "The relationship between the private and public sectors" (thanks)
    summary = run_week(cfg, "2018-W21")
    assert (summary.sent, summary.skipped) == (2, 1)
    assert {m["To"].addresses[0].addr_spec for m in smtp.recorder.messages} == {
        "all@example.org",
        "thanks@example.org",
    }
    assert not smtp.recorder.to("digital@example.org")


def test_empty_week_sends_nothing_and_is_recorded(cfg: Settings, smtp: SmtpServer) -> None:
    subscribe(cfg, "all@example.org")
    summary = run_week(cfg, "2020-W01")
    assert (summary.sent, summary.skipped) == (0, 1) and not smtp.recorder.messages
    record = Ledger(open_engine(cfg.state.url)).digest("2020-W01")
    assert record is not None and record.post_ids == ()


def test_rerun_sends_nothing_new(cfg_any_db: Settings, smtp: SmtpServer) -> None:
    cfg = cfg_any_db
    subscribe(cfg, "a@example.org")
    subscribe(cfg, "b@example.org")
    assert run_week(cfg, "2019-W07").sent == 2
    assert run_week(cfg, "2019-W07").sent == 0
    assert len(smtp.recorder.messages) == 2


def test_transient_451_then_250_delivers_once(cfg: Settings, smtp: SmtpServer) -> None:
    subscribe(cfg, "slow@example.org")
    smtp.recorder.replies["slow@example.org"] = ["451 4.3.0 try again later"]
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.retried, summary.failed) == (1, 1, 0)
    assert len(smtp.recorder.to("slow@example.org")) == 1
    with open_engine(cfg.state.url).connect() as conn:
        row = conn.execute(sa.select(deliveries)).one()
    assert (row.status, row.attempts) == ("sent", 2) and row.sent_at


def test_server_down_leaves_the_message_deferred_with_every_attempt_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server at all: each try is recorded (attempts) though no MAIL was ever sent,
    and the row is left for the next run, not marked sent or failed."""
    from tests.helpers.smtp import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    cfg = smtp_settings(tmp_path, free_port())  # nothing listens there
    subscribe(cfg, "a@example.org")
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.deferred, summary.failed) == (0, 1, 0)
    with open_engine(cfg.state.url).connect() as conn:
        row = conn.execute(sa.select(deliveries)).one()
    assert (row.status, row.attempts) == ("deferred", cfg.delivery.max_attempts)
    assert "cannot connect" in row.error


def test_server_down_stops_the_run_at_the_first_message_and_the_rerun_sends_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no server, each message was tried max_attempts times with backoff in
    turn (14 s each with the default backoff: hours for a list). The run now
    stops after the first message's tries, the rest left as they were; once the
    server is there, a rerun sends every message once."""
    from tests.helpers.smtp import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    port = free_port()
    cfg = smtp_settings(tmp_path, port)  # nothing listens there yet
    for i in range(5):
        subscribe(cfg, f"p{i}@example.org")
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.deferred, summary.stopped) == (0, 1, True)
    assert summary.reason.startswith(f"cannot connect to 127.0.0.1:{port}")
    assert summary.retried == cfg.delivery.max_attempts - 1  # one message's tries, no more
    with open_engine(cfg.state.url).connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.status, deliveries.c.attempts)).all()
    assert sorted(rows) == [("deferred", cfg.delivery.max_attempts)] + [("pending", 0)] * 4
    server = SmtpServer()
    server.port = port
    server.controller.port = port
    with server:
        again = run_week(cfg, "2019-W07")
    assert (again.sent, again.deferred, again.stopped) == (5, 0, False)
    assert sorted(m["To"] for m in server.recorder.messages) == [
        f"p{i}@example.org" for i in range(5)
    ]


def test_a_refused_sender_stops_the_run_and_bounces_nobody(cfg: Settings, smtp: SmtpServer) -> None:
    """A relay refusing our sender (MAIL FROM 5xx: a wrong [digest] from) is the
    server's answer to every message, no recipient's: it used to fail each message
    for good and count a bounce against each subscriber (bounce_limit runs of it
    marked the whole list bounced). It now stops the run; nobody's count moves."""
    ids = [subscribe(cfg, f"p{i}@example.org") for i in range(3)]
    smtp.recorder.mail_reply = "553 5.7.1 Sender address rejected: not owned by user"
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.failed, summary.deferred) == (0, 0, 1) and summary.stopped
    assert "refused the sender digest@blog.example.org: 553" in summary.reason
    store = SubscriberStore(open_engine(cfg.state.url))
    assert [(store.get(i).status, store.get(i).bounces) for i in ids] == [(Status.ACTIVE, 0)] * 3
    smtp.recorder.mail_reply = None  # the sender fixed: the rerun delivers the week
    assert run_week(cfg, "2019-W07").sent == 3 and len(smtp.recorder.messages) == 3


def test_permanent_550_fails_and_bounces_after_limit(cfg: Settings, smtp: SmtpServer) -> None:
    sid = subscribe(cfg, "gone@example.org")
    subscribe(cfg, "ok@example.org")
    smtp.recorder.always["gone@example.org"] = "550 5.1.1 no such user"
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.failed) == (1, 1)
    store = SubscriberStore(open_engine(cfg.state.url))
    assert store.get(sid).status is Status.ACTIVE and store.get(sid).bounces == 1
    summary = run_week(cfg, "2018-W21")  # second 5xx reaches bounce_limit = 2
    assert summary.failed == 1 and summary.bounced == 1
    assert store.get(sid).status is Status.BOUNCED
    assert run_week(cfg, "2018-W10").sent == 1  # bounced address no longer planned


def _sending(
    cfg: Settings, smtp: SmtpServer, cwd: Path, *, subscribers: int, until: int
) -> tuple[list[str], list[str], dict[str, str], subprocess.Popen[bytes]]:
    """``subscribers`` addresses, and ``digest --send`` of 2019-W07 running as a user
    runs it (slowed by the server), once the server has ``until`` messages: the
    addresses, the command, its environment and its process."""
    emails = [f"user{i:02d}@example.org" for i in range(subscribers)]
    for e in emails:
        subscribe(cfg, e)
    smtp.recorder.delay = 0.05
    env = {**os.environ, "PUBLISHER_SECRET": SECRET}
    cmd = [sys.executable, "-m", "publisher", "digest", "--week", "2019-W07", "--send", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(smtp.recorder.messages) < until and time.monotonic() < deadline:
        time.sleep(0.01)
    return emails, cmd, env, proc


def test_killed_mid_send_then_rerun_delivers_each_once(
    cfg_any_db: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    cfg = cfg_any_db
    emails, cmd, env, proc = _sending(cfg, smtp, tmp_path, subscribers=30, until=8)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(smtp.recorder.messages)
    assert 8 <= first < 30
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    got = Counter(m["To"].addresses[0].addr_spec for m in smtp.recorder.messages)
    assert set(got) == set(emails)
    dupes = [e for e, n in got.items() if n > 1]
    # at most the messages in flight at the kill: one a connection
    assert len(dupes) <= cfg.smtp.connections
    for e in dupes:
        ids = {m["Message-ID"] for m in smtp.recorder.to(e)}
        assert len(ids) == 1  # resent with the same Message-ID
    with open_engine(cfg.state.url).connect() as conn:
        statuses = Counter(r.status for r in conn.execute(sa.select(deliveries)))
    assert statuses == {"sent": 30}


@pytest.mark.parametrize("connections", [1, 4])
def test_a_send_uses_its_connections_and_delivers_each_message_once(
    cfg: Settings, smtp: SmtpServer, connections: int
) -> None:
    cfg = replace(cfg, smtp=replace(cfg.smtp, connections=connections))
    emails = [f"user{i:02d}@example.org" for i in range(24)]
    for e in emails:
        subscribe(cfg, e)
    smtp.recorder.delay = 0.02  # a server that takes its time: the others go meanwhile
    summary = run_week(cfg, "2019-W07")
    assert summary.sent == 24 and len(set(smtp.recorder.peers)) == connections
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.recorder.messages) == emails
    with open_engine(cfg.state.url).connect() as conn:
        assert Counter(r.status for r in conn.execute(sa.select(deliveries))) == {"sent": 24}


def test_a_421_that_never_clears_stops_the_run_and_the_rest_wait(
    cfg: Settings, smtp: SmtpServer
) -> None:
    """A relay answering 421 to every MAIL (throttling us for the day) used to make
    the run try each remaining message ``max_attempts`` times."""
    for i in range(6):
        subscribe(cfg, f"p{i}@example.org")
    smtp.recorder.mail_reply = "421 4.7.0 rate limited, try tomorrow"
    summary = run_week(cfg, "2019-W07")
    assert summary.stopped and "kept answering 421 4.7.0 rate limited" in summary.reason
    assert (summary.sent, summary.deferred) == (0, 1)
    with open_engine(cfg.state.url).connect() as conn:
        statuses = Counter(r.status for r in conn.execute(sa.select(deliveries)))
    assert statuses == {"pending": 5, "deferred": 1}
    smtp.recorder.mail_reply = None
    assert run_week(cfg, "2019-W07").sent == 6 and len(smtp.recorder.messages) == 6


def test_a_second_send_on_sqlite_is_refused_and_the_first_delivers_each_once(
    cfg: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    """A second ``digest --send`` while one runs (cron and the scheduler, say) is
    refused with exit 3 and sends nothing; the first delivers everything once. (A
    killed sender's lock goes with it: the rerun in the test above is not refused.)"""
    smtp.recorder.hold_after = 3  # the first sender waits at its 4th message
    emails, cmd, env, first = _sending(cfg, smtp, tmp_path, subscribers=20, until=3)
    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 3, second.stderr
    assert "another process is sending digests" in second.stderr
    smtp.recorder.released.set()
    assert first.wait(60) == 0
    got = Counter(m["To"].addresses[0].addr_spec for m in smtp.recorder.messages)
    assert got == dict.fromkeys(emails, 1)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """An empty state database on the test run's PostgreSQL server."""
    from tests.helpers.postgres import fresh_database

    server = request.getfixturevalue("postgres_server")
    test = hashlib.blake2b(request.node.nodeid.encode(), digest_size=6).hexdigest()
    return fresh_database(server, f"t{test}_state")


def test_senders_share_a_digest_on_postgresql(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """Two ``digest --send`` at once on PostgreSQL (two machines, say) split the
    digest between them by claims: both deliver, each message goes once."""
    cfg = _cfg(tmp_path, smtp, monkeypatch, pg_url)
    toml = tmp_path / "publisher.toml"
    toml.write_text(toml.read_text().replace("[smtp]\n", "[smtp]\nconnections = 2\n"))
    emails, cmd, env, first = _sending(cfg, smtp, tmp_path, subscribers=40, until=2)
    second = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    outs = [p.communicate(timeout=60) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    sent = [int(re.search(rb"sent (\d+)", out).group(1)) for out, _ in outs]  # type: ignore[union-attr]
    assert sum(sent) == 40 and min(sent) > 0, sent  # both took their share
    got = Counter(m["To"].addresses[0].addr_spec for m in smtp.recorder.messages)
    assert got == dict.fromkeys(emails, 1)
    with open_engine(cfg.state.url).connect() as conn:
        rows = conn.execute(sa.select(deliveries)).all()
    assert Counter(r.status for r in rows) == {"sent": 40}
    assert len({r.claimed_by for r in rows}) == 2  # each row sent by the sender that held it


def test_header_injection_is_impossible(cfg: Settings, smtp: SmtpServer) -> None:
    subscribe(cfg, "victim@example.org", "Eve\r\nBcc: attacker@evil.example\r\nX-Evil: 1")
    assert run_week(cfg, "2019-W07").sent == 1
    (msg,) = smtp.recorder.messages
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert all("attacker" not in k for k in msg)
    assert msg["To"].addresses[0].display_name == "Eve Bcc: attacker@evil.example X-Evil: 1"


def test_title_with_newline_cannot_inject() -> None:
    from publisher.newsletter.mime import (
        build_message,
        digest_headers,
        parse_sender,
        prepare_8bit,
        wire_8bit,
    )

    headers = digest_headers(
        sender=parse_sender("A <a@example.org>"),
        to_email="b@example.org",
        to_name="B\nX-Evil: 1",
        subject="Hi\r\nBcc: c@evil.example",
        msg_id="<1@x>",
        date=NOW,
        list_id="L <l.x>",
        unsubscribe_https="https://x/u?token=1",
        unsubscribe_mailto="mailto:a@example.org?subject=u",
    )
    seven = bytes(build_message(headers, "t", "<p>h</p>"))
    eight = wire_8bit(headers, prepare_8bit("t", "<p>h</p>", {}), {})
    for raw in (seven, eight):
        assert b"\nBcc:" not in raw and b"\nX-Evil:" not in raw
        assert b"Subject: Hi Bcc: c@evil.example" in raw


def test_refuses_real_delivery_without_secret(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.errors import PublisherError

    monkeypatch.delenv("PUBLISHER_SECRET")
    with pytest.raises(PublisherError, match="PUBLISHER_SECRET"):
        open_run(cfg, parse_week("2019-W07", cfg.site.tzinfo), real_delivery=True)


@pytest.mark.parametrize(
    ("subject", "says"),
    [("{{ unclosed", "unexpected end of template"), ("{{ nope.x }}", "'nope' is undefined")],
)
def test_a_broken_subject_template_is_a_config_error_before_anything_is_planned(
    tmp_path: Path, smtp: SmtpServer, subject: str, says: str
) -> None:
    s = smtp_settings(tmp_path, smtp.port, extra=f'[digest]\nsubject = "{subject}"\n')
    subscribe(s, "a@example.org")
    with pytest.raises(ConfigError) as exc:
        open_run(s, parse_week("2019-W07", s.site.tzinfo), real_delivery=False)
    assert exc.value.exit_code == 2 and "[digest] subject" in exc.value.message
    assert says in exc.value.message and "site, week and posts" in exc.value.remedy
    assert (
        Ledger(open_engine(s.state.url)).digest("2019-W07") is None and not smtp.recorder.messages
    )


def test_tampered_and_misused_tokens_rejected() -> None:
    from publisher.newsletter.tokens import Token, sign

    token = sign(Token("unsubscribe", 7), SECRET)
    assert verify(token, SECRET, "unsubscribe", now=0).subscriber == 7
    payload, mac = token.split(".")
    forged = sign(Token("unsubscribe", 8), SECRET).split(".")[0] + "." + mac
    for bad in (forged, payload + "." + mac[:-2] + "AA", "garbage", token + "x"):
        with pytest.raises(TokenError):
            verify(bad, SECRET, "unsubscribe", now=0)
    with pytest.raises(TokenError, match="not unsubscribe"):
        verify(sign(Token("confirm", 7), SECRET), SECRET, "unsubscribe", now=0)
    with pytest.raises(TokenError, match="expired"):
        verify(sign(Token("confirm", 7, expires=100), SECRET), SECRET, "confirm", now=101)
    with pytest.raises(TokenError):
        verify(token, "another-secret-0123456789abcdef", "unsubscribe", now=0)


def test_sent_digests_are_published_in_the_site(cfg: Settings, smtp: SmtpServer) -> None:
    from tests.helpers.feeds import assert_valid_atom

    out, seeds = Path("site"), Path("archives")
    shutil.copytree(SEEDS, seeds)
    build(cfg, [seeds], out)
    assert not (out / "digests.atom").exists()
    subscribe(cfg, "a@example.org")
    run_week(cfg, "2019-W07")
    run_week(cfg, "2020-W01")  # empty: nothing sent, nothing published
    result = build(cfg, [seeds], out)  # the state stamp defeats the "nothing changed" shortcut
    # ... but not the snapshot: no archive is read again for a digest planned
    assert not result.up_to_date and result.archives_read == 0
    page = (out / "digests" / "2019-W07.html").read_text(encoding="utf-8")
    assert DIGITISATION in page and "unsubscribe" not in page.lower()
    assert not (out / "digests" / "2020-W01.html").exists()
    assert_valid_atom(out / "digests.atom")
    import feedparser

    feed = feedparser.parse(str(out / "digests.atom"))
    assert [e.link for e in feed.entries] == ["http://127.0.0.1:8000/digests/2019-W07.html"]
    assert "digests/2019-W07.html" in (out / "index.html").read_text(encoding="utf-8")
    sitemap = (out / "sitemap.xml").read_text(encoding="utf-8")
    assert "<loc>http://127.0.0.1:8000/digests/2019-W07.html</loc>" in sitemap
    # a post of that week edited: the incremental build updates the digest's page,
    # and a full build after it finds nothing left to write
    for f in seeds.glob("*.txt"):
        f.write_text(f.read_text(encoding="utf-8").replace("similar journey", "shared journey"))
    edited = build(cfg, [seeds], out)
    assert edited.archives_read == 2 and "digests/2019-W07.html" in edited.changed
    assert "shared journey" in (out / "digests" / "2019-W07.html").read_text(encoding="utf-8")
    assert build(cfg, [seeds], out, full=True).written == 0


def test_long_posts_switch_to_summaries_under_the_budget(tmp_path: Path) -> None:
    from publisher.newsletter.content import DigestRenderer
    from publisher.source.load import load_stream

    path = tmp_path / "p.toml"
    path.write_text('[digest]\ncontent = "full"\nhtml_budget = 12000\n', encoding="utf-8")
    s = load_settings(path, environ={})
    posts = list(load_stream(s, [SEEDS]).posts[:6])
    from dataclasses import replace

    unlimited = replace(s, digest=replace(s.digest, html_budget=10**9))
    full = DigestRenderer(unlimited).render(parse_week("2019-W07", s.site.tzinfo), posts)
    cut = DigestRenderer(s).render(parse_week("2019-W07", s.site.tzinfo), posts)
    assert len(full.html.encode()) > 12000 >= len(cut.html.encode())
    assert cut.html.count("Read the whole post") >= 1
    assert all(p.title.replace("’", "&#8217;") in cut.html or p.title in cut.html for p in posts)


def test_rendered_once_per_distinct_tag_choice(
    cfg: Settings, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.newsletter.content import DigestRenderer

    calls: list[tuple[str, ...]] = []
    real = DigestRenderer.render

    def counting(self, week, posts, tags=(), personal=True):  # type: ignore[no-untyped-def]
        calls.append(tuple(tags))
        return real(self, week, posts, tags, personal)

    monkeypatch.setattr(DigestRenderer, "render", counting)
    for i in range(6):
        subscribe(cfg, f"all{i}@example.org")
        subscribe(cfg, f"t{i}@example.org", tags=("thanks",))
    assert run_week(cfg, "2019-W07").sent == 12
    assert sorted(calls) == [(), ("thanks",)]
    tokens = {
        re.findall(r"token=([\w.-]+)", m["List-Unsubscribe"])[0] for m in smtp.recorder.messages
    }
    assert len(tokens) == 12  # personal links differ even though the body was rendered twice


def test_golden_eml(cfg: Settings, smtp: SmtpServer) -> None:
    """The reviewed message for 2019-W07, byte for byte as an 8BITMIME server gets it."""
    subscribe(cfg, "reader@example.org", "Reader")
    run_week(cfg, "2019-W07")
    (raw,) = smtp.recorder.raw  # the bytes as sent, not a re-serialization
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 2.1.1
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    raw = raw.replace(b"\r\n", b"\n")
    assert re.search(
        rb"^List-Unsubscribe: <http://127.0.0.1:8000/unsubscribe\?token=[\w.-]+>, <mailto:",
        raw,
        re.M,
    )
    head, body = raw.split(b"\n\n", 1)
    assert body.count(b"Content-Transfer-Encoding: 8bit") == 2
    assert b"=?utf-8?" not in head.split(b"\nSubject:")[0]
    golden = GOLDEN / "digest-2019-W07.eml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(raw)
    assert raw == golden.read_bytes()


def test_server_without_8bitmime_gets_the_same_message_quoted_printable(
    cfg: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    """RFC 6152: 8bit only to a server that offers it; the 7-bit form decodes to the same text."""
    smtp.recorder.eight_bit = False
    subscribe(cfg, "reader@example.org", "Reader")
    assert run_week(cfg, "2019-W07").sent == 1
    (raw,) = smtp.recorder.raw
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"8bit" not in raw and body.isascii()
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045 quoted-printable
    (seven,) = smtp.recorder.messages
    run = open_run(cfg, parse_week("2019-W07", cfg.site.tzinfo), real_delivery=True)
    sub = run.store.by_email("reader@example.org")
    eight = email.message_from_bytes(
        run.mail(sub, run.prepared_for()(sub), "<x@y>", NOW).wire(True),
        policy=email.policy.default,
    )
    text = seven.get_body(("plain",)).get_content()
    assert text == eight.get_body(("plain",)).get_content()
    html = seven.get_body(("html",)).get_content()
    assert html.split() == eight.get_body(("html",)).get_content().split()  # refilled lines
    assert html != eight.get_body(("html",)).get_content()
    assert seven["List-Unsubscribe"] == eight["List-Unsubscribe"]


def test_8bit_layout_keeps_lines_within_998_octets() -> None:
    """HTML lines are broken at spaces, leaving room for the personal links; text that
    cannot be broken without showing goes quoted-printable instead."""
    from publisher.newsletter.mime import prepare_8bit, wire_8bit

    mark, url = "https://m.invalid/u", "https://example.org/unsubscribe?token=" + "t" * 300
    html = "<p>" + " ".join(["wörd"] * 400) + f' <a href="{mark}">x</a> ' + "z" * 200 + "</p>"
    text = "para " * 300 + mark
    body = prepare_8bit(text, html, {mark: len(url) - len(mark)})
    raw = wire_8bit([("Subject", "s")], body, {mark: url})
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    got_html = msg.get_body(("html",)).get_content()
    got_text = msg.get_body(("plain",)).get_content()
    assert got_html.split() == html.replace(mark, url).split()  # same words, only breaks moved
    assert got_text.rstrip("\n") == text.replace(mark, url)  # not re-broken: QP keeps it whole
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == [
        "quoted-printable",
        "8bit",
    ]


def test_draft_renders_every_message_to_the_outbox_without_touching_the_ledger(
    cfg: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    import mailbox

    from publisher.newsletter.review import draft
    from publisher.newsletter.run import transport_for

    subscribe(cfg, "a@example.org")
    subscribe(cfg, "b@example.org", tags=("digital",))
    subscribe(cfg, "c@example.org", tags=("nothing-this-week",))
    run = open_run(cfg, parse_week("2019-W07", cfg.site.tzinfo), real_delivery=True)
    outbox = tmp_path / "drafts"
    assert draft(run, transport_for(cfg, outbox), NOW) == 2
    msgs = list(mailbox.Maildir(outbox, create=False))
    assert sorted(m["To"] for m in msgs) == ["a@example.org", "b@example.org"]
    assert not smtp.recorder.messages  # nothing went to the real server
    assert Ledger(open_engine(cfg.state.url)).digest("2019-W07") is None
    assert run_week(cfg, "2019-W07").sent == 2  # the real send is still to come


def test_digest_offers_the_feeds_in_the_first_format_built(tmp_path: Path) -> None:
    from publisher.newsletter.content import DigestRenderer
    from publisher.source.load import load_stream

    path = tmp_path / "p.toml"
    path.write_text('[build]\nformats = ["json", "rss"]\n', encoding="utf-8")
    s = load_settings(path, environ={})
    posts = list(load_stream(s, [SEEDS]).posts[:3])
    week = parse_week("2019-W07", s.site.tzinfo)
    mail = DigestRenderer(s).render(week, posts, tags=["thanks"])
    assert f"{s.site.base_url}tag/thanks.rss" in mail.html and "(RSS)" in mail.text
    assert ".atom" not in mail.html + mail.text
    everything = DigestRenderer(s).render(week, posts)
    assert f"{s.site.base_url}all.rss" in everything.text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only
def test_a_refused_login_stops_the_run_and_bounces_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong PUBLISHER_SMTP_PASSWORD: the server refuses the login for every
    message. It failed each one for good and counted it as its subscriber's bounce;
    it now stops the run, names the login, and leaves every subscriber as it was."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.helpers.smtp import Recorder, free_port

    def check(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and data.password == b"right"
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    port = free_port()
    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=port,
        authenticator=check,
        auth_required=True,
        auth_require_tls=False,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "wrong")
    cfg = smtp_settings(tmp_path, port, extra='username = "digest"\n')
    ids = [subscribe(cfg, f"p{i}@example.org") for i in range(3)]
    controller.start()
    try:
        summary = run_week(cfg, "2019-W07")
        assert (summary.sent, summary.failed, summary.deferred) == (0, 0, 1) and summary.stopped
        assert summary.reason.startswith("SMTP login as 'digest' refused: 535")
        store = SubscriberStore(open_engine(cfg.state.url))
        assert [store.get(i).bounces for i in ids] == [0, 0, 0]
        monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "right")
        assert run_week(cfg, "2019-W07").sent == 3
    finally:
        controller.stop()


def test_an_outbox_that_cannot_be_written_stops_the_run_and_loses_nothing(
    cfg: Settings, tmp_path: Path
) -> None:
    """A file where the outbox folder must be (or a full disk): the run used to end in
    a traceback from the mailbox module, leaving its message 'sending'. It now stops
    like a server that is down, says why, and a rerun once the path is right
    delivers every message once; --draft says the same, and so does opening it."""
    import mailbox

    from publisher.delivery.outbox import OutboxTransport
    from publisher.newsletter.review import draft

    for name in ("a@example.org", "b@example.org"):
        subscribe(cfg, name)
    week = parse_week("2019-W07", cfg.site.tzinfo)
    outbox = write(tmp_path / "outbox", "a file, not a folder")
    summary = send(open_run(cfg, week, real_delivery=False), OutboxTransport(outbox), lambda: NOW)
    assert (summary.sent, summary.deferred, summary.stopped) == (0, 1, True)
    assert summary.reason.startswith(f"outbox {outbox}: cannot store the message")
    with pytest.raises(PublisherError, match="0 draft"):
        draft(open_run(cfg, week, real_delivery=False), OutboxTransport(outbox), NOW)
    with pytest.raises(PublisherError, match="cannot open it as a Maildir"):
        OutboxTransport(outbox / "inside")
    outbox.unlink()
    again = send(open_run(cfg, week, real_delivery=False), OutboxTransport(outbox), lambda: NOW)
    assert (again.sent, again.deferred) == (2, 0)
    assert sorted(m["To"] for m in mailbox.Maildir(outbox, create=False)) == [
        "a@example.org",
        "b@example.org",
    ]


@pytest.mark.parametrize("offered", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_an_internationalised_address_never_blocks_the_others(
    cfg: Settings, smtp: SmtpServer, offered: bool
) -> None:
    """``reader@bücher.example`` used to end every send in a traceback, 0 delivered.
    Its domain goes out in IDNA. An address whose local part is not ASCII goes
    with SMTPUTF8 (RFC 6531/6532: in the envelope and the To header as it is) to
    a server that offers it; to one that does not, it fails alone, with the
    reason, and is not counted as a bounce. Everyone else gets the digest, and a
    rerun sends nothing again."""
    smtp.recorder.smtputf8 = offered
    for address in ("reader@bücher.example", "josé@example.org", "plain@example.org"):
        subscribe(cfg, address)
    summary = run_week(cfg, "2019-W07")
    assert (summary.sent, summary.failed) == ((3, 0) if offered else (2, 1))
    rcpts = sorted(str(m["To"]) for m in smtp.recorder.messages)
    expected = ["plain@example.org", "reader@xn--bcher-kva.example"]
    assert rcpts == (sorted([*expected, "josé@example.org"]) if offered else expected)
    by_rcpt = dict(
        zip(
            (str(m["To"]) for m in smtp.recorder.messages),
            smtp.recorder.utf8_envelopes,
            strict=True,
        )
    )
    assert by_rcpt.get("josé@example.org", offered) is offered  # SMTPUTF8 only where needed
    assert by_rcpt["plain@example.org"] is False
    store = SubscriberStore(open_engine(cfg.state.url))
    jose = store.by_email("josé@example.org")
    assert (jose.status, jose.bounces) == (Status.ACTIVE, 0)
    if not offered:
        query = sa.select(deliveries).where(deliveries.c.subscriber_id == jose.id)
        with open_engine(cfg.state.url).connect() as conn:
            row = conn.execute(query).one()
        assert row.status == "failed" and "needs SMTPUTF8, which 127.0.0.1" in row.error
    again = run_week(cfg, "2019-W07")
    assert again.sent == 0 and len(smtp.recorder.messages) == (3 if offered else 2)


def test_a_real_relay_needs_https_links_unless_told_otherwise(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-click unsubscribe works with mail providers over https only: a send through
    a relay that is not on loopback with an http base_url is refused before any
    connection, naming the fix; ``allow_http_links`` sends anyway (here to a name
    that does not resolve, so it fails later, for another reason)."""
    from publisher.errors import PublisherError

    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = smtp_settings(tmp_path, smtp.port, base_url="http://blog.example.org/")
    s = replace(s, smtp=replace(s.smtp, host="relay.invalid"))
    with pytest.raises(PublisherError) as exc:
        open_run(s, parse_week("2019-W07", s.site.tzinfo), real_delivery=True)
    assert "not https" in exc.value.message and "allow_http_links" in exc.value.remedy
    allowed = replace(s, smtp=replace(s.smtp, allow_http_links=True))
    open_run(allowed, parse_week("2019-W07", allowed.site.tzinfo), real_delivery=True)
    outbox = replace(s, delivery=replace(s.delivery, method="outbox"))
    open_run(outbox, parse_week("2019-W07", s.site.tzinfo), real_delivery=False)


def test_message_ids_and_list_id_take_the_senders_domain(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = smtp_settings(
        tmp_path, smtp.port, extra='[digest]\nfrom = "Blog <digest@blog.example.org>"\n'
    )
    subscribe(s, "r@example.net")
    run_week(s, "2019-W07")
    (msg,) = smtp.recorder.messages
    assert str(msg["Message-ID"]).endswith("@blog.example.org>")
    assert "<digest.blog.example.org>" in str(msg["List-Id"])


def test_a_test_send_goes_to_one_address_and_leaves_the_ledger_alone(
    cfg: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    """``digest --test ADDRESS``: the week's digest through the relay to the operator,
    subject marked, so it can be checked in real mail clients (and its DKIM
    signature) before everyone gets it; nothing is planned, so the real send
    later is unaffected."""
    from tests.helpers import run_cli

    subscribe(cfg, "reader@example.org")
    env = {"PUBLISHER_SECRET": SECRET}
    r = run_cli("digest", "--week", "2019-W07", "--test", "Me@Example.org", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "a test message to Me@example.org" in r.stdout and "ledger untouched" in r.stdout
    (msg,) = smtp.recorder.messages
    assert (
        str(msg["Subject"]).startswith("[TEST] Staff blog:") and str(msg["To"]) == "Me@example.org"
    )
    assert msg["List-Unsubscribe"] is not None  # as the real one: the headers are checked too
    with open_engine(cfg.state.url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one() == 0
    assert run_week(cfg, "2019-W07").sent == 1  # the real send: the one subscriber, once
    bad = run_cli("digest", "--week", "2019-W07", "--test", "not an address", cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "is not a valid email address" in bad.stderr


def test_a_digest_of_several_posts_reads_well_in_any_client(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three posts in a week: a list of headlines first; a preheader; a table layout
    that needs no ``margin: auto`` or body background (Outlook and several mobile
    clients drop them); a text part wrapped at 76 columns but for bare URLs, with
    its ``-- `` separator; and a link to the web copy, which ``digest --send``
    publishes before the first message goes."""
    from tests.helpers import run_cli

    seeds = tmp_path / "seeds"
    long = " ".join(["A sentence of a paragraph that goes on and on."] * 12)
    write(
        seeds / "week.txt",
        "Posts Tagged ‘digital’\n\n"
        + "\n".join(
            f"Post number {i} with a title\n\nFebruary {11 + i}, 2019\n\n{long}\n" for i in range(3)
        ),
    )
    monkeypatch.chdir(tmp_path)
    cfg = smtp_settings(tmp_path, smtp.port, seeds=seeds)
    subscribe(cfg, "reader@example.org")
    web_copy = tmp_path / "site" / "digests" / "2019-W07.html"
    smtp.recorder.look = web_copy.is_file
    r = run_cli(
        "digest", "--week", "2019-W07", "--send", cwd=tmp_path, env={"PUBLISHER_SECRET": SECRET}
    )
    assert r.returncode == 0, r.stderr
    assert smtp.recorder.seen == [True]  # the web copy was there before the message
    (msg,) = smtp.recorder.messages
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert html.index("3 new posts: Post number 2 with a title") < html.index("<table")
    assert "In this digest" in html and html.count("Post number 0 with a title") == 2
    assert 'role="presentation"' in html and "margin: 0 auto" not in html
    assert f'href="{cfg.site.base_url}digests/2019-W07.html"' in html
    lines = text.splitlines()
    assert "-- " in lines and "In this digest:" in lines
    assert all(len(ln) <= 76 or " " not in ln.strip() for ln in lines), [
        ln for ln in lines if len(ln) > 76
    ]
    assert f"{cfg.site.base_url}digests/2019-W07.html" in lines
    page = web_copy.read_text(encoding="utf-8")
    assert "Post number 1 with a title" in page and "Unsubscribe" not in page


def test_a_monthly_subscriber_gets_the_months_digest_once_and_no_weekly_one(
    cfg: Settings, smtp: SmtpServer
) -> None:
    from publisher.delivery.smtp import SmtpTransport
    from publisher.source.load import load_stream
    from publisher.weeks import parse_month

    store = SubscriberStore(open_engine(cfg.state.url))
    store.add("monthly@example.org", now=NOW, cadence="monthly")
    subscribe(cfg, "weekly@example.org")
    month = parse_month("2019-02", cfg.site.tzinfo)
    run = open_run(cfg, month, real_delivery=True)
    summary = send(run, SmtpTransport(cfg.smtp), lambda: NOW)
    assert summary.sent == 1
    (msg,) = smtp.recorder.messages
    assert str(msg["To"]) == "monthly@example.org"
    assert "new post" in str(msg["Subject"]) and "February 2019" in str(msg["Subject"])
    text = msg.get_body(("plain",)).get_content()
    feb = [p.title for p in load_stream(cfg).posts if month.contains(p.published)]
    assert feb and all(title.split(",")[0] in text for title in feb)
    assert "Posts from February 2019 (2019-02)" in text
    again = send(open_run(cfg, month, real_delivery=True), SmtpTransport(cfg.smtp), lambda: NOW)
    assert again.sent == 0 and len(smtp.recorder.messages) == 1
    weekly = run_week(cfg, "2019-W07")  # the week's digest: the weekly subscriber alone
    assert weekly.sent == 1 and str(smtp.recorder.messages[-1]["To"]) == "weekly@example.org"


def test_digest_month_on_the_command_line(cfg: Settings, smtp: SmtpServer, tmp_path: Path) -> None:
    """``--month`` works as ``--week`` does: a dry run names the monthly subscribers
    alone, and a send publishes the month's web copy."""
    from tests.helpers import run_cli

    SubscriberStore(open_engine(cfg.state.url)).add("m@example.org", now=NOW, cadence="monthly")
    subscribe(cfg, "w@example.org")
    env = {"PUBLISHER_SECRET": SECRET}
    dry = run_cli("digest", "--month", "2019-02", cwd=tmp_path, env=env)
    assert dry.returncode == 0 and "m@example.org" in dry.stdout and "w@example" not in dry.stdout
    sent = run_cli("digest", "--month", "2019-02", "--send", cwd=tmp_path, env=env)
    assert sent.returncode == 0 and "2019-02: sent 1" in sent.stdout, sent.stderr
    assert (tmp_path / "site" / "digests" / "2019-02.html").is_file()
    bad = run_cli("digest", "--month", "2019-13", cwd=tmp_path, env=env)
    assert bad.returncode != 0 and "not a month" in bad.stderr
