"""``publisher build``: the post stream -> feeds, pages and OPML in the output folder.

Each output file is an *artifact*: a path, a key digesting everything it is
made from, and a function that renders it. Artifacts whose key matches the
manifest are skipped without rendering, which is what makes a rebuild after a
one-post edit cheap; an unchanged rebuild stops before parsing at all.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from time import perf_counter

from publisher import __version__
from publisher.archive import archive_files, read_pages
from publisher.errors import PublisherError
from publisher.feeds import FORMATS, MEDIA_TYPES, FeedRenderer, doc_path, paginate
from publisher.output import OutputWriter
from publisher.pages import FORMAT_LABELS, FeedLink, FeedRow, PageRenderer, opml
from publisher.pipeline import no_cyclic_gc
from publisher.posts import Post, Stream, Term, normalize
from publisher.settings import Settings
from publisher.state import load_versions, open_engine, resolve_updated, save_versions
from publisher.text import slugify
from publisher.websub import ping_hub

STATIC_FILES = ("feed.xsl", "style.css")


@dataclass(frozen=True)
class Artifact:
    path: str
    key: str
    render: Callable[[], bytes]


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


def _digest(*parts: object) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def fingerprint(settings: Settings, files: list[Path], skip_invalid: bool) -> str:
    """Everything a build reads, by stat for archives and by content for templates."""
    stats = []
    for f in files:
        st = f.stat()
        stats.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    templates = sorted(
        (p.name, p.read_bytes()) for p in settings.templates_dir.iterdir() if p.is_file()
    )
    return _digest(__version__, repr(settings), stats, templates, skip_invalid)


def run_build(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(settings.build.output)
    paths = list(args.paths) or [Path(settings.build.seeds)]
    progress = sys.stderr.isatty() and not args.quiet
    result = build(settings, paths, out, skip_invalid=args.skip_invalid, progress=progress)
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
            writer.counts.unchanged or len(writer._old),
            0,
            perf_counter() - start,
            (),
            up_to_date=True,
        )
    site = settings.site
    with no_cyclic_gc():
        stream = normalize(read_pages(files), site.tzinfo, site.id_domain, settings.ids)
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
    engine = open_engine(settings.state.url)
    now = now or datetime.now(site.tzinfo)
    now = now.astimezone(timezone(now.utcoffset() or timedelta(0)))
    updated, changed = resolve_updated(
        ((p.id, p.content_hash, p.published) for p in stream.posts), load_versions(engine), now
    )
    artifacts = list(_artifacts(settings, stream, updated))
    pending = [a for a in artifacts if not writer.is_current(a.path, a.key)]
    _render_all(writer, pending, progress)
    writer.finish(inputs)
    save_versions(engine, changed)
    engine.dispose()
    if site.websub_hub:
        feeds = [
            site.base_url + rel
            for rel in writer.changed
            if not rel.startswith("archive/") and rel.rsplit(".", 1)[-1] in FORMATS
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


def _render_all(writer: OutputWriter, pending: list[Artifact], progress: bool) -> None:
    if progress and len(pending) > 200:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("writing", total=len(pending))
            for a in pending:
                writer.write(a.path, a.key, a.render())
                bar.advance(task)
    else:
        for a in pending:
            writer.write(a.path, a.key, a.render())


def _feed_links(renderer: FeedRenderer, key: str, title: str) -> list[FeedLink]:
    return [
        FeedLink(
            renderer.url(doc_path(key, fmt)),
            MEDIA_TYPES[fmt],
            f"{title} ({FORMAT_LABELS[fmt]})",
            FORMAT_LABELS[fmt],
        )
        for fmt in FORMATS
    ]


def _artifacts(
    settings: Settings, stream: Stream, updated: dict[str, datetime]
) -> Iterator[Artifact]:
    site = settings.site
    feeds = FeedRenderer(site, updated)
    pages = PageRenderer(settings)
    base_key = _digest(
        __version__, repr(site), settings.build.feed_max_items, _templates_digest(settings)
    )

    def post_key(p: Post) -> tuple[str, str, str, str, str]:
        return (p.id, p.slug, p.content_hash, p.published.isoformat(), updated[p.id].isoformat())

    families: list[tuple[str, str, str, str, list[Post]]] = [
        ("all", site.title, site.description, site.base_url, list(stream.posts))
    ]
    for kind, label in (("tag", "Posts tagged ‘{}’"), ("category", "Posts in ‘{}’")):
        for term in stream.terms_of(kind):
            heading = label.format(term.name)
            families.append(
                (
                    f"{kind}/{term.slug}",
                    f"{site.title}: {heading}",
                    heading,
                    feeds.term_url(kind, term.slug),
                    stream.posts_with(term),
                )
            )

    rows: list[FeedRow] = []
    site_links = _feed_links(feeds, "all", site.title)
    for key, title, description, page_url, posts in families:
        links = _feed_links(feeds, key, title)
        rows.append(FeedRow(title, page_url, len(posts), tuple(links)))
        for doc in paginate(
            key, title, description, page_url, posts, settings.build.feed_max_items
        ):
            doc_key = _digest(
                base_key,
                doc.key,
                doc.page,
                doc.pages,
                title,
                description,
                [post_key(p) for p in doc.posts],
            )
            for fmt in FORMATS:
                yield Artifact(doc.path(fmt), doc_key, _bind(feeds.render, doc, fmt))
        if key != "all":
            heading = description
            yield Artifact(
                f"{key}.html",
                _digest(base_key, heading, [post_key(p) + (p.summary,) for p in posts]),
                _bind(pages.term, heading, posts, links),
            )

    for p in stream.posts:
        terms = _terms_of(stream, p)
        post_links = site_links + [
            link
            for t in terms
            for link in _feed_links(feeds, f"{t.kind}/{t.slug}", t.name)
            if link.type == MEDIA_TYPES["atom"]
        ]
        yield Artifact(
            f"posts/{p.slug}.html",
            _digest(base_key, post_key(p)),
            _bind(pages.post, p, terms, post_links),
        )

    recent = list(stream.posts[: settings.build.feed_max_items])
    yield Artifact(
        "index.html",
        _digest(base_key, rows, [post_key(p) for p in recent]),
        _bind(pages.index, rows, recent, site_links),
    )
    yield Artifact("feeds.opml", _digest(base_key, rows), _bind(opml, site.title, rows))
    for name in STATIC_FILES:
        data = (settings.templates_dir / name).read_bytes()
        yield Artifact(name, _digest(data), _bind(lambda d: d, data))


def _terms_of(stream: Stream, post: Post) -> list[Term]:
    return [stream.terms[("tag", slugify(n, "tag"))] for n in post.tags] + [
        stream.terms[("category", slugify(n, "category"))] for n in post.categories
    ]


def _bind(fn: Callable[..., bytes], *args: object) -> Callable[[], bytes]:
    return lambda: fn(*args)


def _templates_digest(settings: Settings) -> str:
    d = settings.templates_dir
    return _digest(sorted((p.name, p.read_bytes()) for p in d.iterdir() if p.is_file()))
