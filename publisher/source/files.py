"""Which archive files a run reads, how it names them, and reading them all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from publisher.errors import PublisherError
from publisher.source.archive import parse_page
from publisher.source.raw import ArchivePage, Copies


def archive_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, and every ``*.txt`` under folders named there."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                f
                for f in sorted(path.rglob("*.txt"))
                if not any(p.startswith(".") for p in f.relative_to(path).parts)
            )
        elif path.exists():
            files.append(path)
        else:
            raise PublisherError(
                f"{path}: no such file or folder", "name archive files or a folder of *.txt pages"
            )
    return files


def read_pages(
    paths: list[Path], known: Mapping[str, ArchivePage] | None = None
) -> list[ArchivePage]:
    """Parse every file; identical copies of a post are parsed once and share their parts.

    A post sits in every archive of its tags (2-3 copies on average): a copy
    seen before costs a dictionary lookup, which roughly halves both parsing
    time and the memory the copies hold. ``known``: pages already parsed from
    files unchanged since, by display name (a build's snapshot).
    """
    seen: Copies = {}
    known = known or {}
    pages = []
    for f in archive_files(paths):
        name = display_name(f)
        page = known.get(name)
        pages.append(page if page is not None else parse_page(f.read_bytes(), name, seen))
    return pages


def display_name(path: Path, resolved: Path | None = None) -> str:
    """How problems and ``Post.sources`` name a file: relative to the working folder.

    ``resolved``: ``path.resolve()`` when the caller has it (a site of
    single-post pages would pay for ``resolve`` thousands of times).
    """
    try:
        return str((resolved or path.resolve()).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
