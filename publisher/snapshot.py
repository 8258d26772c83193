"""What the last build knew, kept so a rebuild after an edit re-reads only what changed.

Beside the state database (``<db>.builds/<output folder digest>.pickle``): every
archive's parsed page and stat, the stream, the post dates used and the sent
digests. A full build writes it whole (~40 MB at 10,000 posts, pickled while
the render workers run); an incremental one appends a small delta file instead
of rewriting it, folded into the base once it grows.

It is a cache: anything unexpected (no file, an unreadable one, another
publisher version, other settings or templates, output written by some other
build) means a full build, never a wrong one. Like the state database it is
only written by this program, and only read from the state folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from publisher.archive import ArchivePage
from publisher.posts import Post, Stream

if TYPE_CHECKING:
    from publisher.ledger import DigestRecord

#: Part of the config digest: a snapshot in another layout is never read back.
FORMAT = 1
#: A delta holding more posts or pages than this is folded into a new base (an
#: edit that moves lines re-records every post below it in each changed page).
DELTA_MAX_POSTS = 5000
DELTA_MAX_PAGES = 50


@dataclass(frozen=True)
class FileStat:
    path: str  # resolved
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStat:
        st = path.stat()
        return cls(str(path.resolve()), st.st_size, st.st_mtime_ns)


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


@dataclass
class Delta:
    """What incremental builds changed since the base, cumulatively."""

    base: str  # the base's token
    inputs: str
    files: dict[str, FileStat]
    pages: dict[str, ArchivePage]
    posts: dict[str, Post]  # by id
    updated: dict[str, datetime]
    versions: int


_T = TypeVar("_T", Snapshot, Delta)


class SnapshotStore:
    def __init__(self, state_url: str, out: Path) -> None:
        if state_url.startswith("sqlite:///") and not state_url.startswith("sqlite:///:memory:"):
            folder = Path(state_url.removeprefix("sqlite:///")).with_suffix(".builds")
        else:
            folder = Path("var") / "builds"
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
            apply_delta(snap, delta)
            self._delta = delta
        return snap

    def stage(self, snap: Snapshot) -> None:
        """Write a new base beside the old one; ``commit`` puts it in place."""
        self.base.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.base.with_name(f".{self.base.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(snap, f, protocol=pickle.HIGHEST_PROTOCOL)
        self._staged = tmp

    def commit(self) -> None:
        if self._staged is not None:
            os.replace(self._staged, self.base)
            self._staged = None
            with contextlib.suppress(FileNotFoundError):
                self.delta.unlink()

    def discard(self) -> None:
        """Forget the snapshot: the next build is a full one."""
        for path in (self._staged, self.base, self.delta):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self._staged = None

    def advance(
        self,
        snap: Snapshot,
        *,
        inputs: str,
        files: dict[str, FileStat],
        pages: dict[str, ArchivePage],
        stream: Stream,
        replaced: tuple[Post, ...],
        updated: dict[str, datetime],
        versions: int,
    ) -> None:
        """Record an incremental build on ``snap`` (as loaded, with its delta applied):
        as a delta holding every change since the base, or as a new base once large."""
        old = self._delta or Delta(snap.token, "", {}, {}, {}, {}, 0)
        delta = Delta(
            snap.token,
            inputs,
            old.files | files,
            old.pages | pages,
            old.posts | {p.id: p for p in replaced},
            old.updated | updated,
            versions,
        )
        if len(delta.posts) <= DELTA_MAX_POSTS and len(delta.pages) <= DELTA_MAX_PAGES:
            self._write_delta(delta)
            return
        snap.inputs, snap.stream, snap.versions = inputs, stream, versions
        snap.files.update(files)
        snap.pages.update(pages)
        snap.updated.update(updated)
        snap.token = secrets.token_hex(8)
        self.stage(snap)
        self.commit()

    def _write_delta(self, delta: Delta) -> None:
        tmp = self.delta.with_name(f".{self.delta.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(delta, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.delta)


def _read(path: Path, kind: type[_T]) -> _T | None:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception:  # noqa: BLE001 - a missing, damaged or foreign cache: a full build
        return None
    return data if isinstance(data, kind) else None


def apply_delta(snap: Snapshot, delta: Delta) -> None:
    snap.inputs = delta.inputs
    snap.files.update(delta.files)
    snap.pages.update(delta.pages)
    snap.updated.update(delta.updated)
    snap.versions = delta.versions
    if delta.posts:
        posts = tuple(delta.posts.get(p.id, p) for p in snap.stream.posts)
        old = snap.stream
        snap.stream = Stream(posts, old.problems, old.skipped, old.terms)


def changed_files(snap: Snapshot, files: dict[str, FileStat]) -> list[str] | None:
    """Names of the archives whose stat differs; ``None`` if files came or went."""
    if snap.files.keys() != files.keys():
        return None
    return sorted(name for name, st in files.items() if snap.files[name] != st)
