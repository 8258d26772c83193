"""The Maildir outbox: the default transport, and where ``--draft`` puts messages."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

from publisher.delivery.transport import Mail, ServerError, nothing
from publisher.errors import PublisherError


class OutboxTransport:
    """A Maildir any mail client can open; the default, and the place for --draft."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise PublisherError(
                f"outbox {path}: cannot open it as a Maildir: {exc.strerror or exc}",
                "check [delivery] outbox: a folder you can write, or a path where one can be made",
            ) from None

    def send(
        self,
        mail: Mail,
        sender: str,
        recipient: str,
        handing_over: Callable[[], None] = nothing,
        envid: str = "",
    ) -> None:
        handing_over()
        try:
            self.box.add(mail.wire(eight_bit=True))  # mail clients read 8bit files
        except OSError as exc:  # a full disk, a file where the folder must be: every message
            raise ServerError(f"outbox {self.path}: cannot store the message: {exc}") from None

    def another(self) -> OutboxTransport:
        return self  # one folder: there is no connection to add

    def close(self) -> None:
        self.box.close()
