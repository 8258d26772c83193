"""The feed formats: each one's file suffix, media type and label, in one place.

A format is a ``StrEnum``: it is its own name in settings (``formats =
["atom"]``), in paths (``all.atom``) and in comparisons with plain strings.
Adding a format means a member here and its writer in ``site.feeds``.
"""

from __future__ import annotations

from enum import StrEnum


class FeedFormat(StrEnum):
    """In the order files, links and lists show them."""

    ATOM = "atom"
    RSS = "rss"
    JSON = "json"

    @property
    def suffix(self) -> str:
        return f".{self.value}"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def label(self) -> str:
        return _LABELS[self]


_MEDIA_TYPES = {
    FeedFormat.ATOM: "application/atom+xml",
    FeedFormat.RSS: "application/rss+xml",
    FeedFormat.JSON: "application/feed+json",
}
_LABELS = {FeedFormat.ATOM: "Atom", FeedFormat.RSS: "RSS", FeedFormat.JSON: "JSON Feed"}

#: Every format, in order.
FEED_FORMATS: tuple[FeedFormat, ...] = tuple(FeedFormat)
#: Every feed file's suffix (``str.endswith`` takes the tuple).
FEED_SUFFIXES: tuple[str, ...] = tuple(f.suffix for f in FeedFormat)

#: What ``serve`` answers each file of the output folder with.
MEDIA_TYPES: dict[str, str] = {
    **{f.suffix: f"{f.media_type}; charset=utf-8" for f in FeedFormat},
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",  # the sitemap
}
