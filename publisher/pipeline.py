"""Glue for the commands: settings + paths -> the normalized stream."""

from __future__ import annotations

from pathlib import Path

from publisher.archive import read_pages
from publisher.posts import Stream, normalize
from publisher.settings import Settings


def load_stream(settings: Settings, paths: list[Path] | None = None) -> Stream:
    pages = read_pages(paths or [Path(settings.build.seeds)])
    return normalize(pages, settings.site.tzinfo, settings.site.id_domain, settings.ids)
