"""Reading the mailbox returns arrive in: a Maildir, IMAP over TLS, or POP3 over TLS.

Each source lists its messages as (key, bytes) and can mark one processed:
Maildir moves it into the ``.Processed`` folder beside the inbox, IMAP flags it
``\\Seen`` and ``$Publisher-Processed`` (and lists only messages without that
keyword), POP3 (which has no flags) leaves it, to be recognised by its
Message-ID next time. Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import poplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from publisher.errors import PublisherError
from publisher.settings import MailboxSettings

PROCESSED = "$Publisher-Processed"


class Source(Protocol):
    def messages(self) -> Iterator[tuple[str, bytes]]: ...
    def processed(self, key: str) -> None: ...
    def close(self) -> None: ...


class MaildirSource:
    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise PublisherError(
                f"{path} is not a Maildir (no cur/ or new/ in it)",
                "give --maildir the folder that holds cur/, new/ and tmp/",
            )
        self.box = mailbox.Maildir(path, create=False)
        self.done = self.box.add_folder("Processed")

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.iterkeys()):
            yield key, self.box.get_bytes(key)

    def processed(self, key: str) -> None:
        msg = self.box.get_message(key)
        msg.add_flag("S")
        self.done.add(msg)
        self.box.discard(key)  # moved: a copy now stands in .Processed

    def close(self) -> None:
        self.box.close()


def _context(cfg: MailboxSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cfg.ca_file or None)


class ImapSource:
    def __init__(self, cfg: MailboxSettings) -> None:
        url = urlsplit(cfg.url)
        self.folder = unquote(url.path.strip("/")) or "INBOX"
        try:
            self.conn = imaplib.IMAP4_SSL(
                url.hostname or "", url.port or 993, ssl_context=_context(cfg)
            )
            self.conn.login(unquote(url.username or ""), cfg.password)
            status, _ = self.conn.select(self.folder)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise PublisherError(
                f"mailbox {url.hostname}: {exc}",
                "check [mailbox] url and PUBLISHER_MAILBOX_PASSWORD (and ca_file for a private CA)",
            ) from None
        if status != "OK":
            raise PublisherError(f"mailbox: no folder {self.folder!r}", "check [mailbox] url")

    def messages(self) -> Iterator[tuple[str, bytes]]:
        _, found = self.conn.uid("SEARCH", "NOT", "KEYWORD", PROCESSED)
        for uid in (found[0] or b"").decode().split():
            _, data = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    yield uid, item[1]

    def processed(self, key: str) -> None:
        self.conn.uid("STORE", key, "+FLAGS", f"(\\Seen {PROCESSED})")

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.conn.logout()


class Pop3Source:
    def __init__(self, cfg: MailboxSettings) -> None:
        url = urlsplit(cfg.url)
        try:
            self.conn = poplib.POP3_SSL(url.hostname or "", url.port or 995, context=_context(cfg))
            self.conn.user(unquote(url.username or ""))
            self.conn.pass_(cfg.password)
        except (OSError, poplib.error_proto) as exc:
            raise PublisherError(
                f"mailbox {url.hostname}: {exc}",
                "check [mailbox] url and PUBLISHER_MAILBOX_PASSWORD (and ca_file for a private CA)",
            ) from None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        count, _ = self.conn.stat()
        for n in range(1, count + 1):
            _, lines, _ = self.conn.retr(n)
            yield str(n), b"\r\n".join(lines) + b"\r\n"

    def processed(self, key: str) -> None:
        pass  # POP3 has no flags; nothing is deleted unasked (see the module docstring)

    def close(self) -> None:
        with contextlib.suppress(OSError, poplib.error_proto):
            self.conn.quit()


def open_source(cfg: MailboxSettings, maildir: Path | None = None) -> Source:
    if maildir is not None:
        return MaildirSource(maildir)
    scheme = urlsplit(cfg.url).scheme
    if scheme == "maildir":
        return MaildirSource(Path(unquote(urlsplit(cfg.url).path)))
    if scheme == "imaps":
        return ImapSource(cfg)
    if scheme == "pop3s":
        return Pop3Source(cfg)
    raise PublisherError(
        "no mailbox to read", "give --maildir PATH, or set [mailbox] url (imaps://, pop3s://)"
    )
