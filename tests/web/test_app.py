"""`publisher serve`, over real HTTP on loopback: static feeds and the subscription flow."""

from __future__ import annotations

import gzip
import http.client
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from publisher.newsletter.tokens import Token, sign
from publisher.site.build import build
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.web.app import create_app
from tests.helpers import SECRET, SEEDS, smtp_settings
from tests.helpers.smtp import SmtpServer, free_port
from tests.helpers.webserver import LiveServer


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("all.atom", "application/atom+xml; charset=utf-8"),
        ("tag/thanks.rss", "application/rss+xml; charset=utf-8"),
        ("tag/digital.json", "application/feed+json; charset=utf-8"),
        ("feeds.opml", "text/x-opml; charset=utf-8"),
        ("sitemap.xml", "application/xml; charset=utf-8"),
        ("", "text/html; charset=utf-8"),
        ("posts/the-digital-revolution.html", "text/html; charset=utf-8"),
    ],
)
def test_feeds_served_with_types_and_conditional_get(site, path: str, ctype: str) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    r = httpx.get(server.url + path)
    assert r.status_code == 200 and r.headers["content-type"] == ctype
    assert r.headers["etag"] and r.headers["last-modified"]
    assert "max-age=" in r.headers["cache-control"]
    again = httpx.get(server.url + path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    since = httpx.get(server.url + path, headers={"If-Modified-Since": r.headers["last-modified"]})
    assert since.status_code == 304
    zipped = httpx.get(server.url + path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip" and zipped.content == r.content


def test_browser_tab_gets_a_readable_page_for_a_feed(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    reader = httpx.get(server.url + "all.rss")
    tab = httpx.get(server.url + "all.rss", headers={"Sec-Fetch-Dest": "document"})
    assert reader.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert tab.headers["content-type"] == "text/html; charset=utf-8"
    assert "This is a web feed" in tab.text and tab.text.count("<time>") == 12
    assert "Sec-Fetch-Dest" in reader.headers["vary"] and "Sec-Fetch-Dest" in tab.headers["vary"]


def test_raw_gzip_and_bytes(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", "/all.atom", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == (Path("site") / "all.atom").read_bytes()


@pytest.mark.parametrize(
    "raw",
    [
        "/../state.db",
        "/%2e%2e/state.db",
        "/..%2fstate.db",
        "/.publisher-manifest.json",
        "/tag/../../publisher.toml",
        "//etc/passwd",
        "/%2e%2e%2f%2e%2e%2fetc/passwd",
    ],
)
def test_path_traversal_refused(site, raw: str) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    conn.request("GET", raw)
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 404, (raw, resp.status)
    assert b"SQLite" not in body and b"[state]" not in body and b"root:" not in body


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _confirm(c: httpx.Client, link: str) -> httpx.Response:
    """Follow a confirmation link as its owner does: open it, press the button."""
    page = c.get(link)
    if "<form" not in page.text:  # no button: the page says why
        return page
    return c.post(link, data={"csrf": _csrf(page.text)})


def test_signup_confirm_preferences_and_unsubscribe(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    with httpx.Client(base_url=server.url) as c:
        form = c.get("subscribe")
        assert "thanks" in form.text and "digital" in form.text
        data = {
            "csrf": _csrf(form.text),
            "email": "New@Example.org",
            "name": "New <b>",
            "tag": ["thanks", "no-such-tag"],
        }
        r = c.post("subscribe", data=data)
        assert r.status_code == 200 and "Check your inbox" in r.text
        server.settle()
        store = SubscriberStore(open_engine(s.state.url))
        sub = store.by_email("new@example.org")
        assert sub.status is Status.PENDING and sub.tags == ("thanks",)
        (mail,) = smtp.recorder.messages
        link = re.search(r"(http://\S+/confirm\?token=\S+)", mail.get_content()).group(1)
        # a duplicate sign-up gets the same answer
        r2 = c.post("subscribe", data={**data, "csrf": _csrf(c.get("subscribe").text)})
        assert r2.text == r.text
        server.settle()
        assert len(smtp.recorder.messages) == 1  # the link already sent stands
        assert "Confirm my subscription" in c.get(link).text  # a scanner's GET: nothing
        assert store.get(sub.id).status is Status.PENDING
        assert "You are subscribed" in _confirm(c, link).text
        assert store.get(sub.id).status is Status.ACTIVE
        r3 = c.post("subscribe", data={**data, "csrf": _csrf(c.get("subscribe").text)})
        server.settle()
        assert r3.text == r.text  # and no mail once active: only the welcome came
        assert [str(m["Subject"]) for m in smtp.recorder.messages][1:] == ["Welcome to Staff blog"]
        prefs = f"preferences?token={sign(Token('preferences', sub.id), SECRET)}"
        page = c.get(prefs)
        r = c.post(prefs, data={"csrf": _csrf(page.text), "tag": ["digital"], "action": "save"})
        assert "Saved." in r.text and store.get(sub.id).tags == ("digital",)
        unsub = f"unsubscribe?token={sign(Token('unsubscribe', sub.id), SECRET)}"
        page = c.get(unsub)  # a GET (link scanner) changes nothing
        assert "Unsubscribe" in page.text and store.get(sub.id).status is Status.ACTIVE
        r = c.post(unsub, data={"csrf": _csrf(page.text)})
        assert "You are unsubscribed" in r.text and store.get(sub.id).status is Status.UNSUBSCRIBED
        # replaying the confirmation link does not resubscribe
        assert c.get(link).status_code == 410
        assert c.post(link, data={"csrf": _csrf(c.get("subscribe").text)}).status_code == 410
        assert store.get(sub.id).status is Status.UNSUBSCRIBED


@pytest.mark.parametrize(
    "send",
    [
        # RFC 8058 3.1: the body SHOULD be multipart/form-data, MAY be urlencoded
        lambda url: httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")}),
        lambda url: httpx.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        lambda url: httpx.post(
            url, files={"List-Unsubscribe": (None, "One-Click"), "x-provider": (None, "1")}
        ),
        lambda url: httpx.post(url, data={"other": "x", "List-Unsubscribe": "One-Click"}),
    ],
    ids=["multipart", "urlencoded", "multipart-extra-field", "urlencoded-extra-field"],
)
def test_one_click_post_unsubscribes(site, send) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("one@example.org", now=datetime.now(s.site.tzinfo))
    url = f"{server.url}unsubscribe?token={sign(Token('unsubscribe', sub.id), SECRET)}"
    assert httpx.get(url).status_code == 200 and store.get(sub.id).status is Status.ACTIVE
    r = send(url)
    assert r.status_code == 200 and store.get(sub.id).status is Status.UNSUBSCRIBED


def test_a_post_without_the_one_click_field_needs_the_form(site) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("two@example.org", now=datetime.now(s.site.tzinfo))
    url = f"{server.url}unsubscribe?token={sign(Token('unsubscribe', sub.id), SECRET)}"
    r = httpx.post(url, files={"List-Unsubscribe": (None, "Something-Else")})
    assert r.status_code == 403 and store.get(sub.id).status is Status.ACTIVE


def test_bad_tokens_and_cross_site_posts(site) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("t@example.org", now=datetime.now(s.site.tzinfo))
    good = sign(Token("unsubscribe", sub.id), SECRET)
    with httpx.Client(base_url=server.url) as c:
        tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
        for bad in (
            tampered,
            "nonsense",
            sign(Token("unsubscribe", sub.id), "x" * 32),
            sign(Token("preferences", sub.id), SECRET),
        ):
            r = c.get(f"unsubscribe?token={bad}")
            assert r.status_code == 400 and "This link does not work" in r.text
        expired = sign(Token("confirm", sub.id, expires=1000), SECRET)
        r = c.get(f"confirm?token={expired}")
        assert r.status_code == 400 and "expired" in r.text
        page = c.get(f"unsubscribe?token={good}")
        evil = c.post(
            f"unsubscribe?token={good}",
            data={"csrf": _csrf(page.text)},
            headers={"Origin": "http://evil.example"},
        )
        assert evil.status_code == 403
        no_token = c.post(f"unsubscribe?token={good}", data={"csrf": "forged"})
        assert no_token.status_code == 403
        form = c.get("subscribe")
        cross = c.post(
            "subscribe",
            data={"csrf": _csrf(form.text), "email": "v@example.org"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        big = c.post(
            "subscribe",
            content=b"email=" + b"a" * 20000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413
    assert store.get(sub.id).status is Status.ACTIVE and store.by_email("v@example.org") is None


def test_signup_rate_limit(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    with httpx.Client(base_url=server.url) as c:
        codes = []
        for i in range(7):
            form = c.get("subscribe")
            r = c.post("subscribe", data={"csrf": _csrf(form.text), "email": f"r{i}@example.org"})
            codes.append(r.status_code)
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


def test_refused_confirmation_mail_gives_the_same_answer(site, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    smtp.recorder.always["nobody@example.org"] = "550 5.1.1 no such user"
    with httpx.Client(base_url=server.url) as c:
        form = c.get("subscribe")
        r = c.post("subscribe", data={"csrf": _csrf(form.text), "email": "nobody@example.org"})
    server.settle()
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert not smtp.recorder.messages


def test_a_site_under_a_path_is_served_at_that_path(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With base_url ``http://host/blog/``, every link in the pages and the mails
    points under ``/blog/``: the server answers there (the root redirects), so the
    links and the sign-up journey work. They all answered 404 before."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    port = free_port()
    base = f"http://127.0.0.1:{port}/blog/"
    s = smtp_settings(tmp_path, smtp.port, base_url=base)
    build(s, [SEEDS], Path("site"))
    server = LiveServer(create_app(s))
    server.port = port
    server.server.config.port = port
    with server, httpx.Client() as c:
        root = c.get(server.url)
        assert root.status_code == 308 and root.headers["location"] == "/blog/"
        index = c.get(base)
        assert index.status_code == 200
        links = set(re.findall(r'href="(http://127\.0\.0\.1:\d+/[^"#]*)"', index.text))
        assert len(links) > 10 and all(link.startswith(base) for link in links)
        for link in sorted(links):
            assert c.get(link).status_code == 200, link
        assert c.get(server.url + "all.atom").status_code == 404  # only under the path
        form = c.get(base + "subscribe")
        r = c.post(base + "subscribe", data={"csrf": _csrf(form.text), "email": "p@example.org"})
        assert "Check your inbox" in r.text
        server.settle()
        (mail,) = smtp.recorder.messages
        link = re.search(r"(http://\S+/confirm\?token=\S+)", mail.get_content()).group(1)
        assert link.startswith(base + "confirm?") and "You are subscribed" in _confirm(c, link).text


def test_a_sign_up_for_an_unsubscribed_address_changes_nothing_until_confirmed(
    site, smtp: SmtpServer
) -> None:  # type: ignore[no-untyped-def]
    """Anyone can type an address into the form. For one that unsubscribed, the form
    used to make the row pending at once (taking the form's name and topics), so it
    no longer read as unsubscribed. Now the row is left as it is; its owner gets a
    link that brings the subscription back, once, and never after the row changed."""
    s, server = site
    store = SubscriberStore(open_engine(s.state.url))
    sub, _ = store.add("back@example.org", "Back", ["thanks"], now=datetime.now(UTC))
    store.remove("back@example.org", datetime.now(UTC))
    before = store.get(sub.id)
    with httpx.Client(base_url=server.url) as c:
        form = c.get("subscribe")
        data = {"csrf": _csrf(form.text), "email": "back@example.org", "name": "Mallory"}
        r = c.post("subscribe", data=data)
        assert "Check your inbox" in r.text
        server.settle()
        assert store.get(sub.id) == before  # unsubscribed, name and topics as they were
        (mail,) = smtp.recorder.messages
        link = re.search(r"(http://\S+/confirm\?token=\S+)", mail.get_content()).group(1)
        assert "You are subscribed again" in _confirm(c, link).text
        now = store.get(sub.id)
        assert (now.status, now.name, now.tags, now.bounces) == (
            Status.ACTIVE,
            "Back",
            ("thanks",),
            0,
        )
        assert "Already confirmed" in c.get(link).text  # the same link again
        store.remove("back@example.org", datetime.now(UTC))
        assert c.get(link).status_code == 410  # the row changed since: never revives it
        assert store.get(sub.id).status is Status.UNSUBSCRIBED
        tampered = link.replace("token=", "token=x")
        assert c.get(tampered).status_code == 400


def test_a_missing_page_gets_the_sites_404_page(site) -> None:  # type: ignore[no-untyped-def]
    """``404.html`` (written by the build for static hosts) is what serve answers for
    an address with no page: the site's look and a way home, kept out of search."""
    s, server = site
    r = httpx.get(server.url + "posts/no-such-post.html")
    assert r.status_code == 404 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "Page not found" in r.text and f'href="{s.site.base_url}"' in r.text
    assert '<meta name="robots" content="noindex">' in r.text
    sitemap = httpx.get(server.url + "sitemap.xml").text
    assert "404.html" not in sitemap


def test_a_tag_a_build_publishes_while_serving_is_offered_at_once(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``serve`` offers the topics the last build published (from the state database),
    not those it read from the archives when it started."""
    settings, server = site
    before = httpx.get(server.url + "subscribe").text
    assert 'value="thanks"' in before and "Brand new topic" not in before
    seeds = tmp_path / "more-seeds"
    seeds.mkdir()
    for f in SEEDS.glob("*.txt"):
        (seeds / f.name).write_bytes(f.read_bytes())
    (seeds / "new.txt").write_text(
        "Posts Tagged ‘Brand new topic’\n\nA new post\n\nMonday, March 4th, 2019\n\nIts text.\n",
        encoding="utf-8",
    )
    build(settings, [seeds], Path("site"))
    after = httpx.get(server.url + "subscribe").text
    assert 'value="Brand new topic"' in after and 'value="thanks"' in after


def test_pages_name_their_feeds_in_a_link_header(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    r = httpx.get(server.url + "tag/thanks.html")
    links = r.headers["link"]
    assert f'<{server.url}tag/thanks.atom>; rel="alternate"; type="application/atom+xml"' in links
    assert "all.atom" in httpx.get(server.url).headers["link"]


def test_a_gzip_answer_has_its_own_etag_and_a_304_keeps_vary(site) -> None:  # type: ignore[no-untyped-def]
    _, server = site
    plain = httpx.get(server.url + "all.atom", headers={"Accept-Encoding": "identity"})
    zipped = httpx.get(server.url + "all.atom", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert plain.headers["etag"] != zipped.headers["etag"]
    assert zipped.headers["etag"].endswith('-gzip"')
    for r, encoding in ((plain, "identity"), (zipped, "gzip")):
        again = httpx.get(
            server.url + "all.atom",
            headers={"Accept-Encoding": encoding, "If-None-Match": r.headers["etag"]},
        )
        assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]
        assert "Accept-Encoding" in again.headers["vary"]


def test_an_address_with_letters_beyond_ascii_signs_up_through_smtputf8(  # type: ignore[no-untyped-def]
    site, smtp: SmtpServer
) -> None:
    """``josé@example.org`` used to be refused by the form; the relay offers SMTPUTF8,
    so its confirmation goes as any other, the address as it is in envelope and To."""
    s, server = site
    with httpx.Client(base_url=server.url) as c:
        form = c.get("subscribe")
        r = c.post("subscribe", data={"csrf": _csrf(form.text), "email": "josé@example.org"})
        assert r.status_code == 200 and "Check your inbox" in r.text
        server.settle()
    (mail,) = smtp.recorder.messages
    assert str(mail["To"]) == "josé@example.org" and smtp.recorder.utf8_envelopes == [True]
    link = re.search(r"(http://\S+/confirm\?token=\S+)", mail.get_content()).group(1)
    with httpx.Client(base_url=server.url) as c:
        assert "You are subscribed" in _confirm(c, link).text
    store = SubscriberStore(open_engine(s.state.url))
    assert store.by_email("josé@example.org").status is Status.ACTIVE
