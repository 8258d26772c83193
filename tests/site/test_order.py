"""Archive pages in the order entries entered each feed: a caching client loses
nothing and never sees a cached page change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from publisher.config import load_settings
from publisher.settings import Settings
from publisher.site.artifacts import family_members
from publisher.site.build import build
from publisher.site.order import advance, newest
from publisher.source.load import load_stream
from tests.helpers import write
from tests.helpers.archives import long_date

# -- the rules ---------------------------------------------------------------


def test_new_entries_go_last_oldest_first_whatever_their_dates() -> None:
    first = advance((), ["c", "b", "a"], set(), 2)  # members: newest first
    assert first == ("a", "b", "c")
    # "z" is older than every post: it still enters last
    assert advance(first, ["c", "b", "a", "z"], set(), 2) == ("a", "b", "c", "z")


def test_full_pages_are_sealed_and_the_tail_follows_its_posts() -> None:
    known = ("a", "b", "c", "d", "e")  # pages of 2: a b | c d sealed, e open
    # "a" left the feed, "e" too: only the open entry goes
    assert advance(known, ["d", "c", "b"], set(), 2) == ("a", "b", "c", "d")
    # an edited post re-enters: its sealed entry stays, an open one moves
    assert advance(known, ["e", "d", "c", "b", "a"], {"b"}, 2) == (*known, "b")
    assert advance(("a", "b", "c"), ["c", "b", "a"], {"c"}, 5) == ("a", "b", "c")
    assert advance(("a", "b", "c"), ["c", "b", "a"], {"a"}, 5) == ("b", "c", "a")


def test_the_subscription_document_shows_each_post_once_last_entered_first() -> None:
    order = ("a", "b", "c", "b", "d")
    assert newest(order, {"a", "b", "c", "d"}, 3) == ["d", "b", "c"]
    assert newest(order, {"a", "c"}, 3) == ["c", "a"]


# -- a caching client --------------------------------------------------------


@dataclass
class CachingClient:
    """Polls every feed the OPML lists, in one format; fetches archive pages it
    has not cached (RFC 5005: they do not change), keeps the newest entry of each
    id, and remembers the bytes of each page it cached."""

    out: Path
    base: str
    fmt: str
    cached: dict[str, bytes] = field(default_factory=dict)
    #: feed key -> entry id -> updated
    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    def poll(self) -> int:
        """Poll every feed; the archive pages fetched."""
        opml = etree.parse(str(self.out / "feeds.opml"))
        fetched = 0
        for url in opml.xpath("//outline/@xmlUrl"):  # the Atom feed: this format's beside it
            key = url.removeprefix(self.base).removesuffix(".atom")
            rel = f"{key}.{self.fmt}"
            seen = self.entries.setdefault(key, {})
            link = self._read(rel, seen)
            while link is not None and link not in self.cached:
                self.cached[link] = (self.out / link).read_bytes()
                fetched += 1
                link = self._read(link, seen)
        return fetched

    def _read(self, rel: str, seen: dict[str, str]) -> str | None:
        """Keep the document's entries; its prev-archive link (relative)."""
        data = (self.out / rel).read_bytes()
        if self.fmt == "json":
            doc = json.loads(data)
            items = [(i["id"], i["date_modified"]) for i in doc["items"]]
            older = doc.get("next_url")
        else:
            parsed = feedparser.parse(data)
            assert not parsed.bozo, parsed.get("bozo_exception")
            # RSS has no updated date: its items are dated by pubDate alone
            dated = "published" if self.fmt == "rss" else "updated"
            items = [(e.id, e[dated]) for e in parsed.entries]
            links = [lk.href for lk in parsed.feed.get("links", []) if lk.rel == "prev-archive"]
            assert not any(lk.rel == "next-archive" for lk in parsed.feed.get("links", []))
            older = links[0] if links else None
        for pid, updated in items:
            if pid not in seen or _when(updated) > _when(seen[pid]):
                seen[pid] = updated
        return None if older is None else older.removeprefix(self.base)

    def changed_on_disk(self) -> list[str]:
        return [rel for rel, data in self.cached.items() if (self.out / rel).read_bytes() != data]


def _when(text: str) -> datetime:
    if text[:1].isdigit():
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsedate_to_datetime(text)


def _post(title: str, day: date, body: str) -> str:
    return f"{title}\n\n{long_date(day)}\n\n{body}\n"


def _corpus(seeds: Path, posts: int = 40, tags: int = 4) -> None:
    by_tag: dict[int, list[str]] = {t: [] for t in range(tags)}
    for i in range(posts):
        text = _post(f"Post {i}", date(2019, 12, 31) - timedelta(days=i), f"Body {i}.")
        for t in {i % tags, (i * 3) % tags}:
            by_tag[t].append(text)
    for t, texts in by_tag.items():
        write(seeds / f"t{t}.txt", f"Posts Tagged ‘topic {t}’\n\n" + "\n".join(texts))


def _settings(tmp_path: Path) -> Settings:
    cfg = tmp_path / "p.toml"
    state = (tmp_path / "state.db").as_posix()
    cfg.write_text(
        f'[state]\nurl = "sqlite:///{state}"\n[build]\nfeed_max_items = 5\npages = false\n',
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_a_caching_client_gets_every_post_once_and_no_cached_page_changes(
    tmp_path: Path, fmt: str
) -> None:
    seeds, out = tmp_path / "seeds", tmp_path / "out"
    _corpus(seeds)
    s = _settings(tmp_path)
    build(s, [seeds], out)
    client = CachingClient(out, s.site.base_url, fmt)
    assert client.poll() > 10  # subscribed: every archive page cached
    old = date(2018, 1, 1)
    rounds = [
        # back-dated posts, found in an archive saved later: older than every page
        ("late.txt", "Posts Tagged ‘topic 1’\n\n" + _post("Late A", old, "A.") + "\n"),
        ("late2.txt", "Posts Tagged ‘topic 2’\n\n" + _post("Late B", old, "B.")),
        # old posts gaining a tag (posts 1 and 5 are in topics 1 and 3 only)
        (
            "gain.txt",
            "Posts Tagged ‘topic 2’\n\n"
            + _post("Post 1", date(2019, 12, 30), "Body 1.")
            + "\n"
            + _post("Post 5", date(2019, 12, 26), "Body 5."),
        ),
        # new posts, newer than every other, and a new tag
        (
            "new.txt",
            "Posts Tagged ‘topic 9’\n\n"
            + "\n".join(_post(f"New {i}", date(2020, 2, 1 + i), f"N{i}.") for i in range(6)),
        ),
    ]
    for name, text in rounds:
        write(seeds / name, text)
        build(s, [seeds], out)
        client.poll()
        assert client.changed_on_disk() == []
    # an edit: the post comes again, newer, and is kept once, as edited
    edited_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    t0 = seeds / "t0.txt"
    t0.write_text(t0.read_text(encoding="utf-8").replace("Body 4.", "Body four."), "utf-8")
    build(s, [seeds], out, now=edited_at)
    client.poll()
    assert client.changed_on_disk() == []

    stream = load_stream(s, [seeds])
    members = family_members(stream)
    assert set(client.entries) == set(members)  # topic 9 came later: subscribed too
    for key, ids in members.items():
        assert sorted(client.entries[key]) == sorted(ids), key  # each post, once
    post4 = next(p.id for p in stream.posts if p.title == "Post 4")
    if fmt != "rss":  # (RSS items carry no updated date)
        assert _when(client.entries["all"][post4]) == edited_at
    late = next(p.id for p in stream.posts if p.title == "Late A")
    assert late in client.entries["tag/topic-1"] and late in client.entries["all"]


def test_the_first_build_under_entry_order_says_it_rewrites_the_archives(
    tmp_path: Path,
) -> None:
    """A site built before entry order has archive pages but no recorded order:
    its next build rewrites them once, and says so."""
    import sqlalchemy as sa

    seeds, out = tmp_path / "seeds", tmp_path / "out"
    _corpus(seeds)
    s = _settings(tmp_path)
    assert not build(s, [seeds], out).reordered  # a new site: nothing rewritten
    engine = sa.create_engine(s.state.url)
    with engine.begin() as conn:  # as an older publisher left it
        conn.execute(sa.text("DELETE FROM feed_orders"))
    engine.dispose()
    write(seeds / "late.txt", "Posts Tagged ‘topic 1’\n\n" + _post("Late", date(2018, 1, 1), "L."))
    result = build(s, [seeds], out)
    assert result.reordered
    assert "archive pages now follow the order entries entered each feed" in result.summary()
    again = build(s, [seeds], out, full=True)
    assert not again.reordered and "archive pages" not in again.summary()
