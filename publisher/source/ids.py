"""Permanent names: each post's page slug and its ``tag:`` id (RFC 4151).

A post's id depends only on the post (its date and title slug), so it is the
same across runs and when other posts or archives are added; page slugs are
unique site-wide, the oldest post keeping the bare slug.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date

from publisher.text import slugify, title_key


def page_and_id_slugs(posts: list[tuple[str, date]]) -> tuple[list[str], list[str]]:
    """Each post's page slug and id slug (title, date; in stream order), from one
    slug of each title."""
    base = [slugify(title) for title, _ in posts]
    return unique_slugs(posts, base), unique_id_slugs(posts, base)


def unique_slugs(posts: list[tuple[str, date]], base: list[str]) -> list[str]:
    """Slugs unique across the site; the oldest post keeps the plain slug.

    Adding a newer post with the same title never renames an existing one: the
    newcomer gets ``-YYYY-MM-DD`` (then ``-2``, ``-3`` by title) appended.
    """
    by_base: dict[str, list[int]] = defaultdict(list)
    for i, b in enumerate(base):
        by_base[b].append(i)
    out = list(base)
    taken = set(base)
    for b, idxs in by_base.items():
        if len(idxs) == 1:
            continue
        idxs.sort(key=lambda i: (posts[i][1], title_key(posts[i][0]), posts[i][0]))
        for i in idxs[1:]:
            cand = f"{b}-{posts[i][1].isoformat()}"
            n = 2
            while cand in taken:
                cand = f"{b}-{posts[i][1].isoformat()}-{n}"
                n += 1
            taken.add(cand)
            out[i] = cand
    return out


def unique_id_slugs(posts: list[tuple[str, date]], base: list[str]) -> list[str]:
    """What each post's ``tag:`` id says beside its date: its title's slug.

    Not ``unique_slugs``' answer: the oldest of two same-titled posts keeps the
    plain slug, so a found older archive would rename (and re-id) a newer post.
    The date makes an id unique already; only two titles of one day with one
    slug need more: the second by title gets ``-2``, and so on. Adding posts of
    other days never changes an id.
    """
    same: dict[tuple[date, str], list[int]] = defaultdict(list)
    for i, ((_, day), b) in enumerate(zip(posts, base, strict=True)):
        same[(day, b)].append(i)
    out = list(base)
    taken = set(same)
    for (day, b), idxs in same.items():
        if len(idxs) == 1:
            continue
        idxs.sort(key=lambda i: (title_key(posts[i][0]), posts[i][0]))
        n = 2
        for i in idxs[1:]:
            while (day, f"{b}-{n}") in taken:
                n += 1
            taken.add((day, f"{b}-{n}"))
            out[i] = f"{b}-{n}"
    return out


def post_id(id_domain: str, day: date, slug: str, id_slug: str, alias_of: Mapping[str, str]) -> str:
    """The ``tag:`` URI (see ``unique_id_slugs``); a post whose slug ``[ids]`` names
    keeps the id of its old slug."""
    return f"tag:{id_domain},{day.isoformat()}:{alias_of.get(slug, id_slug)}"


def id_slug(post_id: str) -> str:
    """The slug part of a post's ``tag:`` id (or the old slug ``[ids]`` gave it)."""
    return post_id.rpartition(":")[2]
