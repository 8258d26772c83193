"""The ``Settings``: one frozen section per component, each given only its own.

Config (what people edit) lives in TOML and is read by ``config``; state (what
the program writes) lives in the state database. Every key has a default, so
every command works with no config file at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from pathlib import Path

from dateutil import tz

from publisher.errors import ConfigError
from publisher.formats import FEED_FORMATS, FeedFormat


class DeliveryMethod(StrEnum):
    OUTBOX = "outbox"  # a Maildir a mail client can open
    SMTP = "smtp"


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit, usually port 465
    NONE = "none"


class DigestContent(StrEnum):
    SUMMARY = "summary"
    FULL = "full"


@dataclass(frozen=True)
class SiteSettings:
    title: str = "Staff blog"
    description: str = "Posts from the staff blog"
    base_url: str = "http://127.0.0.1:8000/"
    author_name: str = "Chief Executive"
    author_email: str = ""
    language: str = "en-GB"
    timezone: str = "Europe/London"
    #: Authority of the posts' ``tag:`` URIs (RFC 4151). Set once; never change it.
    id_domain: str = "publisher.localhost"
    #: Optional WebSub hub URL; feeds then carry rel="hub" and builds ping it.
    websub_hub: str = ""
    #: The site's icon (a square PNG or JPEG, for feed readers and browser tabs): an
    #: absolute URL; empty: the bundled ``icon.png``, written beside the feeds.
    icon: str = ""

    @property
    def icon_url(self) -> str:
        return self.icon or f"{self.base_url}icon.png"

    @property
    def tzinfo(self) -> tzinfo:
        zone = tz.gettz(self.timezone)
        assert zone is not None  # checked in _validate
        return zone


@dataclass(frozen=True)
class BuildSettings:
    seeds: str = "seeds"
    output: str = "feeds"
    templates: str = ""
    feed_max_items: int = 20
    #: Feed formats to write (each family gets one feed per format), in FEED_FORMATS order.
    formats: tuple[FeedFormat, ...] = FEED_FORMATS
    #: Write the HTML pages (posts, tags, categories, index, sent digests). Off: only
    #: the feeds, their stylesheet and OPML, for pages published some other way.
    pages: bool = True
    #: Keep the build's snapshot (what it parsed) so that the next build re-reads only
    #: the archives that changed. Off for one-off builds nothing follows (a CI job on
    #: a clean checkout): see ``benchmarks/README.md`` for what writing it costs.
    cache: bool = True


@dataclass(frozen=True)
class StateSettings:
    url: str = "sqlite:///var/publisher.db"


@dataclass(frozen=True)
class DeliverySettings:
    method: DeliveryMethod = DeliveryMethod.OUTBOX
    outbox: str = "var/outbox"
    #: attempts per message within one run for transient (4xx) failures
    max_attempts: int = 4
    #: permanent (5xx) failures after which a subscriber is marked bounced
    bounce_limit: int = 3
    #: seconds before the first retry of a transient failure; doubles each time
    retry_backoff: float = 2.0


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str = ""
    #: messages per second at most, over every connection (0 = no limit)
    rate_per_second: float = 0.0
    #: connections sending at once (1: one message at a time)
    connections: int = 8
    #: send through a relay that is not on loopback although [site] base_url is
    #: not https (one-click unsubscribe links then do not work with providers)
    allow_http_links: bool = False
    timeout: float = 30.0

    @property
    def password(self) -> str:
        """From the environment only, never from the config file."""
        return os.environ.get("PUBLISHER_SMTP_PASSWORD", "")


#: Connections a send may open at once (``[smtp] connections``).
MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class DigestSettings:
    #: sender, e.g. "Staff blog <digest@blog.example.org>"
    sender: str = "Staff blog <digest@publisher.localhost>"
    #: Jinja2 template; variables: site, week (the period: a week or a month; its
    #: ``name`` reads "week of 11 February 2019" or "February 2019"), posts
    subject: str = "{{ site.title }}: {{ posts|length }} new post{{ 's' if posts|length != 1 }}, {{ week.name }}"
    #: each post's summary, or its full text
    content: DigestContent = DigestContent.SUMMARY
    #: HTML part budget in bytes; past it, long posts switch to summaries (Gmail clips at 102 KB)
    html_budget: int = 90_000
    #: Where bounces go: each message's envelope sender is this address with a
    #: signed VERP tag (``bounces+d12s345-…@example.org``); empty: the From address
    bounce_address: str = ""


@dataclass(frozen=True)
class ScheduleSettings:
    #: crontab syntax in the site time zone; a sixth leading field means seconds
    publish_cron: str = "*/15 * * * *"
    digest_cron: str = "0 7 * * mon"
    #: the monthly digest: the first Monday of the month, 07:00 (APScheduler, unlike
    #: Vixie cron, needs both the day of the month and the weekday to match)
    monthly_cron: str = "0 7 1-7 * mon"
    #: a slot missed by less than this (process down, machine asleep) still runs, once
    misfire_grace_seconds: int = 6 * 3600


@dataclass(frozen=True)
class MailboxSettings:
    #: The mailbox bounces, complaints and unsubscribe mails arrive in:
    #: ``imaps://USER@HOST[:PORT]/FOLDER``, ``pop3s://USER@HOST[:PORT]`` or
    #: ``maildir:///PATH``; the password comes from PUBLISHER_MAILBOX_PASSWORD.
    url: str = ""
    #: A CA certificate file to trust for the mail server (a private CA); empty:
    #: the system's.
    ca_file: str = ""

    @property
    def password(self) -> str:
        """From the environment only, never from the config file."""
        return os.environ.get("PUBLISHER_MAILBOX_PASSWORD", "")


@dataclass(frozen=True)
class WebSettings:
    #: Addresses (or CIDR ranges) of reverse proxies whose ``X-Forwarded-For`` is
    #: believed: the client is the nearest address in it that is not one of them.
    #: Empty: the socket's peer is the client (a proxy then counts as one client).
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    site: SiteSettings = field(default_factory=SiteSettings)
    build: BuildSettings = field(default_factory=BuildSettings)
    state: StateSettings = field(default_factory=StateSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    web: WebSettings = field(default_factory=WebSettings)
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)
    #: Id aliases: old slug -> new slug, so a renamed post keeps its feed id.
    ids: Mapping[str, str] = field(default_factory=dict)
    source: str = "defaults"

    @property
    def template_dirs(self) -> tuple[Path, ...]:
        """Where templates are looked up, first match wins: ``[build] templates``,
        then the bundled ones. A site's folder holds only the files it changes,
        as a theme override does in Pelican and Hugo, and keeps working when a
        release adds a template."""
        bundled = bundled_templates()
        if not self.build.templates:
            return (bundled,)
        own = Path(self.build.templates)
        if not own.is_dir():
            raise ConfigError(
                f"{self.source}: [build] templates: no folder {own}",
                f"create it with the templates to change (copies from {bundled}), "
                "or remove the setting to use the bundled ones",
            )
        return (own, bundled)

    def build_key(self) -> str:
        """The settings a build's output is made from, as one string for its cache key:
        the site, the build, the id aliases, the digest's look (its web copies) and
        which state database dates the posts. Delivery, SMTP and schedule settings
        are not in it: changing them leaves the next build a no-change build."""
        from publisher.crontab import poll_minutes  # the feeds' polling hints

        poll = poll_minutes(self.schedule.publish_cron)
        return repr(
            (self.site, self.build, sorted(self.ids.items()), self.digest, self.state, poll)
        )

    def template_file(self, name: str) -> Path:
        """A template used as it is (the feeds' stylesheet, the pages' CSS): the
        first folder of ``template_dirs`` that has it."""
        dirs = self.template_dirs
        return next((d / name for d in dirs if (d / name).is_file()), dirs[-1] / name)


def bundled_templates() -> Path:
    """The templates that come with publisher: ``publisher/templates``, in a
    checkout and in a wheel alike."""
    return Path(__file__).resolve().parent / "templates"
