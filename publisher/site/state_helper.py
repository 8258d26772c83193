"""The state database as a build uses it: in this process, or in a forked helper.

Importing SQLAlchemy is a large share of a one-post rebuild (see
``benchmarks/README.md``). A build needs the
database only once it has read the archives (for the posts' versions) and
while its workers render (to save them). So a process that has not imported
SQLAlchemy yet forks a helper at the start of the build, which imports it,
opens (and migrates) the database and then answers this process's calls,
while this process reads the snapshot and the archives. Only the command
line asks for it: it knows its process has not imported SQLAlchemy. The
scheduler and the web app have, and call the database themselves.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, NoReturn

from publisher.errors import PublisherError
from publisher.site.forks import die_with, portable, raise_portable
from publisher.store.paths import shown_url
from publisher.store.rows import PostVersion

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from publisher.store.rows import DigestRecord


class BuildState:
    """A build's calls on the state database (see the module docstring)."""

    def __init__(self, url: str, *, helper: bool = False) -> None:
        """With ``helper`` (and ``fork`` available), fork the helper now; otherwise
        the database is opened on first use. Only a process that exists for this
        build (the command line's) asks for it: see ``build(state_helper=...)``."""
        helper = helper and "fork" in mp.get_all_start_methods()
        self.url = url
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._proc: Any = None
        self._unanswered = 0  # calls sent to the helper whose answer is not read yet
        if helper:
            ctx = mp.get_context("fork")
            self._conn, theirs = ctx.Pipe()
            ours = self._conn
            self._proc = ctx.Process(
                target=_serve, args=(url, theirs, ours, os.getpid()), daemon=True
            )
            self._proc.start()
            theirs.close()

    @property
    def forked(self) -> bool:
        return self._proc is not None

    def count_versions(self) -> int:
        count: int = self._call("count_versions")
        return count

    def load_versions(self, ids: Iterable[str] | None = None) -> dict[str, PostVersion]:
        versions: dict[str, PostVersion] = self._call(
            "load_versions", None if ids is None else list(ids)
        )
        return versions

    def save_versions(self, changed: list[tuple[str, PostVersion]]) -> None:
        """Save the posts' versions. The helper saves them while this process goes
        on: a failure is raised by the next call, or by ``flush``."""
        self._save("save_versions", changed)

    def save_terms(self, terms: list[tuple[str, str, str]]) -> None:
        """Record the terms published as (kind, slug, name); saved as ``save_versions`` is."""
        self._save("save_terms", terms)

    def load_orders(self) -> dict[str, tuple[str, ...]]:
        orders: dict[str, tuple[str, ...]] = self._call("load_orders")
        return orders

    def save_orders(self, changed: dict[str, tuple[str, ...]]) -> None:
        """Record the feeds' entry orders that changed; saved as ``save_versions`` is."""
        self._save("save_orders", changed)

    def _save(self, name: str, *args: Any) -> None:
        if self._conn is None:
            self._call(name, *args)
        else:
            self._send(name, *args)
            self._unanswered += 1

    def flush(self) -> None:
        """Wait until the helper has done every call sent (see ``save_versions``)."""
        while self._unanswered:
            self._unanswered -= 1
            self._answer()

    def sent_digests(self) -> list[DigestRecord]:
        sent: list[DigestRecord] = self._call("sent_digests")
        return sent

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):  # the helper may be gone already
                self._conn.send(None)
            self._proc.join()
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> BuildState:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, name: str, *args: Any) -> Any:
        if self._conn is None:
            if self._engine is None:
                from publisher.store.schema import open_engine

                self._engine = open_engine(self.url)
            return _run(self._engine, name, args)
        self.flush()
        self._send(name, *args)
        return self._answer()

    def _send(self, name: str, *args: Any) -> None:
        assert self._conn is not None
        try:
            self._conn.send((name, args))
        except OSError:
            self._gone()

    def _answer(self) -> Any:
        assert self._conn is not None
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            self._gone()
        if ok:
            return value
        raise_portable(value, "state database helper")

    def _gone(self) -> NoReturn:
        raise PublisherError(
            f"state database {shown_url(self.url)}: the helper process holding it exited early",
            "run the command again",
        ) from None


def _run(engine: Engine, name: str, args: tuple[Any, ...]) -> Any:
    from publisher.store import published, schema

    if name not in (
        "count_versions",
        "load_versions",
        "save_versions",
        "save_terms",
        "load_orders",
        "save_orders",
        "sent_digests",
    ):
        raise AssertionError(f"no state call {name!r}")
    try:
        if name == "sent_digests":
            from publisher.store.ledger import Ledger

            return Ledger(engine).sent_digests()
        return getattr(published, name)(engine, *args)
    except Exception as exc:
        error = schema.failure(exc, str(engine.url))
        if error is None:
            raise
        raise error from None


def _serve(url: str, conn: Connection, builds: Connection, parent: int) -> None:
    """The helper: open the database at once, then answer calls until told to stop,
    or until the build is gone (its end of the pipe, ``builds``, is closed here so
    that the build's death reaches ``recv`` as the end of the pipe).

    A failure to open is the answer to every call, so the build reports it
    where it would have met it in process.
    """
    builds.close()
    die_with(parent)
    engine = failure = None
    try:
        from publisher.store.schema import open_engine

        engine = open_engine(url)
    except BaseException as exc:  # noqa: BLE001 - sent to the build, which raises it
        failure = portable(exc)
    try:
        while (call := conn.recv()) is not None:
            if engine is None:
                conn.send((False, failure))
                continue
            try:
                conn.send((True, _run(engine, *call)))
            except BaseException as exc:  # noqa: BLE001 - as above
                conn.send((False, portable(exc)))
    except EOFError:  # the build is gone
        pass
    finally:
        if engine is not None:
            engine.dispose()
