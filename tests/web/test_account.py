"""A subscriber's own pages: the real status and a way back, an undo, a fresh link by
address, their data to download or delete; and the same rights from the command line."""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import httpx

from publisher.newsletter.tokens import Token, sign
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from tests.helpers import SECRET, run_cli, write
from tests.helpers.smtp import SmtpServer
from tests.web.test_app import _csrf

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _store(s) -> SubscriberStore:  # type: ignore[no-untyped-def]
    return SubscriberStore(open_engine(s.state.url), SECRET)


def _link(server, purpose: str, sid: int) -> str:  # type: ignore[no-untyped-def]
    return f"{server.url}{purpose}?token={sign(Token(purpose, sid), SECRET)}"


def test_preferences_show_the_real_status_and_lead_back_in(site) -> None:  # type: ignore[no-untyped-def]
    """It used to answer "Saved." to an unsubscribed reader while nothing changed."""
    s, server = site
    store = _store(s)
    sub = store.add("gone@example.org", now=NOW)[0]
    store.set_status(sub.id, Status.UNSUBSCRIBED, NOW)
    prefs = _link(server, "preferences", sub.id)
    with httpx.Client() as c:
        page = c.get(prefs)
        assert "You are unsubscribed" in page.text and "Subscribe again" in page.text
        r = c.post(prefs, data={"csrf": _csrf(page.text), "action": "resubscribe"})
        assert "You are subscribed again" in r.text and "Subscribe again" not in r.text
        assert store.get(sub.id).status is Status.ACTIVE and store.get(sub.id).confirmed
        page = c.get(prefs)
        r = c.post(prefs, data={"csrf": _csrf(page.text), "cadence": "monthly", "tag": []})
        assert store.get(sub.id).cadence == "monthly" and 'value="monthly" checked' in r.text


def test_the_unsubscribe_confirmation_offers_an_undo(site) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = _store(s)
    sub = store.add("reader@example.org", now=NOW)[0]
    unsub = _link(server, "unsubscribe", sub.id)
    with httpx.Client() as c:
        done = c.post(unsub, data={"csrf": _csrf(c.get(unsub).text)})
        assert (
            "You are unsubscribed" in done.text and store.get(sub.id).status is Status.UNSUBSCRIBED
        )
        action = done.text.split('action="')[1].split('"')[0].replace("&amp;", "&")
        undo = c.post(action, data={"csrf": _csrf(done.text), "action": "resubscribe"})
        assert undo.status_code == 200 and store.get(sub.id).status is Status.ACTIVE


def test_manage_mails_a_fresh_link_and_answers_the_same_for_anyone(  # type: ignore[no-untyped-def]
    site, smtp: SmtpServer
) -> None:
    s, server = site
    _store(s).add("known@example.org", now=NOW)
    with httpx.Client(base_url=server.url) as c:
        answers = []
        for email in ("known@example.org", "stranger@example.org"):
            form = c.get("manage")
            answers.append(c.post("manage", data={"csrf": _csrf(form.text), "email": email}))
        bad = c.post("manage", data={"csrf": _csrf(c.get("manage").text), "email": "nope"})
        server.settle()
    assert {(r.status_code, r.text) for r in answers} == {(200, answers[0].text)}
    assert bad.status_code == 400 and "valid email address" in bad.text
    (mail,) = smtp.recorder.messages
    assert str(mail["To"]) == "known@example.org" and "/preferences?token=" in mail.get_content()
    with httpx.Client(base_url=server.url) as c:  # rate-limited per client
        codes = [
            c.post(
                "manage", data={"csrf": _csrf(c.get("manage").text), "email": "a@example.org"}
            ).status_code
            for _ in range(5)
        ]
    assert codes[-1] == 429


def test_a_reader_downloads_their_data_and_deletes_it(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = _store(s)
    sub = store.add("me@example.org", "Me", ("thanks",), now=NOW)[0]
    prefs = _link(server, "preferences", sub.id)
    with httpx.Client() as c:
        page = c.get(prefs)
        data_url = next(
            h.replace("&amp;", "&") for h in page.text.split('"') if "preferences/data?token=" in h
        )
        got = c.get(data_url)
        assert got.headers["content-type"] == "application/json"
        record = got.json()
        assert record["subscriber"]["email"] == "me@example.org"
        assert record["subscriber"]["joined_by"] == "command"
        ask = c.post(prefs, data={"csrf": _csrf(page.text), "action": "forget"})
        assert "cannot be undone" in ask.text and store.by_email("me@example.org") is not None
        r = c.post(prefs, data={"csrf": _csrf(ask.text), "action": "forget-now"})
        assert "Your data is deleted" in r.text
    assert store.by_email("me@example.org") is None
    # an old list imported later does not bring the address back
    csv = write(
        Path(s.state.url.removeprefix("sqlite:///")).parent / "old.csv", "email\nme@example.org\n"
    )
    added, _, problems = store.import_csv(csv.open(encoding="utf-8"), "old.csv", NOW)
    assert added == 0 and "erased at its owner's request" in str(problems[0])
    assert store.by_email("me@example.org") is None
    # signing up again works, through the confirmation
    with httpx.Client(base_url=server.url) as c:
        c.post(
            "subscribe", data={"csrf": _csrf(c.get("subscribe").text), "email": "me@example.org"}
        )
        server.settle()
    assert store.by_email("me@example.org").status is Status.PENDING


def test_show_and_forget_on_the_command_line(tmp_path: Path, smtp: SmtpServer) -> None:
    from tests.helpers import smtp_settings

    s = smtp_settings(tmp_path, smtp.port)
    toml = tmp_path / "publisher.toml"
    toml.write_text(toml.read_text().replace('method = "smtp"', 'method = "outbox"'))
    env = {"PUBLISHER_SECRET": SECRET}
    people = (["p@example.org"], ["m@example.org", "--cadence", "monthly"], ["q@example.org"])
    for args in (*people, ["ap@example.org"]):  # (an address that ends as p's does)
        assert run_cli("subscribers", "add", *args, cwd=tmp_path, env=env).returncode == 0
    r = run_cli("digest", "--week", "2019-W07", "--draft", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    shown = run_cli("subscribers", "show", "p@example.org", cwd=tmp_path, env=env)
    record = json.loads(shown.stdout)
    assert record["subscriber"]["cadence"] == "weekly"
    assert record["subscriber"]["joined_by"] == "command"
    assert record["deliveries"] == []  # a draft is no delivery: the ledger is untouched
    monthly = run_cli("subscribers", "show", "m@example.org", cwd=tmp_path, env=env)
    assert json.loads(monthly.stdout)["subscriber"]["cadence"] == "monthly"
    outbox = tmp_path / s.delivery.outbox
    before = [str(m["To"]) for m in mailbox.Maildir(outbox, create=False)]
    r = run_cli("subscribers", "forget", "p@example.org", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "forgot p@example.org" in r.stdout, r.stderr
    after = [str(m["To"]) for m in mailbox.Maildir(outbox, create=False)]
    assert "p@example.org" in before and "p@example.org" not in after and "q@example.org" in after
    assert "ap@example.org" in after  # another person's copy: only whole addresses match
    assert "m@example.org" not in before  # monthly: no weekly draft
    again = run_cli("subscribers", "add", "p@example.org", cwd=tmp_path, env=env)
    assert again.returncode == 1 and "erased at its owner's request" in again.stderr
    assert (
        run_cli(
            "subscribers", "add", "p@example.org", "--resubscribe", cwd=tmp_path, env=env
        ).returncode
        == 0
    )
