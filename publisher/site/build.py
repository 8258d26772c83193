"""``publisher build``: the post stream -> feeds, pages and OPML in the output folder.

Each output file is an *artifact*: a path, a key digesting everything it is
made from, and a function that renders it. Artifacts whose key matches the
manifest are skipped without rendering; an unchanged rebuild stops before
parsing at all. After an edit, the last build's snapshot (``snapshot``) lets
the build re-read only the archives that changed (``increment``) and key only
the files that show a changed post.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.errors import PublisherError
from publisher.formats import FEED_SUFFIXES
from publisher.settings import Settings
from publisher.site.cache import FORMAT as SNAPSHOT_FORMAT
from publisher.site.cache import FileStat, SnapshotStore
from publisher.site.plan import Plan, full_plan, incremental_plan, order_feeds, pending
from publisher.site.render import render_all
from publisher.site.state_helper import BuildState
from publisher.site.writer import OutputWriter
from publisher.source.files import archive_files, display_name
from publisher.store.locks import exclusive
from publisher.store.paths import stamp_path
from publisher.text import fingerprint, folder_fingerprint

if TYPE_CHECKING:
    from publisher.site.artifact import Artifact
    from publisher.site.artifacts import SiteListing

log = logging.getLogger(__name__)

# feeds and pages pull in feedgen, lxml and Jinja2, the state database
# SQLAlchemy (in a helper process: see state_helper): all of them after the
# "nothing changed" check, not before.


@dataclass(frozen=True)
class BuildResult:
    posts: int
    written: int
    unchanged: int
    removed: int
    seconds: float
    changed: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    up_to_date: bool = False
    #: Archives parsed: all of them, or (incrementally) the ones that changed.
    archives_read: int = 0
    archives: int = 0
    #: The first build to page archives by entry order, over pages made by date.
    reordered: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return f"nothing changed: {self.unchanged} files up to date ({self.seconds:.2f} s)"
        read = f"{self.archives_read} of {self.archives} archives read, "
        line = (
            f"{self.posts} posts: {self.written} files written, {self.unchanged} unchanged, "
            f"{self.removed} removed ({read}{self.seconds:.2f} s)"
        )
        if self.reordered:
            line += (
                "; archive pages now follow the order entries entered each feed and were "
                "rewritten this once (README: Feeds)"
            )
        return line


def _stamp(settings: Settings) -> tuple[int, int] | None:
    """The state stamp's stat: a digest sent since the last build changes the site."""
    try:
        st = stamp_path(settings.state.url).stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def build(
    settings: Settings,
    paths: list[Path],
    out: Path,
    *,
    skip_invalid: bool = False,
    progress: bool = False,
    jobs: int = 0,
    now: datetime | None = None,
    full: bool = False,
    overwrite: bool = False,
    state_helper: bool = False,
) -> BuildResult:
    """Build the site into ``out``, one build at a time (see ``_build``): a build
    started while another writes the folder (the scheduler's publish job and one
    run by hand, say) waits for it, then finds what it left. The lock is beside
    the build's snapshot, so a build that fails creates nothing in ``out``, and
    goes with the build, whether it ends well or not."""
    _check_output(out)
    store = SnapshotStore(settings.state.url, out)
    lock: Path | None = store.base.with_suffix(".lock")
    try:
        store.base.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # the state folder: the state database reports it, with its remedy
        lock = None

    def wait() -> None:
        log.warning("waiting for another build of %s to finish", out)

    with exclusive(lock, wait, remove=True) if lock else nullcontext():
        return _build(
            settings,
            paths,
            out,
            store,
            skip_invalid=skip_invalid,
            progress=progress,
            jobs=jobs,
            now=now,
            full=full,
            overwrite=overwrite,
            state_helper=state_helper,
        )


def _check_output(out: Path) -> None:
    """``out`` is a folder this process may write, or can be made one."""
    there = out
    while not there.exists() and there != there.parent:
        there = there.parent
    if there.is_dir() and os.access(there, os.W_OK | os.X_OK):
        return
    why = "not a folder" if not there.is_dir() else "not writable"
    raise PublisherError(
        f"output folder {out}: {there} is {why}",
        "check --out or [build] output: it must be a folder you can write",
    )


@dataclass(frozen=True)
class _Inputs:
    """What a build is made from, read by stat alone: a no-change build reads no more."""

    given: list[Path]  # archive files, named as given (problems and sources say so)
    files: dict[str, FileStat]
    config: str  # the key of everything but the archives
    key: str  # and with the archives


def _inputs(settings: Settings, paths: list[Path], skip_invalid: bool) -> _Inputs:
    given = archive_files(paths)
    files: dict[str, FileStat] = {}
    for f in given:
        real = f.resolve()  # once a file
        files[display_name(f, real)] = FileStat.of(real)
    config = fingerprint(
        __version__,
        SNAPSHOT_FORMAT,
        settings.build_key(),  # only the settings that change the output
        folder_fingerprint(*settings.template_dirs),
        skip_invalid,
        os.getcwd(),  # file names in the stream are relative to it
    )
    # a digest planned since the last build changes the site (its web copy), but not
    # what the snapshot holds: the incremental build reads the digests afresh
    key = fingerprint(config, sorted(files.items()), _stamp(settings))
    return _Inputs(given, files, config, key)


def _build(
    settings: Settings,
    paths: list[Path],
    out: Path,
    store: SnapshotStore,
    *,
    skip_invalid: bool,
    progress: bool,
    jobs: int,
    now: datetime | None,
    full: bool,
    overwrite: bool,
    state_helper: bool,
) -> BuildResult:
    """Build the site. ``now`` is only used to date posts edited since the last build;
    ``full`` reads every archive whatever their stat and the snapshot say (for an
    archive replaced by one of the same size and time); a new snapshot is kept.
    ``overwrite`` lets it replace files in ``out`` that no manifest records.

    Three ways, cheapest first: nothing changed (by stat and manifest: stop);
    the last build's snapshot explains the archives that changed, came or went
    (re-read those, patch the posts they reach, key only files that may show
    them); or a full normalize (of the snapshot's pages of unchanged archives
    and the rest parsed anew). Each writes only files whose key changed.
    """
    start = perf_counter()
    inputs = _inputs(settings, paths, skip_invalid)
    writer = OutputWriter(out)
    if not full and writer.up_to_date(inputs.key):
        return BuildResult(0, 0, writer.known_files, 0, perf_counter() - start, (), up_to_date=True)
    now = now or datetime.now(settings.site.tzinfo)
    now = now.astimezone(timezone(now.utcoffset() or timedelta(0)))
    # the state database is opened meanwhile, in a helper process (see there)
    with BuildState(settings.state.url, helper=state_helper) as state:
        plan = _plan(settings, store, inputs, state, now, writer, full, skip_invalid, out)
        order_feeds(plan, state, settings.build.feed_max_items, writer)
        # saved by the helper while this process lists the files (see ``meanwhile``)
        state.save_versions(plan.versions)
        state.save_terms([(t.kind, t.slug, t.name) for t in plan.stream.terms.values()])
        from publisher.site.artifacts import SiteListing  # feedgen, lxml: after the check

        listing = SiteListing(settings, plan.stream, plan.updated, plan.sent, plan.orders)
        writer, todo = _todo(listing, plan, writer, out)
        writer.claim((a.path for a in todo), overwrite=overwrite)
        _write(writer, todo, listing, plan, state, store, inputs.key, progress, jobs)
    if settings.site.websub_hub:
        _ping(settings, writer.changed)
    c = writer.counts
    return BuildResult(
        len(plan.stream.posts),
        c.written,
        c.unchanged,
        c.removed,
        perf_counter() - start,
        tuple(writer.changed),
        tuple(plan.stream.skipped),
        archives_read=plan.archives_read,
        archives=len(inputs.files),
        reordered=plan.reordered,
    )


def _write(
    writer: OutputWriter,
    todo: list[Artifact],
    listing: SiteListing,
    plan: Plan,
    state: BuildState,
    store: SnapshotStore,
    key: str,
    progress: bool,
    jobs: int,
) -> None:
    """Render and write ``todo``, then the manifest, then the snapshot; a failure
    anywhere discards the snapshot, so the next build reads every archive."""

    def meanwhile() -> None:
        """While the render workers run: keep the snapshot, see the posts' versions
        saved.

        The versions are what this build saw: if writing then fails, the next
        build dates an edit from this one, which saw it first (and, finding no
        snapshot, reads every archive).
        """
        plan.stage()
        state.flush()

    try:
        render_all(writer, todo, listing.feeds, progress, jobs or os.cpu_count() or 1, meanwhile)
        if plan.touched is not None and plan.regrouped is None:
            writer.keep_unlisted()
        writer.finish(key)
        plan.record(state.count_versions())
    except BaseException:
        store.discard()
        raise


def _plan(
    settings: Settings,
    store: SnapshotStore,
    inputs: _Inputs,
    state: BuildState,
    now: datetime,
    writer: OutputWriter,
    full: bool,
    skip_invalid: bool,
    out: Path,
) -> Plan:
    """Patch the last build's snapshot if it explains every change, else a full plan."""
    prior = None if full or not settings.build.cache else store.load(inputs.config)
    if prior is not None:
        plan = incremental_plan(
            settings, store, prior, inputs.files, inputs.key, state, now, writer
        )
        if plan is not None:
            return plan
    # what the snapshot parsed of archives unchanged since still holds
    files = inputs.files
    parsed = {}
    if prior is not None:
        parsed = {n: p for n, p in prior.pages.items() if prior.files.get(n) == files.get(n)}
    del prior  # the rest is not kept through a full build's peak
    return full_plan(
        settings,
        store,
        inputs.given,
        files,
        inputs.config,
        inputs.key,
        state,
        now,
        skip_invalid,
        out,
        parsed,
    )


def _todo(
    listing: SiteListing, plan: Plan, writer: OutputWriter, out: Path
) -> tuple[OutputWriter, list[Artifact]]:
    """The files to render, in render order, and the writer that knows the rest."""
    todo = pending(listing, plan, writer)
    if todo is None:  # a kept file the manifest does not know: key everything
        writer = OutputWriter(out)
        plan.touched = plan.regrouped = None
        todo = pending(listing, plan, writer)
        assert todo is not None
    todo.sort(key=lambda a: a.order)  # stable: the same order every build
    return writer, todo


def _ping(settings: Settings, changed: list[str]) -> None:
    """Tell the WebSub hub which subscription documents changed (archives never do)."""
    from publisher.site.websub import ping_hub

    feeds = [
        settings.site.base_url + rel
        for rel in changed
        if not rel.startswith("archive/") and rel.endswith(FEED_SUFFIXES)
    ]
    ping_hub(settings.site.websub_hub, feeds)
