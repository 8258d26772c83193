"""A file's pages: its header (a tag, a category, a date archive, or none for a single
post), and another header after a blank line where a second saved page was
appended to the first, each with its own term; names cleaned as they are read."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from publisher.errors import warning
from publisher.source.dates import DATE_HEADER, header_period
from publisher.source.raw import ArchivePage, PageKind
from publisher.text import INVISIBLE, squash, strip_invisible

_Q_OPEN = "[‘'\"“`]"
_Q_CLOSE = "[’'\"”`]"
TAG_HEADER = re.compile(rf"Posts Tagged\s+{_Q_OPEN}(.+?){_Q_CLOSE}\s*", re.I)
CATEGORY_HEADER = re.compile(rf"Archive for the\s+{_Q_OPEN}(.+?){_Q_CLOSE}\s+Category\s*", re.I)


#: How WordPress begins a page header that is not the file's first line.
_LATER = ("\nPosts Tagged", "\nArchive for")


@dataclass(frozen=True)
class Segment:
    """One archive page's part of a file (two pages saved into one file are two)."""

    start: int  # first line after the header
    end: int
    kind: PageKind
    term: str
    period: tuple[date, date] | None  # a date archive's days
    line: int  # the header's line (1-based), or the first line for a single post


def _header(
    page: ArchivePage, head: str, line: int
) -> tuple[PageKind, str, tuple[date, date] | None] | None:
    if m := TAG_HEADER.fullmatch(head):
        return PageKind.TAG, visible(page, nfc(squash(m.group(1))), line, "the tag"), None
    if m := CATEGORY_HEADER.fullmatch(head):
        term = visible(page, nfc(squash(m.group(1))), line, "the category")
        return PageKind.CATEGORY, term, None
    if DATE_HEADER.fullmatch(head):
        return PageKind.DATE, "", header_period(head)
    return None


def segments(page: ArchivePage, lines: list[str], first: int, text: str) -> list[Segment]:
    """The file's pages: a header line after a blank one starts another, with its own
    term (one saved page appended to another). ``text`` is ``lines`` joined: the
    candidates are found by one search of it, not a look at every line."""
    starts: list[tuple[int, tuple[PageKind, str, tuple[date, date] | None] | None]] = []
    if (header := _header(page, lines[first].strip(), first + 1)) is not None:
        starts.append((first, header))
    for i in _later_headers(text, first):
        if not lines[i - 1].strip() and (header := _header(page, lines[i].strip(), i + 1)):
            starts.append((i, header))
    if not starts or starts[0][0] != first:
        starts.insert(0, (first - 1, None))  # a page without a header: a single post
    segments = []
    for k, (at, header) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        kind, term, period = header or (PageKind.POST, "", None)
        segments.append(Segment(at + 1, end, kind, term, period, max(at + 1, first + 1)))
    return segments


def _later_headers(text: str, first: int) -> list[int]:
    """Lines after ``first`` that begin as WordPress page headers do, found by plain
    string search (a regex, or a look at every line, costs a tenth of parsing)."""
    found = []
    for mark in _LATER:
        at = text.find(mark)
        while at != -1:
            found.append(at)
            at = text.find(mark, at + 1)
    lines, last, out = 0, 0, []
    for at in sorted(found):
        lines += text.count("\n", last, at + 1)
        last = at + 1
        if lines > first:
            out.append(lines)
    return out


def in_period(page: ArchivePage, seg: Segment, when: date, line: int) -> None:
    if seg.period is not None and not seg.period[0] <= when <= seg.period[1]:
        first, last = seg.period
        span = f"{first:%-d %B %Y}" if first == last else f"{first:%-d %B %Y} to {last:%-d %B %Y}"
        page.problems.append(
            warning(
                page.file,
                line,
                f"dated {when:%-d %B %Y}, outside this date archive's period ({span}): "
                "check the date (it is used as written)",
            )
        )


def nfc(name: str) -> str:
    """One spelling for one name: an accent written decomposed (NFD) is composed."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def visible(page: ArchivePage, text: str, line: int, what: str) -> str:
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
