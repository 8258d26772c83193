"""The site's artifacts: every output file as (path, key of its inputs, renderer).

Keys digest everything a file is made from, so the writer can skip files whose
inputs did not change without rendering them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from publisher import __version__
from publisher.formats import FeedFormat
from publisher.settings import Settings
from publisher.site.feeds import FeedRenderer, Piece, doc_path, paginate
from publisher.site.pages import FeedLink, FeedRow, PageRenderer, opml
from publisher.site.sitemap import sitemap_files
from publisher.source.posts import Post, Stream, Term
from publisher.store.rows import DigestRecord
from publisher.text import fingerprint, folder_fingerprint

STATIC_FILES = ("feed.xsl", "style.css")


@dataclass(frozen=True)
class Artifact:
    path: str
    key: str
    render: Callable[[], bytes | Sequence[Piece]]  # see ``OutputWriter.write``
    #: Render order: feed documents by their newest post, newest first, then the rest.
    order: tuple[int, float] = (1, 0.0)
    #: Called once before rendering when the file is to be (re)written.
    will_render: Callable[[], None] | None = None
    #: Listed only: its key is unchanged (see ``artifacts``), the file stays as it is.
    keep: bool = False
    #: Rendering cost in posts shown, so a build of a few huge feeds (a large
    #: ``feed_max_items``) is shared out to workers like one of many small files.
    weight: int = 1
    #: A feed document's renderer and posts, so that the workers rendering its
    #: Atom and its RSS can share the making of each post's entry (see ``build``).
    feed: tuple[FeedRenderer, tuple[Post, ...]] | None = None


def _feed_links(
    renderer: FeedRenderer, key: str, title: str, formats: Sequence[str]
) -> list[FeedLink]:
    return [
        FeedLink(
            renderer.url(doc_path(key, fmt)),
            FeedFormat(fmt).media_type,
            f"{title} ({FeedFormat(fmt).label})",
            FeedFormat(fmt).label,
        )
        for fmt in formats
    ]


def artifacts(
    settings: Settings,
    stream: Stream,
    updated: dict[str, datetime],
    sent: Sequence[DigestRecord] = (),
    touched: Collection[str] | None = None,
    regrouped: Collection[str] | None = None,
) -> Iterator[Artifact]:
    """Every output file; with ``touched``, only those that may have changed.

    ``touched`` is for an incremental build: the posts whose files show changed
    (content, slug, time). With the same posts in the same order, terms and
    settings, every other file's key is made of unchanged parts: it is not even
    computed, nor listed. With ``regrouped`` too (families, as ``all`` or
    ``tag/<slug>``, whose posts came, went or moved), those families' files are
    all keyed, and every other file is listed as ``keep`` without a key, so that
    what is gone can be told from what is kept.
    """
    listing = regrouped is not None  # list what is kept, so the rest is removed
    site = settings.site
    formats, with_pages = settings.build.formats, settings.build.pages
    feeds = FeedRenderer(site, updated)
    pages = PageRenderer(settings)
    base_key = fingerprint(
        __version__,
        repr(site),
        settings.build.feed_max_items,
        formats,  # pages link to every format
        folder_fingerprint(*settings.template_dirs),
    )

    post_keys: dict[str, str] = {}

    def post_key(p: Post) -> str:
        """What of a post its files show, as one string, made once per post (a post is
        in ~5 files' keys; formatting dates and tuples per use was most of a rebuild)."""
        key = post_keys.get(p.id)
        if key is None:
            fields = (p.id, p.slug, p.content_hash, p.published.isoformat())
            key = post_keys[p.id] = "\x1f".join((*fields, updated[p.id].isoformat()))
        return key

    def posts_key(posts: Sequence[Post]) -> str:
        return "\x1e".join(post_key(p) for p in posts)

    def shows_touched(posts: Sequence[Post]) -> bool:
        return touched is None or any(p.id in touched for p in posts)

    def kept(path: str) -> Artifact:
        return Artifact(path, "", _unrendered, keep=True)

    families: list[tuple[str, str, str, str, list[Post]]] = []
    for key, term, members in _families(stream):
        if term is None:
            families.append((key, site.title, site.description, site.base_url, members))
            continue
        heading = _HEADINGS[term.kind].format(term.name)
        page_url = feeds.term_url(term.kind, term.slug)
        families.append((key, f"{site.title}: {heading}", heading, page_url, members))

    rows: list[FeedRow] = []
    site_links = _feed_links(feeds, "all", site.title, formats)
    for key, title, description, page_url, posts in families:
        links = _feed_links(feeds, key, title, formats)
        rows.append(FeedRow(title, page_url, len(posts), tuple(links)))
        whole = regrouped is not None and key in regrouped
        if not whole and not shows_touched(posts) and not listing:
            continue
        for doc in paginate(
            key, title, description, page_url, posts, settings.build.feed_max_items
        ):
            if not whole and not shows_touched(doc.posts):
                if listing:
                    yield from (kept(doc.path(fmt)) for fmt in formats)
                continue
            doc_key = fingerprint(
                base_key,
                doc.key,
                doc.page,
                doc.pages,
                title,
                description,
                posts_key(doc.posts),
            )
            newest = (0, -doc.posts[0].published.timestamp())
            for fmt in formats:
                yield Artifact(
                    doc.path(fmt),
                    doc_key,
                    _bind(feeds.render, doc, fmt),
                    newest,
                    partial(feeds.expect, doc, fmt),
                    weight=len(doc.posts),
                    feed=(feeds, doc.posts),
                )
        if key != "all" and with_pages:
            heading = description
            if not whole and not shows_touched(posts):
                yield kept(f"{key}.html")  # (listing: the family was skipped otherwise)
                continue
            yield Artifact(
                f"{key}.html",
                # each post's summary is in its key already: made of its content
                fingerprint(base_key, heading, posts_key(posts)),
                _bind(pages.term, heading, posts, links),
                weight=len(posts),
            )

    if with_pages:
        from publisher.site.digests import digest_files, sent_digests  # Jinja2: see pages

        term_links = {  # a post page links to each of its terms' feeds in the first format
            (f"{t.kind}/{t.slug}", t.name): _feed_links(
                feeds, f"{t.kind}/{t.slug}", t.name, formats[:1]
            )[0]
            for t in stream.terms.values()
        }

        def post_page(p: Post) -> bytes:
            # built only when the page is (re)rendered: most rebuilds skip most posts
            terms = _terms_of(stream, p)
            links = site_links + [term_links[(f"{t.kind}/{t.slug}", t.name)] for t in terms]
            return pages.post(p, terms, links)

        for p in stream.posts:
            if touched is None or p.id in touched:
                yield Artifact(
                    f"posts/{p.slug}.html", fingerprint(base_key, post_key(p)), _bind(post_page, p)
                )
            elif listing:
                yield kept(f"posts/{p.slug}.html")

        weeks = sent_digests(settings, stream, sent)
        if listing or any(shows_touched(d.posts) for d in weeks):
            for path, key, render in digest_files(settings, weeks, updated, base_key):
                yield Artifact(path, key, render)
        archive = [(d.week.label, f"{site.base_url}{d.path}", len(d.posts)) for d in weeks]
        recent = list(stream.posts[: settings.build.feed_max_items])
        if listing or shows_touched(recent):
            yield Artifact(
                "index.html",
                fingerprint(base_key, rows, posts_key(recent), archive),
                _bind(pages.index, rows, recent, site_links, archive),
            )
        # every page, dated by the posts it shows: any post's change may move a date
        mapped = [(url, max(updated[p.id] for p in posts)) for _, _, _, url, posts in families]
        mapped += [(feeds.post_url(p), updated[p.id]) for p in stream.posts]
        mapped += [
            (f"{site.base_url}{d.path}", max(updated[p.id] for p in d.posts))
            for d in weeks
            if d.posts
        ]
        for path, data in sitemap_files(site.base_url, mapped):
            yield Artifact(path, fingerprint(data), _bind(lambda d: d, data))
    if touched is not None and not listing:
        return  # the rest shows no post
    yield Artifact("feeds.opml", fingerprint(base_key, rows), _bind(opml, site.title, rows))
    if with_pages:  # not in the sitemap: it stands for no page
        yield Artifact(
            "404.html", fingerprint(base_key, site_links), _bind(pages.not_found, site_links)
        )
    static = STATIC_FILES if with_pages else STATIC_FILES[:1]  # feed.xsl: the feeds' own
    if listing:
        yield from (kept(name) for name in static)  # made of the templates only
        return
    for name in static:
        data = settings.template_file(name).read_bytes()
        yield Artifact(name, fingerprint(data), _bind(lambda d: d, data))


def _terms_of(stream: Stream, post: Post) -> list[Term]:
    return [stream.term("tag", n) for n in post.tags] + [
        stream.term("category", n) for n in post.categories
    ]


_HEADINGS = {"tag": "Posts tagged ‘{}’", "category": "Posts in ‘{}’"}


def _families(stream: Stream) -> Iterator[tuple[str, Term | None, list[Post]]]:
    """Every feed family by the key its files live under: the site (``all``, no
    term), then each tag and each category, with its posts newest first."""
    yield "all", None, list(stream.posts)
    for kind in ("tag", "category"):
        for term in stream.terms_of(kind):
            yield f"{kind}/{term.slug}", term, stream.posts_with(term)


def family_members(stream: Stream) -> dict[str, tuple[str, ...]]:
    """Each family's post ids in order, by the family keys ``artifacts`` uses."""
    return {key: tuple(p.id for p in posts) for key, _, posts in _families(stream)}


def _unrendered() -> bytes:
    raise AssertionError("a kept file is never rendered")


def _bind(
    fn: Callable[..., bytes | Sequence[Piece]], *args: object
) -> Callable[[], bytes | Sequence[Piece]]:
    return lambda: fn(*args)
