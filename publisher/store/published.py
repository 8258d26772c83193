"""What the builds published, as the next build and ``serve`` read it back.

The posts' versions date each post's ``updated``; the feeds' orders fix their
archive pages (see ``site.order``); the published terms are
the topics ``serve`` offers, so that a tag a build published while the
server runs appears on ``/subscribe`` at once, with no archive read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from publisher.store.rows import PostVersion
from publisher.store.schema import feed_orders, post_versions, published_terms


@dataclass(frozen=True)
class Topic:
    """A term as published: what forms show and submit (``name``) and its ``slug``."""

    name: str
    slug: str


def save_terms(engine: Engine, terms: Iterable[tuple[str, str, str]]) -> None:
    """Replace the published terms with ``terms`` as (kind, slug, name), when they differ."""
    wanted = sorted(set(terms))
    with engine.begin() as conn:
        rows = conn.execute(sa.select(published_terms).order_by("kind", "slug", "name"))
        if [tuple(r) for r in rows] == wanted:
            return
        conn.execute(published_terms.delete())
        if wanted:
            conn.execute(
                published_terms.insert(),
                [{"kind": k, "slug": s, "name": n} for k, s, n in wanted],
            )


def load_topics(engine: Engine, kind: str = "tag") -> list[Topic]:
    """The published terms of ``kind``, by slug as the pages list them."""
    query = (
        sa.select(published_terms.c.name, published_terms.c.slug)
        .where(published_terms.c.kind == kind)
        .order_by(published_terms.c.slug)
    )
    with engine.connect() as conn:
        return [Topic(r.name, r.slug) for r in conn.execute(query)]


def load_versions(engine: Engine, ids: Iterable[str] | None = None) -> dict[str, PostVersion]:
    """Every post's version, or only those of ``ids`` (an incremental build's few)."""
    with engine.connect() as conn:
        if ids is None:
            rows = conn.execute(sa.select(post_versions)).all()
        else:
            wanted, rows = list(ids), []
            for i in range(0, len(wanted), 500):
                query = sa.select(post_versions).where(post_versions.c.id.in_(wanted[i : i + 500]))
                rows.extend(conn.execute(query))
    return {r.id: PostVersion(r.content_hash, datetime.fromisoformat(r.updated)) for r in rows}


def count_versions(engine: Engine) -> int:
    """Rows in the versions table: a build snapshot made against another database
    (reset or replaced since) does not match it."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(post_versions)).scalar_one()


def save_versions(engine: Engine, changed: Iterable[tuple[str, PostVersion]]) -> None:
    rows = [
        {"id": pid, "content_hash": v.content_hash, "updated": v.updated.isoformat()}
        for pid, v in changed
    ]
    with engine.begin() as conn:
        _upsert(conn, post_versions, rows)


def load_orders(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Every feed's entry order (see ``site.order``)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(feed_orders)).all()
    return {r.feed: tuple(r.entries.split("\n")) if r.entries else () for r in rows}


def save_orders(engine: Engine, changed: Mapping[str, Sequence[str]]) -> None:
    rows = [{"feed": feed, "entries": "\n".join(ids)} for feed, ids in changed.items()]
    with engine.begin() as conn:
        _upsert(conn, feed_orders, rows)


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, str]]) -> None:
    """Insert ``rows`` into ``table``, replacing those with the same primary key."""
    if not rows:
        return
    key = list(table.primary_key.columns)
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        # one upsert: deleting first, 500 ids a statement, took twice as long as
        # inserting 10,000 rows (a first build saves every post)
        insert = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert
        stmt = insert(table)
        others = [c.name for c in table.columns if not c.primary_key]
        stmt = stmt.on_conflict_do_update(
            index_elements=key, set_={n: stmt.excluded[n] for n in others}
        )
        conn.execute(stmt, rows)
        return
    (column,) = key
    ids = [r[column.name] for r in rows]
    for i in range(0, len(ids), 500):
        conn.execute(table.delete().where(column.in_(ids[i : i + 500])))
    conn.execute(table.insert(), rows)
