"""The whole subscriber journey in a real headless browser (Debian's chromium via
Playwright, no browser download), with a real SMTP server and the real app."""

from __future__ import annotations

import re

import httpx

from publisher.delivery.smtp import SmtpTransport
from publisher.newsletter.run import open_run, send
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.weeks import parse_week
from tests.helpers import ROOT
from tests.helpers.browser import needs_chromium

ARTIFACTS = ROOT / "test-artifacts"
needs_chromium()


def test_subscribe_confirm_digest_one_click_unsubscribe(site, smtp, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    s, server = site
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    page.goto(server.url)
    assert "Staff blog" in page.title()
    shot("1-index")
    page.goto(server.url + "subscribe")
    shot("2-subscribe")
    page.fill("#email", "reader@example.org")
    page.fill("#name", "Rita Reader")
    page.check("input[name=tag][value=thanks]")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.wait_for_selector("h1:has-text('Check your inbox')")
    shot("3-check-inbox")

    (mail,) = smtp.recorder.messages
    assert mail["To"].addresses[0].addr_spec == "reader@example.org"
    link = re.search(r"(http://\S+/confirm\?token=\S+)", mail.get_content()).group(1)
    # what a link scanner does (Defender, Mimecast): fetch it, run no script
    assert (httpx.get(link).status_code, httpx.head(link).status_code) == (200, 200)
    store = SubscriberStore(open_engine(s.state.url))
    assert store.by_email("reader@example.org").status is Status.PENDING
    page.goto(link)  # a person opening it: confirmed in one step, no button to press
    page.wait_for_selector("h1:has-text('You are subscribed')")
    shot("4-confirmed")
    server.settle()
    (welcome,) = [m for m in smtp.recorder.to("reader@example.org") if "Welcome" in m["Subject"]]
    text = welcome.get_body(("plain",)).get_content()
    assert "Hello Rita Reader" in text and "posts tagged thanks" in text
    assert "/posts/" in text and "/preferences?token=" in text  # the newest 'thanks' posts
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    sub = store.by_email("reader@example.org")
    assert sub.status is Status.ACTIVE and sub.tags == ("thanks",)

    def digest(week: str) -> int:
        run = open_run(s, parse_week(week, s.site.tzinfo), real_delivery=True)
        return send(
            run, SmtpTransport(s.smtp), lambda: __import__("datetime").datetime.now(s.site.tzinfo)
        ).sent

    assert digest("2019-W07") == 1
    message = smtp.recorder.to("reader@example.org")[-1]
    assert (
        "Digitisation" in message["Subject"]
        or "Digitisation" in message.get_body(("plain",)).get_content()
    )
    html = message.get_body(("html",)).get_content()
    (ARTIFACTS / "digest.html").write_text(html, encoding="utf-8")
    page.goto((ARTIFACTS / "digest.html").as_uri())
    shot("5-digest-email")
    https = re.search(
        r"<(http://[^>]+/unsubscribe\?token=[^>]+)>", message["List-Unsubscribe"]
    ).group(1)
    page.goto(https)  # what a person (or a link scanner) sees: a question, not an action
    shot("6-unsubscribe-page")
    assert store.get(sub.id).status is Status.ACTIVE
    # the mail provider's RFC 8058 one-click POST
    r = httpx.post(
        https,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert store.get(sub.id).status is Status.UNSUBSCRIBED
    before = len(smtp.recorder.to("reader@example.org"))
    assert digest("2018-W21") == 0  # a week with a 'thanks' post: they would have got it
    assert len(smtp.recorder.to("reader@example.org")) == before
    for n, feed in enumerate(("tag/thanks.atom", "all.rss", "tag/thanks.json")):
        page.goto(server.url + feed)  # a person opening a feed gets a readable page
        assert page.title().startswith("Staff blog")
        assert page.locator("ol.posts li a").count() == (12 if feed == "all.rss" else 3)
        assert page.input_value("input[readonly]") == server.url + feed
        shot(f"7{'abc'[n]}-feed-in-browser")
    for name in (
        "1-index",
        "2-subscribe",
        "3-check-inbox",
        "4-confirmed",
        "6-unsubscribe-page",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
