"""The command line, run as a user would (a real subprocess), and its process settings."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import pytest

from publisher import cli
from tests.helpers import SEEDS, run_cli, write

run = run_cli


def test_check_seeds_is_clean(tmp_path: Path) -> None:
    r = run("check", str(SEEDS), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "12 posts, 0 error(s), 0 warning(s)" in r.stderr


def test_check_reports_file_line_and_exits_1(tmp_path: Path) -> None:
    write(
        tmp_path / "in" / "bad.txt",
        "Posts Tagged ‘x’\n\nT\n\nMonday, February 30th, 2019\n\nText.\n",
    )
    write(tmp_path / "in" / "ok.txt", "Posts Tagged ‘y’\n\nGood\n\nMay 1, 2018\n\nText.\n")
    r = run("check", "in", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "in/bad.txt:5: error: impossible date 'Monday, February 30th, 2019': check the day of the month"
    ]


def test_posts_json_lines_still_lists_good_posts_on_error(tmp_path: Path) -> None:
    write(tmp_path / "in" / "bad.txt", "")
    r = run("posts", "--json", "in", str(SEEDS), "--tag", "thanks", cwd=tmp_path)
    assert r.returncode == 1
    assert "in/bad.txt:1: error: empty file" in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3
    first = rows[0]
    assert first["title"] == "Digitisation, and the Children’s Services Ofsted"
    assert first["date"] == "2019-02-11" and first["published"] == "2019-02-11T12:00:00+00:00"
    assert first["tags"] == ["digital", "thanks"]
    assert all(":" in s for s in first["sources"])
    assert set(first) >= {"id", "slug", "paragraphs", "html", "summary", "word_count", "categories"}


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    r = run("check", "nope", cwd=tmp_path)
    assert r.returncode == 1 and "nope: no such file or folder" in r.stderr and "fix:" in r.stderr


def test_a_reader_that_stops_early_ends_the_output_quietly(tmp_path: Path) -> None:
    """`publisher posts --json | head -1`: the pipe closes under the writer, which
    stops with the shell's SIGPIPE status and no traceback."""
    import os
    import subprocess
    import sys

    read, write_end = os.pipe()
    os.close(read)  # the reader is gone before the first line
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    r = subprocess.run(
        [sys.executable, "-m", "publisher", "posts", "--json", str(SEEDS)],
        cwd=tmp_path,
        env=env,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(write_end)
    assert r.returncode == 141 and r.stderr == ""


def test_serve_says_when_there_is_no_site_yet(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_SITE_BASE_URL"] = f"http://127.0.0.1:{port}/"
    write(tmp_path / "seeds" / "a.txt", "Posts Tagged ‘x’\n\nA post\n\nMay 1, 2018\n\nText.\n")
    cmd = [sys.executable, "-m", "publisher", "serve", "--dev", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        lines = [proc.stderr.readline() for _ in range(2)]  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.wait(10)
    assert any("feeds holds no built site yet: run `publisher build`" in line for line in lines)


def test_serve_on_an_address_in_use_is_an_error_with_a_remedy(tmp_path: Path) -> None:
    """Another server on the port: an error naming the address and what to do, exit 1,
    not uvicorn's log line and exit status 3."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        base = {"PUBLISHER_SITE_BASE_URL": f"http://127.0.0.1:{port}/"}
        r = run_cli("serve", "--dev", "--port", str(port), cwd=tmp_path, env=base)
    assert r.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}: another program is listening there" in r.stderr
    assert "--port" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_the_public_development_secret(tmp_path: Path) -> None:
    """Without PUBLISHER_SECRET anyone could forge the links that unsubscribe people
    or show their address: serve refuses to start, and says how to set it or how to
    try the pages on one's own machine (--dev, which listens on loopback only)."""
    base = {"PUBLISHER_SITE_BASE_URL": "http://127.0.0.1:1/"}
    r = run_cli("serve", "--port", "1", cwd=tmp_path, env=base)
    assert r.returncode == 1 and "PUBLISHER_SECRET is not set" in r.stderr
    assert "publisher serve --dev" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("serve", "--dev", "--host", "0.0.0.0", "--port", "1", cwd=tmp_path)
    assert r.returncode == 1 and "loopback only, not 0.0.0.0" in r.stderr


@pytest.mark.parametrize(("command", "collects"), [("check", False), ("schedule", True)])
def test_one_shot_commands_run_without_the_cyclic_collector(
    monkeypatch: pytest.MonkeyPatch, command: str, collects: bool
) -> None:
    seen: list[bool] = []
    monkeypatch.setitem(cli.COMMANDS, command, lambda *_: seen.append(gc.isenabled()) or 0)
    logger = logging.getLogger("publisher")  # main() sends it to the terminal: put it back
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    assert gc.isenabled()
    try:
        assert cli.main([command]) == 0
    finally:
        gc.enable()
    assert seen == [collects]


def test_serve_on_another_port_than_base_url_says_what_to_change(tmp_path: Path) -> None:
    """``serve --port 8101`` with the default base_url (:8000) served a site whose every
    link pointed at :8000, without a word."""
    r = run_cli("serve", "--dev", "--port", "8101", cwd=tmp_path)
    assert r.returncode == 1 and "points at port 8000, but serve would listen on 8101" in r.stderr
    assert 'base_url = "http://127.0.0.1:8101/"' in r.stderr and "--port 8000" in r.stderr


def test_serve_prints_its_address_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_SITE_BASE_URL"] = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "serve", "--dev", "--port", str(port)],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert f"at http://127.0.0.1:{port}/" in err


def test_check_of_no_archive_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run_cli("check", "empty", cwd=tmp_path)
    assert r.returncode == 1 and "no archive files (*.txt) in empty" in r.stderr


def test_digest_commands_refuse_what_would_surprise(tmp_path: Path) -> None:
    write(tmp_path / "seeds" / "a.txt", "Posts Tagged ‘x’\n\nA post\n\nMay 1, 2018\n\nText.\n")
    r = run_cli("digest", "--out", "x.html", cwd=tmp_path)
    assert r.returncode == 1 and "--out goes with --preview" in r.stderr
    from datetime import date

    year, week, _ = date.today().isocalendar()
    r = run_cli("digest", "--week", f"{year}-W{week:02d}", "--send", cwd=tmp_path)
    assert r.returncode == 1 and "has not ended yet" in r.stderr and "--force" in r.stderr
    r = run_cli("digest", "--week", f"{year}-W{week:02d}", "--send", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_a_misspelt_variable_is_named_with_the_closest_setting(tmp_path: Path) -> None:
    env = {"PUBLISHER_SITE_BASEURL": "https://example.org/"}
    r = run_cli("check", cwd=tmp_path, env=env)
    assert "PUBLISHER_SITE_BASEURL is not a publisher setting" in r.stderr
    assert "did you mean PUBLISHER_SITE_BASE_URL?" in r.stderr


def test_every_command_has_help_with_examples_and_its_own_usage_on_error(tmp_path: Path) -> None:
    from publisher.cli.parser import EXAMPLES

    for command in EXAMPLES:
        r = run_cli(command, "--help", cwd=tmp_path)
        assert r.returncode == 0 and "examples:" in r.stdout, command
        assert all(example in r.stdout for example in EXAMPLES[command]), command
    r = run_cli("build", "--qiet", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("usage: publisher build")
    assert "unrecognized arguments: --qiet" in r.stderr
