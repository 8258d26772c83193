"""Sitemap (sitemaps.org 0.9): every page the build writes, for search engines.

What Hugo and WordPress write by default. Each page's ``lastmod`` is the newest
``updated`` date of the posts it shows, never the build time, so the same
input gives the same file. A sitemap holds at most 50,000 URLs; past that,
``sitemap.xml`` is an index of ``sitemap/<n>.xml`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from publisher.text import xml_text

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
#: The protocol's limit of URLs per file.
MAX_URLS = 50_000
PATH = "sitemap.xml"


def sitemap_files(
    base_url: str, pages: Sequence[tuple[str, datetime]], per_file: int = MAX_URLS
) -> list[tuple[str, bytes]]:
    """(path, bytes) of the sitemap of ``pages`` ((absolute URL, lastmod), in the
    order given): one file, or an index and its parts."""
    if len(pages) <= per_file:
        return [(PATH, _urlset(pages))]
    parts = [pages[i : i + per_file] for i in range(0, len(pages), per_file)]
    files = [(f"sitemap/{n}.xml", _urlset(part)) for n, part in enumerate(parts, 1)]
    index = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<sitemapindex xmlns="{NS}">',
        *(
            f"  <sitemap><loc>{xml_text(base_url + path)}</loc>"
            f"<lastmod>{max(t for _, t in part).isoformat()}</lastmod></sitemap>"
            for (path, _), part in zip(files, parts, strict=True)
        ),
        "</sitemapindex>",
        "",
    ]
    return [(PATH, "\n".join(index).encode("utf-8")), *files]


def _urlset(pages: Sequence[tuple[str, datetime]]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<urlset xmlns="{NS}">']
    lines += (
        f"  <url><loc>{xml_text(url)}</loc><lastmod>{when.isoformat()}</lastmod></url>"
        for url, when in pages
    )
    lines += ["</urlset>", ""]
    return "\n".join(lines).encode("utf-8")
