"""Feed writer: post stream -> RSS 2.0, Atom 1.0 (RFC 4287) and JSON Feed 1.1 documents.

Every element comes from feedgen. For speed each post's ``<entry>``/``<item>``
is built and serialised once per format and spliced into every document that
carries it (a post sits in the site feed, its tags' and categories' feeds and
their archives), instead of being rebuilt per document; a post's Atom and RSS
fragments come from one ``FeedEntry``, in one process or split between two
(``FeedRenderer.share``).

History follows RFC 5005 (archived feeds): the subscription document holds the
``max_items`` entries that entered the feed last and links ``prev-archive`` to
pages of older entries, in the order they entered the feed (see ``site.order``),
which never change once full.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.formats import FeedFormat
from publisher.settings import SiteSettings
from publisher.site.order import full_pages, newest
from publisher.source.posts import Post

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
FH_NS = "http://purl.org/syndication/history/1.0"
SY_NS = "http://purl.org/rss/1.0/modules/syndication/"
GENERATOR = "publisher"
#: A post's entry in one format, or a piece of a document.
Piece = bytes


@dataclass(frozen=True)
class FeedDoc:
    """One feed document: the subscription feed or one of its archive pages."""

    key: str  # "all", "tag/<slug>", "category/<slug>"
    title: str
    description: str
    page_url: str  # the HTML page the feed belongs to
    posts: tuple[Post, ...]  # newest first
    page: int = 0  # 0 = subscription document, n >= 1 = archive page n (oldest = 1)
    pages: int = 0  # number of full archive pages
    #: An archive page's entries, as the feed's order has them: what fixes it
    #: (a post deleted since is not shown, if the page is ever made again).
    entries: tuple[str, ...] = ()

    def path(self, fmt: str) -> str:
        return doc_path(self.key, fmt, self.page)


def doc_path(key: str, fmt: str, page: int = 0) -> str:
    return f"{key}.{fmt}" if page == 0 else f"archive/{key}/{page}.{fmt}"


def paginate(
    key: str,
    title: str,
    description: str,
    page_url: str,
    order: Sequence[str],
    members: Collection[str],
    posts: Mapping[str, Post],
    max_items: int,
) -> list[FeedDoc]:
    """The subscription document and the RFC 5005 archive pages of ``max_items``
    entries each, in the order entries entered the feed (see ``site.order``).

    ``members``: the ids of the feed's posts now; ``posts``: every post, by id.
    An archive page shows the posts of its entries that still exist (one that
    left the feed, by losing a tag, stays: the page is fixed).
    """
    pages = full_pages(len(order), max_items)
    shown = tuple(posts[pid] for pid in newest(order, members, max_items))
    docs = [FeedDoc(key, title, description, page_url, shown, 0, pages)]
    for n in range(1, pages + 1):
        chunk = order[(n - 1) * max_items : n * max_items]
        kept = tuple(posts[pid] for pid in reversed(chunk) if pid in posts)
        docs.append(FeedDoc(key, title, description, page_url, kept, n, pages, tuple(chunk)))
    return docs


class _ExtraLinks(BaseExtension):  # type: ignore[misc]  # feedgen ships no types
    """RFC 5005 / WebSub links and ``fh:archive`` for RSS (feedgen emits only rel=self),
    and the RSS syndication module's polling hints (feedgen's own extension spells
    them ``sy:UpdatePeriod``; the module says ``sy:updatePeriod``)."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []
        self.archive = False
        self.rss = False
        self.poll: tuple[str, int] | None = None

    def extend_ns(self) -> dict[str, str]:
        ns = {"fh": FH_NS} if self.archive else {}
        if self.rss:
            ns["dc"] = DC_NS  # entries carry dc:creator
        if self.poll is not None:
            ns["sy"] = SY_NS
        return ns

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        for rel, href in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel)
        if self.archive:
            etree.SubElement(channel, f"{{{FH_NS}}}archive")
        if self.poll is not None:
            period, frequency = self.poll
            etree.SubElement(channel, f"{{{SY_NS}}}updatePeriod").text = period
            etree.SubElement(channel, f"{{{SY_NS}}}updateFrequency").text = str(frequency)
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.archive:
            etree.SubElement(feed, f"{{{FH_NS}}}archive")
        return feed


class FeedRenderer:
    """Renders documents for one site; caches each post's entry per format."""

    def __init__(
        self, site: SiteSettings, updated: dict[str, datetime], poll_minutes: int = 0
    ) -> None:
        """``poll_minutes``: how often the site is published, for polling hints in the
        subscription documents (RSS ``ttl``, ``sy:updatePeriod``); 0: none."""
        self.poll_minutes = poll_minutes
        self.site = site
        self.base = site.base_url
        self.updated = updated
        self._atom: dict[str, Piece] = {}
        self._rss: dict[str, Piece] = {}
        self._xml = {"atom": self._atom, "rss": self._rss}  # the two, by format
        self._json: dict[str, Piece] = {}
        self._doc_updated: dict[tuple[str, int], datetime] = {}  # see ``doc_updated``
        #: (post id, format) -> documents still to render that carry it (see ``expect``)
        self._uses: dict[tuple[str, str], int] = {}
        self.stylesheet = stylesheet(self.base)

    # -- URLs ---------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base + path

    def post_url(self, post: Post) -> str:
        return self.url(f"posts/{post.slug}.html")

    def term_url(self, kind: str, slug: str) -> str:
        return self.url(f"{kind}/{slug}.html")

    def expect(self, doc: FeedDoc, fmt: str) -> None:
        """Note that ``doc`` will be rendered in ``fmt``.

        Each post's fragment is then dropped after its last expected use instead
        of being kept to the end of the build: with documents rendered in time
        order (see ``Artifact.order``) a few thousand fragments are alive at
        once instead of every post's.
        """
        for p in doc.posts:
            k = (p.id, fmt)
            self._uses[k] = self._uses.get(k, 0) + 1

    def _used(self, cache: dict[str, Piece], post_id: str, fmt: str) -> None:
        k = (post_id, fmt)
        n = self._uses.get(k)
        if n is None:  # not announced: keep it, as before
            return
        if n <= 1:
            del self._uses[k]
            del cache[post_id]
        else:
            self._uses[k] = n - 1

    # -- entries ------------------------------------------------------------
    def _entry(self, post: Post) -> FeedEntry:
        fe = FeedEntry()
        fe.id(post.id)
        fe.title(post.title)
        fe.link(href=self.post_url(post), rel="alternate", type="text/html")
        fe.published(post.published)
        fe.updated(self.updated.get(post.id, post.published))
        fe.author(name=self.site.author_name)
        fe.content(post.html, type="html")
        # isSummary: Atom <summary> and RSS <description>; content stays full text
        fe.description(post.summary, isSummary=True)
        for name in post.tags:
            fe.category(term=name, scheme=self.url("tag/"), label=name)
        for name in post.categories:
            fe.category(term=name, scheme=self.url("category/"), label=name)
        return fe

    def atom_entry(self, post: Post) -> Piece:
        frag = self._atom.get(post.id) or self._xml_entries(post, "atom")
        self._used(self._atom, post.id, "atom")
        return frag

    def rss_entry(self, post: Post) -> Piece:
        frag = self._rss.get(post.id) or self._xml_entries(post, "rss")
        self._used(self._rss, post.id, "rss")
        return frag

    def _xml_entries(self, post: Post, fmt: str) -> Piece:
        """The post's ``fmt`` fragment, and its Atom/RSS sibling too when a document
        still to render here expects it (see ``expect``): both come from one
        ``FeedEntry``, whose making (the post's HTML, feedgen's checks) is a third of
        each. A build renders a document in every format in turn, so the sibling
        waits only until the next document."""
        fe = self._entry(post)
        other = _SIBLING[fmt]
        if (post.id, other) in self._uses and post.id not in self._xml[other]:
            self._xml[other][post.id] = self._fragment(fe, other)
        frag = self._xml[fmt][post.id] = self._fragment(fe, fmt)
        return frag

    def _fragment(self, fe: FeedEntry, fmt: str) -> bytes:
        """The ``<entry>`` (Atom) or ``<item>`` (RSS) of ``fe``, indented for its place."""
        if fmt == "atom":
            elem = fe.atom_entry()
            etree.indent(elem, level=1)
            return b"  " + etree.tostring(elem, encoding="utf-8") + b"\n"
        holder = etree.Element("channel", nsmap={"content": CONTENT_NS, "dc": DC_NS})
        item = fe.rss_entry()
        holder.append(item)
        etree.SubElement(item, f"{{{DC_NS}}}creator").text = self.site.author_name
        etree.indent(item, level=2)
        frag = etree.tostring(item, encoding="utf-8")
        # the namespaces are declared once on <rss>; drop the copies lxml adds
        return b"    " + frag.replace(_RSS_ITEM_NS, b"<item>", 1) + b"\n"

    def json_item(self, post: Post) -> Piece:
        """The post's JSON Feed item, encoded once and spliced into every document
        (as UTF-8: half the memory of a str holding curly quotes)."""
        item = self._json.get(post.id)
        if item is None:
            item = json.dumps(
                {
                    "id": post.id,
                    "url": self.post_url(post),
                    "title": post.title,
                    "content_html": post.html,
                    "summary": post.summary,
                    "date_published": post.published.isoformat(),
                    "date_modified": self.updated.get(post.id, post.published).isoformat(),
                    "authors": [{"name": self.site.author_name}],
                    "tags": [*post.tags, *post.categories],
                    "language": self.site.language,
                },
                ensure_ascii=False,
            ).encode()
            self._json[post.id] = item
        self._used(self._json, post.id, "json")
        return item

    # -- documents ----------------------------------------------------------
    def doc_updated(self, doc: FeedDoc) -> datetime:
        """The newest of its posts' dates: the document's ``updated`` and
        ``lastBuildDate``. Made once a document, whatever the formats rendered here
        (a pass over up to every post)."""
        key = (doc.key, doc.page)
        when = self._doc_updated.get(key)
        if when is None:
            updated = self.updated
            # (an archive page made again after all its posts were deleted: no date)
            when = max((updated.get(p.id, p.published) for p in doc.posts), default=_NO_DATE)
            self._doc_updated[key] = when
        return when

    def _links(self, doc: FeedDoc, fmt: str) -> list[tuple[str, str]]:
        """(rel, href) beyond self/alternate: hub and RFC 5005 archive links."""
        links: list[tuple[str, str]] = []
        if self.site.websub_hub and doc.page == 0:
            links.append(("hub", self.site.websub_hub))
        if doc.page == 0 and doc.pages:
            links.append(("prev-archive", self.url(doc_path(doc.key, fmt, doc.pages))))
        elif doc.page:
            links.append(("current", self.url(doc_path(doc.key, fmt))))
            if doc.page > 1:
                links.append(("prev-archive", self.url(doc_path(doc.key, fmt, doc.page - 1))))
            # no next-archive: a full page would gain one when the next page fills
        return links

    def _generator(self, doc: FeedDoc, fmt: str) -> FeedGenerator:
        fg = FeedGenerator()
        fg.id(self.url(doc_path(doc.key, "atom")))
        fg.title(doc.title)
        fg.subtitle(doc.description)
        fg.description(doc.description)
        fg.language(self.site.language)
        fg.author(name=self.site.author_name)
        fg.generator(GENERATOR, version=__version__)
        when = self.doc_updated(doc)
        fg.updated(when)
        fg.lastBuildDate(when)
        fg.link(href=self.url(doc.path(fmt)), rel="self", type=FeedFormat(fmt).media_type)
        extra = self._links(doc, fmt)
        if fmt == "atom":
            for rel, href in extra:
                fg.link(href=href, rel=rel)
        # RSS's channel <link> is the last link added: the HTML page.
        fg.link(href=doc.page_url, rel="alternate", type="text/html")
        icon = self.site.icon_url
        if fmt == "atom":
            fg.icon(icon)
            fg.logo(icon)
        else:
            fg.image(url=icon, title=doc.title, link=doc.page_url)
            if self.poll_minutes and doc.page == 0:  # archives never change: no hint
                fg.ttl(self.poll_minutes)
        fg.register_extension("publisher_links", _ExtraLinks, None, atom=True, rss=True)
        ext = fg.publisher_links
        ext.archive, ext.rss = bool(doc.page), fmt == "rss"
        if fmt == "rss" and self.poll_minutes and doc.page == 0:
            ext.poll = _update_period(self.poll_minutes)
        if fmt == "rss":
            ext.links = extra
        return fg

    def atom(self, doc: FeedDoc) -> list[Piece]:
        shell = self._generator(doc, "atom").atom_str(pretty=True)
        return self._splice(shell, b"</feed>", [self.atom_entry(p) for p in doc.posts])

    def rss(self, doc: FeedDoc) -> list[Piece]:
        shell = self._generator(doc, "rss").rss_str(pretty=True)
        return self._splice(shell, b"  </channel>", [self.rss_entry(p) for p in doc.posts])

    def json(self, doc: FeedDoc) -> list[Piece]:
        feed: dict[str, object] = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": doc.title,
            "home_page_url": doc.page_url,
            "feed_url": self.url(doc.path("json")),
            "description": doc.description,
            "language": self.site.language,
            "authors": [{"name": self.site.author_name}],
            "icon": self.site.icon_url,
            "favicon": self.site.icon_url,
        }
        if self.site.websub_hub and doc.page == 0:
            feed["hubs"] = [{"type": "WebSub", "url": self.site.websub_hub}]
        older = doc.pages if doc.page == 0 else doc.page - 1
        if older:
            feed["next_url"] = self.url(doc_path(doc.key, "json", older))
        # compact, by the C encoder (indent= forces the pure-Python one, 10x slower);
        # "items" last, so the encoded items are spliced before the closing brace
        head = json.dumps(feed, ensure_ascii=False)[:-1].encode()
        parts = [head, b', "items": [']
        for i, p in enumerate(doc.posts):
            if i:
                parts.append(b", ")
            parts.append(self.json_item(p))
        parts.append(b"]}\n")
        return parts

    def render(self, doc: FeedDoc, fmt: str) -> list[Piece]:
        """The document as pieces to write in turn (see ``OutputWriter.write``): a feed
        of every entry is tens of MB, which joining would hold twice more."""
        made: list[Piece] = getattr(self, fmt)(doc)
        return made

    def _splice(self, shell: bytes, closing: bytes, entries: list[Piece]) -> list[Piece]:
        """The entries put into the feedgen shell, and the stylesheet after the XML
        declaration."""
        end_decl = shell.index(b"\n") + 1
        at = shell.rindex(closing)
        return [shell[:end_decl], self.stylesheet, shell[end_decl:at], *entries, shell[at:]]


def stylesheet(base_url: str) -> bytes:
    """The processing instruction that styles a feed of the site for a browser tab,
    put right after a feed's XML declaration."""
    return f'<?xml-stylesheet type="text/xsl" href="{base_url}feed.xsl"?>\n'.encode()


def _update_period(minutes: int) -> tuple[str, int]:
    """RSS syndication module's period and frequency for publishing every ``minutes``."""
    if minutes <= 60:
        return "hourly", max(1, 60 // minutes)
    if minutes <= 24 * 60:
        return "daily", max(1, 24 * 60 // minutes)
    return "weekly", 1


_NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)
#: The other XML format, whose fragment comes from the same ``FeedEntry``.
_SIBLING = {"atom": "rss", "rss": "atom"}
_RSS_ITEM_NS = f'<item xmlns:content="{CONTENT_NS}" xmlns:dc="{DC_NS}">'.encode()
