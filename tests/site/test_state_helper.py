"""The build's state database calls: in process, or through the forked helper."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.errors import PublisherError
from publisher.site.build import build
from publisher.site.state_helper import BuildState
from publisher.store.rows import PostVersion
from tests.helpers import SEEDS, write

WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("helper", [True, False])
def test_calls_answer_alike_in_process_and_through_the_helper(state_url: str, helper: bool) -> None:
    url = state_url
    rows = [(f"tag:x,2026-01-0{i}:p", PostVersion(f"h{i}", WHEN)) for i in range(1, 4)]
    with BuildState(url, helper=helper) as state:
        assert state.forked is helper
        assert state.count_versions() == 0 and state.load_versions() == {}
        state.save_versions(rows)
        assert state.count_versions() == 3
        assert state.load_versions([rows[1][0], "tag:x,2026-01-09:gone"]) == dict(rows[1:2])
        edited = (rows[0][0], PostVersion("h1-edited", WHEN.replace(day=24)))
        state.save_versions([edited])  # an edited post's row is replaced, not added
        assert state.count_versions() == 3
        rows[0] = edited
        assert state.sent_digests() == []
    with BuildState(url, helper=not helper) as other:  # the same database, the other way
        assert other.load_versions() == dict(rows)
    if helper:
        assert state._proc.exitcode == 0  # closed: the helper was told to stop, and did


@pytest.mark.parametrize("helper", [True, False])
def test_a_database_that_cannot_be_opened_is_reported_with_its_remedy(
    tmp_path: Path, helper: bool
) -> None:
    blocker = write(tmp_path / "file", "not a folder")
    with BuildState(f"sqlite:///{blocker / 'state.db'}", helper=helper) as state:
        with pytest.raises(PublisherError) as exc:
            state.load_versions()
        assert "state database" in exc.value.message and "[state] url" in exc.value.remedy
        with pytest.raises(PublisherError):  # and again: the helper keeps answering
            state.count_versions()


@pytest.mark.parametrize(
    ("url", "says", "remedy"),
    [
        ("foo://x", "NoSuchModuleError", "sqlite:///FILE"),
        ("not a url", "Could not parse", "sqlite:///FILE"),
        ("postgresql+asyncpg://me:s3cret@127.0.0.1:1/db", "driver is not installed", "[postgres]"),
        ("postgresql+psycopg://me:s3cret@127.0.0.1:1/db", "OperationalError", "reachable"),
    ],
)
def test_a_bad_state_url_is_an_error_with_a_remedy_and_no_password(
    url: str, says: str, remedy: str
) -> None:
    """An unknown dialect, a URL that is none, a driver not installed, a server not
    there: each a message and a remedy, through the helper as in process, and a
    password in the URL never shown."""
    for helper in (True, False):
        with BuildState(url, helper=helper) as state, pytest.raises(PublisherError) as exc:
            state.count_versions()
        assert says in exc.value.message and remedy in exc.value.remedy
        assert "s3cret" not in str(exc.value) and "state database" in exc.value.message


@pytest.mark.parametrize("helper", [True, False])
def test_a_failed_save_is_raised_before_a_later_call_answers(state_url: str, helper: bool) -> None:
    """The helper saves versions while the build goes on (``save_versions`` returns at
    once): a save that failed is raised by the next call, not passed over."""
    bad = [("tag:x,2026-01-01:p", PostVersion(None, WHEN))]  # type: ignore[arg-type]
    with BuildState(state_url, helper=helper) as state:
        with pytest.raises(Exception, match="NOT NULL|not-null") as exc:
            state.save_versions(bad)
            state.count_versions()
        assert not isinstance(exc.value, AssertionError)
        assert state.count_versions() == 0  # nothing saved, and the helper answers still


@pytest.mark.parametrize("helper", [True, False])
def test_a_database_lost_in_use_is_an_error_to_act_on(postgres_server: str, helper: bool) -> None:
    """The database goes away between two calls (dropped, its sessions ended, as a
    server that stops): the next call is the user's error with a remedy, not a
    traceback from inside the driver."""
    import sqlalchemy as sa

    from tests.helpers.postgres import fresh_database

    url = fresh_database(postgres_server, f"lost_{helper}")
    rows = [("tag:x,2026-01-01:p", PostVersion("h", WHEN))]
    with BuildState(url, helper=helper) as state:
        assert state.count_versions() == 0
        admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "lost_{helper}" WITH (FORCE)'))
        admin.dispose()
        with pytest.raises(PublisherError) as exc:
            state.save_versions(rows)
            state.flush()  # the helper saves while the build goes on: its failure is here
        assert exc.value.message.startswith(f"state database {url}: ")
        assert "run the command again" in exc.value.remedy


def _cli_build(cwd: Path, config: Path, archives: Path) -> str:
    """``publisher build`` in a fresh interpreter (SQLAlchemy not imported: the helper
    path); prints whether this process imported SQLAlchemy after all."""
    code = (
        "import sys; from publisher.cli import main; "
        f"rc = main(['--config', {str(config)!r}, 'build', '--quiet', {str(archives)!r}]); "
        "print(rc, 'sqlalchemy' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, check=True
    )
    return r.stdout.strip().splitlines()[-1]


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_a_build_through_the_helper_writes_what_one_in_process_writes(
    tmp_path: Path, state_db: Callable[[str], str]
) -> None:
    """Full, then incremental (versions counted, loaded for the edited post, saved):
    the forked helper's builds and this process's write the same files, and the
    command never imported SQLAlchemy itself; on SQLite and on PostgreSQL."""
    full, edited = {}, {}
    for way in ("helper", "local"):
        root = tmp_path / way
        archives = root / "seeds"
        shutil.copytree(SEEDS, archives)
        out = root / "out"
        config = write(
            root / "p.toml",
            f'[build]\noutput = "{out}"\n[state]\nurl = "{state_db(way)}"\n',
        )

        def edit(archives: Path = archives) -> None:  # a word in one post, in every copy
            for f in archives.glob("*.txt"):
                text = f.read_text(encoding="utf-8")
                if "flat out" in text:
                    f.write_text(text.replace("flat out", "working flat out"), encoding="utf-8")

        if way == "helper":
            assert _cli_build(root, config, archives) == "0 False"
            full[way] = _files(out)
            edit()
            assert _cli_build(root, config, archives) == "0 False"
        else:
            settings = load_settings(config, environ={})
            cwd = Path.cwd()
            os.chdir(root)  # archive names in the stream are relative to it, as for the CLI
            try:
                build(settings, [archives], out)
                full[way] = _files(out)
                edit()
                assert build(settings, [archives], out).archives_read == 1  # incremental
            finally:
                os.chdir(cwd)
        edited[way] = {k for k, v in _files(out).items() if full[way].get(k) != v}
    assert full["helper"] == full["local"] and len(full["local"]) > 20
    # the edit's updated date is each build's clock: the same files show it
    assert edited["helper"] == edited["local"] and "all.atom" in edited["local"]
