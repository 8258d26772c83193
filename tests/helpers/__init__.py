"""What the tests share: paths, the test secret, settings for a real SMTP server,
writing archive files, and running the CLI as a user does.

Servers live beside this module (``smtp``, ``postgres``, ``webserver``), feed
and sitemap validation in ``feeds``, generated archives in ``archives``;
fixtures that start them are in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from publisher.config import load_settings
from publisher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
#: Reviewed copies of generated files; regenerate on purpose with UPDATE_GOLDEN=1.
GOLDEN = ROOT / "tests" / "golden"


def examples(n: int) -> int:
    """A property test's hypothesis examples: ``n``, times ``HYPOTHESIS_SCALE`` for a
    deep run (``HYPOTHESIS_SCALE=20 pytest tests/test_increment.py``)."""
    return n * int(os.environ.get("HYPOTHESIS_SCALE", "1"))


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


SECRET = "test-secret-0123456789abcdef0123456789"


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


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m publisher ARGS`` as a user runs it, without PUBLISHER_* from this
    shell (but those in ``env``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
