"""What a build publishes: the post stream and its dates, by a full normalize or
by patching the last build's snapshot with the archives that changed.

Either way the result is a ``Plan``: the stream, each post's ``updated``,
the version rows to save, the digests sent, and how far the output may have
changed (``touched``, ``regrouped``), so that only the files that may show a
change are keyed (see ``artifacts``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import Problem, PublisherError, log_problems
from publisher.settings import Settings
from publisher.site.cache import FileStat, Snapshot, SnapshotStore, changed_files
from publisher.site.state_helper import BuildState
from publisher.site.writer import OutputWriter
from publisher.source.archive import parse_page
from publisher.source.load import load_pages
from publisher.source.posts import Post, Stream
from publisher.source.raw import ArchivePage, Copies
from publisher.store.rows import PostVersion, resolve_updated

if TYPE_CHECKING:
    from publisher.site.artifact import Artifact
    from publisher.site.artifacts import SiteListing
    from publisher.store.rows import DigestRecord

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a build publishes, and how it then records itself for the next one."""

    stream: Stream
    updated: dict[str, datetime]
    versions: list[tuple[str, PostVersion]]  # rows to save
    sent: Sequence[DigestRecord]
    #: Only files showing these posts may change (``None``: any file may).
    touched: set[str] | None
    #: Runs while render workers run (a full build pickles its snapshot then).
    stage: Callable[[], None]
    #: After the output and versions are saved: keep the snapshot, given the
    #: versions table's row count.
    record: Callable[[int], None]
    archives_read: int
    #: Families whose posts came, went or moved (see ``site.artifacts``).
    regrouped: set[str] | None = None
    #: Posts whose content changed since the last build (not the new ones).
    edited: set[str] = field(default_factory=set)
    #: Each family's entry order (see ``order_feeds``).
    orders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Families whose entry order changed: their feed documents are keyed whole.
    refed: set[str] = field(default_factory=set)
    #: Posts whose newer or older neighbour changed (their pages link to them).
    near_moved: set[str] = field(default_factory=set)
    #: The first build to page archives by entry order, over pages made by date.
    reordered: bool = False


def full_plan(
    settings: Settings,
    store: SnapshotStore,
    given: list[Path],
    files: dict[str, FileStat],
    config: str,
    inputs: str,
    state: BuildState,
    now: datetime,
    skip_invalid: bool,
    out: Path,
    parsed: dict[str, ArchivePage],
) -> Plan:
    pages, stream = load_pages(settings, given, parsed)
    report(stream.problems)
    if stream.errors and not skip_invalid:
        raise PublisherError(
            f"{len(stream.errors)} error(s) in the archives; nothing was written "
            f"(the previous output in {out} is untouched)",
            "fix the problems listed above, or publish the good posts with --skip-invalid",
        )
    if not stream.posts:
        raise PublisherError("no posts to publish", "check the archive paths")
    known = state.load_versions()
    updated, versions = resolve_updated(
        ((p.id, p.content_hash, p.published) for p in stream.posts), known, now
    )
    sent = state.sent_digests()
    # the row count is known before the rows are saved: what was there, plus the new
    rows = len(known.keys() | {pid for pid, _ in versions})
    snap = None  # a stream with errors is never patched: keep none
    if settings.build.cache and not stream.errors:
        by_file = {p.file: p for p in pages}
        snap = Snapshot(config, inputs, files, by_file, stream, updated, sent, rows)

    def stage() -> None:
        if snap is not None:
            store.stage(snap)

    def record(rows: int) -> None:
        if snap is None or rows != snap.versions:
            store.discard()  # and one an earlier build kept: it no longer describes the output
        else:
            store.commit()

    edited = {pid for pid, _ in versions if pid in known}
    read = len(files) - len(parsed)
    return Plan(stream, updated, versions, sent, None, stage, record, read, edited=edited)


def incremental_plan(
    settings: Settings,
    store: SnapshotStore,
    prior: Snapshot,
    files: dict[str, FileStat],
    inputs: str,
    state: BuildState,
    now: datetime,
    writer: OutputWriter,
) -> Plan | None:
    """Patch the last build's stream with the few archives that changed, or ``None``."""
    from publisher.source.increment import patch

    changed, gone = changed_files(prior, files)
    seen: Copies = {}
    new_pages = {n: parse_page(Path(files[n].path).read_bytes(), n, seen) for n in changed}
    # an archive gone is a page with no posts left
    emptied = {n: ArchivePage(n, prior.pages[n].kind, prior.pages[n].term) for n in gone}
    site = settings.site
    result = patch(
        prior.stream, prior.pages, new_pages | emptied, site.id_domain, site.tzinfo, settings.ids
    )
    if result is None or state.count_versions() != prior.versions:
        return None
    stream = result.stream
    report(stream.problems)
    by_id = {p.id: p for p in stream.posts if p.id in result.remade} if result.remade else {}
    known = state.load_versions(by_id)
    fresh, versions = resolve_updated(
        ((p.id, p.content_hash, p.published) for p in by_id.values()), known, now
    )
    updated = prior.updated | fresh
    touched = _touched(prior, by_id, updated)
    regrouped = _regrouped(prior.stream, stream) if result.reordered else None
    near_moved = _near_moved(prior.stream, stream) if result.reordered else set()
    sent = state.sent_digests()
    narrow = _narrow(writer, prior, sent)

    def record(rows: int) -> None:
        stats: dict[str, FileStat | None] = {n: files.get(n) for n in (*changed, *gone)}
        pages: dict[str, ArchivePage | None] = {**new_pages, **dict.fromkeys(gone)}
        store.advance(prior, result, stats, pages, inputs, fresh, rows, list(sent))

    return Plan(
        stream,
        updated,
        versions,
        sent,
        touched if narrow else None,
        lambda: None,
        record,
        len(changed),
        regrouped if narrow else None,
        {pid for pid, _ in versions if pid in known},
        near_moved=near_moved,
    )


def order_feeds(plan: Plan, state: BuildState, size: int, writer: OutputWriter) -> None:
    """Each family's entry order after this build (see ``site.order``), in
    ``plan.orders``; the orders that changed are saved (as the versions are),
    and their families' files keyed. With no order recorded before, over
    archive pages made by date (by an earlier version), ``plan.reordered``:
    this build makes them again, once (see README: Feeds)."""
    from publisher.site.artifacts import family_members
    from publisher.site.order import advance

    known = state.load_orders()
    changed = {}
    for key, members in family_members(plan.stream).items():
        was = known.get(key, ())
        plan.orders[key] = now = advance(was, members, plan.edited, size)
        if now != was:
            changed[key] = now
    state.save_orders(changed)
    # (an order only grows: a feed's files never go, so no listing of every file)
    plan.refed = set(changed)
    plan.reordered = not known and writer.records("archive/")


def _touched(prior: Snapshot, remade: dict[str, Post], updated: dict[str, datetime]) -> set[str]:
    """The remade posts whose files show a change: what of a post its files show
    (see ``SiteListing.post_key``), before and now."""
    old = {p.id: p for p in prior.stream.posts if p.id in remade}
    return {
        pid
        for pid, p in remade.items()
        if (o := old.get(pid)) is None
        or (p.slug, p.content_hash, p.published, updated[pid])
        != (o.slug, o.content_hash, o.published, prior.updated.get(pid))
    }


def _narrow(writer: OutputWriter, prior: Snapshot, sent: Sequence[DigestRecord]) -> bool:
    """Whether only the files showing a change need keying: the folder is as the last
    build left it (only its keys vouch for the rest), and no digest was planned
    since (its pages, and every page's link to the digests' feed: see
    ``SiteListing.base_key``). Otherwise every file is keyed, though the archives
    were not read again."""
    same = [d.week for d in sent] == [d.week for d in prior.sent]
    return same and writer.inputs == prior.inputs and writer.untouched()


def _near_moved(was: Stream, now: Stream) -> set[str]:
    """Posts whose newer or older neighbour on the site is another post than before."""
    from publisher.site.years import neighbours

    def ids(stream: Stream) -> dict[str, tuple[str | None, ...]]:
        return {
            pid: tuple(p.id if p else None for p in (n.newer, n.older))
            for pid, n in neighbours(stream.posts).items()
        }

    before, after = ids(was), ids(now)
    return {pid for pid, near in after.items() if before.get(pid) != near}


def _regrouped(was: Stream, now: Stream) -> set[str]:
    """Posts came, went or moved: the families whose lists changed."""
    from publisher.site.artifacts import family_members

    before, after = family_members(was), family_members(now)
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def pending(listing: SiteListing, plan: Plan, writer: OutputWriter) -> list[Artifact] | None:
    """The files to render: listed by ``listing``, less those whose key is unchanged;
    ``None`` when a file to keep is not the writer's own."""
    todo = []
    for a in listing.artifacts(plan.touched, plan.regrouped, plan.refed, plan.near_moved):
        if a.keep:
            if not writer.keep(a.path):
                return None
        elif not writer.is_current(a.path, a.key):
            todo.append(a)
    return todo


def report(problems: Sequence[Problem]) -> None:
    log_problems(log, problems)
