"""The one writer that owns the output folder.

Every file is written to a temporary file and renamed into place, so a web
server never serves half a feed. A manifest records what was written (with the
key of the inputs it was made from), so a rebuild skips what is current,
rewrites only what changed, and removes only files this writer made.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import PublisherError

MANIFEST = ".publisher-manifest.json"
#: Files a build is about to write that the manifest does not record yet (see ``claim``).
CLAIMS = ".publisher-claimed.json"
MANIFEST_VERSION = 1
_OWN = (MANIFEST, CLAIMS)
#: Write buffer: a feed's entries are a few kB each, written in 1 MB system calls.
_BUFFER = 1 << 20


@dataclass
class WriteCounts:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


class OutputWriter:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self.counts = WriteCounts()
        self.changed: list[str] = []
        self._old: dict[str, dict[str, object]] = {}
        self._old_inputs = ""
        self._new: dict[str, dict[str, object]] = {}
        self._dirs: set[str] = set()
        data = self._read_manifest()
        if data:
            self._old = data.get("files", {})
            self._old_inputs = data.get("inputs", "")
        self._claimed: list[str] = self._read_claims()
        for rel in self._claimed:  # written, maybe, by a build that failed: ours, not current
            self._old.setdefault(rel, {"key": "", "size": -1, "mtime_ns": 0})
        if self._claimed:
            self._old_inputs = ""

    def _read_manifest(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if data.get("version") == MANIFEST_VERSION else {}

    def _read_claims(self) -> list[str]:
        try:
            claims = json.loads((self.root / CLAIMS).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return []
        return [c for c in claims if isinstance(c, str)] if isinstance(claims, list) else []

    @property
    def known_files(self) -> int:
        return len(self._old)

    def records(self, prefix: str) -> bool:
        """Whether the manifest records a file under ``prefix``."""
        return any(rel.startswith(prefix) for rel in self._old)

    @property
    def inputs(self) -> str:
        """The inputs fingerprint of the build that wrote the folder last."""
        return self._old_inputs

    # -- for forked workers: what was written since a mark, merged by the parent --
    def mark(self) -> tuple[int, int, int, set[str]]:
        return (len(self.changed), self.counts.written, self.counts.unchanged, set(self._new))

    def since(
        self, mark: tuple[int, int, int, set[str]]
    ) -> tuple[dict[str, dict[str, object]], list[str], int, int]:
        n_changed, written, unchanged, known = mark
        entries = {k: v for k, v in self._new.items() if k not in known}
        return (
            entries,
            self.changed[n_changed:],
            self.counts.written - written,
            self.counts.unchanged - unchanged,
        )

    def merge(
        self,
        entries: dict[str, dict[str, object]],
        changed: list[str],
        written: int,
        unchanged: int,
    ) -> None:
        self._new.update(entries)
        self.changed.extend(changed)
        self.counts.written += written
        self.counts.unchanged += unchanged

    def path(self, rel: str) -> str:
        """The file for ``rel``; refuses anything that would land outside the folder.

        Plain strings and ``os`` calls: every file of a rebuild passes here, even
        one that renders a few dozen.
        """
        parts = rel.split("/")
        if rel.startswith("/") or "" in parts or ".." in parts or "\\" in rel or rel in _OWN:
            raise PublisherError(f"refusing to write {rel!r} outside the output folder")
        return os.path.join(self._root, *parts)

    def _stat_matches(self, rel: str) -> bool:
        entry = self._old.get(rel)
        if entry is None:
            return False
        try:
            st = os.stat(self.path(rel))
        except FileNotFoundError:
            return False
        return _as_recorded(st, entry)

    def up_to_date(self, inputs: str) -> bool:
        """True when the inputs fingerprint and every written file are as last recorded."""
        return bool(self._old) and inputs == self._old_inputs and self.untouched()

    def untouched(self) -> bool:
        """Every file recorded is as this writer left it (nobody edited or removed one).

        One ``stat`` per file and nothing else: this runs over all 15,000 files
        of a 10,000-post site on every rebuild. Only reads, so names from the
        manifest need no checking here (``path`` checks what is written or removed).
        """
        prefix, stat = self._root + os.sep, os.stat
        for rel, entry in self._old.items():
            try:
                st = stat(prefix + rel)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if not _as_recorded(st, entry):
                return False
        return True

    def claim(self, rels: Iterable[str], *, overwrite: bool = False) -> None:
        """Record, before writing them, the files of ``rels`` no manifest records yet;
        unless ``overwrite``, first refuse (nothing written or recorded) if a file
        stands at one of them: put there by someone else (a web root's own
        ``index.html``), so not this writer's to replace.

        Only paths the manifest lacks are looked at: with a manifest, a few new
        files; without one, every file, found by one walk of the folder (nothing,
        for a first build into an empty or new folder).

        If the build then fails part-way (a full disk, a template fault, a worker
        killed), the files it wrote are still known as this writer's: the next
        build replaces them (a claim never matches a file) or removes them,
        instead of taking them for someone else's. The claims sit in a file of
        their own, removed once the manifest records the build, rather than a
        rewrite of the whole manifest.
        """
        rels = list(rels)
        self.refuse_links(rels)
        new = [rel for rel in rels if rel not in self._old]
        if not new:
            return
        if not overwrite:
            self._refuse_strangers(new)
        self._save(CLAIMS, [*self._claimed, *new])

    def refuse_links(self, rels: Iterable[str]) -> None:
        """Refuse, before anything is written, to reach any of ``rels`` through a
        symbolic link inside the output folder (``tag`` linked to another folder,
        say): the build would write, replace or remove files outside it. The
        output folder itself may be a link: the user named it."""
        seen: set[str] = set()
        for rel in rels:
            folder = rel.rpartition("/")[0]
            while folder and folder not in seen:
                seen.add(folder)
                full = os.path.join(self._root, *folder.split("/"))
                if os.path.islink(full):
                    raise PublisherError(
                        f"{full} is a symbolic link (to {os.readlink(full)}): a build never "
                        f"writes outside {self.root} through one; nothing was written",
                        "replace the link with a real folder (or remove it), or build into "
                        "the folder it points to with --out",
                    )
                folder = folder.rpartition("/")[0]

    def _refuse_strangers(self, new: list[str]) -> None:
        if self._old:
            strangers = [rel for rel in new if os.path.lexists(self.path(rel))]
        else:
            there = {
                os.path.relpath(os.path.join(folder, name), self._root).replace(os.sep, "/")
                for folder, dirs, names in os.walk(self._root)
                for name in (*names, *dirs)
            }
            strangers = [rel for rel in new if rel in there]
        if not strangers:
            return
        more = len(strangers) - 5
        shown = ", ".join(strangers[:5]) + (f" and {more} more" if more > 0 else "")
        raise PublisherError(
            f"{self.root}: this build would replace {len(strangers)} file(s) that publisher "
            f"did not write: {shown}; nothing was written",
            "move them out of the output folder (change a page through [build] templates "
            "instead), or build with --overwrite to replace them (say, the output of an "
            f"earlier build whose {MANIFEST} was deleted)",
        )

    def keep(self, rel: str) -> bool:
        """Keep a recorded file as it is (its inputs did not change); False if none is."""
        entry = self._old.get(rel)
        if entry is None:
            return False
        self._new[rel] = entry
        self.counts.unchanged += 1
        return True

    def keep_unlisted(self) -> None:
        """Keep every recorded file this build did not list: an incremental build lists
        only the files that may have changed (callers check ``untouched`` first)."""
        for rel in self._old.keys() - self._new.keys():
            self.keep(rel)

    def is_current(self, rel: str, key: str) -> bool:
        """If ``rel`` was made from the same key and is untouched since, keep it."""
        entry = self._old.get(rel)
        if entry is not None and entry["key"] == key and self._stat_matches(rel):
            return self.keep(rel)
        return False

    def write(self, rel: str, key: str, data: bytes | Sequence[bytes]) -> None:
        """Write ``data`` (bytes, or pieces written in turn) unless the file holds it."""
        if rel in self._new:
            raise PublisherError(f"internal: {rel} written twice in one build")
        target = self.path(rel)
        parts = [data] if isinstance(data, bytes) else data
        same = False
        if rel in self._old:  # only a file we wrote before can be identical already
            with contextlib.suppress(FileNotFoundError), open(target, "rb") as f:
                same = _holds(f.read(), parts)
        if same:
            self.counts.unchanged += 1
        else:
            folder, name = os.path.split(target)
            tmp = os.path.join(folder, _temporary(name, os.getpid()))
            try:
                if folder not in self._dirs:
                    os.makedirs(folder, exist_ok=True)
                    self._dirs.add(folder)
                with open(tmp, "wb", buffering=_BUFFER) as f:
                    f.writelines(parts)
                os.replace(tmp, target)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                if isinstance(exc, OSError):
                    raise _unwritable(target, exc) from None
                raise
            self.counts.written += 1
            self.changed.append(rel)
        st = os.stat(target)
        self._new[rel] = {"key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def remove_temporary(self, pid: int) -> None:
        """Remove what process ``pid`` left half-written (it was killed in ``write``)."""
        pattern = _temporary("*", pid)
        for folder, _, names in os.walk(self._root):
            for name in fnmatch.filter(names, pattern):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))

    def finish(self, inputs: str) -> None:
        """Remove files this writer made that the build no longer has; save the manifest."""
        gone = sorted(set(self._old) - set(self._new))
        self.refuse_links(gone)
        for rel in gone:
            target = Path(self.path(rel))
            if target.is_file():
                target.unlink()
                self.counts.removed += 1
                self.changed.append(rel)
            self._prune_dirs(target.parent)
        manifest = {"version": MANIFEST_VERSION, "inputs": inputs, "files": self._new}
        self._save(MANIFEST, manifest)
        with contextlib.suppress(FileNotFoundError):
            (self.root / CLAIMS).unlink()

    def _save(self, name: str, content: object) -> None:
        """One of this writer's own files, as JSON, atomically."""
        data = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        target = self.root / name
        tmp = target.with_name(_temporary(name, os.getpid()))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _unwritable(str(target), exc) from None

    def _prune_dirs(self, folder: Path) -> None:
        root = self.root.resolve()
        while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _temporary(name: str, pid: int) -> str:
    """The file process ``pid`` writes before renaming it to ``name``: a dotfile
    (never served) named for the process, so that what a killed one left can be
    found (``remove_temporary``)."""
    return f".{name}.{pid}.tmp"


def _unwritable(target: str, exc: OSError) -> PublisherError:
    """A file that could not be written (a full disk, a file where a folder must be):
    what was written before it is whole, and the next build writes the rest."""
    blocker = Path(target).parent
    while blocker.parent != blocker and not blocker.exists():
        blocker = blocker.parent
    if blocker.exists() and not blocker.is_dir():
        why = f"{blocker} is a file, where the output needs a folder"
    else:
        why = exc.strerror or str(exc)
    return PublisherError(
        f"{target}: cannot write it: {why}",
        "make room on the disk, or move what stands in the way (a file where the "
        "output needs a folder), then build again: files written so far are whole "
        "and the next build writes the rest",
    )


def _as_recorded(st: os.stat_result, entry: dict[str, object]) -> bool:
    """The file is as this writer left it: the size and modification time recorded."""
    return st.st_size == entry["size"] and st.st_mtime_ns == entry["mtime_ns"]


def _holds(old: bytes, parts: Sequence[bytes]) -> bool:
    """``old == b"".join(parts)``, without the join."""
    if len(old) != sum(map(len, parts)):
        return False
    view, at = memoryview(old), 0
    for part in parts:
        if view[at : at + len(part)] != part:
            return False
        at += len(part)
    return True
