"""``publisher serve``: the app under uvicorn, on a socket bound here."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from publisher.errors import PublisherError
from publisher.newsletter.guards import is_loopback
from publisher.settings import Settings
from publisher.web.app import create_app

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int, *, dev: bool = False) -> int:
    """Serve until stopped. Without ``PUBLISHER_SECRET`` anyone could forge the
    links that unsubscribe people or show their address, so ``serve`` refuses to
    start, unless ``dev`` (``--dev``): then it signs with the public development
    secret and listens on loopback only."""
    import uvicorn

    if dev and not is_loopback(host):
        raise PublisherError(
            f"serve --dev listens on loopback only, not {host}: its links are signed "
            "with the public development secret",
            "drop --host (or use 127.0.0.1), or set PUBLISHER_SECRET and serve without --dev",
        )
    _check_base_url(settings, host, port)
    app = create_app(settings, dev=dev)  # refuses a missing secret, with its remedy

    site = Path(settings.build.output)
    if not (site / "index.html").is_file() and not any(site.glob("all.*")):
        log.warning(
            "warning: %s holds no built site yet: run `publisher build` "
            "(the subscription pages work meanwhile)",
            site,
        )
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
    )
    log.info("serving %s at %s (listening on %s:%d)", site, settings.site.base_url, host, port)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                # uvicorn raises a caught SIGTERM again once stopped (exit 143); a
                # stop asked for is a clean stop, as the scheduler's: exit 0
                self._captured_signals.clear()

    with sock:
        Server(config).run(sockets=[sock])
    return 0


def _check_base_url(settings: Settings, host: str, port: int) -> None:
    """A ``base_url`` on this machine but another port gives a site whose every link
    and stylesheet points elsewhere: say what to change before serving."""
    base = urlsplit(settings.site.base_url)
    if base.hostname in ("127.0.0.1", "localhost", "::1", host) and (base.port or 80) != port:
        raise PublisherError(
            f"[site] base_url {settings.site.base_url} points at port {base.port or 80}, "
            f"but serve would listen on {port}: every link would lead away",
            f'set [site] base_url = "http://{base.hostname}:{port}{base.path}" (or '
            f"PUBLISHER_SITE_BASE_URL), or serve with --port {base.port or 80}",
        )


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that an address in use (another ``serve``,
    say) is an error with a remedy, not uvicorn's log line and exit status 3."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as exc:
        raise PublisherError(
            f"cannot serve on {host}: {exc.strerror}", "give --host an address, e.g. 127.0.0.1"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "another program is listening there"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        else:
            why = exc.strerror or str(exc)
        raise PublisherError(
            f"cannot serve on {host}:{port}: {why}",
            "stop the other server, or choose another port with --port "
            "(and set [site] base_url to the address the site is served at)",
        ) from None
