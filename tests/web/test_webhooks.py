"""Provider webhooks: SES through SNS (signature checked against a test certificate)
and Mailgun (HMAC); payloads as the providers document them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from publisher.site.build import build
from publisher.store.ledger import Ledger
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.web.app import create_app
from tests.helpers import SECRET, SEEDS, smtp_settings
from tests.helpers.smtp import SmtpServer, free_port
from tests.helpers.webserver import LiveServer

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789.pem"
MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


CERT = _certificate()


def sns(kind: str, fields: dict[str, str], version: str = "1") -> dict[str, str]:
    """An SNS message signed as AWS documents it (the test key stands for AWS's)."""
    message = {"Type": kind, "MessageId": f"sns-{time.time_ns()}", "Timestamp": "2019-02-18T07:00:00.000Z",
               "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-returns", **fields,
               "SignatureVersion": version, "SigningCertURL": CERT_URL}  # fmt: skip
    order = {
        "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
        "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                     "Token", "TopicArn", "Type"),
    }[kind]  # fmt: skip
    text = "".join(f"{k}\n{message[k]}\n" for k in order if k in message)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = KEY.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return message | {"Signature": base64.b64encode(signature).decode()}


@pytest.fixture
def served(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, SubscriberStore, str, list[str]]]:
    """The app with a subscriber who got the 2019-W07 digest; what it fetched."""
    from publisher.delivery.smtp import SmtpTransport
    from publisher.newsletter.run import open_run, send
    from publisher.weeks import parse_week

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    monkeypatch.setenv("PUBLISHER_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    port = free_port()
    s = smtp_settings(tmp_path, smtp.port, base_url=f"http://127.0.0.1:{port}/")
    build(s, [SEEDS], Path("site"))
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("reader@example.net", now=datetime.now(UTC))
    run = open_run(s, parse_week("2019-W07", s.site.tzinfo), real_delivery=True)
    send(run, SmtpTransport(s.smtp), lambda: datetime.now(UTC))
    (msg,) = smtp.recorder.messages
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return CERT if url == CERT_URL else b"confirmed"

    server = LiveServer(create_app(s, fetch=fetch))
    server.port = port
    server.server.config.port = port
    with server:
        yield server, store, str(msg["Message-ID"]), fetched
    assert Ledger(open_engine(s.state.url)).by_message_id(str(msg["Message-ID"])) is not None


def _ses(kind: str, message_id: str, **event: object) -> str:
    body = {"notificationType": kind, "mail": {"messageId": "0100abc", "source": "digest@x",
            "commonHeaders": {"messageId": message_id}}, **event}  # fmt: skip
    return json.dumps(body)


def test_an_ses_bounce_signed_by_sns_bounces_its_subscriber(served) -> None:  # type: ignore[no-untyped-def]
    server, store, mid, fetched = served
    bounce = {"bounceType": "Permanent", "bounceSubType": "General",
              "bouncedRecipients": [{"emailAddress": "reader@example.net"}]}  # fmt: skip
    message = sns("Notification", {"Message": _ses("Bounce", mid, bounce=bounce)})
    r = httpx.post(server.url + "webhooks/ses", content=json.dumps(message))
    assert r.status_code == 200 and fetched == [CERT_URL]
    assert store.by_email("reader@example.net").status is Status.BOUNCED


def test_an_ses_complaint_with_signature_version_2(served) -> None:  # type: ignore[no-untyped-def]
    server, store, mid, _ = served
    complaint = {"complaintFeedbackType": "abuse"}
    message = sns("Notification", {"Message": _ses("Complaint", mid, complaint=complaint)}, "2")
    assert httpx.post(server.url + "webhooks/ses", content=json.dumps(message)).status_code == 200
    assert store.by_email("reader@example.net").status is Status.COMPLAINED


def test_forged_or_unsigned_sns_messages_change_nothing(served) -> None:  # type: ignore[no-untyped-def]
    server, store, mid, fetched = served
    bounce = {"bounceType": "Permanent"}
    good = sns("Notification", {"Message": _ses("Bounce", mid, bounce=bounce)})
    tampered = good | {"Message": _ses("Complaint", mid, complaint={})}
    elsewhere = good | {"SigningCertURL": "https://sns.evil.example/cert.pem"}
    plain = good | {"SigningCertURL": CERT_URL.replace("https", "http")}
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    for forged in (tampered, elsewhere, plain, unsigned):
        r = httpx.post(server.url + "webhooks/ses", content=json.dumps(forged))
        assert r.status_code == 403, forged
    assert "https://sns.evil.example/cert.pem" not in fetched
    assert store.by_email("reader@example.net").status is Status.ACTIVE


def test_an_sns_subscription_is_confirmed(served) -> None:  # type: ignore[no-untyped-def]
    server, _, _, fetched = served
    url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    message = sns("SubscriptionConfirmation", {"Message": "You have chosen to subscribe",
                                               "SubscribeURL": url, "Token": "abc"})  # fmt: skip
    r = httpx.post(server.url + "webhooks/ses", content=json.dumps(message))
    assert r.status_code == 200 and fetched[-1] == url


def _mailgun(event: dict[str, object], key: str = MAILGUN_KEY, age: int = 0) -> str:
    timestamp, token = str(int(time.time()) - age), "f0e1d2c3b4a5968778695a4b3c2d1e0f" * 2
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token,
                                     "signature": signature}, "event-data": event})  # fmt: skip


def test_a_mailgun_complaint_signed_with_the_key_unsubscribes(served) -> None:  # type: ignore[no-untyped-def]
    server, store, mid, _ = served
    event = {"event": "complained", "id": "-Agny091SquKnsrW2NEKUA",
             "message": {"headers": {"message-id": mid.strip("<>")}}}  # fmt: skip
    for forged in (_mailgun(event, key="key-not-ours"), _mailgun(event, age=3600)):
        assert httpx.post(server.url + "webhooks/mailgun", content=forged).status_code == 403
    assert store.by_email("reader@example.net").status is Status.ACTIVE
    r = httpx.post(server.url + "webhooks/mailgun", content=_mailgun(event))
    assert r.status_code == 200
    assert store.by_email("reader@example.net").status is Status.COMPLAINED
