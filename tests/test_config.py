"""Settings: defaults with no file, TOML, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.errors import ConfigError


def test_defaults_without_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, environ={})
    assert s.site.base_url == "http://127.0.0.1:8000/"
    assert s.site.language == "en-GB" and s.site.timezone == "Europe/London"
    assert s.state.url == "sqlite:///var/publisher.db"
    assert s.build.feed_max_items == 20 and s.source == "defaults"


def test_toml_and_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        '[site]\ntitle = "Blog"\nbase_url = "https://b.example"\n[build]\nfeed_max_items = 5\n'
    )
    s = load_settings(
        cfg, environ={"PUBLISHER_BUILD_FEED_MAX_ITEMS": "7", "PUBLISHER_SITE_TITLE": "Env"}
    )
    assert s.site.title == "Env" and s.build.feed_max_items == 7
    assert s.site.base_url == "https://b.example/"


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[site]\ntitel = 'x'\n", {}, "unknown key 'titel' in [site]"),
        ("[sight]\n", {}, "unknown section [sight]"),
        ("[build]\nfeed_max_items = 'many'\n", {}, "[build] feed_max_items must be a whole number"),
        (
            "",
            {"PUBLISHER_BUILD_FEED_MAX_ITEMS": "x"},
            "PUBLISHER_BUILD_FEED_MAX_ITEMS: [build] feed_max_items",
        ),
        ("[site]\ntimezone = 'Mars/Base'\n", {}, "not a known IANA time zone"),
        ("[site]\nbase_url = 'ftp://x'\n", {}, "not an absolute http(s) URL"),
        ("[site\n", {}, "not valid TOML"),
        ("[ids]\n'Old Title' = 'new'\n", {}, "[ids]"),
        ("[delivery]\nmethod = 'pigeon'\n", {}, "[delivery] method = 'pigeon' is not allowed"),
        ("[smtp]\nsecurity = 'ssl'\n", {}, "use one of: starttls, tls, none"),
        ("[smtp]\nport = 70000\n", {}, "[smtp] port 70000"),
        ("[smtp]\nrate_per_second = 'fast'\n", {}, "must be a number"),
        ("[digest]\nfrom = 'nobody'\n", {}, "[digest] from"),
        ("[schedule]\ndigest_cron = '0 7 * *'\n", {}, "[schedule] digest_cron"),
        ("[build]\nformats = ['atom', 'xml']\n", {}, "must name one or more of atom, rss, json"),
        ("[build]\nformats = []\n", {}, "[build] formats"),
        ("[build]\nformats = 'atom'\n", {}, "[build] formats must be a list of strings"),
        ("[build]\npages = 'no'\n", {}, "[build] pages must be true or false"),
        ("", {"PUBLISHER_BUILD_PAGES": "maybe"}, "PUBLISHER_BUILD_PAGES: [build] pages"),
        # well-typed but out of bounds: the variable is named, not the file
        ("", {"PUBLISHER_BUILD_FEED_MAX_ITEMS": "0"}, "PUBLISHER_BUILD_FEED_MAX_ITEMS: [build]"),
        ("", {"PUBLISHER_SMTP_PORT": "0"}, "PUBLISHER_SMTP_PORT: [smtp] port 0"),
        ("", {"PUBLISHER_DIGEST_FROM": "nobody"}, "PUBLISHER_DIGEST_FROM: [digest] from"),
        ("", {"PUBLISHER_SITE_TIMEZONE": "Mars/Base"}, "PUBLISHER_SITE_TIMEZONE: [site]"),
        ("", {"PUBLISHER_DELIVERY_METHOD": "pigeon"}, "PUBLISHER_DELIVERY_METHOD: [delivery]"),
        ("", {"PUBLISHER_DELIVERY_MAX_ATTEMPTS": "0"}, "PUBLISHER_DELIVERY_MAX_ATTEMPTS: [del"),
        ("[delivery]\nbounce_limit = 0\n", {}, "[delivery] bounce_limit 0 must be at least 1"),
    ],
)
def test_bad_config_names_file_key_and_fix(
    tmp_path: Path, toml: str, env: dict, needle: str
) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ=env)
    assert needle in str(exc.value)
    assert exc.value.remedy and exc.value.exit_code == 2
    if not env:
        assert str(cfg) in exc.value.message
    else:  # the value came from the environment: the file did not set it
        assert str(cfg) not in exc.value.message and "defaults" not in exc.value.message


def test_formats_and_pages_from_toml_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text("[build]\nformats = ['rss', 'atom', 'rss']\npages = false\n")
    s = load_settings(cfg, environ={})
    assert s.build.formats == ("atom", "rss") and s.build.pages is False  # one order, once each
    env = {"PUBLISHER_BUILD_FORMATS": "json, atom", "PUBLISHER_BUILD_PAGES": "yes"}
    s = load_settings(cfg, environ=env)
    assert s.build.formats == ("atom", "json") and s.build.pages is True
    assert load_settings(None, environ={}).build.formats == ("atom", "rss", "json")


def test_digest_from_and_smtp_overrides_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[digest]\nfrom = "Blog <a@example.org>"\n[smtp]\nrate_per_second = 5\n')
    s = load_settings(
        cfg,
        environ={
            "PUBLISHER_DIGEST_FROM": "Other <b@example.org>",
            "PUBLISHER_SMTP_PORT": "2525",
            "PUBLISHER_SMTP_RATE_PER_SECOND": "2.5",
        },
    )
    assert s.digest.sender == "Other <b@example.org>"
    assert (s.smtp.port, s.smtp.rate_per_second) == (2525, 2.5)


def test_an_unknown_key_lists_the_keys_as_the_readme_spells_them(tmp_path: Path) -> None:
    from publisher.config import load_settings
    from publisher.errors import ConfigError

    cfg = tmp_path / "publisher.toml"
    cfg.write_text('[digest]\nsendr = "x@example.org"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert "from, subject" in exc.value.remedy and "sender" not in exc.value.remedy
