"""The web app under a real uvicorn server on loopback, with a built site and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.site.build import build
from publisher.web.app import create_app
from tests.helpers import SECRET, SEEDS, smtp_settings
from tests.helpers.smtp import SmtpServer, free_port
from tests.helpers.webserver import LiveServer


@pytest.fixture
def site(tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    port = free_port()
    s = smtp_settings(tmp_path, smtp.port, base_url=f"http://127.0.0.1:{port}/")
    build(s, [SEEDS], Path("site"))
    server = LiveServer(create_app(s))
    server.port = port
    server.server.config.port = port
    with server:
        yield s, server


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    """Debian's chromium, headless (see ``tests.helpers.browser``)."""
    from tests.helpers.browser import launch

    yield from launch()
