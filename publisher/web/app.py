"""``publisher serve``: the built site, plus sign-up, confirmation, preferences and
one-click unsubscribe (RFC 8058) for the digest.

Link scanners in mail systems fetch every link, so no GET changes anything:
GET pages show a form; only POST acts. Forms carry a signed, expiring CSRF
token and cross-site POSTs are refused, except RFC 8058's one-click POST,
which mail providers send from their servers with the signed token in the URL.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

from publisher.delivery.transport import MessageMail, PermanentError, TransientError, Transport
from publisher.errors import PublisherError
from publisher.newsletter.lifecycle import (
    CONFIRM_HOURS,
    Invitation,
    Lifecycle,
    confirmation_mail,
    is_rejoin,
)
from publisher.newsletter.mime import parse_sender
from publisher.newsletter.run import transport_for
from publisher.newsletter.tokens import (
    Purpose,
    Token,
    TokenError,
    secret_from_env,
    sign,
    unverified_purpose,
    verify,
)
from publisher.settings import Settings
from publisher.store.published import Topic, load_topics
from publisher.store.rows import Status, Subscriber
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore, normalize_email
from publisher.templating import environment, render
from publisher.web.guards import BodyLimit, RateLimit, same_site
from publisher.web.static import SiteFiles, feed_summary

log = logging.getLogger(__name__)
CSRF_SECONDS = 2 * 3600
ONE_CLICK = "List-Unsubscribe=One-Click"


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
        self.engine = open_engine(settings.state.url)
        self.store = SubscriberStore(self.engine)
        self.lifecycle = Lifecycle(self.store)
        self.env = environment(settings.template_dirs)
        self.transport = transport or (lambda: transport_for(settings))
        self.per_ip = RateLimit(5, 600, clock)
        self.per_address = RateLimit(3, 3600, clock)

    # -- helpers -------------------------------------------------------------
    @property
    def tags(self) -> list[Topic]:
        """The topics the last build published: read at each request, so a build made
        while the server runs shows its new tags at once."""
        return load_topics(self.engine, "tag")

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

    def message(self, title: str, *lines: str, status: int = 200) -> HTMLResponse:
        return self.page("web.html.j2", status, title=title, lines=lines)

    def csrf(self) -> str:
        return sign(Token(Purpose.FORM, 0, int(self.clock()) + CSRF_SECONDS), self.secret)

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
        try:
            verify((form.get("csrf") or [""])[0], self.secret, Purpose.FORM, int(self.clock()))
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
        title, home, entries = feed_summary(path)
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
        invitation = self.lifecycle.sign_up(address, name, chosen, self.now())
        if invitation is not None:  # SMTP must not block the loop
            await run_in_threadpool(self.send_confirmation, invitation)
        # the same answer whether or not the address was already subscribed
        return self.message(
            "Check your inbox",
            "If this address can receive the digest, a confirmation email is on "
            "its way. Open the link in it to start your subscription.",
        )

    def send_confirmation(self, invitation: Invitation) -> None:
        sub = invitation.subscriber
        expires = int(self.clock()) + CONFIRM_HOURS * 3600
        token = sign(Token(invitation.purpose, sub.id, expires), self.secret)
        sender = parse_sender(self.settings.digest.sender)
        msg = confirmation_mail(
            self.env,
            self.site,
            sender,
            sub,
            f"{self.base}confirm?token={token}",
            f"<confirm.{secrets.token_hex(8)}@{self.site.id_domain}>",
            self.now(),
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
        button's POST confirms (see ``Lifecycle`` for which links may act)."""
        text = request.query_params.get("token", "")
        purpose = unverified_purpose(text)  # verified by subscriber_for
        sub, error = self.subscriber_for(
            request, purpose if is_rejoin(purpose) else Purpose.CONFIRM
        )
        if error:
            return error
        assert sub is not None
        if not Lifecycle.may_confirm(sub, purpose):
            return self._used(sub)
        if request.method == "GET":
            return self.button_page("confirm", "Confirm your subscription", sub, text)
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        self.lifecycle.confirm(sub, purpose, self.now())
        return self.message(
            "You are subscribed again" if is_rejoin(purpose) else "You are subscribed",
            f"The weekly digest of {self.site.title} will come to {sub.email}.",
        )

    def _used(self, sub: Subscriber) -> Response:
        if sub.status is Status.ACTIVE:
            return self.message("Already confirmed", "This subscription is already active.")
        return self.message(
            "This link was already used", "Subscribe again if you want the digest back.", status=410
        )

    # -- leaving and preferences -------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        sub, error = self.subscriber_for(request, Purpose.UNSUBSCRIBE)
        if error:
            return error
        assert sub is not None
        if request.method == "GET":
            prefs = sign(Token(Purpose.PREFERENCES, sub.id), self.secret)
            return self.button_page(
                "unsubscribe",
                "Unsubscribe",
                sub,
                request.query_params["token"],
                preferences=f"{self.base}preferences?token={prefs}",
            )
        body = (await request.body()).decode("utf-8", "replace").strip()
        if body == ONE_CLICK:  # RFC 8058: the mail provider's POST, no further step
            self.lifecycle.unsubscribe(sub, self.now())
            return PlainTextResponse("unsubscribed")
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        self.lifecycle.unsubscribe(sub, self.now())
        return self.message(
            "You are unsubscribed", f"{sub.email} will get no more digests from {self.site.title}."
        )

    async def preferences(self, request: Request) -> Response:
        sub, error = self.subscriber_for(request, Purpose.PREFERENCES)
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
                self.lifecycle.unsubscribe(sub, self.now())
                return self.message(
                    "You are unsubscribed", f"{sub.email} will get no more digests."
                )
            known = {t.name for t in self.tags}
            sub = self.lifecycle.choose_topics(sub, form.get("tag", []), known, self.now())
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
