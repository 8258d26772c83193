"""``publisher build``: the post stream -> feeds, pages and OPML in the output folder.

Each output file is an *artifact*: a path, a key digesting everything it is
made from, and a function that renders it. Artifacts whose key matches the
manifest are skipped without rendering, which is what makes a rebuild after a
one-post edit cheap; an unchanged rebuild stops before parsing at all.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.archive import archive_files
from publisher.errors import PublisherError
from publisher.output import OutputWriter
from publisher.pipeline import load_stream
from publisher.settings import Settings
from publisher.state_stamp import stamp_path
from publisher.text import digest, folder_digest

if TYPE_CHECKING:
    from publisher.site import Artifact

# feeds/pages/state pull in feedgen, lxml, Jinja2 and SQLAlchemy (~0.3 s of
# imports): they are imported after the "nothing changed" check, not before.
FEED_SUFFIXES = (".atom", ".rss", ".json")


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

    def summary(self) -> str:
        if self.up_to_date:
            return f"nothing changed: {self.unchanged} files up to date ({self.seconds:.2f} s)"
        return (
            f"{self.posts} posts: {self.written} files written, {self.unchanged} unchanged, "
            f"{self.removed} removed ({self.seconds:.2f} s)"
        )


def fingerprint(settings: Settings, files: list[Path], skip_invalid: bool) -> str:
    """Everything a build reads, by stat for archives and by content for templates."""
    stats = []
    for f in files:
        st = f.stat()
        stats.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    stamp = stamp_path(settings.state.url)
    if stamp.exists():
        st = stamp.stat()
        stats.append((str(stamp), st.st_size, st.st_mtime_ns))
    templates = folder_digest(settings.templates_dir)
    return digest(__version__, repr(settings), stats, templates, skip_invalid)


def run_build(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(settings.build.output)
    paths = list(args.paths) or [Path(settings.build.seeds)]
    progress = sys.stderr.isatty() and not args.quiet
    result = build(
        settings, paths, out, skip_invalid=args.skip_invalid, progress=progress, jobs=args.jobs
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
) -> BuildResult:
    """Build the site. ``now`` is only used to date posts edited since the last build."""
    start = perf_counter()
    files = archive_files(paths)
    inputs = fingerprint(settings, files, skip_invalid)
    writer = OutputWriter(out)
    if writer.up_to_date(inputs):
        return BuildResult(
            0,
            0,
            writer.known_files,
            0,
            perf_counter() - start,
            (),
            up_to_date=True,
        )
    site = settings.site
    stream = load_stream(settings, files)
    for problem in stream.problems:
        print(problem, file=sys.stderr)
    if stream.errors and not skip_invalid:
        raise PublisherError(
            f"{len(stream.errors)} error(s) in the archives; nothing was written "
            f"(the previous output in {out} is untouched)",
            "fix the problems listed above, or publish the good posts with --skip-invalid",
        )
    if not stream.posts:
        raise PublisherError("no posts to publish", "check the archive paths")
    from publisher.ledger import Ledger
    from publisher.site import artifacts
    from publisher.state import load_versions, open_engine, resolve_updated, save_versions

    engine = open_engine(settings.state.url)
    now = now or datetime.now(site.tzinfo)
    now = now.astimezone(timezone(now.utcoffset() or timedelta(0)))
    updated, changed = resolve_updated(
        ((p.id, p.content_hash, p.published) for p in stream.posts), load_versions(engine), now
    )
    sent = Ledger(engine).sent_digests()
    pending = [
        a
        for a in artifacts(settings, stream, updated, sent)
        if not writer.is_current(a.path, a.key)
    ]
    for a in pending:
        if a.will_render is not None:
            a.will_render()
    pending.sort(key=lambda a: a.order)  # stable: the same order every build
    _render_all(writer, pending, progress, jobs or os.cpu_count() or 1)
    writer.finish(inputs)
    save_versions(engine, changed)
    engine.dispose()
    if site.websub_hub:
        from publisher.websub import ping_hub

        feeds = [
            site.base_url + rel
            for rel in writer.changed
            if not rel.startswith("archive/") and rel.endswith(FEED_SUFFIXES)
        ]
        ping_hub(site.websub_hub, feeds)
    c = writer.counts
    return BuildResult(
        len(stream.posts),
        c.written,
        c.unchanged,
        c.removed,
        perf_counter() - start,
        tuple(writer.changed),
        tuple(stream.skipped),
    )


#: Below this many files to write, forking workers costs more than it saves.
PARALLEL_MIN = 400
CHUNK = 50
#: Feed formats pinned to a worker, so each post's entry for a format is built
#: by one process only; pages are shared out to whichever worker is free.
_LANES = {".atom": 0, ".rss": 1, ".json": 1}


def _render_all(writer: OutputWriter, pending: list[Artifact], progress: bool, jobs: int) -> None:
    """Render and write ``pending``: serially, or in forked workers when worth it.

    Workers write their files themselves (sending ~0.5 GB of output through
    pipes would cost more than rendering) and report the manifest entries.
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
        if jobs > 1 and len(pending) >= PARALLEL_MIN and "fork" in mp.get_all_start_methods():
            _render_forked(writer, pending, jobs, advance)
        else:
            for i in range(0, len(pending), CHUNK):
                advance(_write_batch(writer, pending[i : i + CHUNK]))
    finally:
        if bar:
            bar.stop()


def _write_batch(writer: OutputWriter, batch: list[Artifact]) -> int:
    for a in batch:
        writer.write(a.path, a.key, a.render())
    return len(batch)


def _render_forked(
    writer: OutputWriter, pending: list[Artifact], jobs: int, advance: Callable[[int], None]
) -> None:
    ctx = mp.get_context("fork")
    lanes: list[list[int]] = [[] for _ in range(jobs)]
    shared: list[int] = []
    for i, a in enumerate(pending):
        lane = _LANES.get(a.path[a.path.rfind(".") :])
        (lanes[lane % jobs] if lane is not None else shared).append(i)
    cursor = ctx.Value("l", 0)
    queue = ctx.Queue()

    def work(mine: list[int]) -> None:
        try:
            mark = writer.mark()
            for i in range(0, len(mine), CHUNK):
                queue.put(
                    ("progress", _write_batch(writer, [pending[j] for j in mine[i : i + CHUNK]]))
                )
            while True:
                with cursor.get_lock():
                    start = cursor.value
                    cursor.value += CHUNK
                if start >= len(shared):
                    break
                batch = [pending[j] for j in shared[start : start + CHUNK]]
                queue.put(("progress", _write_batch(writer, batch)))
            queue.put(("done", writer.since(mark)))
        except BaseException:
            queue.put(("error", traceback.format_exc()))
            raise

    procs = [ctx.Process(target=work, args=(lane,), daemon=True) for lane in lanes]
    for p in procs:
        p.start()
    done, errors = 0, []
    while done < len(procs):
        kind, payload = queue.get()
        if kind == "progress":
            advance(payload)
        elif kind == "done":
            writer.merge(*payload)
            done += 1
        else:
            errors.append(payload)
            done += 1
    for p in procs:
        p.join()
    if errors:
        raise RuntimeError("a render worker failed:\n" + errors[0])
