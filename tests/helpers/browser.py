"""Debian's chromium driven by Playwright (``executable_path``: never a browser
download), and axe-core from npm for the accessibility checks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Where the README's test command installs axe-core (npm), or AXE_CORE.
AXE = Path(os.environ.get("AXE_CORE", ROOT / ".venv/axe/node_modules/axe-core/axe.min.js"))


def _missing(what: str, fix: str) -> None:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must install {what} (see .ci/run)")
    pytest.skip(f"{what} is not installed ({fix})", allow_module_level=True)


def needs_chromium() -> None:
    """Skip the module without Debian's chromium (CI must have it)."""
    if not Path(CHROMIUM).exists():
        _missing("Debian's chromium", "apt-get install chromium")


def needs_axe() -> None:
    if not AXE.is_file():
        _missing("axe-core", "npm install --prefix .venv/axe axe-core@4")


def launch() -> Iterator[Any]:
    """A headless chromium for one test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()
