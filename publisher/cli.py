"""Command line: parse arguments, run one command, turn PublisherError into a message.

Only :class:`PublisherError` is caught: anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from publisher import __version__
from publisher.errors import PublisherError
from publisher.pipeline import load_stream
from publisher.settings import Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="publisher",
        description="Archived WordPress pages in; feeds, a static site and email digests out.",
    )
    parser.add_argument("--version", action="version", version=f"publisher {__version__}")
    parser.add_argument(
        "--config", type=Path, help="TOML config file (default: ./publisher.toml if present)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="report every problem in the archives as FILE:LINE")
    check.add_argument("paths", nargs="*", type=Path, help="files or folders (default: seeds)")

    posts = sub.add_parser("posts", help="print the merged post stream")
    posts.add_argument("paths", nargs="*", type=Path)
    posts.add_argument("--json", action="store_true", help="JSON Lines, one post a line")
    posts.add_argument("--tag", help="only posts with this tag (display name or slug)")

    build = sub.add_parser("build", help="write feeds, pages and OPML to the output folder")
    build.add_argument("paths", nargs="*", type=Path)
    build.add_argument("--out", type=Path, help="output folder (default: [build] output)")
    build.add_argument(
        "--skip-invalid",
        action="store_true",
        help="publish the good posts even if some archives have errors",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--jobs", type=int, default=0, help="worker processes for rendering (default: CPU count)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return COMMANDS[args.command](settings, args)
    except PublisherError as exc:
        print(f"publisher: error: {exc}", file=sys.stderr)
        return exc.exit_code


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    stream = load_stream(settings, args.paths)
    for problem in stream.problems:
        print(problem)
    n_err = len(stream.errors)
    n_warn = len(stream.problems) - n_err
    print(
        f"{len(stream.posts)} posts, {n_err} error(s), {n_warn} warning(s)",
        file=sys.stderr,
    )
    return 1 if n_err else 0


def cmd_posts(settings: Settings, args: argparse.Namespace) -> int:
    stream = load_stream(settings, args.paths)
    for problem in stream.problems:
        print(problem, file=sys.stderr)
    posts = list(stream.posts)
    if args.tag:
        want = args.tag.casefold()
        terms = [t for t in stream.terms_of("tag") if want in (t.name.casefold(), t.slug)]
        if not terms:
            raise PublisherError(
                f"no tag named '{args.tag}'",
                "known tags: " + ", ".join(t.name for t in stream.terms_of("tag")),
            )
        posts = stream.posts_with(terms[0])
    if args.json:
        for post in posts:
            print(json.dumps(post.to_json(), ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("date", "title", "tags", "categories", "words", box=None)
        for post in posts:
            table.add_row(
                post.date.isoformat(),
                post.title,
                ", ".join(post.tags),
                ", ".join(post.categories),
                str(post.word_count),
            )
        Console(soft_wrap=True).print(table)
    return 1 if stream.errors else 0


def cmd_build(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.build import run_build

    return run_build(settings, args)


COMMANDS = {"check": cmd_check, "posts": cmd_posts, "build": cmd_build}
