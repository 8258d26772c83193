"""Digests on the web: a page per week's (or month's) digest and an Atom feed of them,
so people can read or link to an issue they missed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from feedgen.feed import FeedGenerator

from publisher import __version__
from publisher.newsletter.content import DigestRenderer, web_path
from publisher.settings import Settings
from publisher.site.feeds import stylesheet
from publisher.source.posts import Post, Stream
from publisher.store.rows import DigestRecord
from publisher.text import fingerprint
from publisher.weeks import Period, parse_period

FEED_PATH = "digests.atom"


@dataclass(frozen=True)
class SentDigest:
    week: Period
    posts: tuple[Post, ...]

    @property
    def path(self) -> str:
        return web_path(self.week)


def sent_digests(
    settings: Settings, stream: Stream, records: Sequence[DigestRecord]
) -> list[SentDigest]:
    """Newest first; posts that have since left the archives are left out."""
    by_id = {p.id: p for p in stream.posts}
    tz = settings.site.tzinfo
    out = [
        SentDigest(parse_period(r.week, tz), tuple(by_id[i] for i in r.post_ids if i in by_id))
        for r in records
    ]
    return sorted((d for d in out if d.posts), key=lambda d: d.week.start, reverse=True)


def digest_files(
    settings: Settings,
    sent: list[SentDigest],
    updated: dict[str, datetime],
    base_key: str,
) -> Iterator[tuple[str, str, Callable[[], bytes]]]:
    """(path, key, render) for each week's page and the digests feed."""
    renderer = DigestRenderer(settings)

    def key_of(d: SentDigest) -> str:
        return fingerprint(
            base_key, d.week.label, [(p.id, p.content_hash, updated[p.id]) for p in d.posts]
        )

    def page(d: SentDigest) -> Callable[[], bytes]:
        return lambda: renderer.render(d.week, d.posts, (), personal=False).html.encode("utf-8")

    for d in sent:
        yield d.path, key_of(d), page(d)
    if sent:
        yield (
            FEED_PATH,
            fingerprint(base_key, [key_of(d) for d in sent]),
            lambda: _feed(settings, sent, renderer, updated),
        )


def _feed(
    settings: Settings,
    sent: list[SentDigest],
    renderer: DigestRenderer,
    updated: dict[str, datetime],
) -> bytes:
    site = settings.site
    base = site.base_url
    fg = FeedGenerator()
    fg.id(base + FEED_PATH)
    fg.title(f"{site.title}: email digests")
    fg.subtitle(f"Every email digest of {site.title}, weekly and monthly")
    fg.language(site.language)
    fg.author(name=site.author_name)
    fg.generator("publisher", version=__version__)
    fg.link(href=base + FEED_PATH, rel="self", type="application/atom+xml")
    fg.link(href=base, rel="alternate", type="text/html")

    def when(d: SentDigest) -> datetime:
        return max(updated.get(p.id, p.published) for p in d.posts)

    fg.updated(max(when(d) for d in sent))
    for d in reversed(sent):  # feedgen prepends: oldest first gives newest on top
        fe = fg.add_entry()
        fe.id(f"tag:{site.id_domain},{d.week.start.date().isoformat()}:digest-{d.week.label}")
        fe.title(renderer.subject(d.week, d.posts))  # the subject alone; no second render
        fe.link(href=base + d.path, rel="alternate", type="text/html")
        fe.published(max(p.published for p in d.posts))
        fe.updated(when(d))
        items = "".join(
            f'<li><a href="{escape(base)}posts/{escape(p.slug)}.html">{escape(p.title)}</a></li>'
            for p in d.posts
        )
        fe.content(f"<p>{escape(renderer.heading(d.week))}</p><ul>{items}</ul>", type="html")
    feed: bytes = fg.atom_str(pretty=True)
    # the feeds' stylesheet, as every feed of the site carries it
    end_decl = feed.index(b"\n") + 1
    return feed[:end_decl] + stylesheet(base) + feed[end_decl:]


def publish_web_copy(settings: Settings) -> None:
    """Build the site, so that a digest just planned has its web copy (which its
    messages link to) before they go. A build that fails is logged, and the
    digest goes all the same: the next build publishes the copy."""
    import logging
    from pathlib import Path

    from publisher.errors import PublisherError
    from publisher.site.build import build

    if not settings.build.pages:
        return
    try:
        build(settings, [Path(settings.build.seeds)], Path(settings.build.output))
    except PublisherError as exc:
        logging.getLogger(__name__).warning(
            "warning: the digest's web copy is not published yet: %s (%s)", exc.message, exc.remedy
        )
