"""HMAC-signed tokens for unsubscribe, preferences and confirmation links.

A link carries ``base64url(payload).base64url(HMAC-SHA256(secret, payload))``;
the payload names the purpose, the subscriber id and an optional expiry, never
the address. The secret comes from the environment (``PUBLISHER_SECRET``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from enum import StrEnum

from publisher.errors import PublisherError

log = logging.getLogger(__name__)

#: Used only when no secret is set and mail goes to the local outbox for review.
DEV_SECRET = "publisher-development-secret-not-for-real-mail"


class TokenError(PublisherError):
    """A token that is malformed, tampered with, expired or for another purpose."""


class Purpose(StrEnum):
    """What a token may be used for; a token for one is refused for any other."""

    FORM = "form"  # a CSRF token: signed, expiring, for no subscriber
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    #: ``rejoin <row updated>``: a rejoin link names the row as it was when sent
    #: (see ``newsletter.lifecycle``), so its purpose is this prefix and a stamp.
    REJOIN = "rejoin"


@dataclass(frozen=True)
class Token:
    purpose: str  # a Purpose, or "rejoin <row updated>"
    subscriber: int
    expires: int = 0  # POSIX seconds; 0 = never


def secret_from_env(allow_dev: bool) -> str:
    secret = os.environ.get("PUBLISHER_SECRET", "")
    if secret:
        if len(secret) < 16:
            raise PublisherError(
                "PUBLISHER_SECRET is too short to sign links safely",
                "use at least 32 random characters, e.g. `python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`",
            )
        return secret
    if allow_dev:
        log.warning(
            "warning: PUBLISHER_SECRET is not set; links are signed with a development "
            "secret (fine for the outbox, refused for real delivery)"
        )
        return DEV_SECRET
    raise PublisherError(
        "PUBLISHER_SECRET is not set: links (unsubscribe, preferences, confirmation) "
        "cannot be signed safely",
        "export PUBLISHER_SECRET=<32+ random characters> (keep it out of the repo); "
        "to try `publisher serve` on your own machine, `publisher serve --dev`",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(token: Token, secret: str) -> str:
    payload = json.dumps([token.purpose, token.subscriber, token.expires], separators=(",", ":"))
    raw = payload.encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    return f"{_b64(raw)}.{_b64(mac)}"


def unverified_purpose(text: str) -> str:
    """The purpose a token claims, not yet verified: only to choose what to
    ``verify`` it against (which checks the signature over the purpose too)."""
    try:
        kind = json.loads(_unb64(text.split(".")[0]))[0]
    except (ValueError, TypeError, IndexError, KeyError):
        return ""
    return kind if isinstance(kind, str) else ""


def verify(text: str, secret: str, purpose: str, now: int) -> Token:
    """The token's contents, or :class:`TokenError` if it is not genuine and current."""
    try:
        payload_b64, mac_b64 = text.split(".")
        raw, mac = _unb64(payload_b64), _unb64(mac_b64)
    except (ValueError, TypeError):
        raise TokenError("malformed link token", "use the link from your latest email") from None
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TokenError("link token does not verify", "use the link from your latest email")
    try:
        kind, subscriber, expires = _fields(json.loads(raw))
    except ValueError:
        raise TokenError("malformed link token", "use the link from your latest email") from None
    if kind != purpose:
        raise TokenError(f"this link is for {kind}, not {purpose}", "use the matching link")
    if expires and now > expires:
        raise TokenError("this link has expired", "ask for a new one")
    return Token(kind, subscriber, expires)


def _fields(payload: object) -> tuple[str, int, int]:
    """A signed payload's fields, checked: a genuine signature over a payload this
    program did not make (another version's, say) is still only a bad link."""
    if not isinstance(payload, list) or len(payload) != 3:
        raise ValueError("not [purpose, subscriber, expires]")
    kind, subscriber, expires = payload
    if not isinstance(kind, str) or type(subscriber) is not int or type(expires) is not int:
        raise ValueError("not [purpose, subscriber, expires]")
    return kind, subscriber, expires
