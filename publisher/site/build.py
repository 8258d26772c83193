"""``publisher build``: the post stream -> feeds, pages and OPML in the output folder.

Each output file is an *artifact*: a path, a key digesting everything it is
made from, and a function that renders it. Artifacts whose key matches the
manifest are skipped without rendering; an unchanged rebuild stops before
parsing at all. After an edit, the last build's snapshot (``snapshot``) lets
the build re-read only the archives that changed (``increment``) and key only
the files that show a changed post.
"""

from __future__ import annotations

import argparse
import mmap
import multiprocessing as mp
import os
import signal
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from queue import Empty
from time import perf_counter
from typing import IO, TYPE_CHECKING, Any

from publisher import __version__
from publisher.errors import Portable, Problem, PublisherError, portable, raise_portable
from publisher.formats import FEED_SUFFIXES
from publisher.settings import Settings
from publisher.site.cache import FORMAT as SNAPSHOT_FORMAT
from publisher.site.cache import FileStat, Snapshot, SnapshotStore, changed_files
from publisher.site.state_helper import BuildState
from publisher.site.writer import OutputWriter
from publisher.source.archive import ArchivePage, Copies, archive_files, display_name, parse_page
from publisher.source.load import load_pages, no_cyclic_gc
from publisher.source.posts import Post, Stream
from publisher.store.locks import exclusive
from publisher.store.paths import stamp_path
from publisher.store.rows import PostVersion, resolve_updated
from publisher.text import digest, folder_digest

if TYPE_CHECKING:
    from publisher.site.plan import Artifact
    from publisher.store.rows import DigestRecord

# feeds and pages pull in feedgen, lxml and Jinja2 (~0.15 s of imports), the state
# database SQLAlchemy (~0.2 s, in a helper process: see build_state): all of them
# after the "nothing changed" check, not before.


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

    def summary(self) -> str:
        if self.up_to_date:
            return f"nothing changed: {self.unchanged} files up to date ({self.seconds:.2f} s)"
        read = f"{self.archives_read} of {self.archives} archives read, "
        return (
            f"{self.posts} posts: {self.written} files written, {self.unchanged} unchanged, "
            f"{self.removed} removed ({read}{self.seconds:.2f} s)"
        )


def _stamp(settings: Settings) -> tuple[int, int] | None:
    """The state stamp's stat: a digest sent since the last build changes the site."""
    try:
        st = stamp_path(settings.state.url).stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def run_build(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(settings.build.output)
    if args.no_cache:
        settings = replace(settings, build=replace(settings.build, cache=False))
    paths = list(args.paths) or [Path(settings.build.seeds)]
    progress = sys.stderr.isatty() and not args.quiet
    result = build(
        settings,
        paths,
        out,
        skip_invalid=args.skip_invalid,
        progress=progress,
        jobs=args.jobs,
        full=args.full,
        overwrite=args.overwrite,
    )
    for line in result.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(result.summary())
    return 0


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
) -> BuildResult:
    """Build the site into ``out``, one build at a time (see ``_build``): a build
    started while another writes the folder (the scheduler's publish job and one
    run by hand, say) waits for it, then finds what it left. The lock is beside
    the build's snapshot, so a build that fails creates nothing in ``out``."""
    _check_output(out)
    store = SnapshotStore(settings.state.url, out)
    lock: Path | None = store.base.with_suffix(".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # the state folder: the state database reports it, with its remedy
        lock = None

    def wait() -> None:
        print(f"waiting for another build of {out} to finish", file=sys.stderr)

    with exclusive(lock, wait) if lock else nullcontext():
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
    given = archive_files(paths)  # names in problems and sources are as given
    files: dict[str, FileStat] = {}
    for f in given:
        real = f.resolve()  # once a file: this loop is all a no-change build reads
        files[display_name(f, real)] = FileStat.of(real)
    config = digest(
        __version__,
        SNAPSHOT_FORMAT,
        repr(settings),
        folder_digest(*settings.template_dirs),
        skip_invalid,
        _stamp(settings),
        os.getcwd(),  # file names in the stream are relative to it
    )
    inputs = digest(config, sorted(files.items()))
    writer = OutputWriter(out)
    if not full and writer.up_to_date(inputs):
        return BuildResult(0, 0, writer.known_files, 0, perf_counter() - start, (), up_to_date=True)
    now = now or datetime.now(settings.site.tzinfo)
    now = now.astimezone(timezone(now.utcoffset() or timedelta(0)))
    # the state database is opened meanwhile, in a helper process (see there)
    with BuildState(settings.state.url) as state:
        plan = None
        # The cyclic collector stays off while ~10^6 acyclic objects come in (the
        # snapshot or the parsed archives, the artifacts), which are then frozen:
        # neither this process nor the forked render workers walk them again (see
        # ``no_cyclic_gc``; each walk took 0.04-0.09 s at 10,000 posts).
        with no_cyclic_gc(freeze=True):
            prior = None if full or not settings.build.cache else store.load(config)
            if prior is not None:
                plan = _incremental(settings, store, prior, files, inputs, state, now, writer)
            if plan is None:
                # what the snapshot parsed of archives unchanged since still holds
                parsed = {}
                if prior is not None:
                    parsed = {
                        n: p for n, p in prior.pages.items() if prior.files.get(n) == files.get(n)
                    }
                prior = None  # the rest is not kept through a full build's peak
                plan = _full(
                    settings,
                    store,
                    given,
                    files,
                    config,
                    inputs,
                    state,
                    now,
                    skip_invalid,
                    out,
                    parsed,
                )
            stream = plan.stream
            # saved by the helper while this process lists the files (see ``meanwhile``)
            state.save_versions(plan.versions)
            state.save_terms([(t.kind, t.slug, t.name) for t in stream.terms.values()])
            pending = _pending(settings, plan, writer)
            if pending is None:  # a kept file the manifest does not know: key everything
                writer = OutputWriter(out)
                plan.touched = plan.regrouped = None
                pending = _pending(settings, plan, writer)
                assert pending is not None
            pending.sort(key=lambda a: a.order)  # stable: the same order every build
            writer.claim((a.path for a in pending), overwrite=overwrite)

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
            _render_all(writer, pending, progress, jobs or os.cpu_count() or 1, meanwhile)
            if plan.touched is not None and plan.regrouped is None:
                writer.keep_unlisted()
            writer.finish(inputs)
            plan.record(state.count_versions())
        except BaseException:
            store.discard()
            raise
    if settings.site.websub_hub:
        from publisher.site.websub import ping_hub

        feeds = [
            settings.site.base_url + rel
            for rel in writer.changed
            if not rel.startswith("archive/") and rel.endswith(FEED_SUFFIXES)
        ]
        ping_hub(settings.site.websub_hub, feeds)
    c = writer.counts
    return BuildResult(
        len(stream.posts),
        c.written,
        c.unchanged,
        c.removed,
        perf_counter() - start,
        tuple(writer.changed),
        tuple(stream.skipped),
        archives_read=plan.archives_read,
        archives=len(files),
    )


@dataclass
class _Plan:
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


def _full(
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
) -> _Plan:
    pages, stream = load_pages(settings, given, parsed)
    _report(stream.problems)
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

    return _Plan(stream, updated, versions, sent, None, stage, record, len(files) - len(parsed))


def _incremental(
    settings: Settings,
    store: SnapshotStore,
    prior: Snapshot,
    files: dict[str, FileStat],
    inputs: str,
    state: BuildState,
    now: datetime,
    writer: OutputWriter,
) -> _Plan | None:
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
    _report(stream.problems)
    by_id = {p.id: p for p in stream.posts if p.id in result.remade} if result.remade else {}
    fresh, versions = resolve_updated(
        ((p.id, p.content_hash, p.published) for p in by_id.values()),
        state.load_versions(by_id),
        now,
    )
    updated = prior.updated | fresh
    # what of a post its files show (see ``site.artifacts``' post keys), before and now
    old = {p.id: p for p in prior.stream.posts if p.id in by_id}
    shown = {pid: (p.slug, p.content_hash, p.published, updated[pid]) for pid, p in by_id.items()}
    touched = {
        pid
        for pid, now_shown in shown.items()
        if (o := old.get(pid)) is None
        or now_shown != (o.slug, o.content_hash, o.published, prior.updated.get(pid))
    }
    regrouped = None
    if result.reordered:  # posts came, went or moved: which families' lists changed
        from publisher.site.plan import family_members

        was, now_in = family_members(prior.stream), family_members(stream)
        regrouped = {k for k in was.keys() | now_in.keys() if was.get(k) != now_in.get(k)}
    # files only this build's keys can vouch for: the folder must be as the last build left it
    narrow = writer.inputs == prior.inputs and writer.untouched()

    def record(rows: int) -> None:
        stats: dict[str, FileStat | None] = {n: files.get(n) for n in (*changed, *gone)}
        pages: dict[str, ArchivePage | None] = {**new_pages, **dict.fromkeys(gone)}
        store.advance(prior, result, stats, pages, inputs, fresh, rows)

    return _Plan(
        stream,
        updated,
        versions,
        prior.sent,
        touched if narrow else None,
        lambda: None,
        record,
        len(changed),
        regrouped if narrow else None,
    )


def _pending(settings: Settings, plan: _Plan, writer: OutputWriter) -> list[Artifact] | None:
    """The files to render: listed by ``artifacts``, less those whose key is unchanged."""
    from publisher.site.plan import artifacts

    pending = []
    for a in artifacts(
        settings, plan.stream, plan.updated, plan.sent, plan.touched, plan.regrouped
    ):
        if a.keep:
            if not writer.keep(a.path):
                return None
        elif not writer.is_current(a.path, a.key):
            pending.append(a)
    return pending


def _report(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


#: Below this much work (posts shown, summed over the files: see
#: ``Artifact.weight``), forking workers costs more than it saves.
PARALLEL_MIN = 2000
CHUNK = 50


def _render_all(
    writer: OutputWriter,
    pending: list[Artifact],
    progress: bool,
    jobs: int,
    meanwhile: Callable[[], None],
) -> None:
    """Render and write ``pending``: serially, or in forked workers when worth it.

    Workers write their files themselves (sending ~0.5 GB of output through
    pipes would cost more than rendering) and report the manifest entries.
    ``meanwhile`` runs in this process while workers render (or after, serially).
    """
    bar = None
    if progress and len(pending) > 200:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("writing", total=len(pending))

    def advance(n: int) -> None:
        if bar:
            bar.advance(task, n)

    try:
        work = sum(a.weight for a in pending)
        if jobs > 1 and work >= PARALLEL_MIN and "fork" in mp.get_all_start_methods():
            _render_forked(writer, pending, jobs, advance, meanwhile)
        else:
            _announce(pending)
            for i in range(0, len(pending), CHUNK):
                advance(_write_batch(writer, pending[i : i + CHUNK]))
            meanwhile()
    finally:
        if bar:
            bar.stop()


def _announce(artifacts: Iterable[Artifact]) -> None:
    """Tell the renderers what this process will render (see ``FeedRenderer.expect``):
    in the process that renders it, so that nothing is made for a document that
    another worker renders."""
    for a in artifacts:
        if a.will_render is not None:
            a.will_render()


def _suffix(path: str) -> str:
    return path[path.rfind(".") :]


def _lanes(pending: list[Artifact], jobs: int) -> dict[str, int]:
    """Which worker renders the documents of each feed format.

    A format's documents stay in one worker, which makes each post's fragment in
    that format once. Atom and RSS fragments made together share their
    ``FeedEntry`` (a third of the cost of each), so with two workers they go to
    one when the rest (JSON Feed, pages) can keep the other busy as long.
    Otherwise (a build of feeds only; three workers or more, where that one
    worker would finish last) each format has its own, and the Atom and RSS
    workers still make each ``FeedEntry`` once: each makes both fragments of
    the posts it takes and passes the other over (``_swap_fragments``).
    """
    weight = dict.fromkeys(FEED_SUFFIXES, 0)
    other = 0
    for a in pending:
        suffix = _suffix(a.path)
        if suffix in weight:
            weight[suffix] += a.weight
        else:
            other += a.weight
    xml = weight[".atom"] + weight[".rss"]
    if jobs == 2 and weight[".json"] + other >= xml // 2:
        return {".atom": 0, ".rss": 0, ".json": 1}
    return {".atom": 0, ".rss": 1 % jobs, ".json": 2 % jobs}


def _write_batch(writer: OutputWriter, batch: list[Artifact]) -> int:
    for a in batch:
        writer.write(a.path, a.key, a.render())
    return len(batch)


def _render_forked(
    writer: OutputWriter,
    pending: list[Artifact],
    jobs: int,
    advance: Callable[[int], None],
    meanwhile: Callable[[], None],
) -> None:
    # each worker takes the feed documents of its lane (see ``_lanes``); everything
    # else is shared out to whichever worker is free
    ctx = mp.get_context("fork")
    lane_of = _lanes(pending, jobs)
    lanes: list[list[int]] = [[] for _ in range(jobs)]
    shared: list[int] = []
    for i, a in enumerate(pending):
        lane = lane_of.get(_suffix(a.path))
        (lanes[lane] if lane is not None else shared).append(i)
    cursor = ctx.Value("l", 0)
    queue = ctx.Queue()
    parent = os.getpid()
    pairs: dict[int, _Partner] = {}  # set before the workers start

    def work(me: int, mine: list[int]) -> None:
        try:
            mark = writer.mark()
            _announce(pending[j] for j in mine)
            if me in pairs:
                _swap_fragments(pending, *pairs[me], parent)
            for i in range(0, len(mine), CHUNK):
                batch = [pending[j] for j in mine[i : i + CHUNK]]
                queue.put(("progress", me, _write_batch(writer, batch)))
            for start in _taken(cursor, len(shared), CHUNK):
                batch = [pending[j] for j in shared[start : start + CHUNK]]
                _announce(batch)
                queue.put(("progress", me, _write_batch(writer, batch)))
            queue.put(("done", me, writer.since(mark)))
        except BaseException as exc:  # noqa: BLE001 - the parent raises it (once)
            queue.put(("error", me, portable(exc)))

    procs = [ctx.Process(target=work, args=(i, lane), daemon=True) for i, lane in enumerate(lanes)]
    with ExitStack() as stack:
        pairs = _partners(ctx, lane_of, stack)
        for p in procs:
            p.start()
        try:
            meanwhile()  # progress reports wait in the queue
            failure = _collect(procs, queue, writer, advance)
        finally:
            for p in procs:  # after an error here or in a worker, the others stop writing
                if p.is_alive():
                    p.terminate()
                p.join()
                if p.exitcode and p.pid is not None:  # killed mid-write: its temporary file
                    writer.remove_temporary(p.pid)
    if failure is not None:
        raise_portable(failure, "a render worker")


def _taken(count: Any, total: int, step: int) -> Iterator[int]:
    """Where the slices of ``range(total)`` start that this process takes, ``step`` at
    a time, from ``count`` (an ``mp.Value`` the other workers take from too), until
    none is left."""
    while True:
        with count.get_lock():
            start = count.value
            count.value += step
        if start >= total:
            return
        yield start


#: Seconds between checks that every render worker that has not reported is alive.
WORKER_POLL = 0.5

#: A worker's share in passing fragments (see ``_swap_fragments``): its format, the
#: pipe to its partner, the file it writes, the one its partner writes, and the
#: count of posts taken so far by either (see ``_taken``).
_Partner = tuple[str, Connection, IO[bytes], IO[bytes], Any]
#: Posts a worker takes at a time in ``_swap_fragments`` (~20 ms of work).
SWAP_CHUNK = 250


def _partners(ctx: Any, lane_of: dict[str, int], stack: ExitStack) -> dict[int, _Partner]:
    """With Atom and RSS in two workers, what each needs to pass the other half the
    posts' fragments, by worker; files closed by ``stack``."""
    atom, rss = lane_of.get(".atom"), lane_of.get(".rss")
    if atom is None or rss is None or atom == rss:
        return {}
    to_rss, to_atom = ctx.Pipe()
    # unnamed files: gone with the last process holding them, however it ends
    for_rss, for_atom = (
        stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
        for _ in range(2)
    )
    taken = ctx.Value("l", 0)
    return {
        atom: ("atom", to_rss, for_rss, for_atom, taken),
        rss: ("rss", to_atom, for_atom, for_rss, taken),
    }


def _swap_fragments(
    pending: list[Artifact],
    fmt: str,
    partner: Connection,
    outbox: IO[bytes],
    inbox: IO[bytes],
    taken: Any,
    parent: int,
) -> None:
    """In the worker rendering the ``fmt`` documents: make both XML fragments of
    some of the posts shown in both Atom and RSS documents, pass the other
    format's to the partner, take the partner's of the rest.

    The two workers take chunks of posts in turn from a shared count, in the
    order the documents list them, until none is left; so both finish within a
    chunk of each other, however unevenly the CPUs serve them (a fixed half
    each left one waiting on the other for up to a tenth of the build). Both
    list the same posts in the same order from the same ``pending``, so only
    the fragments cross: written to ``outbox`` as they are made, their lengths
    sent when all are, with the chunks they belong to; then the partner's are
    read from ``inbox`` in one piece and sliced, not copied. A format's
    fragments are thus never held twice (through a pipe, a worker would hold
    what it sends, what it receives and a copy of that: ~60 MB more at 10,000
    posts).
    """
    shown: dict[str, dict[str, Post]] = {".atom": {}, ".rss": {}}
    renderer = None
    for a in pending:
        posts = shown.get(_suffix(a.path))
        if posts is not None and a.feed is not None:
            renderer, listed = a.feed
            for p in listed:
                posts[p.id] = p
    both = [pid for pid in shown[".atom"] if pid in shown[".rss"]]
    if renderer is None or not both:
        return
    mine: list[int] = []  # where the chunks this worker took start in ``both``
    lengths = array("Q")
    fd, at = outbox.fileno(), 0
    for start in _taken(taken, len(both), SWAP_CHUNK):
        mine.append(start)
        chunk = both[start : start + SWAP_CHUNK]
        for fragment in renderer.share([shown[".atom"][pid] for pid in chunk], keep=fmt):
            lengths.append(len(fragment))
            at += os.pwrite(fd, fragment, at)  # a regular file: written whole
    os.pwrite(fd, lengths, at)  # then their lengths
    partner.send((at, mine))  # a few bytes: sent without waiting for the partner to read
    while not partner.poll(WORKER_POLL):  # a partner that fails ends this process
        if os.getppid() != parent:  # (see ``_collect``); so does the build's end
            raise SystemExit(1)
    size, theirs = partner.recv()
    if not size:  # the partner took no posts (and an empty file cannot be mapped)
        return
    fd = inbox.fileno()
    ids = [pid for start in theirs for pid in both[start : start + SWAP_CHUNK]]
    got = array("Q", os.pread(fd, len(ids) * lengths.itemsize, size))
    # mapped, not read: the fragments are written out from the file's own pages,
    # without a copy of them (~20 MB at 10,000 posts) and its page faults here
    view, at = memoryview(mmap.mmap(fd, size, prot=mmap.PROT_READ)), 0
    fragments = {}
    for pid, n in zip(ids, got, strict=True):
        fragments[pid] = view[at : at + n]
        at += n
    renderer.adopt(fmt, fragments)


def _collect(
    procs: Sequence[mp.process.BaseProcess],
    queue: mp.queues.Queue,
    writer: OutputWriter,
    advance: Callable[[int], None],
) -> Portable | None:
    """The workers' reports until each is done, their manifest entries merged into
    ``writer``; or the first failure (the caller then stops the others, which
    may be waiting on the one that failed: see ``_swap_fragments``).

    A worker can die without a word (the kernel's out-of-memory killer, a
    ``kill -9``): waiting on the queue alone would wait forever, holding the
    build lock, so a worker found dead before it reported is a failure too.
    """
    finished: set[int] = set()
    while len(finished) < len(procs):
        try:
            kind, me, payload = queue.get(timeout=WORKER_POLL)
        except Empty:
            for i, p in enumerate(procs):
                # a worker flushes its reports before it exits: one gone without
                # them (and none waiting) died
                if i not in finished and p.exitcode is not None and queue.empty():
                    return portable(_died(p))
            continue
        if kind == "progress":
            advance(payload)
        elif kind == "done":
            writer.merge(*payload)
            finished.add(me)
        else:
            return payload
    return None


def _died(proc: mp.process.BaseProcess) -> PublisherError:
    code = proc.exitcode or 0
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
    hint = " (often the system out of memory: --jobs 1 uses less)" if code == -9 else ""
    return PublisherError(
        f"a render worker {how} before it finished{hint}",
        "build again: files written so far are whole, and the next build writes the rest",
    )
