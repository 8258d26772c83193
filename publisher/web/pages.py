"""What every page of ``serve`` needs: the settings, the state database off the event
loop, the templates, form tokens bound to the browser, and the subscriber a
link's token names. ``web.app`` adds the routes.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from publisher.delivery.transport import Transport
from publisher.newsletter.lifecycle import Lifecycle
from publisher.newsletter.run import transport_for
from publisher.newsletter.tokens import Purpose, Token, TokenError, secret_from_env, sign, verify
from publisher.settings import Settings
from publisher.store.published import Topic, load_topics
from publisher.store.rows import Subscriber
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.templating import environment, render
from publisher.web.guards import RateLimit, form_binding, same_site
from publisher.web.static import feed_summary

log = logging.getLogger(__name__)
CSRF_SECONDS = 2 * 3600
#: How long a request waits for the state database before it answers 503.
DB_WAIT = 2.0
_T = TypeVar("_T")


class Busy(Exception):
    """The state database is busy (locked by another process, or gone): 503."""


class Pages:
    """What every page of the app needs: settings, the database off the event loop,
    templates, form tokens, and the subscriber a link's token names."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        transport: Callable[[], Transport] | None = None,
        dev: bool = False,
    ) -> None:
        """``dev``: links may be signed with the development secret (``serve --dev``,
        loopback only); otherwise ``PUBLISHER_SECRET`` must be set."""
        self.settings = settings
        self.site = settings.site
        self.base = settings.site.base_url
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base))
        self.clock = clock
        self.secret = secret_from_env(allow_dev=dev)
        self.engine = open_engine(settings.state.url, busy_seconds=DB_WAIT)
        self.store = SubscriberStore(self.engine, self.secret)
        self.lifecycle = Lifecycle(self.store)
        self.env = environment(settings.template_dirs)
        self.transport = transport or (lambda: transport_for(settings))
        self.per_ip = RateLimit(5, 600, clock)

    # -- helpers -------------------------------------------------------------
    async def db(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the state database, off the event loop (static files and
        other requests are served meanwhile); a database that stays locked for
        ``DB_WAIT`` seconds, or is gone, is ``Busy``: 503 with Retry-After."""
        try:
            return await run_in_threadpool(fn, *args)
        except sa.exc.OperationalError as exc:
            log.warning("state database busy or unavailable: %s", exc.orig or exc)
            raise Busy from None

    async def tags(self) -> list[Topic]:
        """The topics the last build published: read at each request, so a build made
        while the server runs shows its new tags at once."""
        return await self.db(load_topics, self.engine, "tag")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.site.tzinfo)

    def page(self, template: str, status: int = 200, /, **ctx: object) -> HTMLResponse:
        html = render(self.env, template, site=self.site, base=self.base, **ctx)
        headers = {
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; style-src 'self'",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(html, status_code=status, headers=headers)

    def message(
        self,
        title: str,
        *lines: str,
        status: int = 200,
        onward: Sequence[tuple[str, str]] = (),
    ) -> HTMLResponse:
        """A page of a few lines, and links to go on from it (text, URL)."""
        return self.page("web.html.j2", status, title=title, lines=lines, onward=onward)

    def csrf(self, request: Request) -> str:
        """A form's token, bound to this browser's form cookie (double submit): a
        page on another site can neither read it nor send the cookie with it."""
        purpose = f"{Purpose.FORM} {form_binding(request)}"
        return sign(Token(purpose, 0, int(self.clock()) + CSRF_SECONDS), self.secret)

    def same_site(self, request: Request) -> bool:
        return same_site(request, self.origin)

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
        binding = form_binding(request)
        try:
            if binding is None:
                raise TokenError("no form cookie")
            purpose = f"{Purpose.FORM} {binding}"
            verify((form.get("csrf") or [""])[0], self.secret, purpose, int(self.clock()))
        except TokenError:
            return self.message(
                "Please try again",
                "The form expired or was not sent from this site. "
                "Reload the page and send it again.",
                status=403,
            )
        return None

    async def subscriber_for(
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
        sub = await self.db(self.store.get, token.subscriber)
        if sub is None:
            return None, self.message(
                "This link does not work", "No such subscription.", status=404
            )
        return sub, None

    def button_page(
        self, request: Request, route: str, title: str, sub: Subscriber, token: str, **ctx: object
    ) -> HTMLResponse:
        """What a mailed link's GET answers: a page whose button POSTs back to act.
        Mail scanners open the links in a message, so a GET never acts."""
        return self.page(
            f"{route}.html.j2",
            title=title,
            email=sub.email,
            action=f"{self.base}{route}?token={token}",
            csrf=self.csrf(request),
            **ctx,
        )

    def feed_preview(self, path: Path, scope: Scope) -> Response:
        """Title, home page and entries of one of our own feed files, as a page."""
        title, home, entries = feed_summary(path)
        address = str(Request(scope).url)
        response = self.page(
            "feed_preview.html.j2", title=title, address=address, home=home, entries=entries
        )
        response.headers["Vary"] = "Sec-Fetch-Dest"
        return response
