"""A post's body lines -> paragraphs and bullet lists, its page chrome stripped.

The chrome WordPress prints under a post (``Tags: …``, ``Posted in …``,
``Comments are closed.``) is not post text, but the terms it names are kept;
a body ending in ``Continue reading`` is an excerpt.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from publisher.text import squash

CONTINUE = re.compile(
    r"\s*(?:(?:Continue reading|Read more)(?:\s*[→»…]|\s+[“\"].{0,200}[”\"])?|\[(?:…|\.\.\.)\])\s*$",
    re.I,
)
CHROME = re.compile(
    r"(?:Comments are closed\.?|Comments Off.*|No Comments.*|\d+ Comments?.*|Leave a (?:Reply|Comment).*"
    r"|« (?:Older|Previous) Entries.*|(?:Newer|Next) Entries ».*|« Previous.*|Next ».*"
    r"|Tags?:.*|Posted in .*|Categories:.*|Filed (?:under|in) .*|Bookmark the permalink.*)",
    re.I,
)
_TERMS_LINE = re.compile(r"(Tags?|Categories|Posted in|Filed (?:under|in))\s*:?\s*(.*)", re.I)
BULLET = "•"


class Paragraph(NamedTuple):
    """A paragraph of text, or a bullet list when ``items`` is set.

    A NamedTuple rather than a frozen dataclass: as immutable, but created and
    compared in C (a site holds several a post; copies are compared whole).
    """

    text: str = ""
    items: tuple[str, ...] = ()

    @property
    def is_list(self) -> bool:
        return bool(self.items)

    def plain(self) -> str:
        return "\n".join(self.items) if self.items else self.text


def split_blocks(lines: list[str], start: int, end: int) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines as (first line index, lines)."""
    blocks: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    cur_start = start
    for i in range(start, end):
        line = lines[i]
        if line and not line.isspace():
            if not cur:
                cur_start = i
            cur.append(line)
        elif cur:
            blocks.append((cur_start, cur))
            cur = []
    if cur:
        blocks.append((cur_start, cur))
    return blocks


def strip_chrome(blocks: list[tuple[int, list[str]]]) -> tuple[list[str], list[str]]:
    """Remove trailing page chrome in place; return the tags/categories it named."""
    tags: list[str] = []
    cats: list[str] = []
    while blocks:
        lines = blocks[-1][1]
        if not all(CHROME.fullmatch(line.strip()) for line in lines):
            break
        blocks.pop()
        for line in lines:
            for part in line.split("|"):
                m = _TERMS_LINE.fullmatch(part.strip())
                if m:
                    names = [squash(x) for x in m.group(2).split(",") if squash(x)]
                    (tags if m.group(1).lower().startswith("tag") else cats).extend(names)
    return tags, cats


def read_paragraphs(blocks: list[tuple[int, list[str]]]) -> tuple[tuple[Paragraph, ...], bool]:
    out: list[Paragraph] = []
    for _, lines in blocks:
        if len(lines) == 1 and BULLET not in lines[0]:
            out.append(Paragraph(text=lines[0].strip()))
            continue
        text_lines: list[str] = []
        items: list[str] = []
        for line in lines:
            s = line.strip()
            if s.startswith(BULLET):
                if text_lines:
                    out.append(Paragraph(text=" ".join(text_lines)))
                    text_lines = []
                items.append(s[1:].strip())
            elif items and line[:1].isspace():
                items[-1] = f"{items[-1]} {s}"  # continuation of a wrapped item
            else:
                if items:
                    out.append(Paragraph(items=tuple(items)))
                    items = []
                text_lines.append(s)
        if items:
            out.append(Paragraph(items=tuple(items)))
        if text_lines:
            out.append(Paragraph(text=" ".join(text_lines)))
    excerpt = False
    if out and not out[-1].is_list:
        last = out[-1].text
        # only the tail can hold the marker; matching the whole paragraph is slow
        head, tail = last[:-260], last[-260:]
        cut = head + CONTINUE.sub("", tail) if ("ead" in tail or "[" in tail) else last
        if cut != last:
            excerpt = True
            out[-1] = Paragraph(text=cut.rstrip())
            if not out[-1].text:
                out.pop()
    return tuple(out), excerpt
