"""Each feed's entries in the order they entered it: the order RFC 5005 archive
pages follow.

Archive pages are fixed once full (RFC 5005: an archive document's entries
SHOULD NOT change), and a client that cached one never fetches it again. So
the pages cannot follow post dates: this tool's input is archive pages found
over time, and an older post found later, or an old post gaining a tag, would
shift every page after it, unseen by any client that cached them. Instead each
feed keeps the order its entries entered it (in the state database): a new
entry goes at the end, whatever its date, and so reaches every subscriber
through the subscription document and then the newest archive page.

The rules, for pages of ``size`` entries (``feed_max_items``):

- the entries of the full archive pages are *sealed*: never moved, never removed;
- a post of the feed with no entry enters at the end (several at once: oldest
  published first, so that a feed's first order is its date order);
- an edited post re-enters at the end: its unsealed entry moves there, and a
  sealed one stays where it is (a client keeps the newest entry of an id);
- an unsealed entry of a post that left the feed is dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def full_pages(entries: int, size: int) -> int:
    """How many full archive pages a feed of ``entries`` has: none while the
    subscription document holds them all."""
    return entries // size if entries > size else 0


def advance(
    known: Sequence[str], members: Sequence[str], edited: Collection[str], size: int
) -> tuple[str, ...]:
    """The feed's order after this build.

    ``known``: its order so far (oldest entry first); ``members``: the ids of
    its posts now, newest published first (the stream's order); ``edited``:
    posts whose content changed in this build.
    """
    sealed = tuple(known[: full_pages(len(known), size) * size])
    now = set(members)
    tail = [pid for pid in known[len(sealed) :] if pid in now and pid not in edited]
    in_tail, in_sealed = set(tail), set(sealed)
    # oldest first; an edited post is in no tail, so it enters again
    entering = [
        pid
        for pid in reversed(members)
        if pid not in in_tail and (pid in edited or pid not in in_sealed)
    ]
    return (*sealed, *tail, *entering)


def newest(order: Sequence[str], members: Collection[str], size: int) -> list[str]:
    """The subscription document's entries: the ``size`` last to enter the feed
    of its posts now, each id once, last entered first."""
    shown: list[str] = []
    seen: set[str] = set()
    for pid in reversed(order):
        if pid in members and pid not in seen:
            seen.add(pid)
            shown.append(pid)
            if len(shown) == size:
                break
    return shown
