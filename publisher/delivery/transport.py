"""What every transport shares: the message it is handed, how it fails, its Protocol.

A message reaches a transport already laid out (``Mail.wire``): the
transport chooses only between its 8bit and 7-bit forms, by what the
receiving end accepts.
"""

from __future__ import annotations

import email.policy
import io
from collections.abc import Callable
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from typing import Protocol

#: RFC 5322 2.1.1: at most 998 octets a line, CRLF excluded.
MAX_LINE = 998
#: Headers fold only past MAX_LINE: folding at 78 would split a long
#: List-Unsubscribe URL, which mail providers then cannot use.
WIRE = email.policy.compat32.clone(max_line_length=MAX_LINE, linesep="\r\n")
WIRE_UTF8 = email.policy.SMTPUTF8.clone(max_line_length=MAX_LINE, linesep="\r\n")


class Mail(Protocol):
    """A message ready for a transport, in the form the receiving end accepts."""

    def wire(self, eight_bit: bool) -> bytes:
        """CRLF wire form; 8bit parts only when ``eight_bit`` (the server offers 8BITMIME)."""
        ...


@dataclass(frozen=True)
class MessageMail:
    """A ``Message`` built with the ``email`` package: always 7-bit, quoted-printable."""

    msg: Message

    def wire(self, eight_bit: bool) -> bytes:
        # a header that is not ASCII (an address only SMTPUTF8 carries: the others
        # are RFC 2047-encoded) goes as UTF-8 (RFC 6532), where 8bit may go
        utf8 = eight_bit and not all(str(v).isascii() for v in self.msg.values())
        return as_bytes(self.msg, utf8)


def as_bytes(msg: Message, utf8: bool = False) -> bytes:
    """The wire form, CRLF line endings, headers unfolded up to 998 columns; with
    ``utf8``, headers that are not ASCII as they are (RFC 6532)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=WIRE_UTF8 if utf8 else WIRE, mangle_from_=False).flatten(msg)
    return out.getvalue()


class TransientError(Exception):
    """Try again later: 4xx reply, dropped connection, timeout."""


class PermanentError(Exception):
    """Do not try again: a 5xx reply to this message or its recipient."""


class Unreachable(TransientError):
    """No connection to the server (refused, timed out, TLS failed): no message can go."""


class ServerBusy(TransientError):
    """A 421: the server is closing the connection (overloaded, throttling us, going
    down). Tried again like any 4xx; one that persists through a message's every
    attempt stops the run, as an unreachable server does."""


class Undeliverable(Exception):
    """This message cannot go to this address at all, by no fault of the server or
    the recipient (an address this sender cannot write): its row fails with the
    reason, and the others go on. Never counted as a bounce."""


class ServerError(Exception):
    """The server refuses the login or the sender: no message can go until the
    settings are fixed, and it is no recipient's fault (never counted as a bounce)."""


def nothing() -> None:
    pass


class Transport(Protocol):
    def send(
        self,
        mail: Mail,
        sender: str,
        recipient: str,
        handing_over: Callable[[], None] = nothing,
        envid: str = "",
    ) -> None:
        """Deliver one message. ``handing_over`` is called once per call, before any
        part of the message could be accepted (the ledger marks the row ``sending``
        there), also when the attempt fails earlier. ``envid``: ask the server for
        DSNs carrying it (RFC 3461), where it offers them."""
        ...

    def close(self) -> None: ...

    def another(self) -> Transport:
        """A sibling for another connection of the same send (``self`` if it has no
        connection of its own, such as the outbox)."""
        ...
