"""MIME: one digest message, built with the standard library's ``email`` package.

Headers are built from typed objects (``Address``), never by string
concatenation, and every value is stripped of line breaks first, so no
subscriber name or post title can inject a header.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from publisher.errors import PublisherError

#: RFC 5322 allows 998-character header lines. Python's default of 78 folds a
#: long List-Unsubscribe into RFC 2047 encoded words, which providers cannot use.
POLICY = email.policy.default.clone(max_line_length=998)
#: Quoted-printable lines at most 76 characters (RFC 2045); Python's default is 78.
BODY_POLICY = email.policy.default.clone(max_line_length=76)
_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str) -> str:
    return " ".join(_BREAKS.sub(" ", text).split())


def parse_sender(text: str) -> Address:
    name, addr = parseaddr(one_line(text))
    if "@" not in addr:
        raise PublisherError(
            f"[digest] from {text!r} is not an address", 'e.g. from = "Blog <digest@example.org>"'
        )
    user, domain = addr.rsplit("@", 1)
    return Address(display_name=name, username=user, domain=domain)


def message_id(week_label: str, subscriber_id: int, domain: str) -> str:
    """Deterministic: a resend of the same digest to the same person has the same id,
    so mail clients that saw the first copy hide the second."""
    h = hashlib.sha256(f"{week_label}:{subscriber_id}".encode()).hexdigest()[:20]
    return f"<digest.{week_label}.{h}@{domain}>"


def build_message(
    *,
    sender: Address,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    msg_id: str,
    date: datetime,
    list_id: str,
    unsubscribe_https: str,
    unsubscribe_mailto: str,
) -> EmailMessage:
    user, domain = to_email.rsplit("@", 1)
    msg = EmailMessage(policy=BODY_POLICY)
    msg["From"] = sender
    msg["To"] = Address(display_name=one_line(to_name), username=user, domain=domain)
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["List-Id"] = one_line(list_id)
    # RFC 2369 + RFC 8058: one-click unsubscribe by POST to the https URL
    msg["List-Unsubscribe"] = f"<{unsubscribe_https}>, <{unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "list"
    # quoted-printable: safe through servers without 8BITMIME, still readable raw
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # bodies were encoded above with 76-character lines (RFC 2045); only the
    # top-level headers are serialized with the long-line policy
    msg.policy = POLICY
    return msg


def mailto_unsubscribe(sender: Address, token: str) -> str:
    return f"mailto:{sender.addr_spec}?subject={quote('unsubscribe ' + token)}"
