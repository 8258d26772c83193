"""The sitemap: every page the build writes, dated by its posts, valid by the protocol."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import feedparser
from lxml import etree

from publisher.config import load_settings
from publisher.site.build import build
from publisher.site.sitemap import NS, sitemap_files
from tests.helpers import SEEDS
from tests.helpers.feeds import assert_valid_sitemap

EDIT_NOW = datetime.fromisoformat("2026-11-23T09:30:00+00:00")


def entries(data: bytes) -> dict[str, str]:
    """loc -> lastmod."""
    root = etree.fromstring(data)
    return {
        e.findtext(f"{{{NS}}}loc"): e.findtext(f"{{{NS}}}lastmod")
        for e in root
        if e.tag in (f"{{{NS}}}url", f"{{{NS}}}sitemap")
    }


def test_every_page_dated_by_its_posts_and_an_edit_moves_only_its_dates(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    s, out = load_settings(cfg, environ={}), tmp_path / "out"
    build(s, [tmp_path / "seeds"], out)
    data = (out / "sitemap.xml").read_bytes()
    assert_valid_sitemap(data)
    base = s.site.base_url
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")} - {"404.html"}
    dated = entries(data)
    assert set(dated) == {base + ("" if p == "index.html" else p) for p in pages}
    feed = feedparser.parse(str(out / "all.atom"))
    assert {e.link: e.updated for e in feed.entries} == {
        u: d for u, d in dated.items() if "/posts/" in u
    }
    assert dated[base] == feed.feed.updated  # the newest post's date, not the build's
    # one post edited: its page, its tag's page and the index get the edit's date
    f = tmp_path / "seeds" / "000_5c47147349eb2bcc.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("flat out", "working flat out"))
    build(s, [tmp_path / "seeds"], out, now=EDIT_NOW)
    after = entries((out / "sitemap.xml").read_bytes())
    moved = {u for u in after if after[u] != dated[u]}
    post = f"{base}posts/thanks-to-our-gritting-crews-a-ministerial-visit-and.html"
    # ... and the pages that list every post: its year's and the list of years
    assert moved == {
        post,
        f"{base}tag/thanks.html",
        base,
        f"{base}years/2018.html",
        f"{base}archive.html",
    }
    assert after[post] == EDIT_NOW.isoformat()


def test_past_50000_urls_an_index_of_parts() -> None:
    """The protocol's limit per file (here 2, to test it): an index of the parts, each
    dated by its newest page; an ``&`` in a URL is escaped."""
    when = [datetime.fromisoformat(f"2020-01-0{d}T12:00:00+00:00") for d in (1, 3, 2, 4, 5)]
    pages = [(f"https://x.org/p{i}.html?a=1&b={i}", t) for i, t in enumerate(when)]
    files = dict(sitemap_files("https://x.org/", pages, per_file=2))
    assert list(files) == ["sitemap.xml", "sitemap/1.xml", "sitemap/2.xml", "sitemap/3.xml"]
    for data in files.values():
        assert_valid_sitemap(data)
    assert entries(files["sitemap.xml"]) == {
        "https://x.org/sitemap/1.xml": "2020-01-03T12:00:00+00:00",
        "https://x.org/sitemap/2.xml": "2020-01-04T12:00:00+00:00",
        "https://x.org/sitemap/3.xml": "2020-01-05T12:00:00+00:00",
    }
    assert b"?a=1&amp;b=0</loc>" in files["sitemap/1.xml"]
    assert list(entries(files["sitemap/2.xml"])) == [u for u, _ in pages[2:4]]
    assert dict(sitemap_files("https://x.org/", pages)).keys() == {"sitemap.xml"}
