"""Shared fixtures: the real seeds, settings, and helpers to write archive pages."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def examples(n: int) -> int:
    """A property test's hypothesis examples: ``n``, times ``HYPOTHESIS_SCALE`` for a
    deep run (``HYPOTHESIS_SCALE=20 pytest tests/test_increment.py``)."""
    return n * int(os.environ.get("HYPOTHESIS_SCALE", "1"))


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
    from tests.postgres import running_server

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
    from tests.postgres import fresh_database

    server = request.getfixturevalue("postgres_server")
    test = hashlib.blake2b(request.node.nodeid.encode(), digest_size=6).hexdigest()
    return lambda name: fresh_database(server, f"t{test}_{name}")


@pytest.fixture
def state_url(state_db: Callable[[str], str]) -> str:
    """An empty state database: a SQLite file, then one on a real PostgreSQL server."""
    return state_db("state")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


SECRET = "test-secret-0123456789abcdef0123456789"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    """A real SMTP server (aiosmtpd) on loopback that records what it accepts."""
    from tests.smtp import SmtpServer

    with SmtpServer() as server:
        yield server


def smtp_settings(
    tmp: Path,
    smtp_port: int,
    *,
    seeds: Path = SEEDS,
    output: str = "site",
    base_url: str = "",
    extra: str = "",
    state_url: str = "",
) -> Settings:
    """Settings for delivery through the test SMTP server, state in ``tmp`` (or at
    ``state_url``)."""
    cfg = tmp / "publisher.toml"
    site = f'[site]\nbase_url = "{base_url}"\n' if base_url else ""
    state_url = state_url or f"sqlite:///{(tmp / 'state.db').as_posix()}"
    cfg.write_text(
        f'{site}[build]\nseeds = "{seeds.as_posix()}"\noutput = "{output}"\n'
        f'[state]\nurl = "{state_url}"\n'
        '[delivery]\nmethod = "smtp"\nretry_backoff = 0.01\nbounce_limit = 2\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n{extra}',
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m publisher ARGS`` as a user runs it, without PUBLISHER_* from this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
