"""What the last build knew, kept so a rebuild after an edit re-reads only what changed.

Beside the state database (``<db>.builds/<output folder digest>.pickle``): every
archive's parsed page and stat, the stream, the post dates used and the sent
digests. A full build writes it whole (pickled while the render workers
run); an incremental one appends a small delta file instead
of rewriting it, folded into the base once it grows.

It is a cache: anything unexpected (no file, an unreadable one, another
publisher version, other settings or templates, output written by some other
build) means a full build, never a wrong one. Like the state database it is
only written by this program, and only read from the state folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import pickle
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from publisher.errors import Problem
from publisher.source.increment import Patch, same_shape
from publisher.source.posts import Post, Stream, Term
from publisher.source.raw import ArchivePage, RawPost, TermKind
from publisher.store.paths import beside_state

if TYPE_CHECKING:
    from publisher.store.rows import DigestRecord

log = logging.getLogger(__name__)

#: Part of the config digest: a snapshot in another layout is never read back.
FORMAT = 3
#: A delta holding more whole posts and copies than this is folded into a new base.
DELTA_MAX_ITEMS = 2000


@dataclass(frozen=True)
class FileStat:
    path: str  # resolved
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, resolved: Path) -> FileStat:
        """The stat of a file by its resolved path."""
        st = resolved.stat()
        return cls(str(resolved), st.st_size, st.st_mtime_ns)


@dataclass
class Snapshot:
    #: Digest of everything but the archives that the output depends on.
    config: str
    #: The output manifest's inputs fingerprint this snapshot was built with.
    inputs: str
    files: dict[str, FileStat]  # by display name, as in ``Post.sources``
    pages: dict[str, ArchivePage]
    stream: Stream
    updated: dict[str, datetime]
    sent: list[DigestRecord]
    versions: int  # rows in the versions table after the build
    token: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass(frozen=True)
class PageEdit:
    """A changed archive against the base's page (same copies, titles, dates and
    terms: see ``increment``): every copy's line, and the copies whose content changed."""

    lines: tuple[int, ...]
    copies: dict[int, RawPost]  # by position in the page


@dataclass
class Delta:
    """What incremental builds changed since the base, cumulatively, and compactly:
    an added paragraph moves every post below it, but only its lines are kept."""

    base: str  # the base's token
    inputs: str
    files: dict[str, FileStat | None]  # None: the archive is gone
    pages: dict[str, PageEdit]  # pages holding the same copies as the base's
    whole: dict[str, ArchivePage | None]  # pages whose copies came, went or moved
    posts: dict[str, Post]  # made again, by id
    sources: dict[str, tuple[str, ...]]  # only found at other lines, by id
    #: The stream's ids in order, once posts came, went, moved or were renamed.
    order: tuple[str, ...] | None
    terms: dict[tuple[TermKind, str], Term] | None  # once a tag or category came or went
    problems: list[Problem] | None  # once a changed page's warnings did
    updated: dict[str, datetime]
    versions: int
    #: The digests planned, as the last build saw them (their pages are the site's).
    sent: list[DigestRecord] | None = None

    @classmethod
    def empty(cls, base: str) -> Delta:
        """No change yet since the base with token ``base``."""
        return cls(base, "", {}, {}, {}, {}, {}, None, None, None, {}, 0)

    @property
    def size(self) -> int:
        return (
            len(self.posts)
            + sum(len(e.copies) for e in self.pages.values())
            + sum(len(p.posts) for p in self.whole.values() if p is not None)
        )


_T = TypeVar("_T", Snapshot, Delta)
_V = TypeVar("_V")


class SnapshotStore:
    def __init__(self, state_url: str, out: Path) -> None:
        folder = beside_state(state_url, ".builds", "builds")
        name = hashlib.blake2b(str(out.resolve()).encode(), digest_size=8).hexdigest()
        self.base = folder / f"{name}.pickle"
        self.delta = folder / f"{name}.delta.pickle"
        self._staged: Path | None = None
        self._delta: Delta | None = None

    def load(self, config: str) -> Snapshot | None:
        """The last build's snapshot with its delta applied, if made with ``config``."""
        snap = _read(self.base, Snapshot)
        if snap is None or snap.config != config:
            return None
        delta = _read(self.delta, Delta)
        if delta is not None and delta.base == snap.token:
            try:
                apply_delta(snap, delta)
            except Exception:  # noqa: BLE001 - as for an unreadable file: a full build
                return None
            self._delta = delta
        return snap

    def stage(self, snap: Snapshot) -> None:
        """Write a new base beside the old one; ``commit`` puts it in place."""
        tmp = self.base.with_name(f".{self.base.name}.{os.getpid()}.tmp")
        if _write(tmp, snap):
            self._staged = tmp

    def commit(self) -> None:
        if self._staged is not None:
            os.replace(self._staged, self.base)
            self._staged = None
            with contextlib.suppress(FileNotFoundError):
                self.delta.unlink()
        else:  # nothing staged: what is there describes an older build
            self.discard()

    def discard(self) -> None:
        """Forget the snapshot: the next build is a full one."""
        for path in (self._staged, self.base, self.delta):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._staged = None

    def advance(
        self,
        snap: Snapshot,
        patch: Patch,
        files: dict[str, FileStat | None],
        pages: dict[str, ArchivePage | None],
        inputs: str,
        updated: dict[str, datetime],
        versions: int,
        sent: list[DigestRecord] | None = None,
    ) -> None:
        """Record an incremental build on ``snap`` (as loaded, with its delta applied):
        ``patch`` made of ``pages`` (from ``files``), with these ``updated`` dates and
        versions rows (``None``: that archive is gone). As a delta holding every
        change since the base, or as a new base once large."""
        stream, remade = patch.stream, patch.remade
        old = self._delta or Delta.empty(snap.token)
        edits, whole = _page_edits(snap, old, pages)
        posts, sources = dict(old.posts), dict(old.sources)
        for p in patch.replaced:
            if p.id in posts or p.id in remade:
                posts[p.id] = p
                sources.pop(p.id, None)
            else:
                sources[p.id] = p.sources
        delta = Delta(
            snap.token,
            inputs,
            old.files | files,
            edits,
            whole,
            posts,
            sources,
            tuple(p.id for p in stream.posts) if patch.reordered else old.order,
            stream.terms if patch.reordered else old.terms,
            stream.problems if stream.problems != snap.stream.problems else old.problems,
            old.updated | updated,
            versions,
            sent if sent is not None else old.sent,
        )
        if delta.size <= DELTA_MAX_ITEMS:
            self._write_delta(delta)
            return
        snap.inputs, snap.stream, snap.versions = inputs, stream, versions
        if delta.sent is not None:
            snap.sent = delta.sent
        _update(snap.files, files)
        _update(snap.pages, pages)
        snap.updated.update(updated)
        snap.token = secrets.token_hex(8)
        self.stage(snap)
        self.commit()

    def _write_delta(self, delta: Delta) -> None:
        tmp = self.delta.with_name(f".{self.delta.name}.{os.getpid()}.tmp")
        if _write(tmp, delta):
            os.replace(tmp, self.delta)
        else:
            self.discard()


def _page_edits(
    snap: Snapshot, old: Delta, pages: dict[str, ArchivePage | None]
) -> tuple[dict[str, PageEdit], dict[str, ArchivePage | None]]:
    """The delta's page changes with ``pages`` added: as edits of the base page's copies
    where only text changed, else whole pages."""
    edits, whole = dict(old.pages), dict(old.whole)
    for name, page in pages.items():
        before = snap.pages.get(name)
        if (
            name in whole
            or page is None
            or before is None
            or before.problems  # a page edit keeps the base page's warnings
            or page.problems
            or not same_shape(before, page)
        ):
            whole[name] = page
            edits.pop(name, None)
            continue
        copies = dict(edits[name].copies) if name in edits else {}
        for i, (a, b) in enumerate(zip(before.posts, page.posts, strict=True)):
            if not a.same_content(b):
                copies[i] = b
        edits[name] = PageEdit(tuple(r.line for r in page.posts), copies)
    return edits, whole


def _write(tmp: Path, data: Snapshot | Delta) -> bool:
    """Pickle to ``tmp``; a cache that cannot be written costs the next build, not this one."""
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning(
            "warning: build snapshot not kept (%s); the next build reads every archive", exc
        )

        return False
    return True


def _read(path: Path, kind: type[_T]) -> _T | None:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception:  # noqa: BLE001 - a missing, damaged or foreign cache: a full build
        return None
    return data if isinstance(data, kind) else None


def _update(into: dict[str, _V], changes: dict[str, _V | None]) -> None:
    """``into`` with ``changes`` applied: ``None`` removes the name."""
    for name, value in changes.items():
        if value is None:
            into.pop(name, None)
        else:
            into[name] = value


def apply_delta(snap: Snapshot, delta: Delta) -> None:
    snap.inputs = delta.inputs
    _update(snap.files, delta.files)
    for name, edit in delta.pages.items():
        page = snap.pages[name]
        copies = [
            edit.copies.get(i, raw)._replace(line=line)
            for i, (raw, line) in enumerate(zip(page.posts, edit.lines, strict=True))
        ]
        snap.pages[name] = dataclasses.replace(page, posts=copies)
    _update(snap.pages, delta.whole)
    snap.updated.update(delta.updated)
    snap.versions = delta.versions
    if delta.sent is not None:
        snap.sent = delta.sent
    if delta.posts or delta.sources or delta.order is not None:
        base = {p.id: p for p in snap.stream.posts}
        order = delta.order if delta.order is not None else base

        def current(pid: str) -> Post:
            if pid in delta.posts:
                return delta.posts[pid]
            if pid in delta.sources:
                return base[pid].relocated(sources=delta.sources[pid])
            return base[pid]

        old = snap.stream
        terms = old.terms if delta.terms is None else delta.terms
        snap.stream = Stream(tuple(map(current, order)), old.problems, old.skipped, terms)
    if delta.problems is not None:
        snap.stream.problems = delta.problems


def changed_files(snap: Snapshot, files: dict[str, FileStat]) -> tuple[list[str], list[str]]:
    """Names of the archives new or whose stat differs, and of those gone."""
    changed = sorted(name for name, st in files.items() if snap.files.get(name) != st)
    return changed, sorted(snap.files.keys() - files.keys())
