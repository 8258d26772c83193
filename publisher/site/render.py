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
  post's fragment in that format once.
- A worker that dies without a word is found (``_collect``) and fails the
  build; the others are stopped, and their temporary files removed.
- Output is byte-identical to a serial render (a test holds it so).

Measured costs and gains are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from queue import Empty
from typing import TYPE_CHECKING, Any

from publisher.errors import PublisherError
from publisher.formats import FEED_SUFFIXES
from publisher.site.forks import Portable, die_with, portable, raise_portable
from publisher.site.writer import OutputWriter

if TYPE_CHECKING:
    from publisher.site.artifact import Artifact
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
    worker would finish last) each format has its own, and each makes its own
    ``FeedEntry``. (Passing fragments between the Atom and RSS workers, so that
    each ``FeedEntry`` was made once, bought 4% of a feeds-only build: it was
    removed; see ``benchmarks/README.md``.)
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

    def work(me: int, mine: list[int]) -> None:
        die_with(parent)
        try:
            mark = writer.mark()
            _announce(feeds, (pending[j] for j in mine))
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


def _collect(
    procs: Sequence[mp.process.BaseProcess],
    queue: mp.queues.Queue[tuple[str, int, Any]],
    writer: OutputWriter,
    advance: Callable[[int], None],
) -> Portable | None:
    """The workers' reports until each is done, their manifest entries merged into
    ``writer``; or the first failure (the caller then stops the others).

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
            failure: Portable = payload
            return failure
    return None


def _died(proc: mp.process.BaseProcess) -> PublisherError:
    code = proc.exitcode or 0
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
    hint = " (often the system out of memory: --jobs 1 uses less)" if code == -9 else ""
    return PublisherError(
        f"a render worker {how} before it finished{hint}",
        "build again: files written so far are whole, and the next build writes the rest",
    )
