"""Normalizer: raw copies from every archive -> one chronological, de-duplicated stream.

Stage two. Copies of the same post (same title after white-space and quote
folding, same date) merge into one ``Post`` with the union of their terms; an
excerpt or cut-off copy yields to the full one; copies that really differ are a
conflict naming both places. Nothing here reads files or the clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from publisher.errors import Problem, error, warning
from publisher.source.ids import page_and_id_slugs, post_id
from publisher.source.posts import Post, Stream, Term
from publisher.source.raw import ArchivePage, RawPost, TermKind
from publisher.text import compare_key, slugify, squash, title_key

#: Time-of-day convention: a post dated D is published at 12:00 local time on D,
#: so no reader's time-zone conversion moves it to another day; each later post
#: of the same day (lower in the archives) is one minute earlier, keeping the
#: archive order for readers that sort by time.
PUBLISH_TIME = time(12, 0)


@dataclass
class CopyGroup:
    """Every copy of one post (same folded title, same date), in file order."""

    copies: list[RawPost]
    date: date


def normalize(
    pages: Iterable[ArchivePage],
    tz: tzinfo,
    id_domain: str,
    aliases: Mapping[str, str] | None = None,
) -> Stream:
    """Merge every page's copies into one stream; independent of page order and names."""
    pages = sorted(pages, key=lambda p: p.file)
    problems: list[Problem] = [p for page in pages for p in page.problems]
    skipped = [f"{page.file}:{line}: {title}" for page in pages for line, title in page.rejected]
    groups: dict[tuple[str, date], CopyGroup] = {}
    undated: list[RawPost] = []
    for page in pages:
        for raw in page.posts:
            if raw.date is None:
                undated.append(raw)
                continue
            key = (title_key(raw.title), raw.date)
            if (group := groups.get(key)) is None:
                group = groups[key] = CopyGroup([], raw.date)
            group.copies.append(raw)
    _attach_undated(undated, groups, problems, skipped)

    merged: list[tuple[RawPost, CopyGroup]] = []
    for group in groups.values():
        best = merge_copies(group.copies, problems)
        if best is None:
            skipped.extend(f"{c.file}:{c.line}: {c.title}" for c in group.copies)
        else:
            merged.append((best, group))

    terms, canonical, merges = collect_terms(c for _, g in merged for c in g.copies)
    problems.extend(merges)
    ordered = _chronological(merged)
    titles = [(b.title, g.date) for b, g in ordered]
    slugs, id_slugs = page_and_id_slugs(titles)
    alias_of = {new: old for old, new in (aliases or {}).items()}
    posts: list[Post] = []
    minute_in_day: dict[date, int] = defaultdict(int)
    publish = Clock(tz)
    for (best, group), slug, id_slug in zip(ordered, slugs, id_slugs, strict=True):
        n = minute_in_day[group.date]
        minute_in_day[group.date] += 1
        published = publish(group.date, n)
        posts.append(
            make_post(best, group, slug, id_slug, published, id_domain, alias_of, canonical)
        )
    problems.sort(key=problem_order)
    return Stream(tuple(posts), problems, sorted(skipped), terms)


def problem_order(p: Problem) -> tuple[str, int, str, str]:
    """Problems as the stream lists them: by place, then severity and message."""
    return (p.file, p.line, p.severity, p.message)


def _attach_undated(
    undated: list[RawPost],
    groups: dict[tuple[str, date], CopyGroup],
    problems: list[Problem],
    skipped: list[str],
) -> None:
    """A copy with no date line joins the one dated post with its title, or is reported."""
    by_title: dict[str, list[CopyGroup]] = defaultdict(list)
    for (tkey, _), group in groups.items():
        by_title[tkey].append(group)
    for raw in undated:
        matches = by_title.get(title_key(raw.title), [])
        if len(matches) == 1:
            matches[0].copies.append(raw)
            continue
        why = (
            "no dated copy was found in the other archives"
            if not matches
            else f"{len(matches)} dated posts share its title"
        )
        problems.append(
            error(
                raw.file,
                raw.line,
                f"post '{raw.title}' cannot be dated: {why}; add a date line such as "
                "'Monday, February 11th, 2019' below its title",
            )
        )
        skipped.append(f"{raw.file}:{raw.line}: {raw.title}")


def _body_key(raw: RawPost) -> str:
    parts = [raw.caption] if raw.caption else []
    parts.extend(compare_key(p.plain()) for p in raw.paragraphs)
    return "\n\n".join(parts)


def merge_copies(copies: list[RawPost], problems: list[Problem]) -> RawPost | None:
    """Pick the full copy; any copy that is not a cut-off or excerpt of it is a conflict."""
    if len(copies) == 1:
        return copies[0]
    first = copies[0]
    if all(c.paragraphs == first.paragraphs and c.caption == first.caption for c in copies):
        # the usual case: identical copies; pick deterministically, skip normalizing
        return max(copies, key=lambda c: (c.title, len(c.tags), c.file))
    keyed = [(c, _body_key(c)) for c in copies]
    keyed = [_drop_swallowed_title(c, key, keyed) for c, key in keyed]
    best, best_key = max(keyed, key=lambda ck: (len(ck[1]), ck[1], len(ck[0].tags), ck[0].file))
    ok = True
    for c, key in keyed:
        if key == best_key or (best_key.startswith(key) and (c.excerpt or c.at_eof)):
            continue
        ok = False
        problems.append(
            error(
                c.file,
                c.line,
                f"conflicting copies of '{c.title}' ({best.date}): this copy and "
                f"{best.file}:{best.line} differ ({_first_difference(key, best_key)}); "
                "make the copies agree or remove one",
            )
        )
    return best if ok else None


def _drop_swallowed_title(
    c: RawPost, key: str, keyed: list[tuple[RawPost, str]]
) -> tuple[RawPost, str]:
    """A page cut off inside the next post's title leaves that title as a last line.

    When another copy of the post agrees with everything but that short last
    line, the line is the next post's title, not post text: drop it.
    """
    if not (c.at_eof and len(c.paragraphs) > 1 and len(c.paragraphs[-1].plain()) <= 200):
        return c, key
    trimmed = key.rsplit("\n\n", 1)[0]
    others = [k for o, k in keyed if o is not c]
    if any(o.startswith(key) for o in others):
        return c, key
    if trimmed in others:
        return c._replace(paragraphs=c.paragraphs[:-1]), trimmed
    return c, key


def _first_difference(a: str, b: str) -> str:
    """Where two copies part: the paragraph, and the words around the first differing
    character (a long paragraph's opening is usually the same in both)."""
    pa, pb = a.split("\n\n"), b.split("\n\n")
    for i, (x, y) in enumerate(zip(pa, pb, strict=False)):
        if x != y:
            at = next((k for k, (cx, cy) in enumerate(zip(x, y, strict=False)) if cx != cy), None)
            at = min(len(x), len(y)) if at is None else at
            start = max(0, at - 20)
            lead = "…" if start else ""
            return (
                f"paragraph {i + 1}: {lead + x[start : at + 20]!r} vs {lead + y[start : at + 20]!r}"
            )
    return f"{len(pa)} vs {len(pb)} paragraphs"


def collect_terms(
    copies: Iterable[RawPost],
) -> tuple[dict[tuple[TermKind, str], Term], dict[tuple[TermKind, str], str], list[Problem]]:
    """Terms by (kind, slug), each written name's display form, and a warning for
    each name merged into a term it only shares a slug with.

    Names differing only in case or spacing are one term, shown as the first
    of its forms in code-point order. Names that differ otherwise but make one
    slug (‘C#’ and ‘C++’ both make ``c``) would write one feed: they are merged
    too, but said so, at the first copy carrying the name.
    """
    forms: dict[tuple[TermKind, str], set[str]] = defaultdict(set)
    first: dict[tuple[TermKind, str], tuple[str, int]] = {}
    for c in copies:
        for kind, names in ((TermKind.TAG, c.tags), (TermKind.CATEGORY, c.categories)):
            for name in names:
                if (kind, name) not in first:
                    first[(kind, name)] = (c.file, c.line)
                    forms[(kind, slugify(name, kind))].add(name)
    terms = {key: Term(key[0], min(names), key[1]) for key, names in forms.items()}
    canonical = {(key[0], name): term.name for key, term in terms.items() for name in forms[key]}
    merges = [
        warning(
            *first[(kind, name)],
            f"{kind} ‘{name}’ is published as ‘{terms[(kind, slug)].name}’: both make the "
            f"slug '{slug}' ({kind}/{slug}.*); rename one in the archives to keep them apart",
        )
        for (kind, slug), names in forms.items()
        for name in sorted(names)
        if _name_key(name) != _name_key(terms[(kind, slug)].name)
    ]
    return terms, canonical, merges


def _name_key(name: str) -> str:
    """What spellings of one name share: case and spacing aside."""
    return squash(name).casefold()


class Clock:
    """Publication instants: ``PUBLISH_TIME`` on the post's date, ``n`` minutes earlier.

    As a fixed UTC offset: the same instant and output, without a zone lookup
    per post. The zone is asked twice per distinct date (midnight and noon):
    when both agree, no change of offset falls in between (zones change at
    most once a day), so every earlier-in-the-morning minute shares it. One
    ``timezone`` object per offset, so a snapshot pickles a handful, not 10,000.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        #: Each date's noon, when one offset holds from midnight to noon (else None).
        self.noons: dict[date, datetime | None] = {}
        self.zones: dict[timedelta, timezone] = {}

    def _offset(self, local: datetime) -> timezone:
        offset = local.replace(tzinfo=self.tz).utcoffset() or timedelta(0)
        zone = self.zones.get(offset)
        if zone is None:
            zone = self.zones[offset] = timezone(offset)
        return zone

    def __call__(self, day: date, n: int) -> datetime:
        if day in self.noons:
            noon = self.noons[day]
        else:
            zone = self._offset(datetime.combine(day, PUBLISH_TIME))
            same = zone is self._offset(datetime.combine(day, time(0)))
            noon = self.noons[day] = datetime.combine(day, PUBLISH_TIME, zone) if same else None
        if noon is not None and n < 12 * 60:  # still that morning, under the same offset
            return noon - timedelta(minutes=n) if n else noon
        local = datetime.combine(day, PUBLISH_TIME) - timedelta(minutes=n)
        return local.replace(tzinfo=self._offset(local))


def _chronological(merged: list[tuple[RawPost, CopyGroup]]) -> list[tuple[RawPost, CopyGroup]]:
    """Newest first; within a day, the order the archives show (merged across files)."""
    by_day: dict[date, list[tuple[RawPost, CopyGroup]]] = defaultdict(list)
    for item in merged:
        by_day[item[1].date].append(item)
    out: list[tuple[RawPost, CopyGroup]] = []
    for day in sorted(by_day, reverse=True):
        out.extend(archive_order(by_day[day]))
    return out


def archive_order(items: list[tuple[RawPost, CopyGroup]]) -> list[tuple[RawPost, CopyGroup]]:
    if len(items) == 1:
        return items
    if len(items) == 2:  # the usual busy day: settle it without the general sort
        (_, ga), (_, gb) = items
        order_in = {c.file: c.order for c in ga.copies}
        says = {order_in[c.file] < c.order for c in gb.copies if c.file in order_in}
        one_copy_per_file = len(order_in) == len(ga.copies) and len(
            {c.file for c in gb.copies}
        ) == len(gb.copies)
        if len(says) == 1 and one_copy_per_file:
            return items if says.pop() else items[::-1]
    # Each file says "A above B" for the posts of this day it holds; a
    # topological sort honours all of them, ties broken by title for stability.
    before: dict[int, set[int]] = defaultdict(set)
    indegree = [0] * len(items)
    per_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, (_, g) in enumerate(items):
        for c in g.copies:
            per_file[c.file].append((c.order, i))
    for seq in per_file.values():
        seq.sort()
        for (_, a), (_, b) in zip(seq, seq[1:], strict=False):
            if b not in before[a] and a != b:
                before[a].add(b)
                indegree[b] += 1
    name = [title_key(best.title) for best, _ in items]
    ready = sorted((i for i in range(len(items)) if indegree[i] == 0), key=name.__getitem__)
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in sorted(before[i], key=name.__getitem__):
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
                ready.sort(key=name.__getitem__)
    order.extend(i for i in sorted(range(len(items)), key=name.__getitem__) if i not in order)
    return [items[i] for i in order]


def make_post(
    best: RawPost,
    group: CopyGroup,
    slug: str,
    id_slug: str,
    published: datetime,
    id_domain: str,
    alias_of: Mapping[str, str],
    canonical: Mapping[tuple[TermKind, str], str],
) -> Post:
    copies = group.copies
    if len(copies) == 1:  # a third of posts: skip the joins and sets
        (c,) = copies
        tags = _term_names(canonical, TermKind.TAG, c.tags)
        categories = _term_names(canonical, TermKind.CATEGORY, c.categories)
        excerpt = c.excerpt
    else:
        tags = _term_names(canonical, TermKind.TAG, [n for c in copies for n in c.tags])
        categories = _term_names(
            canonical, TermKind.CATEGORY, [n for c in copies for n in c.categories]
        )
        excerpt = all(c.excerpt for c in copies)
    return Post(
        id=post_id(id_domain, group.date, slug, id_slug, alias_of),
        slug=slug,
        title=best.title,
        date=group.date,
        published=published,
        tags=tags,
        categories=categories,
        caption=best.caption,
        paragraphs=best.paragraphs,
        sources=copy_sources(copies),
        excerpt=excerpt,
    )


def copy_sources(copies: Sequence[RawPost]) -> tuple[str, ...]:
    """Where a post was found: every copy's ``FILE:LINE``, once each, sorted."""
    if len(copies) == 1:
        return (f"{copies[0].file}:{copies[0].line}",)
    return tuple(sorted({f"{c.file}:{c.line}" for c in copies}))


def _term_names(
    canonical: Mapping[tuple[TermKind, str], str], kind: TermKind, names: Sequence[str]
) -> tuple[str, ...]:
    """The display names of the terms ``names`` spell, once each, in case-folded order."""
    if not names:
        return ()
    if len(names) == 1:
        return (canonical[(kind, names[0])],)
    return tuple(sorted({canonical[(kind, n)] for n in names}, key=str.casefold))
