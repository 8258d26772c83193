"""Reading the config: ``publisher.toml`` plus environment overrides -> one validated ``Settings``.

``PUBLISHER_<SECTION>_<KEY>`` overrides any key; problems name the file (or
the variable), the key and what is allowed, and exit 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dateutil import tz

from publisher.errors import ConfigError
from publisher.formats import FEED_FORMATS
from publisher.settings import (
    MAX_CONNECTIONS,
    BuildSettings,
    DeliverySettings,
    DigestSettings,
    MailboxSettings,
    ScheduleSettings,
    Settings,
    SiteSettings,
    SmtpSettings,
    StateSettings,
    WebSettings,
)

log = logging.getLogger(__name__)
DEFAULT_CONFIG = Path("publisher.toml")
ENV_PREFIX = "PUBLISHER_"

_SECTIONS: dict[str, type] = {
    "site": SiteSettings,
    "build": BuildSettings,
    "state": StateSettings,
    "delivery": DeliverySettings,
    "smtp": SmtpSettings,
    "digest": DigestSettings,
    "schedule": ScheduleSettings,
    "web": WebSettings,
    "mailbox": MailboxSettings,
}
#: TOML spellings that are Python keywords
_KEY_ALIASES = {("digest", "from"): "sender"}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SLUGISH = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (or ``./publisher.toml`` if present), apply the environment, validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found", "check the --config path") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}", "fix the TOML syntax") from None
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name != "ids" and name not in _SECTIONS:
            allowed = ", ".join(sorted([*_SECTIONS, "ids"]))
            raise ConfigError(f"{source}: unknown section [{name}]", f"use one of: {allowed}")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table", f"write it as [{name}]")
        sections[name] = value
    origins: dict[tuple[str, str], str] = {}  # the variables that set a key, by key
    built = {
        name: _build_section(name, cls, sections.get(name, {}), source, environ, origins)
        for name, cls in _SECTIONS.items()
    }
    ids = _build_ids(sections.get("ids", {}), source)
    _warn_unknown_variables(environ)
    settings = Settings(**built, ids=ids, source=source)
    _validate(settings, lambda section, key: origins.get((section, key), source))
    return settings


def _spelling(section: str, key: str) -> str:
    """A key as the config file (and the README) spells it: ``from``, not ``sender``."""
    return next((k for (sec, k), v in _KEY_ALIASES.items() if sec == section and v == key), key)


#: Variables read elsewhere than the config (secrets).
_SECRETS = (
    "PUBLISHER_SECRET",
    "PUBLISHER_SMTP_PASSWORD",
    "PUBLISHER_MAILBOX_PASSWORD",
    "PUBLISHER_MAILGUN_SIGNING_KEY",
)


def _warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """A misspelt ``PUBLISHER_*`` variable is otherwise ignored without a word."""
    known = [*_SECRETS] + [
        f"{ENV_PREFIX}{name.upper()}_{_spelling(name, f.name).upper()}"
        for name, cls in _SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else " (see the README's configuration)"
            log.warning("warning: %s is not a publisher setting and is ignored%s", name, hint)


def _build_section(
    name: str,
    cls: type,
    values: dict[str, Any],
    source: str,
    environ: Mapping[str, str],
    origins: dict[tuple[str, str], str],
) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        key = _KEY_ALIASES.get((name, key), key)
        if key not in fields:
            allowed = ", ".join(_spelling(name, f) for f in fields)
            raise ConfigError(
                f"{source}: unknown key '{key}' in [{name}]", f"allowed keys in [{name}]: {allowed}"
            )
        kwargs[key] = _coerce(name, key, value, type(fields[key].default), source)
    for key in fields:
        spelled = _spelling(name, key)
        env_name = f"{ENV_PREFIX}{name.upper()}_{spelled.upper()}"
        if env_name in environ:
            kwargs[key] = _coerce(
                name, key, environ[env_name], type(fields[key].default), env_name, from_env=True
            )
            origins[(name, key)] = env_name
    return cls(**kwargs)


def _coerce(
    section: str, key: str, value: Any, kind: type, source: str, from_env: bool = False
) -> Any:
    where = f"{source}: [{section}] {key}"
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a whole number, not {value!r}", "e.g. 20")
        if isinstance(value, int):
            return value
        if from_env and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise ConfigError(f"{where} must be a whole number, not {value!r}", "e.g. 20")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if from_env and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be a number, not {value!r}", "e.g. 10 or 2.5")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, not {value!r}", 'quote it: key = "value"')
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_env and isinstance(value, str) and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
        raise ConfigError(f"{where} must be true or false, not {value!r}", "e.g. true")
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        if isinstance(value, str) and value in kind.__members__.values():
            return kind(value)
        raise ConfigError(
            f"{source}: [{section}] {key} = {value!r} is not allowed",
            f"use one of: {', '.join(kind)}",
        )
    if kind is tuple:
        if from_env and isinstance(value, str):  # a comma-separated list
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings, not {value!r}", 'e.g. ["a", "b"]')
    raise AssertionError(f"unhandled setting type {kind}")  # pragma: no cover


def _build_ids(values: dict[str, Any], source: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    for old, new in values.items():
        if not isinstance(new, str) or not _SLUGISH.match(new) or not _SLUGISH.match(old):
            raise ConfigError(
                f'{source}: [ids] {old} = {new!r} is not an old-slug = "new-slug" pair',
                'write e.g. "old-title-slug" = "new-title-slug" (lowercase slugs)',
            )
        ids[old] = new
    return ids


def _validate(s: Settings, at: Callable[[str, str], str]) -> None:
    """Check what types alone cannot; ``at(section, key)`` names where a key was set
    (the config file, or the environment variable that overrides it)."""
    _validate_site(s, at)
    _validate_delivery(s, at)
    _validate_schedule(s, at)
    _validate_build(s, at)
    _validate_web(s, at)
    _validate_mailbox(s, at)


def _validate_mailbox(s: Settings, at: Callable[[str, str], str]) -> None:
    url = s.mailbox.url
    if url and urlsplit(url).scheme not in ("imaps", "pop3s", "maildir"):
        raise ConfigError(
            f"{at('mailbox', 'url')}: [mailbox] url {url!r} is not imaps://, pop3s:// "
            "or maildir://",
            'e.g. url = "imaps://bounces@mail.example.org/INBOX" (TLS only)',
        )
    bounce = s.digest.bounce_address
    if bounce and ("@" not in bounce or "+" in bounce or any(c in bounce for c in "<> \r\n")):
        raise ConfigError(
            f"{at('digest', 'bounce_address')}: [digest] bounce_address {bounce!r} is not a "
            "plain address without a '+'",
            'e.g. bounce_address = "bounces@blog.example.org" (VERP adds +TAG itself)',
        )


def _validate_web(s: Settings, at: Callable[[str, str], str]) -> None:
    for proxy in s.web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"{at('web', 'trusted_proxies')}: [web] trusted_proxies: {proxy!r} is not "
                "an IP address or CIDR range",
                'e.g. trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]',
            ) from None


def _validate_site(s: Settings, at: Callable[[str, str], str]) -> None:
    parts = urlsplit(s.site.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{at('site', 'base_url')}: [site] base_url "
            f"{s.site.base_url!r} is not an absolute http(s) URL",
            'e.g. base_url = "https://blog.example.org/"',
        )
    if not s.site.base_url.endswith("/"):
        object.__setattr__(s.site, "base_url", s.site.base_url + "/")
    if tz.gettz(s.site.timezone) is None or not s.site.timezone:
        raise ConfigError(
            f"{at('site', 'timezone')}: [site] timezone "
            f"{s.site.timezone!r} is not a known IANA time zone",
            'e.g. timezone = "Europe/London"',
        )
    if not _LANG.match(s.site.language):
        raise ConfigError(
            f"{at('site', 'language')}: [site] language {s.site.language!r} is not a language tag",
            'e.g. language = "en-GB"',
        )
    if not re.fullmatch(r"[A-Za-z0-9.-]+", s.site.id_domain):
        raise ConfigError(
            f"{at('site', 'id_domain')}: [site] id_domain "
            f"{s.site.id_domain!r} is not a domain name",
            'e.g. id_domain = "blog.example.org" (set once, never change it)',
        )
    if s.site.icon and urlsplit(s.site.icon).scheme not in ("http", "https"):
        raise ConfigError(
            f"{at('site', 'icon')}: [site] icon {s.site.icon!r} is not an http(s) URL",
            'e.g. icon = "https://blog.example.org/icon.png" (or leave it out for the bundled one)',
        )
    if s.site.websub_hub and urlsplit(s.site.websub_hub).scheme not in ("http", "https"):
        raise ConfigError(
            f"{at('site', 'websub_hub')}: [site] websub_hub "
            f"{s.site.websub_hub!r} is not an http(s) URL",
            'e.g. websub_hub = "https://pubsubhubbub.appspot.com/"',
        )


def _validate_delivery(s: Settings, at: Callable[[str, str], str]) -> None:
    if not 1 <= s.smtp.port <= 65535:
        raise ConfigError(
            f"{at('smtp', 'port')}: [smtp] port {s.smtp.port} is not a TCP port", "use 1-65535"
        )
    if not 1 <= s.smtp.connections <= MAX_CONNECTIONS:
        raise ConfigError(
            f"{at('smtp', 'connections')}: [smtp] connections {s.smtp.connections} "
            f"is not 1-{MAX_CONNECTIONS}",
            "e.g. connections = 8 (ask your relay how many it allows at once)",
        )
    for section, key, value, least in (
        ("smtp", "rate_per_second", s.smtp.rate_per_second, 0),
        ("delivery", "max_attempts", s.delivery.max_attempts, 1),
        ("delivery", "bounce_limit", s.delivery.bounce_limit, 1),
        ("delivery", "retry_backoff", s.delivery.retry_backoff, 0),
    ):
        if value < least:
            raise ConfigError(
                f"{at(section, key)}: [{section}] {key} {value} must be at least {least}",
                "e.g. rate_per_second = 10, max_attempts = 4, bounce_limit = 3, retry_backoff = 2",
            )
    if "@" not in s.digest.sender or "\n" in s.digest.sender or "\r" in s.digest.sender:
        raise ConfigError(
            f"{at('digest', 'sender')}: [digest] from {s.digest.sender!r} is not an email address",
            'e.g. from = "Staff blog <digest@blog.example.org>"',
        )


def _validate_schedule(s: Settings, at: Callable[[str, str], str]) -> None:
    defaults = ScheduleSettings()
    for key in ("publish_cron", "digest_cron", "monthly_cron"):
        if getattr(s.schedule, key) == getattr(defaults, key):
            continue  # known good; skipping keeps APScheduler out of every start-up
        from publisher.crontab import parse_cron

        try:
            parse_cron(getattr(s.schedule, key), s.site.tzinfo)
        except ValueError as exc:
            raise ConfigError(
                f"{at('schedule', key)}: [schedule] {key} = {getattr(s.schedule, key)!r} "
                "is not a crontab "
                f"expression: {exc}",
                'five fields: minute hour day month weekday, e.g. "0 7 * * mon"',
            ) from None
    if s.schedule.misfire_grace_seconds < 0:
        raise ConfigError(
            f"{at('schedule', 'misfire_grace_seconds')}: [schedule] misfire_grace_seconds "
            "must be >= 0",
            "e.g. 21600",
        )


def _validate_build(s: Settings, at: Callable[[str, str], str]) -> None:
    unknown = [f for f in s.build.formats if f not in FEED_FORMATS]
    if unknown or not s.build.formats:
        raise ConfigError(
            f"{at('build', 'formats')}: [build] formats {list(s.build.formats)!r} "
            f"must name one or more of {', '.join(FEED_FORMATS)}",
            'e.g. formats = ["atom", "rss"]',
        )
    # one order whatever the config's: the same files, links and lists
    object.__setattr__(s.build, "formats", tuple(f for f in FEED_FORMATS if f in s.build.formats))
    if not 1 <= s.build.feed_max_items <= 10_000:
        raise ConfigError(
            f"{at('build', 'feed_max_items')}: [build] feed_max_items "
            f"{s.build.feed_max_items} is out of range",
            "use a number from 1 to 10000",
        )
