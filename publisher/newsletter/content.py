"""Digest content: which posts each subscriber gets for a week, rendered once per distinct list.

Pure: no database, no network, no clock. Personal links (unsubscribe,
preferences) are placeholders replaced per subscriber, so 10,000 subscribers
spread over a handful of tag choices cost a handful of renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import css_inline
from jinja2 import Environment, StrictUndefined, TemplateError

from publisher.errors import ConfigError
from publisher.formats import FeedFormat
from publisher.settings import Settings
from publisher.source.posts import Post
from publisher.templating import environment, render
from publisher.text import slugify
from publisher.weeks import Month, Period

UNSUBSCRIBE_MARK = "https://publisher.invalid/__unsubscribe__"
PREFERENCES_MARK = "https://publisher.invalid/__preferences__"


@dataclass(frozen=True)
class FeedRef:
    title: str
    href: str


@dataclass(frozen=True)
class Item:
    post: Post
    url: str
    full: bool


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    post_ids: tuple[str, ...]

    def personal(self, unsubscribe_url: str, preferences_url: str) -> tuple[str, str]:
        def fill(s: str) -> str:
            return s.replace(UNSUBSCRIBE_MARK, unsubscribe_url).replace(
                PREFERENCES_MARK, preferences_url
            )

        return fill(self.html), fill(self.text)


def web_path(week: Period) -> str:
    """Where the week's digest is on the site (published before it is sent)."""
    return f"digests/{week.label}.html"


def week_posts(posts: Sequence[Post], week: Period) -> list[Post]:
    """Posts published in the week, newest first (the stream's order)."""
    return [p for p in posts if week.contains(p.published)]


def posts_for(posts: Sequence[Post], tags: Sequence[str]) -> list[Post]:
    """The posts carrying one of ``tags`` (compared by slug); no tags = every post."""
    if not tags:
        return list(posts)
    wanted = {slugify(t, "tag") for t in tags}
    return [p for p in posts if any(slugify(t, "tag") in wanted for t in p.tags)]


def _subject_error(settings: Settings, exc: TemplateError) -> ConfigError:
    return ConfigError(
        f"{settings.source}: [digest] subject {settings.digest.subject!r}: {exc.message or exc}",
        "a Jinja2 template of site, week and posts, e.g. "
        'subject = "{{ site.title }}: {{ posts|length }} new posts"',
    )


class DigestRenderer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.site = settings.site
        self.env: Environment = environment(settings.template_dirs)
        try:
            self.subject_template = Environment(
                undefined=StrictUndefined, autoescape=False
            ).from_string(settings.digest.subject)
        except TemplateError as exc:
            raise _subject_error(settings, exc) from None

    def subject(self, week: Period, posts: Sequence[Post]) -> str:
        """The ``[digest] subject`` template, on one line (it becomes a header)."""
        try:
            text = self.subject_template.render(site=self.site, week=week, posts=list(posts))
        except TemplateError as exc:
            raise _subject_error(self.settings, exc) from None
        return " ".join(text.split())

    def heading(self, week: Period) -> str:
        if isinstance(week, Month):
            return f"Posts from {week.name} ({week.label})"
        first, last = week.start.date(), week.last_day
        return f"Posts from the week of {first:%A %-d %B} to {last:%A %-d %B %Y} ({week.label})"

    def feeds(self, tags: Sequence[str]) -> list[FeedRef]:
        """The feeds a digest offers to follow instead, in the first format the build writes."""
        base, fmt = self.site.base_url, self.settings.build.formats[0]
        label = FeedFormat(fmt).label
        if not tags:
            return [FeedRef(f"{self.site.title} ({label})", f"{base}all.{fmt}")]
        return [FeedRef(f"‘{t}’ ({label})", f"{base}tag/{slugify(t, 'tag')}.{fmt}") for t in tags]

    def render(
        self, week: Period, posts: Sequence[Post], tags: Sequence[str] = (), personal: bool = True
    ) -> Rendered:
        """Render, switching the longest posts to summaries until the HTML fits the budget."""
        full = self.settings.digest.content == "full"
        modes = {p.id: full for p in posts}
        by_length = sorted(posts, key=lambda p: len(p.html), reverse=True)
        while True:
            rendered = self._render(week, posts, tags, personal, modes)
            if len(rendered.html.encode("utf-8")) <= self.settings.digest.html_budget:
                return rendered
            longest = next((p for p in by_length if modes[p.id]), None)
            if longest is None:
                return rendered  # all summaries already: nothing more to trim
            modes[longest.id] = False

    def _render(self, week, posts, tags, personal, modes) -> Rendered:  # type: ignore[no-untyped-def]
        base = self.site.base_url
        items = [Item(p, f"{base}posts/{p.slug}.html", modes[p.id]) for p in posts]
        subject = self.subject(week, posts)
        count = f"{len(posts)} new post{'' if len(posts) == 1 else 's'}"
        ctx = {
            "site": self.site,
            "week": week,
            "heading": self.heading(week),
            "items": items,
            "feeds": self.feeds(tags),
            "tags": list(tags),
            "personal": personal,
            "subject": subject,
            # what inboxes show beside the subject, instead of the first words of the body
            "preheader": f"{count}: " + " · ".join(p.title for p in posts),
            "web_url": f"{base}{web_path(week)}",
            "unsubscribe_url": UNSUBSCRIBE_MARK,
            "preferences_url": PREFERENCES_MARK,
        }
        html = render(self.env, "digest.html.j2", **ctx)
        # clients that drop <style> still get the look
        html = css_inline.inline(html)
        text = render(self.env, "digest.txt.j2", **ctx)
        return Rendered(subject, html, text, tuple(p.id for p in posts))
