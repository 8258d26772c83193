"""Each command: settings and parsed arguments in, an exit status out.

Imports of the stages happen inside each command, so that a command loads
only what it uses (a no-change build never imports SQLAlchemy).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import PublisherError
from publisher.settings import Settings
from publisher.source.load import load_stream
from publisher.source.raw import TermKind

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from publisher.newsletter.run import DigestRun
    from publisher.weeks import Period


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.source.files import archive_files

    paths = list(args.paths) or [Path(settings.build.seeds)]
    if not archive_files(paths):  # a check of nothing must not pass
        raise PublisherError(
            f"no archive files (*.txt) in {', '.join(map(str, paths))}",
            "name archive files or a folder of *.txt pages (default: [build] seeds)",
        )
    stream = load_stream(settings, args.paths or None)
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
    stream = load_stream(settings, args.paths or None)
    for problem in stream.problems:
        print(problem, file=sys.stderr)
    posts = list(stream.posts)
    if args.tag:
        want = args.tag.casefold()
        terms = [t for t in stream.terms_of(TermKind.TAG) if want in (t.name.casefold(), t.slug)]
        if not terms:
            raise PublisherError(
                f"no tag named '{args.tag}'",
                "known tags: " + ", ".join(t.name for t in stream.terms_of(TermKind.TAG)),
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
    out = Path(args.out) if args.out else Path(settings.build.output)
    if args.no_cache:
        settings = replace(settings, build=replace(settings.build, cache=False))
    paths = list(args.paths) or [Path(settings.build.seeds)]
    progress = sys.stderr.isatty() and not args.quiet
    from publisher.site.build import build

    result = build(
        settings,
        paths,
        out,
        skip_invalid=args.skip_invalid,
        progress=progress,
        jobs=args.jobs,
        full=args.full,
        overwrite=args.overwrite,
        # this process exists for the build and has not imported SQLAlchemy: a
        # helper imports it and opens the database while the archives are read
        state_helper=True,
    )
    for line in result.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"{result.summary()}; output in {out}")
    return 0


def _now(settings: Settings):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.now(settings.site.tzinfo)


def _warn_unknown_tags(settings: Settings, tags: Iterable[str]) -> None:
    """A tag chosen that no archive has (a typo, most likely): its subscribers would
    get nothing, with no word. Compared by slug, so case and spacing do not matter;
    said only when the archives can be read."""
    if not tags:
        return
    from publisher.text import slugify

    try:
        stream = load_stream(settings)
    except PublisherError:
        return
    known = stream.terms_of(TermKind.TAG)
    slugs = {t.slug for t in known}
    for tag in sorted({t for t in tags if slugify(t, "tag") not in slugs}):
        print(
            f"warning: no archive has the tag ‘{tag}’: its subscribers get no post of it "
            f"until one does (tags: {', '.join(t.name for t in known)})",
            file=sys.stderr,
        )


def _where(settings: Settings) -> str:
    if settings.delivery.method == "smtp":
        return f"through {settings.smtp.host}:{settings.smtp.port}"
    return f"into the outbox {settings.delivery.outbox}"


def _period(args: argparse.Namespace, now: datetime, tz: tzinfo) -> Period:
    """``--month``, ``--week``, or the last completed week."""
    from publisher.weeks import last_completed_week, parse_month, parse_week

    if args.month:
        return parse_month(args.month, tz)
    return parse_week(args.week, tz) if args.week else last_completed_week(now, tz)


def cmd_digest(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.newsletter import review
    from publisher.newsletter import run as newsletter

    now = _now(settings)
    if args.out and not args.preview:
        raise PublisherError(
            "--out goes with --preview EMAIL", "add --preview EMAIL, or leave out --out"
        )
    week = _period(args, now, settings.site.tzinfo)
    if (args.send or args.draft or args.test) and week.end > now and not args.force:
        raise PublisherError(
            f"{week.label} has not ended yet (it ends {week.end:%A %-d %B %H:%M}): its digest "
            "would miss the week's later posts, and its list of posts is fixed once sent",
            "wait until then, or send it anyway with --force (the dry run shows it now)",
        )
    real = bool(args.send or args.test) and settings.delivery.method == "smtp"
    run = newsletter.open_run(settings, week, real_delivery=real)
    if args.test:
        sent = review.test(run, newsletter.transport_for(settings), args.test, now)
        print(f"{week.label}: a test message to {sent} ({_where(settings)}); ledger untouched")
        return 0
    if args.preview:
        if not args.out or args.out.suffix not in (".html", ".eml"):
            raise PublisherError("--preview needs --out FILE.html or FILE.eml")
        print(f"wrote {review.preview(run, args.preview, args.out, now)}")
        return 0
    if args.draft:
        n = review.draft(
            run, newsletter.transport_for(settings, Path(settings.delivery.outbox)), now
        )
        print(f"{week.label}: {n} draft message(s) in the outbox {settings.delivery.outbox}")
        return 0
    if not args.send:
        print(f"{week.label}: {len(run.posts)} post(s) in the week")
        for line in review.dry_run(run):
            print(line)
        print("(dry run: nothing sent; use --send to deliver)", file=sys.stderr)
        return 0
    from publisher.site.digests import publish_web_copy

    summary = newsletter.send(
        run,
        newsletter.transport_for(settings),
        lambda: _now(settings),
        progress=sys.stderr.isatty() and not args.quiet,
        planned=lambda: publish_web_copy(settings),
    )
    print(f"{week.label}: {summary} ({_where(settings)})")
    print(_returns_line(run))
    if summary.reason:
        print(
            "fix: check [delivery] (the outbox folder) or [smtp] (and PUBLISHER_SMTP_PASSWORD), "
            "and [digest] from, then run `publisher digest --send` again: what was sent is "
            "not sent twice",
            file=sys.stderr,
        )
    return 1 if summary.failed or summary.deferred else 0


def _returns_line(run: DigestRun) -> str:
    """How many returns (bounces, complaints, unsubscribe mails) were processed since
    the digest before this one was planned."""
    from publisher.store.returns import ReturnsLog

    earlier = [d for d in run.ledger.sent_digests() if d.week < run.week.label]
    since = max((d.created for d in earlier), default="")
    count = ReturnsLog(run.ledger.engine).since(since)
    what = f"since {earlier[-1].week}'s digest" if earlier else "so far"
    return f"{count} return(s) processed {what} (publisher mailbox)"


def cmd_mailbox(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.delivery.mailbox import open_source
    from publisher.newsletter.feedback import open_feedback

    summary = open_feedback(settings).read(
        open_source(settings.mailbox, args.maildir), _now(settings)
    )
    for key, subject, why in summary.unrecognised:
        print(f"left: {key}: {subject!r}: {why}", file=sys.stderr)
    print(summary)
    return 0


def cmd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    from publisher.jobs import scheduler as schedule

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.list:
        for line in schedule.describe(settings):
            print(line)
        return 0
    if args.run_now:
        return schedule.run_now(settings, args.run_now)
    return schedule.run_scheduler(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.web.server import serve

    return serve(settings, args.host, args.port, dev=args.dev)


def cmd_subscribers(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.cli.subscribers import run

    return run(settings, args)


COMMANDS = {
    "check": cmd_check,
    "posts": cmd_posts,
    "build": cmd_build,
    "subscribers": cmd_subscribers,
    "digest": cmd_digest,
    "schedule": cmd_schedule,
    "serve": cmd_serve,
    "mailbox": cmd_mailbox,
}
