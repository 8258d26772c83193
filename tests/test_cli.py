"""The check and posts commands, run as a user would: a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SEEDS, run_cli, write

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
