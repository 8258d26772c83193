"""Our build doing Pelican's work only: for the like-for-like row of bench_build.py.

    python benchmarks/pelican_workload.py CONFIG ARCHIVES

Pelican's benchmark settings (../shared/bench-peers/pelican/pelicanconf.py)
write 202 files: the site feed and every tag feed, in Atom and RSS, each with
every entry (no item cap). A default ``publisher build`` writes ~15,000: those
feeds as RFC 5005 pages, JSON Feed, a page per post and per tag. To compare the
engines on equal work, this runs the real ``build`` (normalize, state database,
snapshot, forked workers, atomic writes, manifest) with CONFIG's
``feed_max_items`` at its maximum and every artifact but those 202 documents
dropped. It is a benchmark device, not a publisher feature: the feeds' links
would point at pages it does not write.
"""

from __future__ import annotations

import sys
from pathlib import Path

import publisher.site as site
from publisher.build import build
from publisher.settings import load_settings

PELICAN_FILES = (".atom", ".rss")


def _pelicans(path: str) -> bool:
    return path in ("all.atom", "all.rss") or (
        path.startswith("tag/") and path.endswith(PELICAN_FILES)
    )


def main() -> None:
    config, archives = Path(sys.argv[1]), Path(sys.argv[2])
    everything = site.artifacts

    def pelicans_only(*args, **kwargs):  # type: ignore[no-untyped-def]
        return (a for a in everything(*args, **kwargs) if _pelicans(a.path))

    site.artifacts = pelicans_only  # build looks it up on each call
    settings = load_settings(config)
    result = build(settings, [archives], Path(settings.build.output))
    assert result.written == 2 + 2 * sum(1 for _ in archives.glob("*.txt")), result.summary()
    print(result.summary())


if __name__ == "__main__":
    main()
