"""Returns reported by mail providers over HTTP: Amazon SES (through SNS) and Mailgun.

Nothing unsigned is believed. An SNS message is checked against the signing
certificate it names, which must be served from an ``sns.<region>.amazonaws.com``
host over https (RFC 5280 parsing and RSA by ``cryptography``); a Mailgun event
against ``PUBLISHER_MAILGUN_SIGNING_KEY`` (HMAC-SHA256 of its timestamp and
token, no older than ``MAX_AGE``). A request that fails either gets 403 and
changes nothing. Each event is recorded once (by its provider's id) and acted
on as a return that came back by mail (``newsletter.feedback``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from publisher.newsletter.feedback import Feedback
from publisher.newsletter.returns import Return, ReturnKind, read_verp
from publisher.store.ledger import Ledger

log = logging.getLogger(__name__)

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
#: A Mailgun event older than this is refused (a replayed request).
MAX_AGE = 15 * 60
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - https, checked
        data: bytes = response.read()
    return data


def aws_url(url: str) -> bool:
    """An https URL on an SNS host: where a signing certificate (or a subscription
    confirmation) may come from."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))


def sns_verified(message: dict[str, Any], certificate: bytes) -> bool:
    """Whether ``message`` is signed by the key of ``certificate`` (SignatureVersion
    1: SHA1, 2: SHA256, over the fields AWS documents, in their order)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    fields = _SIGNED.get(str(message.get("Type")))
    if fields is None:
        return False
    text = "".join(f"{k}\n{message[k]}\n" for k in fields if k in message)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        return False
    try:
        key = x509.load_pem_x509_certificate(certificate).public_key()
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        key.verify(signature, text.encode(), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


class Webhooks:
    def __init__(
        self,
        feedback: Feedback,
        ledger: Ledger,
        secret: str,
        run: Callable[..., Any],
        fetch: Callable[[str], bytes] = fetch_url,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``run(fn, *args)`` runs database work off the event loop."""
        self.feedback, self.ledger, self.secret = feedback, ledger, secret
        self.run, self.fetch, self.clock = run, fetch, clock
        self._certificates: dict[str, bytes] = {}

    def _delivery(self, message_id: str, sender: str) -> tuple[int, int] | None:
        return read_verp(sender, self.secret) or (
            self.ledger.by_message_id(message_id) if message_id else None
        )

    def _act(self, ret: Return) -> None:
        from datetime import UTC, datetime

        self.feedback.act(ret, datetime.now(UTC))

    # -- Amazon SES, through SNS ------------------------------------------------
    async def ses(self, request: Request) -> Response:
        try:
            message = json.loads(await request.body())
            url = str(message["SigningCertURL"])
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("not an SNS message", 400)
        if not aws_url(url) or not url.endswith(".pem"):
            return PlainTextResponse("signing certificate not on an SNS host", 403)
        if url not in self._certificates:
            self._certificates[url] = await self.run(self.fetch, url)
        if not sns_verified(message, self._certificates[url]):
            log.warning("SNS message with a bad signature refused")
            return PlainTextResponse("bad signature", 403)
        if message["Type"] == "SubscriptionConfirmation":
            subscribe = str(message.get("SubscribeURL", ""))
            if not aws_url(subscribe):
                return PlainTextResponse("subscribe URL not on an SNS host", 403)
            await self.run(self.fetch, subscribe)
            log.info("SNS subscription to %s confirmed", message.get("TopicArn"))
            return PlainTextResponse("confirmed")
        ret = self._ses_return(message)
        if ret is not None:
            await self.run(self._act, ret)
        return PlainTextResponse("ok")

    def _ses_return(self, message: dict[str, Any]) -> Return | None:
        try:
            event = json.loads(message["Message"])
        except (ValueError, TypeError):
            return None
        kind = str(event.get("notificationType") or event.get("eventType") or "")
        mail = event.get("mail") or {}
        mid = str((mail.get("commonHeaders") or {}).get("messageId") or "")
        if not mid:
            mid = next(
                (
                    h.get("value", "")
                    for h in mail.get("headers", [])
                    if h.get("name") == "Message-ID"
                ),
                "",
            )
        found = self._delivery(mid, str(mail.get("source", "")))
        key = f"sns:{message['MessageId']}"
        if kind == "Bounce":
            bounce = event.get("bounce") or {}
            hard = bounce.get("bounceType") == "Permanent"
            what = ReturnKind.HARD_BOUNCE if hard else ReturnKind.SOFT_BOUNCE
            detail = f"SES {bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        elif kind == "Complaint":
            what = ReturnKind.COMPLAINT
            detail = (
                f"SES complaint {(event.get('complaint') or {}).get('complaintFeedbackType', '')}"
            )
        else:
            return None
        if found is None:
            return Return(ReturnKind.UNRECOGNISED, key, detail=f"{detail}: no delivery of ours")
        return Return(what, key, found[1], found[0], detail.strip())

    # -- Mailgun -------------------------------------------------------------
    async def mailgun(self, request: Request) -> Response:
        key = os.environ.get("PUBLISHER_MAILGUN_SIGNING_KEY", "")
        if not key:
            return PlainTextResponse("Mailgun webhooks are off", 404)
        try:
            payload = json.loads(await request.body())
            sig = payload["signature"]
            timestamp, token, given = (
                str(sig["timestamp"]),
                str(sig["token"]),
                str(sig["signature"]),
            )
            event = payload["event-data"]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("not a Mailgun event", 400)
        expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        fresh = timestamp.isdigit() and abs(self.clock() - int(timestamp)) <= MAX_AGE
        if not hmac.compare_digest(expected, given) or not fresh:
            log.warning("Mailgun event with a bad or stale signature refused")
            return PlainTextResponse("bad signature", 403)
        ret = self._mailgun_return(event)
        if ret is not None:
            await self.run(self._act, ret)
        return PlainTextResponse("ok")

    def _mailgun_return(self, event: dict[str, Any]) -> Return | None:
        name = str(event.get("event", ""))
        headers = (event.get("message") or {}).get("headers") or {}
        envelope = event.get("envelope") or {}
        found = self._delivery(str(headers.get("message-id", "")), str(envelope.get("sender", "")))
        key = f"mailgun:{event.get('id', '')}"
        reason = str((event.get("delivery-status") or {}).get("description", "") or "")
        if name == "failed":
            permanent = event.get("severity") == "permanent"
            what = ReturnKind.HARD_BOUNCE if permanent else ReturnKind.SOFT_BOUNCE
        elif name == "complained":
            what = ReturnKind.COMPLAINT
        elif name == "unsubscribed":
            what = ReturnKind.UNSUBSCRIBE
        else:
            return None
        if found is None:
            return Return(ReturnKind.UNRECOGNISED, key, detail=f"Mailgun {name}: not ours")
        return Return(what, key, found[1], found[0], f"Mailgun {name} {reason}".strip())
