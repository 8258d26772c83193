"""The command line's grammar: every command, option and its help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.store.rows import Status

#: What each command's ``--help`` ends with.
EXAMPLES = {
    "check": ["publisher check", "publisher check seeds/thanks.txt"],
    "posts": ["publisher posts --tag digital", "publisher posts --json | head -3"],
    "build": ["publisher build", "publisher build --out /var/www/feeds --no-cache"],
    "subscribers": [
        "publisher subscribers add reader@example.org --tag digital",
        "publisher subscribers list --status bounced",
        "publisher subscribers export > subscribers.csv",
        "publisher subscribers show reader@example.org",
    ],
    "digest": [
        "publisher digest --week 2019-W07",
        "publisher digest --week 2019-W07 --preview reader@example.org --out preview.html",
        "publisher digest --week 2019-W07 --test me@example.org",
        "publisher digest --month 2019-02 --send",
        "publisher digest --send",
    ],
    "serve": ["publisher serve --dev", "PUBLISHER_SECRET=... publisher serve --port 8000"],
    "mailbox": ["publisher mailbox --maildir ~/Maildir/.bounces", "publisher mailbox"],
    "schedule": ["publisher schedule --list", "publisher schedule --run-now digest"],
}


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of command ``name`` (so that its own usage goes with its errors)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser


def make_parser() -> argparse.ArgumentParser:
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
    _build_parser(sub)
    _subscribers_parser(sub)
    _digest_parser(sub)
    srv = sub.add_parser("serve", help="serve the site and the subscription pages")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on")
    srv.add_argument("--port", type=int, default=8000, help="port to listen on")
    srv.add_argument(
        "--dev",
        action="store_true",
        help="without PUBLISHER_SECRET: sign links with the public development secret "
        "and listen on loopback only (to try the pages on your own machine)",
    )
    box = sub.add_parser(
        "mailbox",
        help="act on bounces, complaints and unsubscribe mails that came back",
        description="Read the mailbox of returns ([mailbox] url: imaps:// or pop3s://, "
        "or --maildir) and act on each message once: a hard bounce marks the address "
        "bounced, a soft one counts towards [delivery] bounce_limit, a complaint "
        "unsubscribes it as complained, an unsubscribe mail unsubscribes. Recognised "
        "mail is marked processed (never deleted); the rest is left and listed.",
    )
    box.add_argument("--maildir", type=Path, help="read this Maildir instead of [mailbox] url")
    sched = sub.add_parser("schedule", help="run the publish and digest jobs on schedule")
    group = sched.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="print jobs and next run times")
    group.add_argument(
        "--run-now", choices=["publish", "digest", "monthly", "mailbox"], help="run one job now"
    )
    for name, command in sub.choices.items():
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
    return parser


if TYPE_CHECKING:  # argparse's own name for what ``add_subparsers`` gives
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _build_parser(sub: Subparsers) -> None:
    build = sub.add_parser("build", help="write feeds, pages and OPML to the output folder")
    build.add_argument("paths", nargs="*", type=Path)
    build.add_argument("--out", type=Path, help="output folder (default: [build] output)")
    build.add_argument(
        "--skip-invalid",
        action="store_true",
        help="publish the good posts even if some archives have errors",
    )
    build.add_argument(
        "--full",
        action="store_true",
        help="read every archive, not only those changed since the last build's snapshot",
    )
    build.add_argument(
        "--no-cache",
        action="store_true",
        help="keep no snapshot for the next build (as [build] cache = false): for one-off builds",
    )
    build.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in the output folder that publisher did not write",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--jobs", type=int, default=0, help="worker processes for rendering (default: CPU count)"
    )


def _subscribers_parser(sub: Subparsers) -> None:
    subs = sub.add_parser("subscribers", help="manage digest subscribers")
    subs_cmd = subs.add_subparsers(dest="subcommand", required=True, metavar="ACTION")
    add = subs_cmd.add_parser("add", help="add or update a subscriber (active at once)")
    add.add_argument("email")
    add.add_argument("--name", help="the name to greet them by (kept if not given)")
    add.add_argument(
        "--tag",
        action="append",
        help="a topic; repeat for more (none: every post, or, for a subscriber, as before)",
    )
    add.add_argument(
        "--resubscribe",
        action="store_true",
        help="make an unsubscribed, bounced or erased address active again (only at its "
        "owner's word)",
    )
    add.add_argument(
        "--cadence",
        choices=["weekly", "monthly"],
        help="how often they get the digest (new: weekly; kept if not given)",
    )
    rm = subs_cmd.add_parser("remove", help="unsubscribe an address")
    rm.add_argument("email")
    ls = subs_cmd.add_parser("list", help="list subscribers")
    ls.add_argument("--status", choices=[s.value for s in Status])
    imp = subs_cmd.add_parser("import", help="import email,name,tags rows from CSV")
    imp.add_argument("file", type=Path)
    subs_cmd.add_parser("export", help="write every subscriber as CSV to stdout")
    show = subs_cmd.add_parser("show", help="everything held about one person, as JSON")
    show.add_argument("email")
    forget = subs_cmd.add_parser(
        "forget",
        help="erase one person: subscriber row, ledger rows, returns, outbox copies "
        "(a keyed hash keeps the address suppressed)",
    )
    forget.add_argument("email")


def _digest_parser(sub: Subparsers) -> None:
    digest = sub.add_parser("digest", help="the weekly email digest")
    period = digest.add_mutually_exclusive_group()
    period.add_argument("--week", help="ISO week like 2019-W07 (default: last completed week)")
    period.add_argument(
        "--month", help="a month like 2019-02: the monthly digest, for monthly subscribers"
    )
    mode = digest.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print who would get what (default)")
    mode.add_argument("--send", action="store_true", help="deliver through [delivery] method")
    mode.add_argument("--draft", action="store_true", help="render every message to the outbox")
    mode.add_argument("--preview", metavar="EMAIL", help="write one subscriber's digest to --out")
    mode.add_argument(
        "--test",
        metavar="ADDRESS",
        help="send the digest to ADDRESS alone, through [delivery] method, subject marked "
        "[TEST]; the ledger is untouched (check it in real mail clients, and the "
        "relay's DKIM signature)",
    )
    digest.add_argument("--out", type=Path, help="with --preview: FILE.html or FILE.eml")
    digest.add_argument("--quiet", action="store_true", help="no progress bar")
    digest.add_argument(
        "--force",
        action="store_true",
        help="send (or draft) a week that has not ended yet",
    )
