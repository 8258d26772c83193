"""Request guards: the site's own address, body size, who the client is, rate
limits, same-site POSTs and form tokens bound to a cookie.

Each guard answers what a hostile visitor would try: a forged ``Host`` (every
URL the app makes comes from ``base_url``), a body that never ends (413), a
proxy that makes everyone one client (``[web] trusted_proxies``), a form
posted from another site (Fetch metadata, ``Origin``, and a CSRF token that
only the browser holding the matching cookie can send back).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 16 * 1024
#: The cookie a form's CSRF token is bound to (double submit).
FORM_COOKIE = "publisher_form"


class SiteAddress:
    """Every request is taken as addressed to ``base_url``: the ``Host`` header and
    scheme a client sends never reach a redirect, a link or a page."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        parts = urlsplit(base_url)
        self.scheme, self.host = parts.scheme, parts.netloc.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope = {**scope, "scheme": self.scheme, "headers": [(b"host", self.host), *headers]}
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for request bodies over ``MAX_BODY``, whether declared or streamed
    (chunked): the answer is sent as soon as the limit is passed."""

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
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except _TooLarge:
            if started:  # too late to answer: the connection is dropped
                raise
            await PlainTextResponse("request too large", 413)(scope, receive, send)


def client_address(request: Request, trusted: Sequence[str]) -> str:
    """The client's IP: the socket's peer, or, when that is a trusted proxy, the
    nearest address in ``X-Forwarded-For`` that is not one (proxies append)."""
    peer = request.client.host if request.client else ""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_proxy(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in networks)

    if not networks or not is_proxy(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_proxy(hop):
            return hop
    return peer


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
    matching Origin (or Referer) when one is given; ``origin`` is ``base_url``'s.
    ``Origin: null`` (a sandboxed frame, a redirect from elsewhere) is refused."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "same-site", "none"):
        return False
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed == "null":
        return False
    if not claimed:  # non-browser clients send neither: the CSRF token still must match
        return True
    parts = urlsplit(claimed)
    return f"{parts.scheme}://{parts.netloc}" == origin


def form_binding(request: Request) -> str | None:
    """What a form's CSRF token is bound to: a hash of the browser's form cookie."""
    cookie = request.cookies.get(FORM_COOKIE, "")
    if len(cookie) < 20:
        return None
    return hashlib.sha256(cookie.encode()).hexdigest()[:24]


class FormCookie:
    """Gives a browser without one a random form cookie (HttpOnly, SameSite=Strict,
    Secure on https), visible to the handler of this very request, so the page it
    renders can bind its form to it."""

    def __init__(self, app: ASGIApp, path: str, secure: bool) -> None:
        self.app, self.path, self.secure = app, path, secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or form_binding(Request(scope)) is not None:
            await self.app(scope, receive, send)
            return
        value = secrets.token_urlsafe(24)
        cookie = f"{FORM_COOKIE}={value}".encode()
        headers = list(scope["headers"])
        jar = [v for k, v in headers if k == b"cookie"]
        headers = [(k, v) for k, v in headers if k != b"cookie"]
        headers.append((b"cookie", b"; ".join([*jar, cookie])))
        scope = {**scope, "headers": headers}
        setter = Response()
        setter.set_cookie(
            FORM_COOKIE,
            value,
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )
        extra = [(k, v) for k, v in setter.raw_headers if k == b"set-cookie"]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, sending)
