"""Fixtures: settings in a temp folder, and real servers (SMTP, PostgreSQL) on loopback.

Plain helpers are in ``tests.helpers``."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.settings import Settings
from tests.helpers import SEEDS


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Default settings, with state and output inside the test's temp dir."""
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("PUBLISHER_"):
            monkeypatch.delenv(key)
    cfg = tmp_path / "publisher.toml"
    cfg.write_text(
        f'[build]\nseeds = "{SEEDS.as_posix()}"\noutput = "{(tmp_path / "out").as_posix()}"\n'
        f'[state]\nurl = "sqlite:///{(tmp_path / "state.db").as_posix()}"\n',
        encoding="utf-8",
    )
    return load_settings(cfg)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of the test run's own, on loopback (see ``tests.postgres``);
    its admin URL. Its folder is outside pytest's, which the server's user cannot enter."""
    from tests.helpers.postgres import running_server

    folder = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
    try:
        with running_server(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_db(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes empty state databases by name, as URLs: SQLite files, then databases on
    a real PostgreSQL server."""
    if request.param == "sqlite":
        return lambda name: f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}"
    from tests.helpers.postgres import fresh_database

    server = request.getfixturevalue("postgres_server")
    test = hashlib.blake2b(request.node.nodeid.encode(), digest_size=6).hexdigest()
    return lambda name: fresh_database(server, f"t{test}_{name}")


@pytest.fixture
def state_url(state_db: Callable[[str], str]) -> str:
    """An empty state database: a SQLite file, then one on a real PostgreSQL server."""
    return state_db("state")


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    """A real SMTP server (aiosmtpd) on loopback that records what it accepts."""
    from tests.helpers.smtp import SmtpServer

    with SmtpServer() as server:
        yield server
