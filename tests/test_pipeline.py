"""The cyclic collector: off for the one-shot commands, on for the long-running ones."""

from __future__ import annotations

import gc

import pytest

from publisher import cli


@pytest.mark.parametrize(("command", "collects"), [("check", False), ("schedule", True)])
def test_one_shot_commands_run_without_the_cyclic_collector(
    monkeypatch: pytest.MonkeyPatch, command: str, collects: bool
) -> None:
    seen: list[bool] = []
    monkeypatch.setitem(cli.COMMANDS, command, lambda *_: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    try:
        assert cli.main([command]) == 0
    finally:
        gc.enable()
    assert seen == [collects]
