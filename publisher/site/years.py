"""Every post reachable in HTML, with no script: a page per year of posts, an archive
page listing the years, and each post's newer and older neighbour.

The index shows the newest posts; these pages lead to the rest, as WordPress's
yearly archives and Hugo's sections do. A year's page changes only when a post
of that year does, so a new post rewrites one page, not a paginated series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from publisher.source.posts import Post

ARCHIVE_PATH = "archive.html"


def year_path(year: int) -> str:
    return f"years/{year}.html"


@dataclass(frozen=True)
class Year:
    year: int
    posts: tuple[Post, ...]  # newest first

    @property
    def path(self) -> str:
        return year_path(self.year)


def by_year(posts: Sequence[Post]) -> list[Year]:
    """The years of ``posts`` (newest first, as the stream is), newest year first."""
    years: dict[int, list[Post]] = {}
    for p in posts:
        years.setdefault(p.date.year, []).append(p)
    return [Year(y, tuple(ps)) for y, ps in sorted(years.items(), reverse=True)]


@dataclass(frozen=True)
class Neighbours:
    """A post's newer and older posts on the site, for its page's previous/next links."""

    newer: Post | None
    older: Post | None

    def key(self) -> tuple[str, ...]:
        """What of them the page shows."""
        return tuple(f"{p.slug}\x1f{p.title}" if p else "" for p in (self.newer, self.older))


def neighbours(posts: Sequence[Post]) -> dict[str, Neighbours]:
    """Each post's neighbours in ``posts`` (newest first)."""
    last = len(posts) - 1
    return {
        p.id: Neighbours(posts[i - 1] if i else None, posts[i + 1] if i < last else None)
        for i, p in enumerate(posts)
    }
