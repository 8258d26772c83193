"""Pages the feeds link to: post permalinks, tag/category pages, the index, OPML.

Jinja2 with autoescaping on: every value is escaped unless it is the post HTML
the normalizer built from escaped text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.settings import SiteSettings
from publisher.source.posts import Post, Term
from publisher.templating import environment, render
from publisher.text import xml_attr, xml_text

if TYPE_CHECKING:
    from jinja2 import Environment

    from publisher.site.years import Neighbours, Year


@dataclass(frozen=True)
class FeedLink:
    href: str
    type: str
    title: str
    label: str


@dataclass(frozen=True)
class FeedRow:
    """One feed family (site, a tag or a category) for the index page and OPML."""

    title: str
    page: str
    count: int
    feeds: tuple[FeedLink, ...]


class PageRenderer:
    """The HTML pages of one site, from its templates."""

    def __init__(self, site: SiteSettings, templates: Sequence[Path]) -> None:
        self.templates = templates
        self.site = site
        self.base = site.base_url
        self._env: Environment | None = None

    @property
    def env(self) -> Environment:
        """Made on the first page rendered (see ``environment``)."""
        if self._env is None:
            self._env = environment(self.templates)
        return self._env

    def _render(self, name: str, **ctx: object) -> bytes:
        return render(self.env, name, site=self.site, base=self.base, **ctx).encode("utf-8")

    def post(self, post: Post, terms: list[Term], feeds: list[FeedLink], near: Neighbours) -> bytes:
        return self._render(
            "post.html.j2",
            post=post,
            post_url=f"{self.base}posts/{post.slug}.html",
            terms=terms,
            feeds=feeds,
            newer=near.newer,
            older=near.older,
        )

    def year(self, year: Year, years: list[tuple[int, int]], feeds: list[FeedLink]) -> bytes:
        older = max((y for y, _ in years if y < year.year), default=None)
        newer = min((y for y, _ in years if y > year.year), default=None)
        return self._render("year.html.j2", year=year, older=older, newer=newer, feeds=feeds)

    def archive(self, years: list[tuple[int, int]], feeds: list[FeedLink]) -> bytes:
        return self._render("archive.html.j2", years=years, feeds=feeds)

    def term(
        self, heading: str, posts: list[Post], feeds: list[FeedLink], topic: str = ""
    ) -> bytes:
        """A tag's or category's page; ``topic``: the tag to offer by email."""
        own = sum(1 for f in feeds if not f.href.endswith("digests.atom"))
        return self._render(
            "term.html.j2", heading=heading, posts=posts, feeds=feeds, topic=topic, formats=own
        )

    def not_found(self, feeds: list[FeedLink]) -> bytes:
        """``404.html``: what static hosts (and ``serve``) answer for a missing page."""
        return self._render("404.html.j2", feeds=feeds)

    def index(
        self,
        rows: list[FeedRow],
        recent: list[Post],
        feeds: list[FeedLink],
        digests: list[tuple[str, str, int]] = (),  # type: ignore[assignment]
        total: int = 0,
    ) -> bytes:
        return self._render(
            "index.html.j2",
            rows=rows,
            recent=recent,
            feeds=feeds,
            digests=list(digests),
            total=total,
        )


def opml(title: str, rows: list[FeedRow], base_url: str = "") -> bytes:
    """OPML 2.0 listing every feed (in the first format written: Atom unless it is
    off), so a reader can subscribe to all at once; styled for a browser tab by
    ``opml.xsl``."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml-stylesheet type="text/xsl" href={xml_attr(base_url + "opml.xsl")}?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{xml_text(title)}</title>",
        "  </head>",
        "  <body>",
    ]
    for row in rows:
        feed = row.feeds[0]
        lines.append(
            f'    <outline type="rss" text={xml_attr(row.title)} title={xml_attr(row.title)}'
            f" xmlUrl={xml_attr(feed.href)} htmlUrl={xml_attr(row.page)}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")
