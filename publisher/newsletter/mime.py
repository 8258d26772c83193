"""MIME: one digest message, built with the standard library's ``email`` package.

Headers are built from typed objects (``Address``), never by string
concatenation, and every value is stripped of line breaks first, so no
subscriber name or post title can inject a header.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from publisher.delivery.transport import MAX_LINE
from publisher.errors import PublisherError

_BREAKS = re.compile(r"[\r\n\x00-\x1f\x7f\u2028\u2029]+")


def needs_smtputf8(email: str) -> bool:
    """An address whose local part is not ASCII: only SMTPUTF8 (RFC 6531) carries it
    (its domain, IDNA carries), to a server that offers it."""
    return not email.rpartition("@")[0].isascii()


def recipient(name: str, address: str) -> str:
    """The To header: the name RFC 2047-encoded as needed, and an address whose local
    part is not ASCII as it is (RFC 6532: it travels only with SMTPUTF8, in 8bit)."""
    if address.isascii():
        return formataddr((name, address), charset="utf-8")
    if not name:
        return address
    placeholder = "a@b"
    shown = formataddr((name, placeholder), charset="utf-8")
    return shown.removesuffix(f"<{placeholder}>") + f"<{address}>"


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


def digest_headers(
    *,
    sender: Address,
    to_email: str,
    to_name: str,
    subject: str,
    msg_id: str,
    date: datetime,
    list_id: str,
    unsubscribe_https: str,
    unsubscribe_mailto: str,
    feedback_id: str = "",
) -> list[tuple[str, str]]:
    """A digest's own headers, each value one line (``one_line``), non-ASCII RFC 2047-encoded.

    Shared by the MIME-object path and the pre-serialized 8bit path, so both
    carry the same headers and the same protection against injection.
    """
    return [
        ("From", formataddr((sender.display_name, sender.addr_spec), charset="utf-8")),
        ("To", recipient(_display(one_line(to_name)), one_line(to_email))),
        ("Subject", _encode(one_line(subject))),
        ("Date", format_datetime(date)),
        ("Message-ID", one_line(msg_id)),
        ("List-Id", _encode(one_line(list_id))),
        # RFC 2369 + RFC 8058: one-click unsubscribe by POST to the https URL
        (
            "List-Unsubscribe",
            f"<{one_line(unsubscribe_https)}>, <{one_line(unsubscribe_mailto)}>",
        ),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Auto-Submitted", "auto-generated"),
        ("Precedence", "list"),
        # Gmail's feedback loop: complaint rates per campaign (a:b:c:SenderId)
        *([("Feedback-ID", one_line(feedback_id))] if feedback_id else []),
    ]


def build_message(headers: list[tuple[str, str]], text: str, html: str) -> Message:
    """A multipart/alternative message (text, then HTML), UTF-8, quoted-printable.

    The 7-bit form, for servers without 8BITMIME and for previews. Built with
    the ``email`` package's MIME classes and its compat32 policy, which store
    header strings as given (see ``digest_headers``). (The modern API re-parses
    every header, which was the bulk of a large send.)
    """
    msg = MIMEMultipart("alternative")
    for name, value in headers:
        msg[name] = value
    msg.attach(_qp_part(text, "plain"))
    msg.attach(_qp_part(html, "html"))
    return msg


def _display(name: str) -> str:
    """A display name as its reader must see it: one that looks like an RFC 2047
    encoded word (``=?utf-8?…?=``, typed into a form) is encoded itself, so a mail
    client shows it as typed instead of decoding it into something else."""
    return Header(name, "utf-8").encode(maxlinelen=998) if "=?" in name else name


def _encode(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=998)


def _qp_part(body: str, subtype: str) -> MIMENonMultipart:
    """Quoted-printable with 76-column lines (RFC 2045), by the C encoder in binascii."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    del part["MIME-Version"]  # belongs on the message, not on each part
    part["Content-Transfer-Encoding"] = "quoted-printable"
    data = body.replace("\r\n", "\n").encode("utf-8")
    part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    return part


@dataclass(frozen=True)
class EightBitBody:
    """A digest body laid out once for 8bit transfer (RFC 6152), personal marks still in.

    Why: a 10,000-recipient send was bound by building and quoted-printable
    encoding each message, and by the receiving server's per-line work. Laid out
    once per distinct content, a message costs two replaces and an encode, and
    lines may run to 998 octets instead of 76. ``parts`` holds (subtype, the
    rendered text, its CRLF 8bit layout); a layout of None means the part has a
    line no safe break can shorten (plain text), so it goes quoted-printable,
    encoded per message from the rendered text.
    """

    boundary: str
    parts: tuple[tuple[str, str, str | None], ...]  # (subtype, original, 8bit layout or None)


def prepare_8bit(text: str, html: str, growth: Mapping[str, int]) -> EightBitBody:
    """Lay out both parts; ``growth`` is how much longer each mark can get when filled.

    In HTML a line break and a space render the same (our templates have no
    ``<pre>``), so its lines are refilled; plain text is never re-broken, as a
    break there shows.
    """
    parts = (
        ("plain", text, _fit(text, growth, breakable=False)),
        ("html", html, _fit(html, growth, breakable=True)),
    )
    seed = hashlib.blake2b((text + "\0" + html).encode("utf-8"), digest_size=12).hexdigest()
    boundary, n = f"=_{seed}", 0
    while any(boundary in original for _, original, _ in parts):
        n += 1
        boundary = f"=_{seed}.{n}"
    return EightBitBody(boundary, parts)


def _fit(body: str, growth: Mapping[str, int], *, breakable: bool) -> str | None:
    """CRLF lines that stay within 998 octets once the marks are filled, or None.

    HTML (``breakable``) is refilled: its line breaks become spaces and lines
    are cut at spaces near 998 octets, so a receiving server handles ~40 lines
    a message instead of hundreds.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not breakable:
        fits = all(_octets(line, growth) <= MAX_LINE for line in text.split("\n"))
        return text.replace("\n", "\r\n") if fits else None
    lines: list[str] = []
    line = text.replace("\n", " ")
    while _octets(line, growth) > MAX_LINE:
        limit = MAX_LINE
        while True:
            # a character prefix of at most ``limit`` octets, cut at its last space
            cut = line[:limit].encode("utf-8")[:limit].decode("utf-8", "ignore").rfind(" ")
            if cut <= 0:
                return None  # a word longer than a line: let quoted-printable carry it
            over = _octets(line[:cut], growth) - MAX_LINE
            if over <= 0:
                break
            limit -= over
        lines.append(line[:cut])
        line = line[cut + 1 :]
    lines.append(line)
    return "\r\n".join(lines)


def _octets(line: str, growth: Mapping[str, int]) -> int:
    """The line's length in octets once every mark in it is filled at its longest."""
    return len(line.encode("utf-8")) + sum(g * line.count(m) for m, g in growth.items())


def wire_8bit(headers: list[tuple[str, str]], body: EightBitBody, fill: Mapping[str, str]) -> bytes:
    """One personal message from a laid-out body: headers, marks filled, 8bit or QP parts."""

    def filled(s: str) -> str:
        for mark, value in fill.items():
            s = s.replace(mark, value)
        return s

    out = [f"{name}: {value}\r\n".replace("\n ", "\r\n ") for name, value in headers]
    b = body.boundary
    out.append(f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{b}"\r\n')
    for subtype, original, laid_out in body.parts:
        if laid_out is None:
            data = filled(original).replace("\r\n", "\n").encode("utf-8")
            content = binascii.b2a_qp(data, istext=True).decode("ascii").replace("\n", "\r\n")
            cte = "quoted-printable"
        else:
            content, cte = filled(laid_out), "8bit"
        out.append(
            f'\r\n--{b}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n{content}"
        )
    out.append(f"\r\n--{b}--\r\n")
    return "".join(out).encode("utf-8")


def mailto_unsubscribe(sender: Address, token: str) -> str:
    return f"mailto:{sender.addr_spec}?subject={quote('unsubscribe ' + token)}"


def build_plain(
    *,
    sender: Address,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    msg_id: str,
    date: datetime,
) -> Message:
    """A one-part text message (the sign-up confirmation)."""
    msg = _qp_part(text, "plain")
    msg["MIME-Version"] = "1.0"
    msg["From"] = formataddr((sender.display_name, sender.addr_spec), charset="utf-8")
    msg["To"] = recipient(one_line(to_name), one_line(to_email))
    msg["Subject"] = _encode(one_line(subject))
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = one_line(msg_id)
    msg["Auto-Submitted"] = "auto-generated"
    return msg
