"""Reader: one WordPress archive page (as text) -> the raw post copies it holds.

Stage one of the pipeline. It knows the page layouts (tag, category, date
archives and single post pages) and the quirks of saved pages (encodings, line
endings, captions, page chrome, excerpts, pages cut off mid-post), and reports
every problem with FILE:LINE instead of stopping at the first.
"""

from __future__ import annotations

from datetime import date

from publisher.errors import error, warning
from publisher.source.body import Paragraph, read_paragraphs, split_blocks, strip_chrome
from publisher.source.dates import DATE_LIKE, DATE_LINE, read_date
from publisher.source.decode import XML_FORBIDDEN_BYTES, decode
from publisher.source.raw import ArchivePage, Copies, PageKind, RawPost, _Body
from publisher.source.segments import in_period, nfc, segments, visible
from publisher.text import XML_FORBIDDEN, squash

MAX_TITLE = 200
#: More tags and categories than this on one post is most likely a page saved
#: wrong (each is a feed and a page of its own): warned of, not refused.
MAX_TERMS = 50
#: A last line this short, with no date after it, may be the next post's title cut off.
MAX_FRAGMENT = 200


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
    page = parse_text(text, name, check_forbidden=maybe_forbidden, seen=seen)
    page.problems[:0] = problems  # stray bytes read as Windows-1252, at their lines
    return page


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
    parts = segments(page, lines, first, text)  # (the same lines: only controls removed)
    page.kind, page.term = parts[0].kind, parts[0].term
    found = [(seg, _find_posts(lines, seg.start, seg.end)) for seg in parts]
    if not any(pairs for _, pairs in found):
        _parse_undated(page, lines, parts[0].start, parts[0].line)
        return page
    seen = {} if seen is None else seen
    order = 0
    for n_seg, (seg, pairs) in enumerate(found):
        if not pairs:
            page.problems.append(warning(name, seg.line, "a page header with no posts after it"))
            continue
        leading = next((i for i in range(seg.start, pairs[0][0]) if lines[i].strip()), None)
        if leading is not None:
            page.problems.append(
                warning(name, leading + 1, "text before the first post is not part of any post")
            )
        last = n_seg + 1 == len(found)
        for k, (t, d) in enumerate(pairs):
            end = pairs[k + 1][0] if k + 1 < len(pairs) else seg.end
            parsed = _post(page, lines, t, d, end, seen)
            if parsed is not None:
                in_period(page, seg, parsed[1], d + 1)
                at_eof = last and k + 1 == len(pairs)
                _add_post(page, t, order, *parsed, at_eof=at_eof, kind=seg.kind, term=seg.term)
            order += 1
    return page


def _post(
    page: ArchivePage, lines: list[str], t: int, d: int, end: int, seen: Copies
) -> tuple[str, date, _Body] | None:
    """The post at title line ``t``: parsed, or (an identical copy seen in another
    file of this run) shared."""
    key = _copy_key(tuple(lines[t:end]))
    if (hit := seen.get(key)) is not None:
        return hit
    before = len(page.problems)
    parsed = _parse_post(page, lines, t, d, end)
    if parsed is not None and len(page.problems) == before:  # a copy with a warning is
        seen[key] = parsed  # parsed each time
    return parsed


def _copy_key(copy: tuple[str, ...]) -> tuple[int, int, str]:
    """A copy's identity (its lines, title to the next post) without keeping its text,
    which would add much to peak memory.

    The 64-bit hash of the lines, checked against their number and the title
    line: a wrong hit would need two copies with the same title and length
    whose hashes collide, so the cache never hands one post another's body.
    """
    return hash(copy), len(copy), copy[0]


def _find_posts(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """(title line, date line) index pairs: a one-line block followed by a date line."""
    pairs: list[tuple[int, int]] = []
    prev = -1  # last non-blank line index
    prev_prev_blank = True  # was the line before ``prev`` blank (or the start)?
    for i in range(start, end):
        line = lines[i]
        if not line or line.isspace():
            continue
        # a date line ends in its year: most lines are ruled out by their last character
        if (
            prev >= 0
            and (line[-1].isdigit() or line[-1].isspace())
            and (stripped := line.strip())[-4:].isdigit()
            and prev_prev_blank
            and (not pairs or prev > pairs[-1][1])
            and (
                DATE_LINE.fullmatch(stripped)  # the common case, one match
                or (DATE_LIKE.fullmatch(stripped) and not _date_follows(lines, i))
            )
            and not DATE_LINE.fullmatch(lines[prev].strip())
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
    title = visible(page, squash(lines[t]), t + 1, "the title")
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
    tags = tuple(visible(page, nfc(n), t + 1, "a tag") for n in tags)
    cats = tuple(visible(page, nfc(n), t + 1, "a category") for n in cats)
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


def _add_post(
    page: ArchivePage,
    t: int,
    order: int,
    title: str,
    when: date,
    body: _Body,
    *,
    at_eof: bool,
    kind: PageKind,
    term: str,
) -> None:
    caption, paragraphs, tags, cats, excerpt = body
    if kind is PageKind.TAG:
        tags = (term, *tags)
    elif kind is PageKind.CATEGORY:
        cats = (term, *cats)
    # positional: keywords cost a NamedTuple twice as much
    page.posts.append(
        RawPost(
            page.file, t + 1, order, title, when, caption, paragraphs, tags, cats, excerpt, at_eof
        )
    )


def _parse_undated(page: ArchivePage, lines: list[str], start: int, header: int) -> None:
    """No title+date pair: a single post page without a date, or no posts at all
    (reported at the first text, or at the header when there is none)."""
    blocks = split_blocks(lines, start, len(lines))
    if page.kind is not PageKind.POST or len(blocks) < 2 or len(blocks[0][1]) != 1:
        line = blocks[0][0] + 1 if blocks else header
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
