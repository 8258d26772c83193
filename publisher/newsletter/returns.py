"""What comes back by mail, read: bounces (DSNs and the rest), complaints, unsubscribe mails.

Each digest goes out from its own VERP address (``bounces+d12s345-<mac>@…``,
``verp_sender``): whatever comes back to it names the delivery (digest and
subscriber) even when the bounce's text is mangled, and the HMAC in it means a
forged bounce cannot touch anyone. A return is classified without touching
the database (``classify``); what to do about it is the lifecycle's.

- DSNs (RFC 3464, ``multipart/report; report-type=delivery-status``): ``failed``
  with a 5.x.x status is a hard bounce, with 4.x.x a soft one; ``delayed`` is
  recorded and nothing more. Bounces in other shapes (Exim's, qmail's, …) are
  read with GNU Mailman's detectors (``flufl.bounce``).
- Complaints (RFC 5965 ARF, ``report-type=feedback-report``): the original
  message's signed unsubscribe link (or VERP sender) names the subscriber.
- Unsubscribe mails: the ``mailto:`` of ``List-Unsubscribe`` puts the signed
  token in the subject.
- Anything else is unrecognised, and left where it is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from publisher.newsletter.tokens import Purpose, TokenError, verify


class ReturnKind(StrEnum):
    HARD_BOUNCE = "hard-bounce"
    SOFT_BOUNCE = "soft-bounce"
    DELAYED = "delayed"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class Return:
    kind: ReturnKind
    message_id: str
    subscriber_id: int | None = None
    digest_id: int | None = None
    detail: str = ""


_VERP = re.compile(r"\+(d(\d{1,12})s(\d{1,12})-([0-9a-f]{16}))@", re.I)
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$", re.I)
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


def _mac(tag: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"verp {tag}".encode(), hashlib.sha256).hexdigest()[:16]


def verp_tag(digest_id: int, subscriber_id: int, secret: str) -> str:
    """The part after ``+``: the delivery, and a MAC over it. Lowercase hex and
    digits only, so a server that folds the local part's case keeps it."""
    tag = f"d{digest_id}s{subscriber_id}"
    return f"{tag}-{_mac(tag, secret)}"


def verp_sender(bounce_address: str, digest_id: int, subscriber_id: int, secret: str) -> str:
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{verp_tag(digest_id, subscriber_id, secret)}@{domain}"


def read_verp(text: str, secret: str) -> tuple[int, int] | None:
    """(digest id, subscriber id) from a VERP address or tag in ``text`` whose MAC
    verifies; ``None`` for none, or a forged one."""
    for m in _VERP.finditer(text):
        tag = f"d{int(m.group(2))}s{int(m.group(3))}"
        if hmac.compare_digest(_mac(tag, secret), m.group(4).lower()):
            return int(m.group(2)), int(m.group(3))
    return None


def message_key(msg: Message, raw: bytes) -> str:
    """The Message-ID a return is recorded by (a hash of its bytes if it has none)."""
    mid = str(msg.get("Message-ID", "")).strip()
    return mid or "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(msg: Message, raw: bytes, secret: str) -> Return:
    key = message_key(msg, raw)
    subject = str(msg.get("Subject", ""))
    if m := _UNSUBSCRIBE_SUBJECT.match(subject):
        try:
            token = verify(m.group(1), secret, Purpose.UNSUBSCRIBE, 0)
        except TokenError:
            return Return(ReturnKind.UNRECOGNISED, key, detail="unsubscribe mail, bad token")
        return Return(ReturnKind.UNSUBSCRIBE, key, token.subscriber, detail="mailto unsubscribe")
    if msg.get_content_type() == "multipart/report":
        report = msg.get_param("report-type", "")
        if isinstance(report, str) and report.lower() == "feedback-report":
            return _complaint(msg, key, secret)
    return _bounce(msg, key, secret)


def _parts(msg: Message, content_type: str) -> list[Message]:
    return [p for p in msg.walk() if p.get_content_type() == content_type]


def _original_headers(msg: Message) -> str:
    """The returned original's headers, as text (message/rfc822 or text/rfc822-headers)."""
    out = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            for inner in part.get_payload() or []:
                if isinstance(inner, Message):
                    out.append("".join(f"{k}: {v}\n" for k, v in inner.items()))
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                out.append(payload.decode("utf-8", "replace"))
    return "\n".join(out)


def _complaint(msg: Message, key: str, secret: str) -> Return:
    """An ARF report: the subscriber from the original's signed unsubscribe link, or
    from its VERP sender."""
    original = _original_headers(msg)
    feedback = _parts(msg, "message/feedback-report")
    kind = "abuse"
    for part in feedback:
        text = _status_text(part)
        if m := re.search(r"^Feedback-Type:\s*(\S+)", text, re.I | re.M):
            kind = m.group(1).lower()
    for token in _TOKEN.findall(original):
        try:
            found = verify(token, secret, Purpose.UNSUBSCRIBE, 0)
        except TokenError:
            continue
        digest = read_verp(original, secret)
        return Return(
            ReturnKind.COMPLAINT,
            key,
            found.subscriber,
            digest[0] if digest else None,
            detail=f"feedback-type {kind}",
        )
    if (verp := read_verp(original, secret)) is not None:
        return Return(ReturnKind.COMPLAINT, key, verp[1], verp[0], f"feedback-type {kind}")
    return Return(ReturnKind.UNRECOGNISED, key, detail="complaint naming no delivery of ours")


def _envelope_text(msg: Message) -> str:
    """Where a bounce was sent (the VERP address), as far as its headers say."""
    names = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path")
    parts = [str(v) for name in names for v in msg.get_all(name, [])]
    for report in _parts(msg, "message/delivery-status"):
        text = _status_text(report)
        if m := re.search(r"^Original-Envelope-Id:\s*(\S+)", text, re.I | re.M):
            parts.append(f"+{m.group(1)}@")
    return "\n".join(parts)


def _status_text(part: Message) -> str:
    """A message/delivery-status part's fields as text (the email package parses
    its field groups into sub-messages)."""
    body = part.get_payload()
    if isinstance(body, list):
        return "\n\n".join(b.as_string() if isinstance(b, Message) else str(b) for b in body)
    return str(body)


def _bounce(msg: Message, key: str, secret: str) -> Return:
    verp = read_verp(_envelope_text(msg), secret)
    kind, detail = _dsn(msg)
    if kind is None:
        kind, detail = _detected(msg)
    if kind is None:
        return Return(ReturnKind.UNRECOGNISED, key, detail="not a bounce, complaint or unsubscribe")
    if verp is None:
        return Return(ReturnKind.UNRECOGNISED, key, detail=f"{kind}: no valid VERP address")
    return Return(kind, key, verp[1], verp[0], detail)


def _dsn(msg: Message) -> tuple[ReturnKind | None, str]:
    """An RFC 3464 report's verdict: failed (5.x.x hard, 4.x.x soft) or delayed."""
    reports = _parts(msg, "message/delivery-status")
    if not reports:
        return None, ""
    text = "\n".join(_status_text(r) for r in reports)
    actions = [a.lower() for a in re.findall(r"^Action:\s*(\S+)", text, re.I | re.M)]
    status = _STATUS.search("\n".join(re.findall(r"^Status:\s*(.+)$", text, re.I | re.M)))
    code = status.group(0) if status else ""
    diagnostic = re.search(r"^Diagnostic-Code:\s*(.+)$", text, re.I | re.M)
    detail = " ".join(x for x in (code, diagnostic.group(1).strip() if diagnostic else "") if x)
    if "failed" in actions:
        if code.startswith("4"):
            return ReturnKind.SOFT_BOUNCE, detail
        return ReturnKind.HARD_BOUNCE, detail
    if "delayed" in actions:
        return ReturnKind.DELAYED, detail
    return None, ""


def _detected(msg: Message) -> tuple[ReturnKind | None, str]:
    """A bounce in another shape, by GNU Mailman's detectors."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    if permanent:
        return ReturnKind.HARD_BOUNCE, "permanent failure (" + _addresses(permanent) + ")"
    if temporary:
        return ReturnKind.SOFT_BOUNCE, "temporary failure (" + _addresses(temporary) + ")"
    return None, ""


def _addresses(found: Iterable[bytes | str]) -> str:
    return ", ".join(sorted(a.decode() if isinstance(a, bytes) else a for a in found))
