"""The site's artifacts: every output file as (path, key of its inputs, renderer).

Keys digest everything a file is made from, so the writer can skip files whose
inputs did not change without rendering them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.crontab import poll_minutes
from publisher.formats import FeedFormat
from publisher.settings import Settings
from publisher.site.artifact import Artifact, bind, kept, same
from publisher.site.feeds import FeedRenderer, doc_path, paginate
from publisher.site.pages import FeedLink, FeedRow, PageRenderer, opml
from publisher.site.sitemap import sitemap_files
from publisher.source.posts import Post, Stream, Term
from publisher.source.raw import TermKind
from publisher.store.rows import DigestRecord
from publisher.text import fingerprint, folder_fingerprint

if TYPE_CHECKING:
    from publisher.site.digests import SentDigest

#: Files copied from the templates as they are (the first two even without pages).
STATIC_FILES = ("feed.xsl", "opml.xsl", "icon.png", "style.css")


@dataclass(frozen=True)
class _Family:
    """A feed family: the site (``all``), a tag or a category, with its posts newest first."""

    key: str
    title: str
    description: str
    page_url: str
    posts: list[Post]
    #: Its post ids in the order they entered it (see ``site.order``).
    order: Sequence[str]
    #: The tag a reader can subscribe to by email (none for the site or a category).
    topic: str = ""


@dataclass(frozen=True)
class _Scope:
    """Which files an incremental build may have changed (see ``SiteListing.artifacts``)."""

    touched: Collection[str] | None
    regrouped: Collection[str] | None
    #: families whose entry order changed (their feed documents; see ``site.order``)
    refed: Collection[str] = ()
    #: posts whose newer or older neighbour changed (their pages link to them)
    near_moved: Collection[str] = ()

    @property
    def listing(self) -> bool:
        """Kept files are listed too, so that what is gone can be told from them."""
        return self.regrouped is not None

    def shows_touched(self, posts: Sequence[Post]) -> bool:
        return self.touched is None or any(p.id in self.touched for p in posts)

    def whole(self, family: str) -> bool:
        """The family's posts came, went or moved: every page listing them changes."""
        return self.regrouped is not None and family in self.regrouped

    def whole_feed(self, family: str) -> bool:
        """The family's feed documents may all change."""
        return self.whole(family) or family in self.refed


def _digests_link(renderer: FeedRenderer, title: str) -> FeedLink:
    from publisher.site.digests import FEED_PATH

    kind = FeedFormat.ATOM
    return FeedLink(
        renderer.url(FEED_PATH),
        kind.media_type,
        f"{title}: weekly digests ({kind.label})",
        f"Digests ({kind.label})",
    )


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


class SiteListing:
    """Every output file of one build: its path, the key of its inputs, its renderer."""

    def __init__(
        self,
        settings: Settings,
        stream: Stream,
        updated: dict[str, datetime],
        sent: Sequence[DigestRecord] = (),
        orders: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``orders``: each feed family's entry order (see ``site.order``); by default,
        each family's posts oldest first (a first build's order)."""
        self.settings, self.stream, self.updated, self.sent = settings, stream, updated, sent
        site = self.site = settings.site
        self.formats = settings.build.formats
        self.with_pages = settings.build.pages
        self.feeds = FeedRenderer(site, updated, poll_minutes(settings.schedule.publish_cron))
        self.pages = PageRenderer(site, settings.template_dirs)
        self.weeks: list[SentDigest] = []
        if self.with_pages:  # (the digests' pages and feed are pages: see ``digests``)
            from publisher.site.digests import sent_digests  # Jinja2: see pages

            self.weeks = sent_digests(settings, stream, sent)
        self.base_key = fingerprint(
            __version__,
            repr(site),
            settings.build.feed_max_items,
            self.formats,  # pages link to every format
            folder_fingerprint(*settings.template_dirs),
            bool(self.weeks),  # every page links to the digests' feed once there is one
            self.feeds.poll_minutes,
        )
        self._post_keys: dict[str, str] = {}
        self.by_id = {p.id: p for p in stream.posts}
        self.families = [
            self._family(key, term, posts, _order(orders, key, posts))
            for key, term, posts in _families(stream)
        ]
        self.site_links = _feed_links(self.feeds, "all", site.title, self.formats)
        self.rows = [
            FeedRow(f.title, f.page_url, len(f.posts), tuple(self._links(f))) for f in self.families
        ]
        #: feeds every page names besides its own (the digests', once there is one)
        self.extra_links: list[FeedLink] = []
        if self.weeks:  # the digests' own feed: in OPML and every page's head, as the others
            digests = _digests_link(self.feeds, site.title)
            self.site_links.append(digests)
            self.extra_links.append(digests)
            self.rows.append(FeedRow(digests.title, site.base_url, len(self.weeks), (digests,)))

    def _family(
        self, key: str, term: Term | None, posts: list[Post], order: Sequence[str]
    ) -> _Family:
        site = self.site
        if term is None:
            return _Family(key, site.title, site.description, site.base_url, posts, order)
        heading = _HEADINGS[term.kind].format(term.name)
        page_url = self.feeds.term_url(term.kind, term.slug)
        topic = term.name if term.kind is TermKind.TAG else ""
        return _Family(key, f"{site.title}: {heading}", heading, page_url, posts, order, topic)

    def _links(self, family: _Family) -> list[FeedLink]:
        return _feed_links(self.feeds, family.key, family.title, self.formats)

    def post_key(self, p: Post) -> str:
        """What of a post its files show, as one string, made once per post (a post is
        in ~5 files' keys)."""
        key = self._post_keys.get(p.id)
        if key is None:
            fields = (p.id, p.slug, p.content_hash, p.published.isoformat())
            key = self._post_keys[p.id] = "\x1f".join((*fields, self.updated[p.id].isoformat()))
        return key

    def posts_key(self, posts: Sequence[Post]) -> str:
        return "\x1e".join(self.post_key(p) for p in posts)

    def artifacts(
        self,
        touched: Collection[str] | None = None,
        regrouped: Collection[str] | None = None,
        refed: Collection[str] = (),
        near_moved: Collection[str] = (),
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
        scope = _Scope(touched, regrouped, refed, near_moved)
        for family in self.families:
            yield from self._family_files(family, scope)
        if self.with_pages:
            yield from self._post_pages(scope)
            yield from self._year_pages(scope)
            yield from self._digests_index_and_sitemap(scope)
        if touched is not None and not scope.listing:
            return  # the rest shows no post
        yield from self._site_files(scope)

    def _family_files(self, family: _Family, scope: _Scope) -> Iterator[Artifact]:
        """A family's feed documents, and its page (but the site's: that is the index)."""
        whole, whole_feed = scope.whole(family.key), scope.whole_feed(family.key)
        if not whole_feed and not scope.shows_touched(family.posts) and not scope.listing:
            return
        max_items = self.settings.build.feed_max_items
        title, description = family.title, family.description
        members = {p.id for p in family.posts}
        docs = paginate(
            family.key,
            title,
            description,
            family.page_url,
            family.order,
            members,
            self.by_id,
            max_items,
        )
        for doc in docs:
            if not whole_feed and not scope.shows_touched(doc.posts):
                if scope.listing:
                    yield from (kept(doc.path(fmt)) for fmt in self.formats)
                continue
            doc_key = fingerprint(self.base_key, doc.key, doc.page, title, description)
            if doc.page:  # fixed once full: made of its entries, not of what they say
                doc_key = fingerprint(doc_key, doc.entries)
            else:
                doc_key = fingerprint(doc_key, doc.pages, self.posts_key(doc.posts))
            newest = (0, -max((p.published.timestamp() for p in doc.posts), default=0.0))
            for fmt in self.formats:
                render = bind(self.feeds.render, doc, fmt)
                yield Artifact(
                    doc.path(fmt), doc_key, render, newest, False, len(doc.posts), doc, fmt
                )
        if family.key == "all" or not self.with_pages:
            return
        if not whole and not scope.shows_touched(family.posts):
            yield kept(f"{family.key}.html")  # (listing: the family was skipped otherwise)
            return
        yield Artifact(
            f"{family.key}.html",
            # each post's summary is in its key already: made of its content
            fingerprint(self.base_key, description, self.posts_key(family.posts)),
            bind(
                self.pages.term,
                description,
                family.posts,
                self._links(family) + self.extra_links,
                family.topic,
            ),
            shows=len(family.posts),
        )

    def _post_pages(self, scope: _Scope) -> Iterator[Artifact]:
        """Each post's page. It shows its newer and older neighbours' titles: it is
        keyed when they change too, or when its neighbours are other posts."""
        from publisher.site.years import neighbours

        stream, formats = self.stream, self.formats
        term_links = {  # a post page links to each of its terms' feeds in the first format
            (f"{t.kind}/{t.slug}", t.name): replace(
                link := _feed_links(self.feeds, f"{t.kind}/{t.slug}", t.name, formats[:1])[0],
                label=f"‘{t.name}’ ({link.label})",
            )
            for t in stream.terms.values()
        }
        around = neighbours(stream.posts)
        every = scope.touched is None
        touched, moved = scope.touched or (), scope.near_moved

        def post_page(p: Post) -> bytes:
            # built only when the page is (re)rendered: most rebuilds skip most posts
            terms = _terms_of(stream, p)
            links = self.site_links + [term_links[(f"{t.kind}/{t.slug}", t.name)] for t in terms]
            return self.pages.post(p, terms, links, around[p.id])

        for p in stream.posts:
            path = f"posts/{p.slug}.html"
            near = around[p.id]
            if (
                every
                or p.id in moved
                or any(q is not None and q.id in touched for q in (p, near.newer, near.older))
            ):
                key = fingerprint(self.base_key, self.post_key(p), near.key())
                yield Artifact(path, key, bind(post_page, p))
            elif scope.listing:
                yield kept(path)

    def _year_pages(self, scope: _Scope) -> Iterator[Artifact]:
        """A page per year of posts, and the archive page listing the years."""
        from publisher.site.years import ARCHIVE_PATH, by_year

        years = by_year(self.stream.posts)
        counts = [(y.year, len(y.posts)) for y in years]
        links = self.site_links + self.extra_links
        for y in years:
            if scope.whole("all") or scope.shows_touched(y.posts):
                key = fingerprint(self.base_key, y.year, counts, self.posts_key(y.posts))
                yield Artifact(y.path, key, bind(self.pages.year, y, counts, links))
            elif scope.listing:
                yield kept(y.path)
        if scope.touched is None or scope.whole("all"):
            key = fingerprint(self.base_key, counts)
            yield Artifact(ARCHIVE_PATH, key, bind(self.pages.archive, counts, links))
        elif scope.listing:
            yield kept(ARCHIVE_PATH)

    def _digests_index_and_sitemap(self, scope: _Scope) -> Iterator[Artifact]:
        from publisher.site.digests import digest_files  # Jinja2: see pages
        from publisher.site.years import ARCHIVE_PATH, by_year

        site, updated, weeks = self.site, self.updated, self.weeks
        if scope.listing or any(scope.shows_touched(d.posts) for d in weeks):
            for path, key, render in digest_files(self.settings, weeks, updated, self.base_key):
                yield Artifact(path, key, render)
        archive = [(d.week.label, f"{site.base_url}{d.path}", len(d.posts)) for d in weeks]
        recent = list(self.stream.posts[: self.settings.build.feed_max_items])
        total = len(self.stream.posts)
        if scope.listing or scope.shows_touched(recent):
            yield Artifact(
                "index.html",
                fingerprint(self.base_key, self.rows, self.posts_key(recent), archive, total),
                bind(self.pages.index, self.rows, recent, self.site_links, archive, total),
            )
        # every page, dated by the posts it shows: any post's change may move a date
        mapped = [(f.page_url, max(updated[p.id] for p in f.posts)) for f in self.families]
        mapped += [(self.feeds.post_url(p), updated[p.id]) for p in self.stream.posts]
        years = by_year(self.stream.posts)
        mapped += [(f"{site.base_url}{y.path}", max(updated[p.id] for p in y.posts)) for y in years]
        if years:
            newest = max(updated[p.id] for p in self.stream.posts)
            mapped.append((f"{site.base_url}{ARCHIVE_PATH}", newest))
        mapped += [
            (f"{site.base_url}{d.path}", max(updated[p.id] for p in d.posts))
            for d in weeks
            if d.posts
        ]
        for path, data in sitemap_files(site.base_url, mapped):
            yield Artifact(path, fingerprint(data), bind(same, data))

    def _site_files(self, scope: _Scope) -> Iterator[Artifact]:
        """The files that show no post: OPML, the 404 page, the stylesheets."""
        rows, site_links = self.rows, self.site_links
        yield Artifact(
            "feeds.opml",
            fingerprint(self.base_key, rows),
            bind(opml, self.site.title, rows, self.site.base_url),
        )
        if self.with_pages:  # not in the sitemap: it stands for no page
            yield Artifact(
                "404.html",
                fingerprint(self.base_key, site_links),
                bind(self.pages.not_found, site_links),
            )
        static = STATIC_FILES if self.with_pages else STATIC_FILES[:3]  # the feeds'
        if scope.listing:
            yield from (kept(name) for name in static)  # made of the templates only
            return
        for name in static:
            data = self.settings.template_file(name).read_bytes()
            yield Artifact(name, fingerprint(data), bind(same, data))


def _terms_of(stream: Stream, post: Post) -> list[Term]:
    return [stream.term(TermKind.TAG, n) for n in post.tags] + [
        stream.term(TermKind.CATEGORY, n) for n in post.categories
    ]


_HEADINGS = {TermKind.TAG: "Posts tagged ‘{}’", TermKind.CATEGORY: "Posts in ‘{}’"}


def _families(stream: Stream) -> Iterator[tuple[str, Term | None, list[Post]]]:
    """Every feed family by the key its files live under: the site (``all``, no
    term), then each tag and each category, with its posts newest first."""
    yield "all", None, list(stream.posts)
    for kind in TermKind:
        for term in stream.terms_of(kind):
            yield f"{kind}/{term.slug}", term, stream.posts_with(term)


def _order(
    orders: Mapping[str, Sequence[str]] | None, key: str, posts: list[Post]
) -> Sequence[str]:
    if orders is not None and key in orders:
        return orders[key]
    return [p.id for p in reversed(posts)]


def family_members(stream: Stream) -> dict[str, tuple[str, ...]]:
    """Each family's post ids in order, by the family keys ``artifacts`` uses."""
    return {key: tuple(p.id for p in posts) for key, _, posts in _families(stream)}
