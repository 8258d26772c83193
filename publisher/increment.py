"""Incremental normalize: the last stream + the archive pages that changed -> the new stream.

A one-post edit in a 10,000-post site changes the few archives that hold the
post; normalizing everything again was most of the rebuild. Here only the posts
with a copy in a changed page are made again, from their copies: the changed
pages' new ones and the kept pages' old ones.

It answers ``None`` whenever the edit could reach beyond those posts: a copy
added, removed, retitled, redated or retagged (slugs, order and terms would
move), a problem anywhere in the changed pages, an error in the old stream, or
a merge whose outcome is not simply new content for the same post. The caller
then normalizes from scratch, so the stream is always what ``normalize`` would
give (property-tested against it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from publisher.archive import ArchivePage, RawPost
from publisher.errors import Problem
from publisher.posts import CopyGroup, Post, Stream, make_post, merge_copies
from publisher.text import slugify


@dataclass(frozen=True)
class Patch:
    stream: Stream
    #: Ids of the posts merged again from changed copies: their content may differ.
    remade: tuple[str, ...]
    #: Every post that is a new object: the remade, and those found at other lines.
    replaced: tuple[Post, ...]


def _shape(raw: RawPost) -> tuple[object, ...]:
    """What of a copy decides its post's identity, place, slug and terms."""
    return (raw.title, raw.date, raw.order, raw.tags, raw.categories)


def _same_shape(old: ArchivePage, new: ArchivePage) -> bool:
    return (
        old.kind == new.kind
        and old.term == new.term
        and not (old.problems or new.problems or old.rejected or new.rejected)
        and len(old.posts) == len(new.posts)
        and all(
            a.date is not None and _shape(a) == _shape(b)
            for a, b in zip(old.posts, new.posts, strict=True)
        )
    )


def patch(
    stream: Stream,
    old_pages: Mapping[str, ArchivePage],
    new_pages: Mapping[str, ArchivePage],
    id_domain: str,
    aliases: Mapping[str, str] | None = None,
) -> Patch | None:
    """The stream ``normalize`` would make of ``old_pages`` with ``new_pages`` put in.

    ``old_pages`` are every page the stream was made from, by file name;
    ``new_pages`` replace some of them. ``None``: normalize from scratch.
    """
    if stream.errors or stream.skipped:
        return None
    for name, new in new_pages.items():
        old = old_pages.get(name)
        if old is None or not _same_shape(old, new):
            return None
    at: dict[str, int] = {src: i for i, p in enumerate(stream.posts) for src in p.sources}
    # each changed page's copies, old and new side by side, by the post they belong to
    pairs: dict[int, list[tuple[RawPost, RawPost]]] = {}
    for name, new in new_pages.items():
        for a, b in zip(old_pages[name].posts, new.posts, strict=True):
            i = at.get(f"{name}:{a.line}")
            if i is None:
                return None  # the snapshot does not hold this copy: be safe
            pairs.setdefault(i, []).append((a, b))

    alias_of = {new: old for old, new in (aliases or {}).items()}
    posts = list(stream.posts)
    remade: list[str] = []
    replaced: list[Post] = []
    kept_by_line: dict[str, dict[int, RawPost]] = {}
    for i, changed in sorted(pairs.items()):
        post = posts[i]
        copies = _copies(post, changed, old_pages, new_pages, kept_by_line)
        if copies is None:
            return None
        if all(a.same_content(b) for a, b in changed):
            sources = _sources(copies)
            if sources != post.sources:  # lines moved: only where the post was found changes
                posts[i] = post.found_at(sources)
                replaced.append(posts[i])
            continue
        problems: list[Problem] = []
        best = merge_copies(copies, problems)
        if best is None or problems or best.title != post.title:
            return None
        canonical = {
            (kind, n): stream.terms[(kind, slugify(n, kind))].name
            for c in copies
            for kind, names in (("tag", c.tags), ("category", c.categories))
            for n in names
        }
        group = CopyGroup(copies, post.date)
        made = make_post(best, group, post.slug, post.published, id_domain, alias_of, canonical)
        if (made.id, made.tags, made.categories) != (post.id, post.tags, post.categories):
            return None
        posts[i] = made
        remade.append(made.id)
        replaced.append(made)
    new_stream = Stream(tuple(posts), stream.problems, stream.skipped, stream.terms)
    return Patch(new_stream, tuple(remade), tuple(replaced))


def _copies(
    post: Post,
    changed: list[tuple[RawPost, RawPost]],
    old_pages: Mapping[str, ArchivePage],
    new_pages: Mapping[str, ArchivePage],
    kept_by_line: dict[str, dict[int, RawPost]],
) -> list[RawPost] | None:
    """All of a post's copies after the edit, in the order ``normalize`` meets them."""
    copies = [b for _, b in changed]
    for src in post.sources:
        name, _, line = src.rpartition(":")
        if name in new_pages:
            continue
        page = old_pages.get(name)
        if page is None:
            return None
        if name not in kept_by_line:
            kept_by_line[name] = {r.line: r for r in page.posts}
        raw = kept_by_line[name].get(int(line))
        if raw is None or raw.date is None:
            return None  # an undated copy joins its group last, not in file order
        copies.append(raw)
    if len(copies) != len(post.sources):
        return None
    copies.sort(key=lambda c: (c.file, c.order))
    return copies


def _sources(copies: list[RawPost]) -> tuple[str, ...]:
    return tuple(sorted({f"{c.file}:{c.line}" for c in copies}))
