"""What comes back by mail: bounces in the shapes real servers send, complaints,
unsubscribe mails; each acted on once, a forged one never."""

from __future__ import annotations

import email
import email.policy
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.delivery.mailbox import MaildirSource
from publisher.newsletter.feedback import Feedback
from publisher.newsletter.returns import ReturnKind, classify, read_verp, verp_sender, verp_tag
from publisher.newsletter.tokens import Token, sign
from publisher.store.returns import ReturnsLog
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from tests.helpers import ROOT, SECRET

FIXTURES = ROOT / "tests" / "fixtures" / "returns"
BOUNCES = "bounces@publisher.localhost"
NOW = datetime(2019, 2, 18, 12, tzinfo=UTC)


def fixture(name: str, digest: int, sub: int, rcpt: str = "gone@example.net", **kw: str) -> bytes:
    values = {
        "verp": verp_sender(BOUNCES, digest, sub, SECRET),
        "tag": verp_tag(digest, sub, SECRET),
        "token": sign(Token("unsubscribe", sub), SECRET),
        "rcpt": rcpt,
        "bounces": BOUNCES,
    } | kw
    text = (FIXTURES / name).read_text(encoding="utf-8").format(**values)
    return text.replace("\n", "\r\n").encode()


def parsed(raw: bytes):  # type: ignore[no-untyped-def]
    return email.message_from_bytes(raw, policy=email.policy.compat32)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("postfix-hard.eml", ReturnKind.HARD_BOUNCE),
        ("exim-hard.eml", ReturnKind.HARD_BOUNCE),  # no DSN: GNU Mailman's detectors
        ("exchange-hard.eml", ReturnKind.HARD_BOUNCE),
        ("gmail-soft.eml", ReturnKind.SOFT_BOUNCE),
        ("ses-hard.eml", ReturnKind.HARD_BOUNCE),  # found by its ENVID
        ("arf-complaint.eml", ReturnKind.COMPLAINT),
        ("unsubscribe.eml", ReturnKind.UNSUBSCRIBE),
    ],
)
def test_each_shape_names_its_delivery(name: str, kind: ReturnKind) -> None:
    raw = fixture(name, digest=7, sub=42)
    ret = classify(parsed(raw), raw, SECRET)
    assert ret.kind == kind and ret.subscriber_id == 42
    if kind is not ReturnKind.UNSUBSCRIBE:
        assert ret.digest_id == 7
    assert ret.message_id.startswith("<")


def test_a_forged_return_names_nobody() -> None:
    forged = verp_sender(BOUNCES, 7, 42, "not-our-secret-" * 3)
    raw = fixture("postfix-hard.eml", 7, 42, verp=forged, tag=forged.split("+")[1].split("@")[0])
    assert classify(parsed(raw), raw, SECRET).kind is ReturnKind.UNRECOGNISED
    raw = fixture("unsubscribe.eml", 7, 42, token=sign(Token("unsubscribe", 42), "x" * 32))
    assert classify(parsed(raw), raw, SECRET).kind is ReturnKind.UNRECOGNISED
    raw = fixture("unrelated.eml", 7, 42)
    assert classify(parsed(raw), raw, SECRET).kind is ReturnKind.UNRECOGNISED


def test_verp_survives_case_folding_and_refuses_another_subscriber() -> None:
    address = verp_sender(BOUNCES, 3, 99, SECRET)
    assert read_verp(address.upper(), SECRET) == (3, 99)
    tampered = address.replace("s99-", "s98-")
    assert read_verp(tampered, SECRET) is None


def _maildir(tmp_path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(tmp_path / "returns", create=True)
    for raw in messages:
        box.add(raw)
    box.close()
    return tmp_path / "returns"


def test_a_maildir_is_read_once_and_only_what_is_recognised_moves(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{(tmp_path / 'state.db').as_posix()}")
    store = SubscriberStore(engine)
    hard, _ = store.add("gone@example.net", now=NOW)
    soft, _ = store.add("full@example.net", now=NOW)
    angry, _ = store.add("angry@example.net", now=NOW)
    leaving, _ = store.add("leaving@example.net", now=NOW)
    dsn = fixture("postfix-hard.eml", 1, hard.id)
    path = _maildir(
        tmp_path,
        dsn,
        dsn,  # the same DSN twice: counted once
        fixture("gmail-soft.eml", 1, soft.id, rcpt="full@example.net"),
        fixture("arf-complaint.eml", 1, angry.id, rcpt="angry@example.net"),
        fixture("unsubscribe.eml", 1, leaving.id, rcpt="leaving@example.net"),
        fixture("unrelated.eml", 1, hard.id),
        fixture("postfix-hard.eml", 1, soft.id, verp="bounces+d1s9-0123456789abcdef@x.org"),
    )
    feedback = Feedback(ReturnsLog(engine), store, SECRET, limit=3)
    summary = feedback.read(MaildirSource(path), NOW)
    assert dict(summary.counts) == {
        "hard-bounce": 1,
        "soft-bounce": 1,
        "complaint": 1,
        "unsubscribe": 1,
    }
    assert summary.repeated == 1 and len(summary.unrecognised) == 2
    assert store.get(hard.id).status is Status.BOUNCED
    assert (store.get(soft.id).status, store.get(soft.id).bounces) == (Status.ACTIVE, 1)
    assert store.get(angry.id).status is Status.COMPLAINED
    assert store.get(leaving.id).status is Status.UNSUBSCRIBED
    box = mailbox.Maildir(path, create=False)
    left = sorted(str(box.get_message(k)["Subject"]) for k in box.iterkeys())
    assert left == ["Lunch on Friday?", "Undelivered Mail Returned to Sender"]  # in place
    assert len(box.get_folder("Processed")) == 5  # moved, never deleted
    again = Feedback(ReturnsLog(engine), store, SECRET, limit=3).read(MaildirSource(path), NOW)
    assert not again.counts and len(again.unrecognised) == 2
    assert store.get(soft.id).bounces == 1


def test_end_to_end_a_bounce_and_a_complaint_reach_nobody_next_time(
    tmp_path: Path,
    smtp,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """A digest goes out through a real SMTP server from VERP senders; a DSN comes
    back to one recipient's envelope sender and a complaint about another's; the
    CLI's ``publisher mailbox`` reads them from a Maildir; the first is bounced,
    the second complained, and the next digest goes to neither."""
    from publisher.delivery.smtp import SmtpTransport
    from publisher.newsletter.run import open_run, send
    from publisher.weeks import parse_week
    from tests.helpers import run_cli, smtp_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = smtp_settings(tmp_path, smtp.port, extra=f'[digest]\nbounce_address = "{BOUNCES}"\n')
    store = SubscriberStore(open_engine(s.state.url))
    for who in ("gone", "angry", "stays"):
        store.add(f"{who}@example.net", now=NOW)

    def digest(week: str) -> list[str]:
        before = len(smtp.recorder.messages)
        run = open_run(s, parse_week(week, s.site.tzinfo), real_delivery=True)
        send(run, SmtpTransport(s.smtp), lambda: NOW)
        return [str(m["To"]) for m in smtp.recorder.messages[before:]]

    assert sorted(digest("2019-W07")) == [f"{w}@example.net" for w in ("angry", "gone", "stays")]
    sender = {
        str(m["To"]): env
        for m, env in zip(smtp.recorder.messages, smtp.recorder.envelopes, strict=True)
    }
    gone_from, options = sender["gone@example.net"]
    assert gone_from.startswith("bounces+") and gone_from.endswith("@publisher.localhost")
    dsn = fixture("postfix-hard.eml", 0, 0, verp=gone_from)  # what the relay sent back
    raw_angry = next(r for r in smtp.recorder.raw if b"To: angry@example.net" in r)
    angry_unsub = raw_angry.split(b"unsubscribe?token=")[1].split(b">")[0].decode()
    complaint = fixture(
        "arf-complaint.eml",
        0,
        0,
        rcpt="angry@example.net",
        token=angry_unsub,
        verp=sender["angry@example.net"][0],
    )
    path = _maildir(tmp_path, dsn, complaint)
    env = {"PUBLISHER_SECRET": SECRET}
    r = run_cli("mailbox", "--maildir", str(path), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "1 complaint, 1 hard-bounce" in r.stdout
    assert store.by_email("gone@example.net").status is Status.BOUNCED
    assert store.by_email("angry@example.net").status is Status.COMPLAINED
    import sqlalchemy as sa

    from publisher.store.schema import deliveries

    with open_engine(s.state.url).connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.subscriber_id, deliveries.c.returned))
        returned = {r.subscriber_id: r.returned for r in rows}
    gone = store.by_email("gone@example.net")
    assert returned[gone.id].startswith("hard-bounce: 5.1.1")  # the ledger row says so
    listed = run_cli("subscribers", "list", "--status", "complained", cwd=tmp_path, env=env)
    assert listed.stdout.startswith("angry@example.net\t")
    before = len(smtp.recorder.messages)
    r = run_cli("digest", "--week", "2019-W47", "--send", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "2 return(s) processed since 2019-W07's digest" in r.stdout
    assert [str(m["To"]) for m in smtp.recorder.messages[before:]] == ["stays@example.net"]


def test_dsns_are_asked_for_where_the_server_offers_them(
    tmp_path: Path,
    smtp,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """With DSN offered, MAIL FROM carries RET=HDRS (returns carry headers only) and
    ENVID (the VERP tag, so a return names its delivery even when it is sent to the
    plain bounce address); without it, neither."""
    from publisher.delivery.smtp import SmtpTransport
    from publisher.newsletter.run import open_run, send
    from publisher.weeks import parse_week
    from tests.helpers import smtp_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = smtp_settings(tmp_path, smtp.port, extra=f'[digest]\nbounce_address = "{BOUNCES}"\n')
    sub, _ = SubscriberStore(open_engine(s.state.url)).add("r@example.net", now=NOW)
    smtp.recorder.dsn = True
    run = open_run(s, parse_week("2019-W07", s.site.tzinfo), real_delivery=True)
    send(run, SmtpTransport(s.smtp), lambda: NOW)
    ((sender, options),) = smtp.recorder.envelopes
    tag = sender.split("+")[1].split("@")[0]
    assert "RET=HDRS" in options and f"ENVID={tag.upper()}" in options  # aiosmtpd upper-cases
    assert read_verp(sender, SECRET)[1] == sub.id
