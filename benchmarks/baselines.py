"""The issue's two reference rows, measured on this machine: a naive feedgen loop
and plain string templates, each writing Pelican's 202 files.

    python benchmarks/baselines.py {feedgen|strings} ARCHIVES OUT

The issue scales its targets with figures "measured on this kind of machine"
(Pelican 85-110 s, a naive feedgen loop 7-10 s, plain string templates 2-3.5 s
at 10,000 posts). Pelican's speed relative to the others differs from host to
host, so ``bench_build.py --peers`` runs these two beside Pelican: the ratios
between them show how this machine compares with the issue's.

Both read the posts with publisher's normalizer (timed: a baseline has to read
its input too) and write the site feed and one feed per tag, Atom and RSS, every
entry with its full content: the work Pelican's settings ask for, nothing more
(no state, no snapshot, no manifest, no atomic writes, one process).
"""

from __future__ import annotations

import os
import sys
from html import escape
from pathlib import Path

from publisher.config import load_settings
from publisher.source.load import load_stream
from publisher.source.posts import Post

BASE = "https://example.com/"


def feeds(posts: list[Post]) -> list[tuple[str, list[Post]]]:
    """("all", every post), then ("tag/<slug>", its posts), newest first."""
    by_tag: dict[str, list[Post]] = {}
    for p in posts:
        for t in p.tags:
            by_tag.setdefault(t, []).append(p)
    slug = {t: t.lower().replace(" ", "-") for t in by_tag}
    return [("all", posts), *((f"tag/{slug[t]}", ps) for t, ps in sorted(by_tag.items()))]


def naive_feedgen(posts: list[Post], out: Path) -> None:
    """One FeedGenerator per feed; every entry built anew in every feed that has it."""
    from feedgen.feed import FeedGenerator

    for name, members in feeds(posts):
        fg = FeedGenerator()
        fg.id(f"{BASE}{name}.atom")
        fg.title(name)
        fg.description(name)
        fg.link(href=BASE, rel="alternate")
        fg.link(href=f"{BASE}{name}.atom", rel="self")
        for p in reversed(members):  # feedgen prepends: oldest first gives newest first
            fe = fg.add_entry()
            fe.id(p.id)
            fe.title(p.title)
            fe.link(href=f"{BASE}posts/{p.slug}.html")
            fe.published(p.published)
            fe.updated(p.published)
            fe.content(p.html, type="html")
            for t in p.tags:
                fe.category(term=t)
        fg.atom_file(str(out / f"{name}.atom"), pretty=True)
        fg.rss_file(str(out / f"{name}.rss"), pretty=True)


def plain_strings(posts: list[Post], out: Path) -> None:
    """f-strings and ``html.escape``: each entry formatted once per format, then joined."""
    atom: dict[str, str] = {}
    rss: dict[str, str] = {}
    for p in posts:
        url, title, html = f"{BASE}posts/{p.slug}.html", escape(p.title), escape(p.html)
        cats = "".join(f'<category term="{escape(t)}"/>' for t in p.tags)
        atom[p.id] = (
            f"<entry><id>{escape(p.id)}</id><title>{title}</title>"
            f'<link href="{url}"/><updated>{p.published.isoformat()}</updated>'
            f'{cats}<content type="html">{html}</content></entry>\n'
        )
        rss[p.id] = (
            f"<item><guid>{escape(p.id)}</guid><title>{title}</title><link>{url}</link>"
            f"<pubDate>{p.published.strftime('%a, %d %b %Y %H:%M:%S %z')}</pubDate>"
            f"<description>{html}</description></item>\n"
        )
    for name, members in feeds(posts):
        updated = members[0].published.isoformat()
        head = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        (out / f"{name}.atom").write_text(
            f"{head}<id>{BASE}{name}.atom</id><title>{name}</title><updated>{updated}</updated>\n"
            + "".join(atom[p.id] for p in members)
            + "</feed>\n",
            encoding="utf-8",
        )
        (out / f"{name}.rss").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{name}</title><link>{BASE}</link><description>{name}</description>\n"
            + "".join(rss[p.id] for p in members)
            + "</channel></rss>\n",
            encoding="utf-8",
        )


def main() -> None:
    kind, archives, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    settings = load_settings(None, environ={})
    posts = list(load_stream(settings, [archives]).posts)
    (out / "tag").mkdir(parents=True, exist_ok=True)
    {"feedgen": naive_feedgen, "strings": plain_strings}[kind](posts, out)
    written = sum(len(files) for _, _, files in os.walk(out))
    assert written == 2 * len(feeds(posts)), written


if __name__ == "__main__":
    main()
