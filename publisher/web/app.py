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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from publisher.delivery.transport import (
    MessageMail,
)
from publisher.errors import PublisherError
from publisher.newsletter.feedback import Feedback
from publisher.newsletter.lifecycle import (
    CONFIRM_HOURS,
    Invitation,
    Lifecycle,
    confirmation_mail,
    is_rejoin,
)
from publisher.newsletter.mime import mailto_unsubscribe, parse_sender
from publisher.newsletter.tokens import (
    Purpose,
    Token,
    sign,
    unverified_purpose,
)
from publisher.newsletter.welcome import WelcomeLinks, newest_posts, welcome_mail
from publisher.settings import Settings
from publisher.store.ledger import Ledger
from publisher.store.returns import ReturnsLog
from publisher.store.rows import Status, Subscriber
from publisher.store.subscribers import normalize_email
from publisher.web.account import Account
from publisher.web.guards import (
    BodyLimit,
    FormCookie,
    SiteAddress,
    client_address,
)
from publisher.web.pages import Busy
from publisher.web.signups import ResendWindow, SignUp, SignUps
from publisher.web.static import ETagPerEncoding, SiteFiles
from publisher.web.webhooks import Webhooks, fetch_url

log = logging.getLogger(__name__)


class App(Account):
    """The routes: sign-up, confirmation, unsubscribe (RFC 8058 one-click too) and
    preferences."""

    def __init__(
        self, settings: Settings, *, fetch: Callable[[str], bytes] | None = None, **kwargs: Any
    ) -> None:
        """``fetch``: how webhooks fetch an SNS certificate or confirmation URL (tests
        hand in their own)."""
        super().__init__(settings, **kwargs)
        self.confirmations = ResendWindow(self.clock)  # the link already sent stands
        self.signups = SignUps(self.handle_signup)
        feedback = Feedback(
            ReturnsLog(self.engine), self.store, self.secret, settings.delivery.bounce_limit
        )
        ledger = Ledger(self.engine)
        self.webhooks = Webhooks(feedback, ledger, self.secret, self.db, fetch or fetch_url)

    # -- sign-up -------------------------------------------------------------
    async def subscribe_form(
        self,
        request: Request,
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
            csrf=self.csrf(request),
            tags=await self.tags(),
            chosen=chosen or [],
            email=email,
            name=name,
            error=error,
            cadence="weekly",
        )

    async def subscribe(self, request: Request) -> Response:
        """The sign-up form. Its POST checks the form and queues the sign-up (see
        ``web.signups``): the answer is the same, in the same time, whatever the
        address's state, and never waits for the database or the relay."""
        if request.method in ("GET", "HEAD"):  # ?tag=NAME: a tag page's "get it by email"
            return await self.subscribe_form(request, chosen=request.query_params.getlist("tag"))
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        email = (form.get("email") or [""])[0].strip()
        name = (form.get("name") or [""])[0]
        known = {t.name for t in await self.tags()}
        chosen = [t for t in form.get("tag", []) if t in known]
        try:
            address = normalize_email(email)
        except PublisherError:
            return await self.subscribe_form(
                request, 400, chosen, email, name, error="Please enter a valid email address."
            )
        if not self.per_ip.allow(client_address(request, self.settings.web.trusted_proxies)):
            return self.message(
                "Slow down", "Too many sign-ups; please try again later.", status=429
            )
        cadence = "monthly" if form.get("cadence") == ["monthly"] else "weekly"
        if not self.signups.submit(SignUp(address, name, tuple(chosen), cadence)):
            raise Busy
        return self.message(
            "Check your inbox",
            "If this address can receive the digest, a confirmation email is on "
            "its way. Open the link in it to start your subscription.",
        )

    def handle_signup(self, signup: SignUp) -> None:
        """In the sign-ups thread: the lifecycle's decision, then its mail, at most
        one an address per ``RESEND_SECONDS`` (the link already sent stands)."""
        invitation = self.lifecycle.sign_up(
            signup.address, signup.name, signup.tags, self.now(), signup.cadence
        )
        if invitation is not None and self.confirmations.first(signup.address):
            self.send_confirmation(invitation)

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
        # the person can ask again; the page must not reveal what the server said
        self.mail(MessageMail(msg), sender.addr_spec, sub, "confirmation")

    def send_welcome(self, subscriber_id: int) -> None:
        """In the sign-ups thread: the welcome mail, once a subscription is confirmed."""
        sub = self.store.get(subscriber_id)
        if sub is None or sub.status is not Status.ACTIVE:
            return
        sender = parse_sender(self.settings.digest.sender)
        unsub = sign(Token(Purpose.UNSUBSCRIBE, sub.id), self.secret)
        links = WelcomeLinks(
            self.link(Purpose.PREFERENCES, sub),
            f"{self.base}unsubscribe?token={unsub}",
            mailto_unsubscribe(sender, unsub),
        )
        posts = newest_posts(Path(self.settings.build.output), sub.tags)
        msg_id = f"<welcome.{secrets.token_hex(8)}@{sender.domain}>"
        msg = welcome_mail(self.env, self.site, sender, sub, posts, links, msg_id, self.now())
        self.mail(MessageMail(msg), sender.addr_spec, sub, "welcome")

    async def confirm_script(self, request: Request) -> Response:
        """The script that makes the confirmation page confirm in one step."""
        data = self.settings.template_file("confirm.js").read_bytes()
        headers = {"Cache-Control": "public, max-age=3600"}
        return Response(data, media_type="text/javascript; charset=utf-8", headers=headers)

    async def confirm(self, request: Request) -> Response:
        """The link in the confirmation email. A GET (or HEAD) changes nothing: mail
        scanners (Microsoft Defender, Mimecast and the like) fetch the links in a
        message, and double opt-in means its owner chose. Its page posts its own
        form by script (``confirm.js``), or its button does; the POST confirms (see
        ``Lifecycle`` for which links may act)."""
        text = request.query_params.get("token", "")
        purpose = unverified_purpose(text)  # verified by subscriber_for
        sub, error = await self.subscriber_for(
            request, purpose if is_rejoin(purpose) else Purpose.CONFIRM
        )
        if error:
            return error
        assert sub is not None
        if not Lifecycle.may_confirm(sub, purpose):
            return self._used(sub)
        if request.method in ("GET", "HEAD"):  # a look (a scanner) never acts
            return self.button_page(request, "confirm", "Confirm your subscription", sub, text)
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        await self.db(self.lifecycle.confirm, sub, purpose, self.now())
        self.signups.submit(partial(self.send_welcome, sub.id))  # a full queue: no welcome
        return self.message(
            "You are subscribed again" if is_rejoin(purpose) else "You are subscribed",
            f"The weekly digest of {self.site.title} will come to {sub.email}.",
            onward=(
                ("Read the latest posts", self.base),
                ("Choose the topics you get", self.link(Purpose.PREFERENCES, sub)),
                ("Every post, by year", f"{self.base}archive.html"),
            ),
        )

    def _used(self, sub: Subscriber) -> Response:
        if sub.status is Status.ACTIVE:
            return self.message("Already confirmed", "This subscription is already active.")
        return self.message(
            "This link was already used", "Subscribe again if you want the digest back.", status=410
        )


def _busy(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(
        "The site is busy; please try again in a few seconds.", 503, {"Retry-After": "5"}
    )


@asynccontextmanager
async def _lifespan(app: App, _: Starlette) -> AsyncIterator[None]:
    """At shutdown, the sign-ups already queued are handled before the process ends."""
    yield
    await run_in_threadpool(app.signups.close)


def create_app(settings: Settings, **kwargs: Any) -> Starlette:
    app = App(settings, **kwargs)
    out = Path(settings.build.output)
    out.mkdir(parents=True, exist_ok=True)
    files = SiteFiles(directory=out, html=True)
    files.preview = app.feed_preview
    base = urlsplit(settings.site.base_url)
    prefix = base.path.rstrip("/")
    forms = [Middleware(FormCookie, path=prefix + "/", secure=base.scheme == "https")]
    routes: list[BaseRoute] = [
        Route("/subscribe", app.subscribe, methods=["GET", "POST"], middleware=forms),
        Route("/confirm", app.confirm, methods=["GET", "POST"], middleware=forms),
        Route("/confirm.js", app.confirm_script),
        Route("/unsubscribe", app.unsubscribe, methods=["GET", "POST"], middleware=forms),
        Route("/preferences", app.preferences, methods=["GET", "POST"], middleware=forms),
        Route("/preferences/data", app.my_data),
        Route("/manage", app.manage, methods=["GET", "POST"], middleware=forms),
        Route("/webhooks/ses", app.webhooks.ses, methods=["POST"]),
        Route("/webhooks/mailgun", app.webhooks.mailgun, methods=["POST"]),
        Mount("/", files),
    ]
    # at base_url's path, where every link in the pages and mails points (as
    # Hugo's server does); the root leads there
    if prefix:
        home = RedirectResponse(prefix + "/", status_code=308)
        routes = [
            Route("/", home),
            Route(prefix, home),
            Mount(prefix, routes=routes),
        ]
    starlette = Starlette(
        routes=routes,
        middleware=[
            Middleware(SiteAddress, base_url=settings.site.base_url),
            Middleware(BodyLimit),
            Middleware(ETagPerEncoding),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        exception_handlers={Busy: _busy},
        lifespan=partial(_lifespan, app),
    )
    starlette.state.app = app  # the sign-ups queue, for tests that wait on it
    return starlette
