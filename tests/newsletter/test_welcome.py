"""The welcome mail's posts: the newest of the reader's topics, read from the site
the last build published."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from publisher.newsletter.welcome import newest_posts
from publisher.settings import Settings
from publisher.site.build import build
from publisher.source.load import load_stream
from tests.helpers import SEEDS


@pytest.mark.parametrize("fmt", ["json", "atom"])
def test_the_newest_posts_of_a_rare_topic_come_from_its_own_feed(
    settings: Settings, tmp_path: Path, fmt: str
) -> None:
    """With one entry a feed, the site's feed holds no ‘thanks’ post: the topic's own
    feed does. Newest first, by date; a post of two chosen topics once."""
    from dataclasses import replace

    s = replace(settings, build=replace(settings.build, feed_max_items=1, formats=(fmt,)))
    out = tmp_path / "site"
    build(s, [SEEDS], out)
    posts = load_stream(s, [SEEDS]).posts
    thanks = [p.title for p in posts if "thanks" in p.tags]
    assert posts[0].title not in thanks  # the site's feed holds no 'thanks' post
    assert [h.title for h in newest_posts(out, ("thanks",))] == thanks[:1]
    both = newest_posts(out, ("thanks", "digital"), count=10)
    assert [h.title for h in both] == [posts[0].title, thanks[0]]  # newest first
    dates = [datetime.fromisoformat(h.date) for h in both]
    assert dates == sorted(dates, reverse=True)
    assert [h.title for h in newest_posts(out, ())] == [posts[0].title]
    assert newest_posts(tmp_path / "nothing", ("thanks",)) == []
