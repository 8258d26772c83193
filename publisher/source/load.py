"""Glue for the commands: settings + paths -> the normalized stream."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from publisher.settings import Settings
from publisher.source.files import read_pages
from publisher.source.normalize import normalize
from publisher.source.posts import Stream
from publisher.source.raw import ArchivePage


def load_stream(settings: Settings, paths: list[Path] | None = None) -> Stream:
    """Read and normalize the archives."""
    return load_pages(settings, paths)[1]


def load_pages(
    settings: Settings,
    paths: list[Path] | None = None,
    known: Mapping[str, ArchivePage] | None = None,
) -> tuple[list[ArchivePage], Stream]:
    """The parsed pages (but ``known`` ones: see ``read_pages``) and their normalized
    stream."""
    pages = read_pages([Path(settings.build.seeds)] if paths is None else paths, known)
    stream = normalize(pages, settings.site.tzinfo, settings.site.id_domain, settings.ids)
    return pages, stream
