"""Command line: parse arguments, run one command, turn PublisherError into a message.

Only :class:`PublisherError` is caught: anything else is a bug and keeps its
traceback. The process-wide settings (the cyclic collector, where messages go)
are made here, once, at entry.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence

from publisher.cli.commands import COMMANDS
from publisher.cli.parser import command_parser, make_parser
from publisher.config import load_settings
from publisher.errors import PublisherError

#: Commands that run once and exit. They make millions of small acyclic objects (the
#: parsed archives, the stream, feed fragments) that reference counting frees;
#: the cyclic collector would only walk them again and again (and, in forked
#: render workers, touch their pages), so it is off for the process. The
#: long-running ``serve`` and ``schedule`` keep it on. Measured in
#: ``benchmarks/README.md``.
ONE_SHOT = frozenset({"check", "posts", "build", "subscribers", "digest", "mailbox"})


class _Stderr(logging.Handler):
    """Library messages to the terminal as they are written (a problem is already
    ``FILE:LINE: severity: message``; a warning says ``warning:``), to whatever
    ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _to_terminal() -> None:
    """The CLI decides what reaches the terminal: ``publisher``'s own messages from
    INFO up, plainly; ``schedule`` logs with times instead (see ``cmd_schedule``)."""
    logger = logging.getLogger("publisher")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # with the command's own usage, not the top level's
        command_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ONE_SHOT:
        gc.disable()
    if args.command != "schedule":
        _to_terminal()
    settings = None
    try:
        settings = load_settings(args.config)
        code = COMMANDS[args.command](settings, args)
        sys.stdout.flush()  # a reader gone is met here, not in a message at exit
        return code
    except PublisherError as exc:
        print(f"publisher: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `publisher posts | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    except Exception as exc:
        if settings is None or "sqlalchemy" not in sys.modules:  # not the database's
            raise
        from publisher.store.schema import failure

        error = failure(exc, settings.state.url)
        if error is None:
            raise
        print(f"publisher: error: {error}", file=sys.stderr)
        return error.exit_code
