"""The speed seam: every output file rendered and written, serially or in forked workers.

``render_all(writer, pending, feeds, progress, jobs, meanwhile)`` is the one entry
point; nothing outside this module knows there are workers. Its rules:

- Work below ``PARALLEL_MIN`` (posts shown, summed over the files) renders in
  this process: forking costs more than it saves.
- Workers are forked (they inherit the plan, frozen out of the cyclic
  collector's reach: see ``source.load``) and write their files themselves;
  sending the output through pipes would cost more than rendering it. Each
  reports its manifest entries, which the parent merges.
- A format's documents stay in one worker (``_lanes``), which makes each
  post's fragment in that format once; Atom and RSS in two workers share the
  making of each ``FeedEntry`` (``_swap_fragments``).
- A worker that dies without a word is found (``_collect``) and fails the
  build; the others are stopped, and their temporary files removed.
- Output is byte-identical to a serial render (a test holds it so).

Measured costs and gains are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import signal
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from multiprocessing.connection import Connection
from queue import Empty
from typing import IO, TYPE_CHECKING, Any

from publisher.errors import Portable, PublisherError, portable, raise_portable
from publisher.formats import FEED_SUFFIXES
from publisher.site.writer import OutputWriter
from publisher.source.posts import Post

if TYPE_CHECKING:
    from publisher.site.artifacts import Artifact
    from publisher.site.feeds import FeedRenderer


#: Below this much work (posts shown, summed over the files: see
#: ``Artifact.shows``), forking workers costs more than it saves.
PARALLEL_MIN = 2000
CHUNK = 50


def render_all(
    writer: OutputWriter,
    pending: list[Artifact],
    feeds: FeedRenderer,
    progress: bool,
    jobs: int,
    meanwhile: Callable[[], None],
) -> None:
    """Render and write ``pending``: serially, or in forked workers when worth it.

    Workers write their files themselves (sending the output through pipes
    would cost more than rendering) and report the manifest entries. ``feeds``
    renders every feed document among ``pending``. ``meanwhile`` runs in this
    process while workers render (or after, serially).
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
        work = sum(a.shows for a in pending)
        if jobs > 1 and work >= PARALLEL_MIN and "fork" in mp.get_all_start_methods():
            _render_forked(writer, pending, feeds, jobs, advance, meanwhile)
        else:
            _announce(feeds, pending)
            for i in range(0, len(pending), CHUNK):
                advance(_write_batch(writer, pending[i : i + CHUNK]))
            meanwhile()
    finally:
        if bar:
            bar.stop()


def _announce(feeds: FeedRenderer, artifacts: Iterable[Artifact]) -> None:
    """Tell the renderer what this process will render (see ``FeedRenderer.expect``):
    in the process that renders it, so that nothing is made for a document that
    another worker renders."""
    for a in artifacts:
        if a.doc is not None:
            feeds.expect(a.doc, a.fmt)


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
            weight[suffix] += a.shows
        else:
            other += a.shows
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
    feeds: FeedRenderer,
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
            _announce(feeds, (pending[j] for j in mine))
            if me in pairs:
                _swap_fragments(pending, feeds, *pairs[me], parent)
            for i in range(0, len(mine), CHUNK):
                batch = [pending[j] for j in mine[i : i + CHUNK]]
                queue.put(("progress", me, _write_batch(writer, batch)))
            for start in _taken(cursor, len(shared), CHUNK):
                batch = [pending[j] for j in shared[start : start + CHUNK]]
                _announce(feeds, batch)
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
    renderer: FeedRenderer,
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
    for a in pending:
        posts = shown.get(_suffix(a.path))
        if posts is not None and a.doc is not None:
            for p in a.doc.posts:
                posts[p.id] = p
    both = [pid for pid in shown[".atom"] if pid in shown[".rss"]]
    if not both:
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
