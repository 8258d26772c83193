"""``publisher serve``: the built site, plus sign-up, confirmation, preferences and
one-click unsubscribe (RFC 8058) for the digest.

Link scanners in mail systems fetch every link, so no GET changes anything:
GET pages show a form; only POST acts. Forms carry a signed, expiring CSRF
token and cross-site POSTs are refused, except RFC 8058's one-click POST,
which mail providers send from their servers with the signed token in the URL.
"""

from __future__ import annotations

import errno
import json
import logging
import secrets
import socket
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from publisher.delivery.transport import MessageMail, PermanentError, TransientError, Transport
from publisher.errors import PublisherError
from publisher.formats import MEDIA_TYPES
from publisher.newsletter.mime import build_plain, parse_sender
from publisher.newsletter.run import transport_for
from publisher.newsletter.tokens import (
    Token,
    TokenError,
    secret_from_env,
    sign,
    unverified_purpose,
    verify,
)
from publisher.settings import Settings
from publisher.source.load import load_stream
from publisher.store.schema import open_engine
from publisher.store.subscribers import (
    SUPPRESSED,
    Status,
    Subscriber,
    SubscriberStore,
    clean_tags,
    normalize_email,
)
from publisher.templating import environment, render

log = logging.getLogger("publisher.web.app")
ATOM = "http://www.w3.org/2005/Atom"
CACHE = {".html": 300, ".atom": 900, ".rss": 900, ".json": 900, ".opml": 3600, ".xml": 3600}
MAX_BODY = 16 * 1024
CONFIRM_HOURS = 48
CSRF_SECONDS = 2 * 3600
ONE_CLICK = "List-Unsubscribe=One-Click"


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
        }
        media_type = MEDIA_TYPES.get(suffix)
        if suffix in (".atom", ".rss", ".json"):
            headers["Vary"] = "Sec-Fetch-Dest"
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

        async def limited() -> dict:
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


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        transport: Callable[[], Transport] | None = None,
    ) -> None:
        self.settings = settings
        self.site = settings.site
        self.base = settings.site.base_url
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base))
        self.clock = clock
        self.secret = secret_from_env(allow_dev=settings.delivery.method == "outbox")
        self.store = SubscriberStore(open_engine(settings.state.url))
        self.env = environment(settings.template_dirs)
        self.transport = transport or (lambda: transport_for(settings))
        self.tags = load_stream(settings).terms_of("tag")
        self.per_ip = RateLimit(5, 600, clock)
        self.per_address = RateLimit(3, 3600, clock)

    # -- helpers -------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.site.tzinfo)

    def page(self, template: str, status: int = 200, **ctx: object) -> HTMLResponse:
        html = render(self.env, template, site=self.site, base=self.base, **ctx)
        headers = {
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; style-src 'self'",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(html, status_code=status, headers=headers)

    def message(self, title: str, *lines: str, status: int = 200) -> HTMLResponse:
        return self.page("web.html.j2", status, title=title, lines=lines)

    def csrf(self) -> str:
        return sign(Token("form", 0, int(self.clock()) + CSRF_SECONDS), self.secret)

    def same_site(self, request: Request) -> bool:
        """A browser POST from our own pages: not cross-site by Fetch metadata, and a
        matching Origin (or Referer) when one is given."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "same-site", "none"):
            return False
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin or origin == "null":
            # non-browser clients send neither, privacy settings send "null":
            # the signed CSRF token still has to match
            return True
        parts = urlsplit(origin)
        own = {self.origin, f"{request.url.scheme}://{request.url.netloc}"}
        return f"{parts.scheme}://{parts.netloc}" in own

    async def form(self, request: Request) -> dict[str, list[str]]:
        form = await request.form()
        out: dict[str, list[str]] = defaultdict(list)
        for key, value in form.multi_items():
            if isinstance(value, str):
                out[key].append(value)
        return out

    def check_form(self, request: Request, form: dict[str, list[str]]) -> HTMLResponse | None:
        if not self.same_site(request):
            return self.message("Refused", "This form can only be sent from this site.", status=403)
        try:
            verify((form.get("csrf") or [""])[0], self.secret, "form", int(self.clock()))
        except TokenError:
            return self.message(
                "Please try again",
                "The form expired or was not sent from this site. "
                "Reload the page and send it again.",
                status=403,
            )
        return None

    def subscriber_for(
        self, request: Request, purpose: str
    ) -> tuple[Subscriber | None, HTMLResponse | None]:
        try:
            token = verify(
                request.query_params.get("token", ""), self.secret, purpose, int(self.clock())
            )
        except TokenError as exc:
            return None, self.message(
                "This link does not work", exc.message, exc.remedy + ".", status=400
            )
        sub = self.store.get(token.subscriber)
        if sub is None:
            return None, self.message(
                "This link does not work", "No such subscription.", status=404
            )
        return sub, None

    def button_page(
        self, route: str, title: str, sub: Subscriber, token: str, **ctx: object
    ) -> HTMLResponse:
        """What a mailed link's GET answers: a page whose button POSTs back to act.
        Mail scanners open the links in a message, so a GET never acts."""
        return self.page(
            f"{route}.html.j2",
            title=title,
            email=sub.email,
            action=f"{self.base}{route}?token={token}",
            csrf=self.csrf(),
            **ctx,
        )

    def feed_preview(self, path: Path, scope: Scope) -> Response:
        """Title, home page and entries of one of our own feed files, as a page."""
        entries: list[tuple[str, str, str]] = []
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            title, home = data.get("title", ""), data.get("home_page_url", "")
            entries = [
                (i.get("title", ""), i.get("url", ""), i.get("date_published", "")[:10])
                for i in data.get("items", [])
            ]
        else:
            root = ElementTree.parse(path).getroot()  # our own file, written by build
            if root.tag == f"{{{ATOM}}}feed":
                title = root.findtext(f"{{{ATOM}}}title", "")
                home = next(
                    (
                        lk.get("href", "")
                        for lk in root.findall(f"{{{ATOM}}}link")
                        if lk.get("rel") == "alternate"
                    ),
                    "",
                )
                for e in root.findall(f"{{{ATOM}}}entry"):
                    link = e.find(f"{{{ATOM}}}link")
                    entries.append(
                        (
                            e.findtext(f"{{{ATOM}}}title", ""),
                            link.get("href", "") if link is not None else "",
                            e.findtext(f"{{{ATOM}}}published", "")[:10],
                        )
                    )
            else:
                channel = root.find("channel")
                assert channel is not None
                title, home = channel.findtext("title", ""), channel.findtext("link", "")
                entries = [
                    (
                        i.findtext("title", ""),
                        i.findtext("link", ""),
                        i.findtext("pubDate", "")[:16],
                    )
                    for i in channel.findall("item")
                ]
        address = str(Request(scope).url)
        response = self.page(
            "feed_preview.html.j2", title=title, address=address, home=home, entries=entries
        )
        response.headers["Vary"] = "Sec-Fetch-Dest"
        return response

    # -- sign-up -------------------------------------------------------------
    def subscribe_form(
        self,
        status: int = 200,
        chosen: list[str] | None = None,
        email: str = "",
        name: str = "",
        error: str = "",
    ) -> HTMLResponse:
        return self.page(
            "subscribe.html.j2",
            status,
            title="Subscribe to the weekly digest",
            csrf=self.csrf(),
            tags=self.tags,
            chosen=chosen or [],
            email=email,
            name=name,
            error=error,
        )

    async def subscribe(self, request: Request) -> Response:
        if request.method == "GET":
            return self.subscribe_form()
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        email = (form.get("email") or [""])[0].strip()
        name = (form.get("name") or [""])[0]
        known = {t.name for t in self.tags}
        chosen = [t for t in form.get("tag", []) if t in known]
        try:
            address = normalize_email(email)
        except PublisherError:
            return self.subscribe_form(
                400, chosen, email, name, error="Please enter a valid email address."
            )
        ip = request.client.host if request.client else "?"
        if not self.per_ip.allow(ip) or not self.per_address.allow(address.casefold()):
            return self.message(
                "Slow down", "Too many sign-ups; please try again later.", status=429
            )
        existing = self.store.by_email(address)
        if existing is not None and existing.status in SUPPRESSED:
            # left as it is until its owner confirms: anyone can fill in the form
            purpose = f"rejoin {existing.updated}"
            await run_in_threadpool(self.send_confirmation, existing, purpose)
        elif existing is None or existing.status is not Status.ACTIVE:
            sub, _ = self.store.add(address, name, chosen, status=Status.PENDING, now=self.now())
            await run_in_threadpool(self.send_confirmation, sub)  # SMTP must not block the loop
        # the same answer whether or not the address was already subscribed
        return self.message(
            "Check your inbox",
            "If this address can receive the digest, a confirmation email is on "
            "its way. Open the link in it to start your subscription.",
        )

    def send_confirmation(self, sub: Subscriber, purpose: str = "confirm") -> None:
        token = sign(Token(purpose, sub.id, int(self.clock()) + CONFIRM_HOURS * 3600), self.secret)
        text = render(
            self.env,
            "confirm.txt.j2",
            site=self.site,
            name=sub.name,
            hours=CONFIRM_HOURS,
            confirm_url=f"{self.base}confirm?token={token}",
        )
        sender = parse_sender(self.settings.digest.sender)
        msg = build_plain(
            sender=sender,
            to_email=sub.email,
            to_name=sub.name,
            subject=f"Confirm your subscription to {self.site.title}",
            text=text,
            msg_id=f"<confirm.{secrets.token_hex(8)}@{self.site.id_domain}>",
            date=self.now(),
        )
        transport = self.transport()
        try:
            transport.send(MessageMail(msg), sender.addr_spec, sub.email)
        except (TransientError, PermanentError) as exc:
            # the person can ask again; the page must not reveal what the server said
            log.warning("confirmation mail to subscriber %d not accepted: %s", sub.id, exc)
        finally:
            transport.close()

    async def confirm(self, request: Request) -> Response:
        """The link in the confirmation email. A GET shows a button and changes
        nothing: mail scanners (Microsoft Defender, Mimecast and the like) fetch
        the links in a message, and double opt-in means its owner chose. The
        button's POST confirms.

        It only moves a pending subscription to active (or, for a ``rejoin``
        link, the row it was sent for), so replaying it after an unsubscribe
        does not bring the subscription back.
        """
        text = request.query_params.get("token", "")
        purpose = unverified_purpose(text)
        rejoin = purpose.startswith("rejoin ")
        sub, answer = self._rejoining(request, purpose) if rejoin else self._confirming(request)
        if answer is not None:
            return answer
        assert sub is not None
        if request.method == "GET":
            return self.button_page("confirm", "Confirm your subscription", sub, text)
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        if rejoin:
            self.store.add(sub.email, status=Status.ACTIVE, now=self.now())  # and no bounces
        else:
            self.store.set_status(sub.id, Status.ACTIVE, self.now())
        return self.message(
            "You are subscribed again" if rejoin else "You are subscribed",
            f"The weekly digest of {self.site.title} will come to {sub.email}.",
        )

    def _confirming(self, request: Request) -> tuple[Subscriber | None, Response | None]:
        """The subscriber a ``confirm`` link may activate, or the answer instead."""
        sub, error = self.subscriber_for(request, "confirm")
        if error:
            return None, error
        assert sub is not None
        if sub.status is Status.PENDING:
            return sub, None
        return None, self._used(sub)

    def _rejoining(
        self, request: Request, purpose: str
    ) -> tuple[Subscriber | None, Response | None]:
        """The subscriber a ``rejoin`` link may bring back, or the answer instead: the
        link was sent to an address that had unsubscribed or bounced, and its token
        names the row as it was then, so it works once, and never after the row
        changed (unsubscribed again, say). ``purpose`` is the one the token claims:
        verified here."""
        sub, error = self.subscriber_for(request, purpose)
        if error:
            return None, error
        assert sub is not None
        if purpose == f"rejoin {sub.updated}" and sub.status in SUPPRESSED:
            return sub, None
        return None, self._used(sub)

    def _used(self, sub: Subscriber) -> Response:
        if sub.status is Status.ACTIVE:
            return self.message("Already confirmed", "This subscription is already active.")
        return self.message(
            "This link was already used", "Subscribe again if you want the digest back.", status=410
        )

    # -- leaving and preferences -------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        sub, error = self.subscriber_for(request, "unsubscribe")
        if error:
            return error
        assert sub is not None
        if request.method == "GET":
            prefs = sign(Token("preferences", sub.id), self.secret)
            return self.button_page(
                "unsubscribe",
                "Unsubscribe",
                sub,
                request.query_params["token"],
                preferences=f"{self.base}preferences?token={prefs}",
            )
        body = (await request.body()).decode("utf-8", "replace").strip()
        if body == ONE_CLICK:  # RFC 8058: the mail provider's POST, no further step
            self.store.set_status(sub.id, Status.UNSUBSCRIBED, self.now())
            return PlainTextResponse("unsubscribed")
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        self.store.set_status(sub.id, Status.UNSUBSCRIBED, self.now())
        return self.message(
            "You are unsubscribed", f"{sub.email} will get no more digests from {self.site.title}."
        )

    async def preferences(self, request: Request) -> Response:
        sub, error = self.subscriber_for(request, "preferences")
        if error:
            return error
        assert sub is not None
        action = f"{self.base}preferences?token={request.query_params['token']}"
        saved = False
        if request.method == "POST":
            form = await self.form(request)
            if refused := self.check_form(request, form):
                return refused
            if (form.get("action") or [""])[0] == "unsubscribe":
                self.store.set_status(sub.id, Status.UNSUBSCRIBED, self.now())
                return self.message(
                    "You are unsubscribed", f"{sub.email} will get no more digests."
                )
            known = {t.name for t in self.tags}
            self.store.set_tags(
                sub.id, clean_tags(t for t in form.get("tag", []) if t in known), self.now()
            )
            sub = self.store.get(sub.id) or sub
            saved = True
        return self.page(
            "preferences.html.j2",
            title="Your digest",
            email=sub.email,
            tags=self.tags,
            chosen=list(sub.tags),
            action=action,
            csrf=self.csrf(),
            saved=saved,
        )


def create_app(settings: Settings, **kwargs: object) -> Starlette:
    app = App(settings, **kwargs)  # type: ignore[arg-type]
    out = Path(settings.build.output)
    out.mkdir(parents=True, exist_ok=True)
    files = SiteFiles(directory=out, html=True)
    files.preview = app.feed_preview
    routes: list[BaseRoute] = [
        Route("/subscribe", app.subscribe, methods=["GET", "POST"]),
        Route("/confirm", app.confirm, methods=["GET", "POST"]),
        Route("/unsubscribe", app.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences", app.preferences, methods=["GET", "POST"]),
        Mount("/", files),
    ]
    # at base_url's path, where every link in the pages and mails points (as
    # Hugo's server does); the root leads there
    prefix = urlsplit(settings.site.base_url).path.rstrip("/")
    if prefix:
        home = RedirectResponse(prefix + "/", status_code=308)
        routes = [
            Route("/", home),
            Route(prefix, home),
            Mount(prefix, routes=routes),
        ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit), Middleware(GZipMiddleware, minimum_size=500)],
    )


def serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    site = Path(settings.build.output)
    if not (site / "index.html").is_file() and not any(site.glob("all.*")):
        print(
            f"warning: {site} holds no built site yet: run `publisher build` "
            "(the subscription pages work meanwhile)",
            file=sys.stderr,
        )
    sock = _listen(host, port)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
    )
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that an address in use (another ``serve``,
    say) is an error with a remedy, not uvicorn's log line and exit status 3."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as exc:
        raise PublisherError(
            f"cannot serve on {host}: {exc.strerror}", "give --host an address, e.g. 127.0.0.1"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "another program is listening there"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        else:
            why = exc.strerror or str(exc)
        raise PublisherError(
            f"cannot serve on {host}:{port}: {why}",
            "stop the other server, or choose another port with --port "
            "(and set [site] base_url to the address the site is served at)",
        ) from None
