"""Every kind of page, and the digest, as readers see them: axe-core in Debian's
chromium finds no serious or critical violation, in light and dark, at a phone's
width and a desktop's; and a screenshot of each is kept in the test artifacts
(``test-artifacts/pages/<kind>-<width>-<scheme>.png``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from publisher.delivery.smtp import SmtpTransport
from publisher.newsletter.run import open_run, send
from publisher.newsletter.tokens import Purpose, Token, sign
from publisher.site.build import build
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from publisher.weeks import parse_week
from tests.helpers import ROOT, SECRET, SEEDS
from tests.helpers.browser import AXE, needs_axe, needs_chromium

needs_chromium()
needs_axe()

SHOTS = ROOT / "test-artifacts" / "pages"
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")
#: What axe reports as a barrier (its "serious" and "critical" impacts).
BARRIERS = {"serious", "critical"}


def _check(page: Any, kind: str) -> list[str]:
    """axe's serious and critical violations on the page as it is now, at each width
    and scheme, and a screenshot of each."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    found = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"{kind}-{width}-{scheme}.png"), full_page=True)
            if page.evaluate("typeof axe") == "undefined":
                page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
            )
            for v in result:
                if v["impact"] in BARRIERS:
                    nodes = "; ".join(n["target"][0] for n in v["nodes"][:3])
                    found.append(f"{kind} {width}px {scheme}: {v['id']} ({v['impact']}): {nodes}")
            # nothing wider than the screen: a phone never scrolls sideways
            overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            if overflow:
                found.append(f"{kind} {width}px {scheme}: the page is wider than the screen")
    return found


def test_no_page_kind_has_a_serious_accessibility_barrier(site, smtp, browser) -> None:  # type: ignore[no-untyped-def]
    s, server = site
    base = server.url
    store = SubscriberStore(open_engine(s.state.url))
    sub = store.add("reader@example.org", "Rita", ("thanks",), now=datetime.now(s.site.tzinfo))[0]
    run = open_run(s, parse_week("2019-W07", s.site.tzinfo), real_delivery=True)
    send(run, SmtpTransport(s.smtp), lambda: datetime.now(s.site.tzinfo))
    build(s, [SEEDS], Path("site"))  # the digest's web copy (the CLI builds it as it sends)
    (mail,) = smtp.recorder.to("reader@example.org")
    prefs = sign(Token(Purpose.PREFERENCES, sub.id), SECRET)
    unsub = sign(Token(Purpose.UNSUBSCRIBE, sub.id), SECRET)
    # the app's pages allow no script but their own: axe is injected past that
    page = browser.new_context(bypass_csp=True).new_page()
    problems: list[str] = []

    def visit(kind: str, url: str, then: Callable[[], None] | None = None) -> None:
        page.goto(url)
        if then:
            then()
        problems.extend(_check(page, kind))

    def submit(email: str) -> Callable[[], None]:
        def go() -> None:
            page.fill("#email", email)
            page.click("button[type=submit]")
            page.wait_for_load_state()

        return go

    visit("index", base)
    visit("post", base + "posts/the-digital-revolution.html")
    visit("tag", base + "tag/thanks.html")
    visit("archive", base + "archive.html")
    visit("year", base + "years/2018.html")
    visit("not-found", base + "no/such/page")
    visit("feed-in-a-tab", base + "all.atom")
    visit("digest-web-copy", base + "digests/2019-W07.html")
    visit("subscribe", base + "subscribe?tag=thanks")
    visit("subscribe-error", base + "subscribe", submit("not an address"))
    visit("check-your-inbox", base + "subscribe", submit("new@example.org"))
    server.settle()
    (invite,) = smtp.recorder.to("new@example.org")
    confirm = re.search(r"(http://\S+/confirm\?token=\S+)", invite.get_content()).group(1)
    # the page as a browser without scripts shows it: its button (it confirms in one
    # step otherwise, and lands on the next page)
    page.route("**/confirm.js", lambda route: route.abort())
    visit("confirm", confirm)
    page.unroute("**/confirm.js")
    visit("subscribed", confirm, lambda: page.wait_for_selector("h1:has-text('subscribed')"))
    visit("preferences", f"{base}preferences?token={prefs}")
    visit(
        "delete-confirm",
        f"{base}preferences?token={prefs}",
        lambda: page.click("button[value=forget]"),
    )
    visit("unsubscribe", f"{base}unsubscribe?token={unsub}")
    html = mail.get_body(("html",)).get_content()
    page.set_content(html)
    problems.extend(_check(page, "digest-email"))
    assert problems == [], json.dumps(problems, indent=1)
    assert len(list(SHOTS.glob("*.png"))) == 17 * len(WIDTHS) * len(SCHEMES)
    # the check itself finds barriers: an unlabelled field, an image with no text,
    # grey on grey, a page wider than a phone
    page.set_content(
        '<html lang="en"><body><main><input type="text"><img src="x.png">'
        '<p style="color:#aaa;background:#bbb">faint</p>'
        '<div style="width:900px">wide</div></main></body></html>'
    )
    bad = "\n".join(_check(page, "control"))
    for barrier in ("label", "image-alt", "color-contrast", "wider than the screen"):
        assert barrier in bad, bad
    for shot in SHOTS.glob("control-*.png"):
        shot.unlink()


@pytest.fixture(autouse=True)
def _no_stale_shots() -> None:
    for old in SHOTS.glob("*.png") if SHOTS.is_dir() else ():
        old.unlink()
