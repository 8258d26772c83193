"""What must hold before a digest goes out: links mail providers act on."""

from __future__ import annotations

import ipaddress

from publisher.errors import PublisherError
from publisher.settings import Settings


def is_loopback(host: str) -> bool:
    """A host on this machine: a loopback address, or ``localhost``."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_links_for_a_relay(settings: Settings) -> None:
    """Mail providers act on one-click unsubscribe only over https (RFC 8058; the
    Gmail and Yahoo bulk-sender rules): a digest through a real relay with an http
    ``base_url`` would go out with links they ignore. A relay on loopback (a test
    server, a local smarthost) or ``[smtp] allow_http_links`` may."""
    if settings.site.base_url.startswith("https://") or settings.smtp.allow_http_links:
        return
    host = settings.smtp.host
    if not is_loopback(host):
        raise PublisherError(
            f"[site] base_url {settings.site.base_url} is not https: the digest's one-click "
            f"unsubscribe links would not work with mail providers (relay {host})",
            "serve the site over https and set [site] base_url to it; or, knowingly, "
            "[smtp] allow_http_links = true",
        )
