"""A subscriber's own pages: leaving (with an undo), topics and cadence, their
data (download, delete), and a way back in for one who lost their links.

Every page here acts on a signed link mailed to the address (the token names
the subscriber), except ``/manage``, which only mails such a link: it answers
the same, in the same time, whether or not the address is known.
"""

from __future__ import annotations

import json
import logging
import secrets
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from publisher.delivery.transport import (
    MessageMail,
    PermanentError,
    TransientError,
    Undeliverable,
)
from publisher.errors import PublisherError
from publisher.newsletter.mime import build_plain, parse_sender
from publisher.newsletter.tokens import Purpose, Token, sign
from publisher.store.rows import Status, Subscriber
from publisher.store.subscribers import normalize_email
from publisher.templating import render
from publisher.text import to_address
from publisher.web.guards import RateLimit, client_address
from publisher.web.pages import Busy, Pages
from publisher.web.signups import ResendWindow, SignUps

log = logging.getLogger(__name__)

#: What a preferences page says of each status.
STATUS_TEXT = {
    Status.ACTIVE: "You get the digest.",
    Status.PENDING: "Your subscription is waiting for its confirmation.",
    Status.UNSUBSCRIBED: "You are unsubscribed: you get no digest.",
    Status.BOUNCED: "Mail to this address came back, so the digest stopped.",
    Status.COMPLAINED: "You marked a digest as spam, so the digest stopped.",
}


class Account(Pages):
    """The routes of a subscriber's own pages (see the module docstring)."""

    #: the queue mail goes through, off the request (made by ``App``)
    signups: SignUps

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_ip_manage = RateLimit(5, 600, self.clock)
        self.links_mailed = ResendWindow(self.clock)

    def link(self, purpose: str, sub: Subscriber, path: str = "") -> str:
        """The page at ``path`` (default: the purpose's own) with ``sub``'s signed token."""
        token = sign(Token(purpose, sub.id), self.secret)
        return f"{self.base}{path or purpose}?token={token}"

    async def unsubscribe(self, request: Request) -> Response:
        sub, error = await self.subscriber_for(request, Purpose.UNSUBSCRIBE)
        if error:
            return error
        assert sub is not None
        if request.method in ("GET", "HEAD"):
            return self.button_page(
                request,
                "unsubscribe",
                "Unsubscribe",
                sub,
                request.query_params["token"],
                preferences=self.link(Purpose.PREFERENCES, sub),
            )
        form = await self.form(request)
        if "One-Click" in form.get("List-Unsubscribe", []):
            # RFC 8058: the mail provider's POST, multipart/form-data (as the RFC
            # asks) or urlencoded, other fields or not; the link's token suffices
            await self.db(self.lifecycle.unsubscribe, sub, self.now())
            return PlainTextResponse("unsubscribed")
        if refused := self.check_form(request, form):
            return refused
        await self.db(self.lifecycle.unsubscribe, sub, self.now())
        return self.unsubscribed(request, sub)

    def unsubscribed(self, request: Request, sub: Subscriber) -> HTMLResponse:
        """Done, with an undo: a button that subscribes them again at once."""
        return self.page(
            "unsubscribed.html.j2",
            title="You are unsubscribed",
            email=sub.email,
            action=self.link(Purpose.PREFERENCES, sub),
            csrf=self.csrf(request),
        )

    async def preferences(self, request: Request) -> Response:
        sub, error = await self.subscriber_for(request, Purpose.PREFERENCES)
        if error:
            return error
        assert sub is not None
        saved = ""
        tags = await self.tags()  # once: the topics offered, and the ones a POST may keep
        if request.method == "POST":
            form = await self.form(request)
            if refused := self.check_form(request, form):
                return refused
            action = (form.get("action") or [""])[0]
            if action == "unsubscribe":
                await self.db(self.lifecycle.unsubscribe, sub, self.now())
                return self.unsubscribed(request, sub)
            if action == "forget":  # one more press: it cannot be undone
                return self.page(
                    "forget.html.j2",
                    title="Delete everything about you?",
                    email=sub.email,
                    action=self.link(Purpose.PREFERENCES, sub),
                    csrf=self.csrf(request),
                )
            if action == "forget-now":
                return await self.forget(sub)
            if action == "resubscribe":
                await self.db(self.lifecycle.resubscribe, sub, self.now())
                saved = "You are subscribed again."
            else:
                known = {t.name for t in tags}
                choose = self.lifecycle.choose_topics
                sub = await self.db(choose, sub, form.get("tag", []), known, self.now())
                cadence = (form.get("cadence") or [sub.cadence])[0]
                await self.db(self.lifecycle.choose_cadence, sub, cadence, self.now())
                saved = "Saved. The next digest follows these choices."
            sub = await self.db(self.store.get, sub.id) or sub
        return self.page(
            "preferences.html.j2",
            title="Your digest",
            sub=sub,
            email=sub.email,
            status=STATUS_TEXT[sub.status],
            active=sub.status is Status.ACTIVE,
            tags=tags,
            chosen=list(sub.tags),
            action=self.link(Purpose.PREFERENCES, sub),
            data_url=self.link(Purpose.PREFERENCES, sub, "preferences/data"),
            csrf=self.csrf(request),
            saved=saved,
        )

    async def my_data(self, request: Request) -> Response:
        """Everything held about them, as JSON (UK GDPR articles 15 and 20)."""
        from publisher.store.people import person_record

        sub, error = await self.subscriber_for(request, Purpose.PREFERENCES)
        if error:
            return error
        assert sub is not None
        record = await self.db(person_record, self.engine, sub)
        body = json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Disposition": 'attachment; filename="my-data.json"',
            "Cache-Control": "no-store",
        }
        return Response(body, media_type="application/json", headers=headers)

    async def forget(self, sub: Subscriber) -> Response:
        """Erase them everywhere (UK GDPR article 17): see ``store.people``."""
        from pathlib import Path

        from publisher.store.people import forget, purge_outbox

        await self.db(forget, self.engine, sub, self.secret, self.now())
        await self.db(purge_outbox, Path(self.settings.delivery.outbox), sub.email)
        return self.message(
            "Your data is deleted",
            f"Nothing about {sub.email} is kept but a one-way code of the address, so that "
            "no list imported later can add it again. You can sign up again any time.",
            onward=(("Back to the site", self.base),),
        )

    # -- a way back in ---------------------------------------------------------
    async def manage(self, request: Request) -> Response:
        """Ask for a fresh preferences link by address. The answer is the same, in the
        same time, whether or not the address is known: the lookup and the mail
        happen apart from the request (see ``signups``), at most one an address per
        ``ResendWindow``, and requests are limited per client."""
        title = "Manage your subscription"
        if request.method in ("GET", "HEAD"):
            return self.page("manage.html.j2", title=title, csrf=self.csrf(request), error="")
        form = await self.form(request)
        if refused := self.check_form(request, form):
            return refused
        try:
            address = normalize_email((form.get("email") or [""])[0])
        except PublisherError:
            error = "Please enter a valid email address."
            csrf = self.csrf(request)
            return self.page("manage.html.j2", 400, title=title, csrf=csrf, error=error)
        if not self.per_ip_manage.allow(client_address(request, self.settings.web.trusted_proxies)):
            return self.message(
                "Slow down", "Too many requests; please try again later.", status=429
            )
        if not self.signups.submit(partial(self.mail_link, address)):
            raise Busy
        return self.message(
            "Check your inbox",
            "If this address gets the digest, a link to manage it is on its way.",
        )

    def mail_link(self, address: str) -> None:
        """In the sign-ups thread: a fresh preferences link, if the address is known."""
        sub = self.store.by_email(address)
        if sub is None or not self.links_mailed.first(address):
            return
        sender = parse_sender(self.settings.digest.sender)
        text = render(
            self.env,
            "manage.txt.j2",
            site=self.site,
            preferences_url=self.link(Purpose.PREFERENCES, sub),
        )
        msg = build_plain(
            sender=sender,
            to_email=to_address(sub.email),
            to_name="",
            subject=f"Your link to manage {self.site.title}",
            text=text,
            msg_id=f"<manage.{secrets.token_hex(8)}@{sender.domain}>",
            date=self.now(),
        )
        self.mail(MessageMail(msg), sender.addr_spec, sub, "manage-link")

    def mail(self, mail: MessageMail, sender: str, sub: Subscriber, what: str) -> None:
        """Hand one mail to the relay; what it answers is logged, never shown."""
        transport = self.transport()
        try:
            transport.send(mail, sender, to_address(sub.email))
        except (TransientError, PermanentError, Undeliverable) as exc:
            log.warning("%s mail to subscriber %d not accepted: %s", what, sub.id, exc)
        finally:
            transport.close()
