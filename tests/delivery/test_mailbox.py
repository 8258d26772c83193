"""Reading returns from a real mailbox: dovecot on loopback, IMAP and POP3 over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.delivery.mailbox import ImapSource, Pop3Source, open_source
from publisher.errors import PublisherError
from publisher.newsletter.feedback import Feedback
from publisher.settings import MailboxSettings
from publisher.store.returns import ReturnsLog
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from tests.helpers import SECRET
from tests.helpers.dovecot import PASSWORD, USER, Dovecot, available, deliver, running_dovecot
from tests.newsletter.test_returns import fixture

NOW = datetime(2019, 2, 18, 12, tzinfo=UTC)
pytestmark = pytest.mark.skipif(not available(), reason="dovecot is not installed")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def _settings(server: Dovecot, scheme: str, monkeypatch: pytest.MonkeyPatch) -> MailboxSettings:
    monkeypatch.setenv("PUBLISHER_MAILBOX_PASSWORD", PASSWORD)
    port = server.imap_port if scheme == "imaps" else server.pop3_port
    path = "/INBOX" if scheme == "imaps" else ""
    return MailboxSettings(f"{scheme}://{USER}@127.0.0.1:{port}{path}", str(server.ca_file))


@pytest.mark.parametrize("scheme", ["imaps", "pop3s"])
def test_returns_are_read_over_tls_and_acted_on_once(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    engine = open_engine(f"sqlite:///{(tmp_path / 'state.db').as_posix()}")
    store = SubscriberStore(engine)
    gone, _ = store.add("gone@example.net", now=NOW)
    deliver(dovecot, fixture("exchange-hard.eml", 5, gone.id))
    deliver(dovecot, fixture("unrelated.eml", 5, gone.id))
    cfg = _settings(dovecot, scheme, monkeypatch)
    source = open_source(cfg)
    assert isinstance(source, ImapSource if scheme == "imaps" else Pop3Source)
    feedback = Feedback(ReturnsLog(engine), store, SECRET, limit=3)
    first = feedback.read(source, NOW)
    assert dict(first.counts) == {"hard-bounce": 1} and len(first.unrecognised) == 1
    assert store.get(gone.id).status is Status.BOUNCED
    second = feedback.read(open_source(cfg), NOW)
    assert not second.counts and len(second.unrecognised) == 1
    # IMAP flags what it acted on (and then lists only the rest); POP3 cannot flag,
    # so the return is met again and known by its Message-ID
    assert second.repeated == (0 if scheme == "imaps" else 1)


def test_a_wrong_password_or_an_untrusted_certificate_is_an_error_with_a_remedy(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _settings(dovecot, "imaps", monkeypatch)
    monkeypatch.setenv("PUBLISHER_MAILBOX_PASSWORD", "wrong")
    with pytest.raises(PublisherError, match="PUBLISHER_MAILBOX_PASSWORD"):
        open_source(cfg)
    monkeypatch.setenv("PUBLISHER_MAILBOX_PASSWORD", PASSWORD)
    with pytest.raises(PublisherError, match="ca_file"):
        open_source(MailboxSettings(cfg.url, ""))  # the system CAs do not know it
