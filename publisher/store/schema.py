"""State database (SQLAlchemy Core): what the program remembers between runs.

Config is what people edit; state is what the program writes. The schema is
versioned: ``MIGRATIONS[n]`` upgrades version n to n+1 and runs inside one
transaction, so an old database keeps its data.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from publisher.errors import PublisherError
from publisher.store.paths import shown_url, sqlite_file

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)

#: One row per post id: the content last published and when it last changed,
#: so an edited post gets a new ``updated`` date and an unchanged one keeps it.
post_versions = sa.Table(
    "post_versions",
    metadata,
    sa.Column("id", sa.String(500), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated", sa.String(40), nullable=False),  # RFC 3339
)


subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    #: lowercase form: addresses compare case-insensitively
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    #: JSON list of tag names; empty = every post
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("bounces", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("updated", sa.String(40), nullable=False),
    #: "weekly" or "monthly"
    sa.Column("cadence", sa.String(10), nullable=False, default="weekly"),
    #: consent: how they joined ("form", "import FILE", "command") and when they
    #: confirmed (a form's sign-up; the others were added by the list's owner)
    sa.Column("source", sa.String(300), nullable=False, default=""),
    sa.Column("confirmed", sa.String(40), nullable=False, default=""),
)

#: Addresses erased on request (``subscribers forget``), as a keyed hash only:
#: so the address stays suppressed, and an import or sign-up of it later is
#: not taken for consent.
forgotten = sa.Table(
    "forgotten",
    metadata,
    sa.Column("address_hash", sa.String(64), primary_key=True),
    sa.Column("at", sa.String(40), nullable=False),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("week", sa.String(10), nullable=False, unique=True),  # ISO week, 2019-W07
    sa.Column("created", sa.String(40), nullable=False),
    #: JSON list of the post ids the week held when the digest was planned
    sa.Column("post_ids", sa.Text, nullable=False),
)

#: The delivery ledger: one row per (digest, subscriber). A row is ``sent``
#: only after the server accepted the message (or it is in the outbox).
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("message_id", sa.String(250), nullable=False),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40)),
    sa.Column("error", sa.Text, nullable=False, default=""),
    #: what came back for it afterwards (kind: detail), if anything
    sa.Column("returned", sa.Text, nullable=False, default=""),
    #: which sender holds it (PostgreSQL: several share a digest; see ``claims``),
    #: its database session, and until when (the database's clock, epoch seconds)
    sa.Column("claimed_by", sa.String(200), nullable=False, default=""),
    sa.Column("claim_backend", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", sa.Float, nullable=False, default=0.0),
    sa.UniqueConstraint("digest_id", "subscriber_id"),
)


#: The terms the last build published, so that ``serve`` offers the topics of
#: the site as it is, without reading the archives.
published_terms = sa.Table(
    "published_terms",
    metadata,
    sa.Column("kind", sa.String(20), primary_key=True),  # "tag" | "category"
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(500), nullable=False),
)

#: Each feed's entries in the order they entered it (see ``site.order``): the
#: post ids, one a line, oldest entry first. One row a feed, read whole by
#: every build and rewritten only when the feed gains or moves an entry.
feed_orders = sa.Table(
    "feed_orders",
    metadata,
    sa.Column("feed", sa.String(300), primary_key=True),  # "all", "tag/<slug>", ...
    sa.Column("entries", sa.Text, nullable=False),
)

#: Mail that came back (a DSN, a complaint, an unsubscribe mail, a provider's
#: webhook), by its Message-ID: processing a mailbox twice counts each once.
returns = sa.Table(
    "returns",
    metadata,
    sa.Column("message_id", sa.String(500), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("subscriber_id", sa.Integer),
    sa.Column("digest_id", sa.Integer),
    sa.Column("received", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

#: Which scheduler process may act (a lease renewed by heartbeat).
scheduler_lease = sa.Table(
    "scheduler_lease",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
)


def _v0_to_v1(conn: Connection) -> None:
    post_versions.create(conn)


def _v1_to_v2(conn: Connection) -> None:
    for table in (subscribers, digests, deliveries):
        table.create(conn)


def _v2_to_v3(conn: Connection) -> None:
    scheduler_lease.create(conn)


def _v3_to_v4(conn: Connection) -> None:
    published_terms.create(conn)


def _v4_to_v5(conn: Connection) -> None:
    returns.create(conn)
    _add_columns(conn, "deliveries", {"returned": "TEXT NOT NULL DEFAULT ''"})


def _v5_to_v6(conn: Connection) -> None:
    feed_orders.create(conn)


def _add_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """Add the columns the table lacks (a table made by this code has them already)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
    for column, kind in columns.items():
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))


def _v6_to_v7(conn: Connection) -> None:
    _add_columns(
        conn,
        "deliveries",
        {
            "claimed_by": "VARCHAR(200) NOT NULL DEFAULT ''",
            "claim_backend": "INTEGER NOT NULL DEFAULT 0",
            "lease_until": "FLOAT NOT NULL DEFAULT 0",
        },
    )


def _v7_to_v8(conn: Connection) -> None:
    _add_columns(
        conn,
        "subscribers",
        {
            "cadence": "VARCHAR(10) NOT NULL DEFAULT 'weekly'",
            "source": "VARCHAR(300) NOT NULL DEFAULT ''",
            "confirmed": "VARCHAR(40) NOT NULL DEFAULT ''",
        },
    )
    forgotten.create(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v0_to_v1,
    _v1_to_v2,
    _v2_to_v3,
    _v3_to_v4,
    _v4_to_v5,
    _v5_to_v6,
    _v6_to_v7,
    _v7_to_v8,
]
SCHEMA_VERSION = len(MIGRATIONS)


def open_engine(url: str, *, busy_seconds: float = 10.0) -> Engine:
    """Connect and migrate; a SQLite file's folder is created on first use.
    ``busy_seconds``: how long a statement waits for a lock another connection
    holds (the web app waits less, and answers 503, than a command does)."""
    shown = shown_url(url)
    if (db := sqlite_file(url)) is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublisherError(
                f"state database {shown}: cannot create its folder {db.parent}: {exc.strerror}",
                "check [state] url (or PUBLISHER_STATE_URL): its folder must be one you can write",
            ) from None
    try:
        # a send keeps a connection a worker ([smtp] connections, at most 64), beside
        # the ones its commands check out: room for all of them
        pool = {} if db is None and url.startswith("sqlite") else {"max_overflow": 80}
        engine = sa.create_engine(url, **pool)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", partial(_sqlite_pragmas, busy_seconds))
        elif engine.dialect.name == "postgresql" and busy_seconds < 10:
            timeout = int(busy_seconds * 1000)
            sa.event.listen(engine, "connect", partial(_pg_lock_timeout, timeout))
        migrate(engine)
    except ImportError as exc:  # the URL names a driver that is not installed
        raise PublisherError(
            f"state database {shown}: its driver is not installed ({exc.name or exc})",
            "for PostgreSQL: pip install 'publisher[postgres]' and a URL starting "
            "postgresql+psycopg://; otherwise install the driver the URL names",
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise PublisherError(
            f"state database {shown}: {exc.__class__.__name__}: {detail}",
            "check [state] url (or PUBLISHER_STATE_URL): sqlite:///FILE or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB, and that the database is reachable",
        ) from None
    return engine


def failure(exc: BaseException, url: str) -> PublisherError | None:
    """A failure of the database itself while in use (a full disk, a lost server,
    a lock held too long) as the user's error, or ``None`` for anything else (a bug)."""
    if not isinstance(exc, sa.exc.OperationalError):
        return None
    return PublisherError(
        f"state database {shown_url(url)}: {exc.orig or exc}",
        "make room on its disk, or check that its server is up, then run the command "
        "again (the interrupted change was rolled back)",
    )


def _pg_lock_timeout(ms: int, dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute(f"SET lock_timeout = {ms}")
    cur.close()
    dbapi_conn.commit()  # type: ignore[attr-defined]


def _sqlite_pragmas(busy_seconds: float, dbapi_conn: object, _record: object) -> None:
    """WAL with synchronous=NORMAL: a commit survives a killed process without an
    fsync per message, and readers (the web app) never block the sender."""
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
    cur.close()


def migrate(engine: Engine) -> int:
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            schema_version.create(conn)
            conn.execute(schema_version.insert().values(version=0))
        version = conn.execute(sa.select(schema_version.c.version)).scalar_one()
        if version > SCHEMA_VERSION:
            raise PublisherError(
                f"state database is at schema version {version}, newer than this publisher "
                f"({SCHEMA_VERSION})",
                "upgrade publisher, or point [state] url at another database",
            )
        for step in MIGRATIONS[version:]:
            step(conn)
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return SCHEMA_VERSION
