"""Every feed built from the seeds, read back by real parsers and a real validator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import atoma
import feedparser
import pytest

from publisher.settings import Settings
from publisher.site.build import build
from publisher.source.load import load_stream
from tests.helpers import SEEDS
from tests.helpers.feeds import assert_valid_atom

FEEDS = {"all": 12, "tag/thanks": 3, "tag/digital": 10}


@pytest.fixture
def built(settings: Settings) -> Path:
    out = Path(settings.build.output)
    build(settings, [SEEDS], out)
    return out


@pytest.mark.parametrize(("key", "count"), FEEDS.items())
@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feed_entries_equal_the_stream(
    settings: Settings, built: Path, key: str, count: int, fmt: str
) -> None:
    posts = _posts(settings, key)
    parsed = feedparser.parse(str(built / f"{key}.{fmt}"))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == count == len(posts)
    for entry, post in zip(parsed.entries, posts, strict=True):
        assert entry.id == post.id
        assert entry.title == post.title
        assert entry.link == f"{settings.site.base_url}posts/{post.slug}.html"
        assert (
            entry.published_parsed[:6]
            == post.published.astimezone(__import__("datetime").UTC).timetuple()[:6]
        )
        assert entry.content[0].value == post.html
        assert entry.summary == post.summary
        assert {t.term for t in entry.get("tags", [])} == set(post.tags)


def _posts(settings: Settings, key: str):
    stream = load_stream(settings, [SEEDS])
    return (
        list(stream.posts)
        if key == "all"
        else stream.posts_with(stream.term("tag", key.split("/")[1]))
    )


@pytest.mark.parametrize(("key", "count"), FEEDS.items())
def test_json_feed_items_equal_the_stream(
    settings: Settings, built: Path, key: str, count: int
) -> None:
    posts = _posts(settings, key)
    data = json.loads((built / f"{key}.json").read_text(encoding="utf-8"))
    assert data["feed_url"] == f"{settings.site.base_url}{key}.json"
    assert len(data["items"]) == count
    for item, post in zip(data["items"], posts, strict=True):
        assert (item["id"], item["title"], item["content_html"]) == (post.id, post.title, post.html)
        assert item["date_published"] == post.published.isoformat()
        assert item["url"] == f"{settings.site.base_url}posts/{post.slug}.html"


def test_every_feed_file_is_read_by_an_independent_parser(built: Path) -> None:
    files = sorted(p for p in built.rglob("[!.]*") if p.suffix in (".atom", ".rss", ".json"))
    assert len(files) == 9
    for path in files:
        if path.suffix == ".atom":
            feed = atoma.parse_atom_file(path)
            ids = [e.id_ for e in feed.entries]
            assert all(e.content and e.content.value for e in feed.entries)
        elif path.suffix == ".rss":
            feed = atoma.parse_rss_file(path)
            ids = [i.guid for i in feed.items]
        else:
            feed = atoma.parse_json_feed_file(path)
            ids = [i.id_ for i in feed.items]
        key = path.relative_to(built).with_suffix("").as_posix()
        assert len(ids) == FEEDS[key] and len(set(ids)) == len(ids)


def test_atom_validates_against_rfc4287_schema(built: Path) -> None:
    paths = sorted(built.rglob("*.atom"))
    assert len(paths) >= len(FEEDS)  # every subscription document, and the archives
    for path in paths:
        assert_valid_atom(path)


def test_rss_details(built: Path, settings: Settings) -> None:
    text = (built / "tag" / "thanks.rss").read_text(encoding="utf-8")
    assert '<guid isPermaLink="false">tag:publisher.localhost,2019-02-11:' in text
    assert f'<atom:link href="{settings.site.base_url}tag/thanks.rss" rel="self"' in text
    assert "<lastBuildDate>Mon, 11 Feb 2019 12:00:00 +0000</lastBuildDate>" in text
    assert "<pubDate>Mon, 21 May 2018 12:00:00 +0100</pubDate>" in text  # BST, RFC 822
    assert text.startswith(
        "<?xml version='1.0' encoding='UTF-8'?>\n<?xml-stylesheet type=\"text/xsl\""
    )


def test_feed_updated_is_newest_entry_not_build_time(built: Path) -> None:
    parsed = feedparser.parse(str(built / "all.atom"))
    assert parsed.feed.updated == "2019-11-18T12:00:00+00:00"
    data = json.loads((built / "all.json").read_text(encoding="utf-8"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["items"][0]["date_modified"] == "2019-11-18T12:00:00+00:00"


def test_opml_lists_every_feed(built: Path, settings: Settings) -> None:
    from lxml import etree

    doc = etree.parse(str(built / "feeds.opml"))
    urls = doc.xpath("//outline/@xmlUrl")
    base = settings.site.base_url
    assert urls == [f"{base}all.atom", f"{base}tag/digital.atom", f"{base}tag/thanks.atom"]
    for url in urls:
        assert (built / url.removeprefix(base)).is_file()


def test_pages_have_autodiscovery_and_link_targets_exist(built: Path, settings: Settings) -> None:
    import re

    base = settings.site.base_url
    pages = list(built.rglob("*.html"))
    assert len(pages) == 12 + 2 + 1 + 1 + 1 + 3  # posts, tags, index, 404, archive, years
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert '<link rel="alternate" type="application/atom+xml"' in html
        for href in re.findall(r'href="([^"]+)"', html):
            if href.startswith(base):
                rel = href.removeprefix(base).partition("#")[0]
                target = built / rel
                # /subscribe is served by `publisher serve` (tested in tests/web)
                app_route = rel.partition("?")[0] == "subscribe"
                assert target.is_file() or rel == "" or app_route, href


def test_fragments_are_dropped_after_their_last_expected_use(settings: Settings) -> None:
    """With small pages every post is in several documents per format; announcing the
    documents lets the renderer free each post's fragment after its last one and make
    its Atom and RSS fragments from one entry, and the bytes are those of a renderer
    that keeps everything."""
    from publisher.formats import FEED_FORMATS as FORMATS
    from publisher.site.feeds import FeedRenderer, paginate

    stream = load_stream(settings, [SEEDS])
    posts = list(stream.posts)
    by_id = {p.id: p for p in posts}
    half = posts[::2]
    oldest_first = [p.id for p in reversed(posts)]
    docs = paginate("all", "T", "D", "https://x/", oldest_first, by_id, by_id, 5)
    some = {p.id for p in half}
    docs += paginate("tag/digital", "T", "D", "https://x/", oldest_first[::2], some, by_id, 3)
    updated = {p.id: p.published for p in posts}
    keeping, dropping = FeedRenderer(settings.site, updated), FeedRenderer(settings.site, updated)
    for doc in docs:
        for fmt in FORMATS:
            dropping.expect(doc, fmt)
    made = {"keeping": 0, "dropping": 0}
    for name, renderer in (("keeping", keeping), ("dropping", dropping)):
        entry = renderer._entry

        def counted(post, entry=entry, name=name):  # type: ignore[no-untyped-def]
            made[name] += 1
            return entry(post)

        renderer._entry = counted  # type: ignore[method-assign]
    for doc in docs:
        for fmt in FORMATS:
            assert dropping.render(doc, fmt) == keeping.render(doc, fmt)
    assert len(keeping._atom) == len(posts)
    # announced Atom and RSS documents share one FeedEntry per post; unannounced, one each
    assert made == {"keeping": 2 * len(posts), "dropping": len(posts)}
    assert dropping._atom == dropping._rss == dropping._json == {} and dropping._uses == {}


def test_feeds_carry_the_icon_and_polling_hints(built: Path, settings: Settings) -> None:
    """The site's icon for readers' lists (Atom icon and logo, RSS image, JSON Feed
    icon and favicon), and RSS polling hints from the publish schedule (every 15
    minutes by default) on subscription documents, never on archive pages."""
    icon = "http://127.0.0.1:8000/icon.png"
    atom = feedparser.parse(str(built / "tag" / "thanks.atom"))
    assert atom.feed.icon == icon and atom.feed.logo == icon
    rss = feedparser.parse(str(built / "tag" / "thanks.rss"))
    assert rss.feed.image.href == icon and rss.feed.ttl == "15"
    text = (built / "tag" / "thanks.rss").read_text(encoding="utf-8")
    assert "<sy:updatePeriod>hourly</sy:updatePeriod>" in text
    assert "<sy:updateFrequency>4</sy:updateFrequency>" in text
    feed = json.loads((built / "tag" / "thanks.json").read_text(encoding="utf-8"))
    assert feed["icon"] == feed["favicon"] == icon
    assert (built / "icon.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    small = replace(settings, build=replace(settings.build, feed_max_items=5))
    build(small, [SEEDS], built.parent / "small")
    archived = sorted((built.parent / "small" / "archive").rglob("*.rss"))
    assert archived and all("<ttl>" not in p.read_text(encoding="utf-8") for p in archived)
    assert "<ttl>15</ttl>" in (built.parent / "small" / "all.rss").read_text(encoding="utf-8")
    page = (built / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="icon" href="{icon}">' in page


@pytest.mark.parametrize(
    ("cron", "minutes"),
    [
        ("*/15 * * * *", 15),
        ("0 * * * *", 60),
        ("* * * * *", 1),
        ("5 */6 * * *", 360),
        ("0 7 * * mon", 60),
    ],
)
def test_polling_hints_follow_the_publish_schedule(cron: str, minutes: int) -> None:
    from publisher.crontab import poll_minutes

    assert poll_minutes(cron) == minutes
