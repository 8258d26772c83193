"""Incremental normalize: the last stream + the archive pages that changed -> the new stream.

A one-post edit in a 10,000-post site changes the few archives that hold the
post; normalizing everything again was most of the rebuild. Here only the posts
with a copy in a changed page are merged again, from their copies: the changed
pages' new ones and the kept pages' old ones.

Two ways. When every changed page holds the same copies as before (same
titles, dates, terms and places; only text changed), nothing but those posts'
content and sources can change. When copies came, went or were retitled,
redated or retagged, the affected posts are merged again and what depends on
the whole stream is redone as ``normalize`` does it: the order and publication
minutes of the affected days, and every slug.

It answers ``None`` whenever it cannot be sure: an error in a changed page or
in the old stream, an undated copy the edit could reach, a tag or category that
stays but would be shown by another name (every post of it would change), a
merge with a problem. The caller then normalizes from scratch, so the stream is
always what ``normalize`` would give (property-tested against it). A changed
page's warnings are its own: they replace its old ones in the stream's list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import NamedTuple

from publisher.errors import Problem
from publisher.source.ids import id_slug, page_and_id_slugs, post_id
from publisher.source.normalize import (
    Clock,
    CopyGroup,
    archive_order,
    collect_terms,
    copy_sources,
    make_post,
    merge_copies,
    problem_order,
)
from publisher.source.posts import Post, Stream
from publisher.source.raw import ArchivePage, RawPost, TermKind, term_forms
from publisher.text import slugify, title_key

GroupKey = tuple[str, date]


@dataclass(frozen=True)
class Patch:
    stream: Stream
    #: Ids of the posts made again (content, slug or time may differ; new ids too).
    remade: tuple[str, ...]
    #: Every post that is a new object: the remade, and those found at other lines.
    replaced: tuple[Post, ...]
    #: Posts came, went or moved: the stream's order is new.
    reordered: bool = False


def _shape(raw: RawPost) -> tuple[object, ...]:
    """What of a copy decides its post's identity, place, slug and terms."""
    return (raw.title, raw.date, raw.order, raw.tags, raw.categories)


def _patchable(old: ArchivePage, new: ArchivePage) -> bool:
    """No error (warnings are fine: they are the page's own) and no undated copy."""
    return (
        not (old.rejected or new.rejected)
        and not any(p.is_error for p in (*old.problems, *new.problems))
        and all(r.date is not None for r in (*old.posts, *new.posts))
    )


def same_shape(old: ArchivePage, new: ArchivePage) -> bool:
    """The same page of the same copies in the same places: only text and lines differ."""
    return (
        (old.kind, old.term) == (new.kind, new.term)
        and len(old.posts) == len(new.posts)
        and all(_shape(a) == _shape(b) for a, b in zip(old.posts, new.posts, strict=True))
    )


def patch(
    stream: Stream,
    old_pages: Mapping[str, ArchivePage],
    new_pages: Mapping[str, ArchivePage],
    id_domain: str,
    tz: tzinfo,
    aliases: Mapping[str, str] | None = None,
) -> Patch | None:
    """The stream ``normalize`` would make of ``old_pages`` with ``new_pages`` put in.

    ``old_pages`` are every page the stream was made from, by file name;
    ``new_pages`` replace some of them. ``None``: normalize from scratch.
    """
    if stream.errors or stream.skipped:
        return None
    # a problem of the stream's own, not a page's (a merged term: see ``collect_terms``)
    # is for ``normalize`` to find again
    if stream.problems and set(stream.problems) - {
        p for page in old_pages.values() for p in page.problems
    }:
        return None
    added = {n: ArchivePage(n, p.kind, p.term) for n, p in new_pages.items() if n not in old_pages}
    if added:  # a new archive: its old page held nothing
        old_pages = {**old_pages, **added}
    for name, new in new_pages.items():
        if not _patchable(old_pages[name], new):
            return None
    edit = _Edit(stream, old_pages, new_pages, id_domain, aliases)
    if all(same_shape(old_pages[n], p) for n, p in new_pages.items()):
        result = edit.content()
        if result is not None:
            return result
    return edit.structure(tz)


class _Edit:
    """One patch: the old stream and pages, the changed pages, and lookups built once."""

    def __init__(
        self,
        stream: Stream,
        old_pages: Mapping[str, ArchivePage],
        new_pages: Mapping[str, ArchivePage],
        id_domain: str,
        aliases: Mapping[str, str] | None,
    ) -> None:
        self.stream, self.posts = stream, stream.posts
        self.old_pages, self.new_pages = old_pages, new_pages
        self.id_domain = id_domain
        self.alias_of = {new: old for old, new in (aliases or {}).items()}
        self.at = {src: i for i, p in enumerate(self.posts) for src in p.sources}
        self.terms = stream.terms
        self._by_line: dict[str, dict[int, RawPost]] = {}

    def content(self) -> Patch | None:
        """Same copies, new text: remake the posts whose copies' content changed."""
        pairs: dict[int, list[tuple[RawPost, RawPost]]] = defaultdict(list)
        for name, new in self.new_pages.items():
            for a, b in zip(self.old_pages[name].posts, new.posts, strict=True):
                i = self.at.get(f"{name}:{a.line}")
                if i is None:
                    return None  # the snapshot does not hold this copy: be safe
                pairs[i].append((a, b))
        posts = list(self.posts)
        remade: list[str] = []
        replaced: list[Post] = []
        for i, changed in sorted(pairs.items()):
            post = posts[i]
            kept = self._kept(post)
            if kept is None:
                return None
            copies = sorted([*kept, *(b for _, b in changed)], key=_file_order)
            if all(a.same_content(b) for a, b in changed):
                sources = copy_sources(copies)
                if sources != post.sources:  # lines moved: only where it was found changes
                    posts[i] = post.relocated(sources=sources)
                    replaced.append(posts[i])
                continue
            best = self._merge(copies)
            if best is None or best.title != post.title:
                return None
            group = CopyGroup(copies, post.date)
            made = self._make(best, group, post.slug, id_slug(post.id), post.published)
            if (made.id, made.tags, made.categories) != (post.id, post.tags, post.categories):
                return None
            posts[i] = made
            remade.append(made.id)
            replaced.append(made)
        return Patch(self._stream(posts), tuple(remade), tuple(replaced))

    def structure(self, tz: tzinfo) -> Patch | None:
        """Copies came, went or changed place: re-merge their posts, then redo the order
        of the days they are on, those days' minutes, and the slugs."""
        old_changed = [self.old_pages[n] for n in self.new_pages]
        if term_forms(old_changed) != term_forms(self.new_pages.values()) and not self._new_terms():
            return None
        regrouped = self._regroup(old_changed)
        if regrouped is None:
            return None
        placed = self._place(regrouped)
        return None if placed is None else self._assign(placed, regrouped.on_days, tz)

    def _regroup(self, old_changed: list[ArchivePage]) -> _Regrouped | None:
        """What the edit reaches (see ``_Regrouped``); ``None``: decline."""
        posts = self.posts
        affected: set[int] = set()
        for page in old_changed:
            for r in page.posts:
                i = self.at.get(f"{page.file}:{r.line}")
                if i is None:
                    return None
                affected.add(i)
        arriving: dict[GroupKey, list[RawPost]] = defaultdict(list)
        for page in self.new_pages.values():
            for r in page.posts:
                if r.date is None:  # an undated copy joins a dated one: normalize decides
                    return None
                arriving[(title_key(r.title), r.date)].append(r)
        # an undated copy joins the one dated post of its title: more or fewer of them
        # re-decide where it goes (or make it an error)
        undated = {
            title_key(r.title) for page in self.old_pages.values() for r in page.posts if not r.date
        }
        if undated & ({t for t, _ in arriving} | {title_key(posts[i].title) for i in affected}):
            return None
        days = {d for _, d in arriving} | {posts[i].date for i in affected}
        on_days = {_key(p): i for i, p in enumerate(posts) if p.date in days}
        affected |= {on_days[k] for k in arriving if k in on_days}

        # every affected group's copies: kept ones from unchanged pages, and the new
        groups: dict[GroupKey, list[RawPost]] = {}
        for i in affected:
            kept = self._kept(posts[i])
            if kept is None:
                return None
            groups[_key(posts[i])] = kept
        for k, copies in arriving.items():
            groups.setdefault(k, []).extend(copies)
        merged: dict[GroupKey, tuple[RawPost, CopyGroup]] = {}
        for k, copies in groups.items():
            if copies:  # no copy left: the post is gone
                copies.sort(key=_file_order)
                best = self._merge(copies)
                if best is None:
                    return None
                merged[k] = (best, CopyGroup(copies, k[1]))
        return _Regrouped(affected, days, merged, on_days)

    def _place(self, regrouped: _Regrouped) -> list[_Placed] | None:
        """The new order: untouched days as they were, the affected days sorted again."""
        posts = self.posts
        affected, days, merged = regrouped.affected, regrouped.days, regrouped.merged
        by_day: dict[date, list[int]] = defaultdict(list)
        for i, p in enumerate(posts):
            by_day[p.date].append(i)
        placed: list[_Placed] = []
        for day in sorted(set(by_day) | days, reverse=True):
            if day not in days:
                placed.extend(_Placed(day, posts[i].title, i) for i in by_day[day])
                continue
            items: list[tuple[RawPost, CopyGroup]] = []
            unchanged: dict[int, int] = {}  # id() of a group made for an untouched post
            for k, item in merged.items():
                if k[1] == day:
                    items.append(item)
            for i in by_day.get(day, []):
                if i not in affected:
                    kept = self._kept(posts[i])
                    if kept is None:
                        return None
                    group = CopyGroup(sorted(kept, key=_file_order), day)
                    items.append((kept[0], group))
                    unchanged[id(group)] = i
            for best, group in archive_order(items):
                kept_at = unchanged.get(id(group))
                if kept_at is not None:
                    placed.append(_Placed(day, posts[kept_at].title, kept_at, redone=True))
                else:
                    placed.append(_Placed(day, best.title, None, best, group, redone=True))
        return placed

    def _assign(self, placed: list[_Placed], on_days: dict[GroupKey, int], tz: tzinfo) -> Patch:
        """Slugs, ids and minutes for the new order; posts kept where nothing changed."""
        posts = self.posts
        titles = [(p.title, p.day) for p in placed]
        slugs, id_slugs = page_and_id_slugs(titles)
        clock = Clock(tz)
        minute: dict[date, int] = defaultdict(int)
        out: list[Post] = []
        remade: list[str] = []
        replaced: list[Post] = []
        for p, slug, ident in zip(placed, slugs, id_slugs, strict=True):
            n = minute[p.day]
            minute[p.day] += 1
            if p.old is not None:  # a post none of whose copies changed
                post = posts[p.old]
                published = clock(p.day, n) if p.redone else post.published
                pid = post_id(self.id_domain, p.day, slug, ident, self.alias_of)
                if (slug, pid, published) == (post.slug, post.id, post.published):
                    out.append(post)
                    continue
                made = post.relocated(slug=slug, id=pid, published=published)
            else:
                assert p.best is not None and p.group is not None
                made = self._make(p.best, p.group, slug, ident, clock(p.day, n))
                was = on_days.get(_key(made))
                old = posts[was] if was is not None else None
                if old == made:
                    out.append(old)
                    continue
                if old is not None and made.relocated(sources=old.sources) == old:
                    out.append(old.relocated(sources=made.sources))  # only found elsewhere
                    replaced.append(out[-1])
                    continue
            out.append(made)
            remade.append(made.id)
            replaced.append(made)
        return Patch(self._stream(out), tuple(remade), tuple(replaced), reordered=True)

    # -- helpers --

    def _new_terms(self) -> bool:
        """A tag or category name came or went: take the terms anew, if no term that
        stays is shown by another name (every post of it would change)."""
        pages = {**self.old_pages, **self.new_pages}
        terms, _, merges = collect_terms(r for page in pages.values() for r in page.posts)
        old = self.stream.terms
        if merges or any(old[k].name != t.name for k, t in terms.items() if k in old):
            return False
        self.terms = terms
        return True

    def _kept(self, post: Post) -> list[RawPost] | None:
        """The post's copies on pages that did not change (``None``: one is missing)."""
        kept = []
        for src in post.sources:
            name, _, line = src.rpartition(":")
            if name in self.new_pages:
                continue
            page = self.old_pages.get(name)
            if page is None:
                return None
            if name not in self._by_line:
                self._by_line[name] = {r.line: r for r in page.posts}
            raw = self._by_line[name].get(int(line))
            if raw is None or raw.date is None:
                return None  # an undated copy joins its group last, not in file order
            kept.append(raw)
        return kept

    def _merge(self, copies: list[RawPost]) -> RawPost | None:
        problems: list[Problem] = []
        best = merge_copies(copies, problems)
        return None if problems else best

    def _make(
        self, best: RawPost, group: CopyGroup, slug: str, id_slug: str, published: datetime
    ) -> Post:
        terms = self.terms
        canonical = {
            (kind, n): terms[(kind, slugify(n, kind))].name
            for c in group.copies
            for kind, names in ((TermKind.TAG, c.tags), (TermKind.CATEGORY, c.categories))
            for n in names
        }
        return make_post(
            best, group, slug, id_slug, published, self.id_domain, self.alias_of, canonical
        )

    def _stream(self, posts: list[Post]) -> Stream:
        """The stream of ``posts``; its problems are every page's, the changed ones' new."""
        old = self.stream
        problems = old.problems
        if any(self.old_pages[n].problems or p.problems for n, p in self.new_pages.items()):
            problems = [p for p in old.problems if p.file not in self.new_pages]
            problems += [p for page in self.new_pages.values() for p in page.problems]
            problems.sort(key=problem_order)
        return Stream(tuple(posts), problems, old.skipped, self.terms)


class _Regrouped(NamedTuple):
    """What a structural edit reaches."""

    affected: set[int]  # old posts with a copy changed, or a group a new copy joins
    days: set[date]  # the days they and the new posts are on
    merged: dict[GroupKey, tuple[RawPost, CopyGroup]]  # each reached group, merged anew
    on_days: dict[GroupKey, int]  # the old posts on those days, by group


class _Placed(NamedTuple):
    """A post's place in the new stream, before slugs and minutes are given out."""

    day: date
    title: str
    old: int | None  # the old post's index, when none of its copies changed
    best: RawPost | None = None  # else its new merge
    group: CopyGroup | None = None
    redone: bool = False  # on an affected day: its minute is counted again


def _key(post: Post) -> GroupKey:
    return (title_key(post.title), post.date)


def _file_order(raw: RawPost) -> tuple[str, int]:
    """The order ``normalize`` meets copies in: pages by file name, then down the page."""
    return (raw.file, raw.order)
