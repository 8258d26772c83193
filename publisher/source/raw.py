"""What reading a page yields, before any merging: its kind, its raw post copies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from publisher.errors import Problem
from publisher.source.body import Paragraph


class TermKind(StrEnum):
    """What a term is; also the folder its files live in (``tag/<slug>.atom``)."""

    TAG = "tag"
    CATEGORY = "category"


class PageKind(StrEnum):
    TAG = "tag"
    CATEGORY = "category"
    DATE = "date"
    POST = "post"


class RawPost(NamedTuple):
    """One copy of a post as one file shows it; copies are merged later.

    (A NamedTuple for the same reason as ``Paragraph``: two or three a post.)
    """

    file: str
    line: int  # the title line
    order: int  # position in the file, 0 = top
    title: str
    date: date | None
    caption: str
    paragraphs: tuple[Paragraph, ...]
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    excerpt: bool = False  # ended in "Continue reading": not the full text
    at_eof: bool = False  # ran to the end of the file: may be cut off

    def same_content(self, other: RawPost) -> bool:
        """The same text, as a copy of its post (whatever its line or terms)."""
        return (self.caption, self.paragraphs, self.excerpt, self.at_eof) == (
            other.caption,
            other.paragraphs,
            other.excerpt,
            other.at_eof,
        )


#: (caption, paragraphs, tags, categories, excerpt) parsed from one body text
_Body = tuple[str, tuple[Paragraph, ...], tuple[str, ...], tuple[str, ...], bool]
#: Copies parsed without a problem, by the identity of their lines (title line to the
#: next post): the same post sits in every archive of its tags. See ``_copy_key``.
Copies = dict[tuple[int, int, str], tuple[str, date, _Body]]


@dataclass
class ArchivePage:
    file: str
    kind: PageKind
    term: str = ""
    posts: list[RawPost] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Posts dropped from this page because of an error, as (line, title).
    rejected: list[tuple[int, str]] = field(default_factory=list)


def term_forms(pages: Iterable[ArchivePage]) -> set[tuple[TermKind, str]]:
    """Every tag and category name as written on these pages."""
    return {
        (kind, n)
        for page in pages
        for r in page.posts
        for kind, names in ((TermKind.TAG, r.tags), (TermKind.CATEGORY, r.categories))
        for n in names
    }
