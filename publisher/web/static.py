"""The build folder over HTTP: feed media types, cache headers, 304s, nothing hidden.

A person who opens a feed in a browser tab (a navigation, by Fetch metadata)
gets a readable page at the same address; feed readers get the feed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.formats import FEED_SUFFIXES, MEDIA_TYPES

ATOM = "http://www.w3.org/2005/Atom"
CACHE = {".html": 300, ".atom": 900, ".rss": 900, ".json": 900, ".opml": 3600, ".xml": 3600}
#: A feed's entries as (title, link, date).
Entries = list[tuple[str, str, str]]


class SiteFiles(StaticFiles):
    """The build folder: feed media types, cache headers, 304s, nothing hidden served."""

    preview: Callable[[Path, Scope], Response] | None = None

    def get_path(self, scope: Scope) -> str:
        path = super().get_path(scope)
        if any(part.startswith(".") and part not in (".",) for part in Path(path).parts):
            return "\x00hidden"  # lookup fails on the NUL: a plain 404
        return path

    def file_response(self, full_path, stat_result, scope, status_code=200):  # type: ignore[no-untyped-def]
        suffix = Path(full_path).suffix
        request = Headers(scope=scope)
        headers = {
            "Cache-Control": f"public, max-age={CACHE.get(suffix, 3600)}",
            "X-Content-Type-Options": "nosniff",
            # on every answer, 304s too: a cache must keep gzip and plain apart
            "Vary": "Accept-Encoding",
        }
        media_type = MEDIA_TYPES.get(suffix)
        if suffix == ".html" and (links := _alternates(Path(full_path))):
            headers["Link"] = links
        if suffix in FEED_SUFFIXES:
            headers["Vary"] = "Accept-Encoding, Sec-Fetch-Dest"
            if request.get("sec-fetch-dest") == "document" and self.preview is not None:
                # a person opened the feed in a browser tab (feed readers send no
                # Fetch metadata): a readable page at the same address, to copy
                return self.preview(Path(full_path), scope)
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers=headers,
        )
        if self.is_not_modified(response.headers, request):
            return NotModifiedResponse(response.headers)
        return response


_ALTERNATE = re.compile(rb'<link rel="alternate" type="([^"]+)"(?: title="[^"]*")? href="([^"]+)"')


def _alternates(page: Path) -> str:
    """The feeds a page of ours names in its head, as an RFC 8288 ``Link`` header, so a
    client finds them without parsing HTML."""
    with page.open("rb") as f:
        head = f.read(8192).split(b"</head>", 1)[0]
    return ", ".join(
        f'<{href.decode()}>; rel="alternate"; type="{kind.decode()}"'
        for kind, href in _ALTERNATE.findall(head)
    )


class ETagPerEncoding:
    """A gzip answer is another representation: it gets its own ETag (``…-gzip``),
    and a client's ``If-None-Match`` for it is understood (RFC 9110 8.8.3)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = [v for k, v in scope["headers"] if k == b"if-none-match"]
        gzip_asked = any(b'-gzip"' in v for v in asked)
        headers = [
            (k, v.replace(b'-gzip"', b'"')) if k == b"if-none-match" else (k, v)
            for k, v in scope["headers"]
        ]
        scope = {**scope, "headers": headers}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message.get("headers", [])
                not_modified = message["status"] == 304 and gzip_asked
                if (b"content-encoding", b"gzip") in raw or not_modified:
                    raw = [
                        (k, v[:-1] + b'-gzip"' if k == b"etag" and v.endswith(b'"') else v)
                        for k, v in raw
                    ]
                    message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, sending)


def feed_summary(path: Path) -> tuple[str, str, Entries]:
    """Title, home page and entries of one of our own feed files (written by build)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [
            (i.get("title", ""), i.get("url", ""), i.get("date_published", "")[:10])
            for i in data.get("items", [])
        ]
        return data.get("title", ""), data.get("home_page_url", ""), entries
    root = ElementTree.parse(path).getroot()
    if root.tag == f"{{{ATOM}}}feed":
        return _atom_summary(root)
    channel = root.find("channel")
    assert channel is not None
    entries = [
        (i.findtext("title", ""), i.findtext("link", ""), i.findtext("pubDate", "")[:16])
        for i in channel.findall("item")
    ]
    return channel.findtext("title", ""), channel.findtext("link", ""), entries


def _atom_summary(root: ElementTree.Element) -> tuple[str, str, Entries]:
    links = root.findall(f"{{{ATOM}}}link")
    home = next((lk.get("href", "") for lk in links if lk.get("rel") == "alternate"), "")
    entries = []
    for e in root.findall(f"{{{ATOM}}}entry"):
        link = e.find(f"{{{ATOM}}}link")
        href = link.get("href", "") if link is not None else ""
        entries.append(
            (e.findtext(f"{{{ATOM}}}title", ""), href, e.findtext(f"{{{ATOM}}}published", "")[:10])
        )
    return root.findtext(f"{{{ATOM}}}title", ""), home, entries
