"""Reader: one WordPress archive page (as text) -> the raw post copies it holds.

Stage one of the pipeline. It knows the page layouts (tag, category, date
archives and single post pages) and the quirks of saved pages (encodings, line
endings, captions, page chrome, excerpts, pages cut off mid-post), and reports
every problem with FILE:LINE instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from publisher.errors import Problem, error, warning
from publisher.source.body import Paragraph, read_paragraphs, split_blocks, strip_chrome
from publisher.source.dates import DATE_HEADER, DATE_LINE, is_date_line, read_date
from publisher.source.decode import XML_FORBIDDEN_BYTES, decode
from publisher.text import INVISIBLE, XML_FORBIDDEN, squash, strip_invisible

_Q_OPEN = "[‘'\"“`]"
_Q_CLOSE = "[’'\"”`]"
TAG_HEADER = re.compile(rf"Posts Tagged\s+{_Q_OPEN}(.+?){_Q_CLOSE}\s*", re.I)
CATEGORY_HEADER = re.compile(rf"Archive for the\s+{_Q_OPEN}(.+?){_Q_CLOSE}\s+Category\s*", re.I)
MAX_TITLE = 200
#: More tags and categories than this on one post is most likely a page saved
#: wrong (each is a feed and a page of its own): warned of, not refused.
MAX_TERMS = 50
#: A last line this short, with no date after it, may be the next post's title cut off.
MAX_FRAGMENT = 200


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


def parse_page(data: bytes, name: str, seen: Copies | None = None) -> ArchivePage:
    """Parse one archive file. Never raises for bad input: problems are collected.

    ``seen`` shares parsed copies across the files of one run (see ``read_pages``).
    """
    text, problems = decode(data, name)
    if text is None:
        page = ArchivePage(name, PageKind.POST)
        page.problems.extend(problems)
        return page
    # C0 controls by a byte-level scan (faster than the regex over the text);
    # U+FFFE/U+FFFF by a search of the decoded text (faster than of the bytes)
    maybe_forbidden = (
        len(data.translate(None, XML_FORBIDDEN_BYTES)) != len(data)
        or "\ufffe" in text
        or "\uffff" in text
        or data.startswith((b"\xff\xfe", b"\xfe\xff"))
    )
    return parse_text(text, name, check_forbidden=maybe_forbidden, seen=seen)


def parse_text(
    text: str,
    name: str,
    check_forbidden: bool = True,
    seen: Copies | None = None,
) -> ArchivePage:
    lines = text.split("\n")
    page = ArchivePage(name, PageKind.POST)
    if check_forbidden and XML_FORBIDDEN.search(text):
        for i, line in enumerate(lines):
            if XML_FORBIDDEN.search(line):
                page.problems.append(
                    warning(name, i + 1, "removed control characters that XML forbids")
                )
                lines[i] = XML_FORBIDDEN.sub("", line)
    n = len(lines)
    first = next((i for i in range(n) if lines[i].strip()), None)
    if first is None:
        page.problems.append(error(name, 1, "empty file: no posts to read; remove it"))
        return page
    start = first
    head = lines[first].strip()
    if m := TAG_HEADER.fullmatch(head):
        term = _visible(page, squash(m.group(1)), first + 1, "the tag")
        page.kind, page.term, start = PageKind.TAG, term, first + 1
    elif m := CATEGORY_HEADER.fullmatch(head):
        term = _visible(page, squash(m.group(1)), first + 1, "the category")
        page.kind, page.term, start = PageKind.CATEGORY, term, first + 1
    elif DATE_HEADER.fullmatch(head):
        page.kind, start = PageKind.DATE, first + 1

    pairs = _find_posts(lines, start)
    if not pairs:
        _parse_undated(page, lines, start)
        return page
    leading = next((i for i in range(start, pairs[0][0]) if lines[i].strip()), None)
    if leading is not None:
        page.problems.append(
            warning(name, leading + 1, "text before the first post is not part of any post")
        )
    seen = {} if seen is None else seen
    for k, (t, d) in enumerate(pairs):
        end = pairs[k + 1][0] if k + 1 < len(pairs) else n
        key = _copy_key(tuple(lines[t:end]))
        at_eof = k + 1 == len(pairs)
        if (hit := seen.get(key)) is not None:
            _add_post(page, t, k, *hit, at_eof=at_eof)
            continue
        before = len(page.problems)
        parsed = _parse_post(page, lines, t, d, end)
        if parsed is not None:
            _add_post(page, t, k, *parsed, at_eof=at_eof)
            if len(page.problems) == before:  # a copy with a warning is parsed each time
                seen[key] = parsed
    return page


def _copy_key(copy: tuple[str, ...]) -> tuple[int, int, str]:
    """A copy's identity (its lines, title to the next post) without keeping its text,
    which would add much to peak memory.

    The 64-bit hash of the lines, checked against their number and the title
    line: a wrong hit would need two copies with the same title and length
    whose hashes collide, so the cache never hands one post another's body.
    """
    return hash(copy), len(copy), copy[0]


def _find_posts(lines: list[str], start: int) -> list[tuple[int, int]]:
    """(title line, date line) index pairs: a one-line block followed by a date line."""
    pairs: list[tuple[int, int]] = []
    prev = -1  # last non-blank line index
    prev_prev_blank = True  # was the line before ``prev`` blank (or the start)?
    for i in range(start, len(lines)):
        line = lines[i]
        if not line or line.isspace():
            continue
        # a date line ends in its year: most lines are ruled out by their last character
        if (
            prev >= 0
            and (line[-1].isdigit() or line[-1].isspace())
            and (stripped := line.strip())[-4:].isdigit()
            and is_date_line(stripped)
            and prev_prev_blank
            and not DATE_LINE.fullmatch(lines[prev].strip())
            and (DATE_LINE.fullmatch(stripped) or not _date_follows(lines, i))
            and (not pairs or prev > pairs[-1][1])
        ):
            pairs.append((prev, i))
        prev_prev_blank = prev < 0 or prev + 1 < i or prev < start
        prev = i
    return pairs


def _date_follows(lines: list[str], i: int) -> bool:
    """The next non-blank line after ``i`` is a date line: then a date-like line at
    ``i`` is a post's title (``Summer 21 2019``), not a date."""
    for line in lines[i + 1 :]:
        if line.strip():
            return bool(DATE_LINE.fullmatch(line.strip()))
    return False


def _body(lines: list[str], start: int, end: int) -> _Body:
    """Caption, paragraphs, chrome terms and excerpt flag of the lines after a date line."""
    caption = ""
    if start < end and lines[start].strip():
        caption = squash(lines[start])
        start += 1
    blocks = split_blocks(lines, start, end)
    tags, cats = strip_chrome(blocks)
    paragraphs, excerpt = read_paragraphs(blocks)
    if not paragraphs and caption:
        paragraphs, caption = (Paragraph(text=caption),), ""
    return (caption, paragraphs, tuple(tags), tuple(cats), excerpt)


def _parse_post(
    page: ArchivePage, lines: list[str], t: int, d: int, end: int
) -> tuple[str, date, _Body] | None:
    """Title, date and body of the post at title line ``t``; None (and problems) if unusable."""
    name = page.file
    title = _visible(page, squash(lines[t]), t + 1, "the title")
    ok = True
    if len(title) > MAX_TITLE:
        page.problems.append(
            error(
                name,
                t + 1,
                f"title line is {len(title)} characters long (at most {MAX_TITLE}); a post is a "
                "short title line, a blank line, then a date line",
            )
        )
        ok = False
    when = _parse_date(page, lines[d].strip(), d + 1)
    if when is None:
        ok = False
    body = _body(lines, d + 1, end)
    if not body[1]:
        page.problems.append(
            error(name, t + 1, f"post '{title}' has no body: add its text below the date line")
        )
        ok = False
    if not ok or when is None:
        page.rejected.append((t + 1, title))
        return None
    caption, paragraphs, tags, cats, excerpt = body
    tags = tuple(_visible(page, n, t + 1, "a tag") for n in tags)
    cats = tuple(_visible(page, n, t + 1, "a category") for n in cats)
    terms = len(tags) + len(cats) + (page.kind in (PageKind.TAG, PageKind.CATEGORY))
    if terms > MAX_TERMS:
        page.problems.append(
            warning(
                name,
                t + 1,
                f"post '{title}' has {terms} tags and categories (more than {MAX_TERMS}): "
                "each is a feed and a page of its own; check that the page was saved right",
            )
        )
    return title, when, (caption, paragraphs, tags, cats, excerpt)


def _visible(page: ArchivePage, text: str, line: int, what: str) -> str:
    """``text`` with invisible characters removed (see ``text.INVISIBLE``), with a
    warning at ``line`` when there were any."""
    if not INVISIBLE.search(text):
        return text
    page.problems.append(
        warning(
            page.file,
            line,
            f"{what} {text!r} holds invisible characters (bidi controls or zero-width "
            "characters): removed",
        )
    )
    return strip_invisible(text)


def _add_post(
    page: ArchivePage, t: int, order: int, title: str, when: date, body: _Body, *, at_eof: bool
) -> None:
    caption, paragraphs, tags, cats, excerpt = body
    if page.kind is PageKind.TAG:
        tags = (page.term, *tags)
    elif page.kind is PageKind.CATEGORY:
        cats = (page.term, *cats)
    # positional: keywords cost a NamedTuple twice as much
    page.posts.append(
        RawPost(
            page.file, t + 1, order, title, when, caption, paragraphs, tags, cats, excerpt, at_eof
        )
    )


def _parse_undated(page: ArchivePage, lines: list[str], start: int) -> None:
    """No title+date pair: a single post page without a date, or no posts at all."""
    blocks = split_blocks(lines, start, len(lines))
    if page.kind is not PageKind.POST or len(blocks) < 2 or len(blocks[0][1]) != 1:
        line = blocks[0][0] + 1 if blocks else start + 1
        page.problems.append(
            error(
                page.file,
                line,
                "no posts found: a post is a title line, a blank line, then a date line such "
                "as 'Monday, February 11th, 2019'",
            )
        )
        return
    t, title_lines = blocks[0]
    title = squash(title_lines[0])
    body = blocks[1:]
    tags, cats = strip_chrome(body)
    paragraphs, excerpt = read_paragraphs(body)
    if not paragraphs:
        page.problems.append(error(page.file, t + 1, f"post '{title}' has no body"))
        page.rejected.append((t + 1, title))
        return
    page.posts.append(
        RawPost(
            page.file,
            t + 1,
            0,
            title,
            None,
            "",
            paragraphs,
            tuple(tags),
            tuple(cats),
            excerpt=excerpt,
            at_eof=True,
        )
    )


def _parse_date(page: ArchivePage, text: str, line: int) -> date | None:
    when, problem = read_date(text)
    if problem:
        make = error if when is None else warning
        page.problems.append(make(page.file, line, problem))
    return when


def term_forms(pages: Iterable[ArchivePage]) -> set[tuple[TermKind, str]]:
    """Every tag and category name as written on these pages."""
    return {
        (kind, n)
        for page in pages
        for r in page.posts
        for kind, names in ((TermKind.TAG, r.tags), (TermKind.CATEGORY, r.categories))
        for n in names
    }
