"""Golden files: reviewed copies of what a build of the seeds writes, byte for byte.

One build of the seeds after the 2019-W07 digest went out (to the outbox), so
the digest archive is there too. Regenerate on purpose, and review the diff,
with ``UPDATE_GOLDEN=1 pytest tests/site/test_golden.py``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from publisher.newsletter import run as newsletter
from publisher.settings import Settings
from publisher.site.build import build
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.weeks import parse_week
from tests.helpers import GOLDEN, SEEDS

#: Every kind of file a build writes, one of each.
FILES = [
    "tag/thanks.atom",
    "tag/thanks.rss",
    "tag/thanks.json",
    "tag/thanks.html",
    "posts/the-digital-revolution.html",
    "index.html",
    "feeds.opml",
    "sitemap.xml",
    "404.html",
    "digests.atom",
    "digests/2019-W07.html",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("golden")
    settings = Settings()
    settings = _at(settings, tmp)
    when = datetime(2019, 2, 18, 7, 0, tzinfo=settings.site.tzinfo)
    SubscriberStore(open_engine(settings.state.url)).add("reader@example.org", now=when)
    run = newsletter.open_run(
        settings, parse_week("2019-W07", settings.site.tzinfo), real_delivery=False
    )
    summary = newsletter.send(run, newsletter.transport_for(settings), lambda: when)
    assert summary.sent == 1
    out = Path(settings.build.output)
    build(settings, [SEEDS], out)
    return out


def _at(settings: Settings, tmp: Path) -> Settings:
    from dataclasses import replace

    return replace(
        settings,
        build=replace(settings.build, seeds=str(SEEDS), output=str(tmp / "out")),
        state=replace(settings.state, url=f"sqlite:///{(tmp / 'state.db').as_posix()}"),
        delivery=replace(settings.delivery, outbox=str(tmp / "outbox")),
    )


@pytest.mark.parametrize("name", FILES)
def test_golden(built: Path, name: str) -> None:
    got = (built / name).read_bytes()
    golden = GOLDEN / name.replace("/", "--")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(got)
    assert got == golden.read_bytes()


def test_the_digests_feed_is_found_where_the_other_feeds_are(built: Path) -> None:
    """Listed in feeds.opml, named in every page's head, and styled for a browser tab
    by the same stylesheet as the other feeds."""
    feed = "http://127.0.0.1:8000/digests.atom"
    assert f'xmlUrl="{feed}"' in (built / "feeds.opml").read_text(encoding="utf-8")
    for page in ("index.html", "posts/the-digital-revolution.html", "tag/thanks.html"):
        head = (built / page).read_text(encoding="utf-8").split("</head>")[0]
        assert 'rel="alternate" type="application/atom+xml"' in head and feed in head, page
    assert b'<?xml-stylesheet type="text/xsl"' in (built / "digests.atom").read_bytes()
