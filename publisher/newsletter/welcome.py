"""The welcome mail, sent when a subscription is confirmed: so a new reader hears
from the site at once, not a week later, with the newest posts of their topics,
how to change them, and the same one-click unsubscribe as every digest.

The posts come from the site as the last build published it (``all.json`` or
``all.atom`` in the output folder): the web app reads no archive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import Message
from pathlib import Path

from jinja2 import Environment

from publisher.newsletter.mime import build_message, digest_headers
from publisher.settings import SiteSettings
from publisher.store.rows import Subscriber
from publisher.templating import render
from publisher.text import slugify, to_address

#: Posts a welcome mail shows.
NEWEST = 3
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Headline:
    title: str
    url: str
    date: str  # as the feed has it, ISO 8601
    summary: str
    tags: tuple[str, ...]


def newest_posts(output: Path, tags: tuple[str, ...], count: int = NEWEST) -> list[Headline]:
    """The newest ``count`` posts of ``tags`` (of the site, if none), as the last build
    published them: from each tag's own feed, which holds its newest posts however
    rare the tag is among the site's; none if no such feed was published."""
    feeds = [f"tag/{slugify(t, 'tag')}" for t in tags] or ["all"]
    found: dict[str, Headline] = {}
    for key in feeds:
        for h in _from_json(output / f"{key}.json") or _from_atom(output / f"{key}.atom"):
            found.setdefault(h.url, h)  # a post of two of the tags, once
    # (a feed lists its entries in the order they entered it: by date here)
    return sorted(found.values(), key=_published, reverse=True)[:count]


def _published(h: Headline) -> datetime:
    try:
        return datetime.fromisoformat(h.date)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)  # undated: last


def _from_json(path: Path) -> list[Headline]:
    try:
        feed = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return []
    return [
        Headline(
            i.get("title", ""),
            i.get("url", ""),
            i.get("date_published", ""),
            i.get("summary", ""),
            tuple(i.get("tags", ())),
        )
        for i in feed.get("items", [])
    ]


def _from_atom(path: Path) -> list[Headline]:
    from lxml import etree

    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError):
        return []
    return [
        Headline(
            e.findtext(f"{ATOM}title", ""),
            next((lk.get("href", "") for lk in e.iter(f"{ATOM}link")), ""),
            e.findtext(f"{ATOM}published", ""),
            e.findtext(f"{ATOM}summary", ""),
            tuple(c.get("term", "") for c in e.iter(f"{ATOM}category")),
        )
        for e in root.iter(f"{ATOM}entry")
    ]


@dataclass(frozen=True)
class WelcomeLinks:
    preferences: str
    unsubscribe: str  # https, one-click (RFC 8058)
    unsubscribe_mailto: str


def welcome_mail(
    env: Environment,
    site: SiteSettings,
    sender: Address,
    sub: Subscriber,
    posts: list[Headline],
    links: WelcomeLinks,
    msg_id: str,
    now: datetime,
) -> Message:
    ctx = {
        "site": site,
        "sub": sub,
        "posts": posts,
        "preferences_url": links.preferences,
        "unsubscribe_url": links.unsubscribe,
    }
    headers = digest_headers(
        sender=sender,
        to_email=to_address(sub.email),
        to_name=sub.name,
        subject=f"Welcome to {site.title}",
        msg_id=msg_id,
        date=now,
        list_id=f"{site.title} weekly digest <digest.{sender.domain}>",
        unsubscribe_https=links.unsubscribe,
        unsubscribe_mailto=links.unsubscribe_mailto,
        feedback_id=f"welcome:welcome:{sender.domain}:publisher",
    )
    text = render(env, "welcome.txt.j2", **ctx)
    html = render(env, "welcome.html.j2", **ctx)
    return build_message(headers, text, html)
