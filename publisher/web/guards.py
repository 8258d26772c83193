"""Request guards: body size, rate limits, same-site POSTs."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.errors import PublisherError

MAX_BODY = 16 * 1024


class BodyLimit:
    """413 for request bodies over ``MAX_BODY``, whether declared or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY):
            await PlainTextResponse("request too large", 413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise PublisherError("request too large")
            return message

        await self.app(scope, limited, send)


class RateLimit:
    """At most ``limit`` events per key within ``window`` seconds (in memory)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self.clock()
        q = self.events[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True


def same_site(request: Request, origin: str) -> bool:
    """A browser POST from our own pages: not cross-site by Fetch metadata, and a
    matching Origin (or Referer) when one is given; ``origin`` is ``base_url``'s."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "same-site", "none"):
        return False
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        # non-browser clients send neither, privacy settings send "null":
        # the signed CSRF token still has to match
        return True
    parts = urlsplit(claimed)
    own = {origin, f"{request.url.scheme}://{request.url.netloc}"}
    return f"{parts.scheme}://{parts.netloc}" in own
