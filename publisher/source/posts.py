"""The normalized stream's types: ``Post``, ``Term`` and ``Stream``.

What every later stage (site, newsletter) reads; made by ``normalize`` (and
patched by ``increment``). Nothing here reads files or the clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from html import escape

from publisher.errors import Problem
from publisher.source.body import Paragraph
from publisher.source.raw import TermKind
from publisher.text import slugify

SUMMARY_WORDS = 40


@dataclass(frozen=True)
class Term:
    """A tag or category: display name as written, and a file/URL-safe slug."""

    kind: TermKind
    name: str
    slug: str


@dataclass(frozen=True)
class Post:
    id: str
    slug: str
    title: str
    date: date
    published: datetime
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    caption: str
    paragraphs: tuple[Paragraph, ...]
    sources: tuple[str, ...]
    excerpt: bool

    # Derived on first use, like ``html``: ``check``, ``posts`` and a digest need
    # them for few posts or none; a build asks for all of them, once.

    @cached_property
    def summary(self) -> str:
        """Plain text: the opening of the first paragraph (see ``summarize``)."""
        return summarize(self.paragraphs)

    @cached_property
    def content_hash(self) -> str:
        """Digest of everything a reader sees; a change means the post was edited."""
        texts = ("\x1d".join(p.items) if p.items else p.text for p in self.paragraphs)
        content = "\x1f".join(
            [self.title, self.caption, *texts, "\x1e", *self.tags, "\x1e", *self.categories]
        )
        return hashlib.blake2b(content.encode("utf-8"), digest_size=16).hexdigest()

    @property
    def html(self) -> str:
        """Safe HTML of the body, rendered on each use and not kept.

        A build asks for it once per format and page, in forked workers that each
        would keep their own copy: not keeping it saves much of a worker's peak
        memory, for little time a call.
        """
        return render_html(self.caption, self.paragraphs)

    def relocated(self, **changes: object) -> Post:
        """This post found elsewhere (``sources``) or placed elsewhere (``slug``, ``id``,
        ``published``) by other posts' edits; what it derived from its content on
        first use still holds."""
        moved = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        for name in ("summary", "content_hash"):
            if name in self.__dict__:
                moved.__dict__[name] = self.__dict__[name]
        return moved

    @property
    def word_count(self) -> int:
        """Whitespace-separated words of the body (computed on demand: it is costly)."""
        return sum(len(p.plain().split()) for p in self.paragraphs)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "slug": self.slug,
            "title": self.title,
            "date": self.date.isoformat(),
            "published": self.published.isoformat(),
            "tags": list(self.tags),
            "categories": list(self.categories),
            "caption": self.caption,
            "paragraphs": [
                {"list": list(p.items)} if p.is_list else {"text": p.text} for p in self.paragraphs
            ],
            "html": self.html,
            "summary": self.summary,
            "word_count": self.word_count,
            "sources": list(self.sources),
            "excerpt": self.excerpt,
        }


@dataclass
class Stream:
    """The normalizer's result: good posts newest first, and everything it noticed."""

    posts: tuple[Post, ...]
    problems: list[Problem]
    #: Copies left out because of an error, as "FILE:LINE: title".
    skipped: list[str] = field(default_factory=list)
    terms: dict[tuple[TermKind, str], Term] = field(default_factory=dict)
    _index: dict[tuple[TermKind, str], list[Post]] | None = field(default=None, repr=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    def term(self, kind: TermKind, name: str) -> Term:
        return self.terms[(kind, slugify(name, kind))]

    def terms_of(self, kind: TermKind) -> list[Term]:
        return sorted((t for (k, _), t in self.terms.items() if k == kind), key=lambda t: t.slug)

    def posts_with(self, term: Term) -> list[Post]:
        """The term's posts, newest first (indexed once: builds ask for every term)."""
        if self._index is None:
            index: dict[tuple[TermKind, str], list[Post]] = defaultdict(list)
            for p in self.posts:
                for n in p.tags:
                    index[(TermKind.TAG, slugify(n, TermKind.TAG))].append(p)
                for n in p.categories:
                    index[(TermKind.CATEGORY, slugify(n, TermKind.CATEGORY))].append(p)
            self._index = index
        return list(self._index.get((term.kind, term.slug), []))


def render_html(caption: str, paragraphs: tuple[Paragraph, ...]) -> str:
    """Safe HTML: every piece of text is escaped; the only markup is ours."""
    parts = [f'<p class="caption"><em>{escape(caption)}</em></p>'] if caption else []
    for p in paragraphs:
        if p.is_list:
            items = "".join(f"<li>{escape(i)}</li>" for i in p.items)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(f"<p>{escape(p.text)}</p>")
    return "\n".join(parts)


def summarize(paragraphs: tuple[Paragraph, ...], words: int = SUMMARY_WORDS) -> str:
    """Plain text: the first paragraph, cut at a word boundary with an ellipsis."""
    if not paragraphs:
        return ""
    first = paragraphs[0].plain().split(None, words)  # at most words+1 pieces
    text = " ".join(first[:words])
    return text + "…" if len(first) > words or len(paragraphs) > 1 else text
