"""``publisher subscribers ...``: the list's owner at work, and a person's data rights
(``show``, ``forget``) at their request."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.cli.commands import _now, _warn_unknown_tags
from publisher.errors import PublisherError, Severity
from publisher.settings import Settings

if TYPE_CHECKING:
    from publisher.store.rows import Subscriber
    from publisher.store.subscribers import SubscriberStore


def run(settings: Settings, args: argparse.Namespace) -> int:
    from publisher.store.schema import open_engine
    from publisher.store.subscribers import SubscriberStore

    # erased addresses are known by their keyed hash: only with the secret
    store = SubscriberStore(open_engine(settings.state.url), os.environ.get("PUBLISHER_SECRET", ""))
    action = {
        "add": _subs_add,
        "remove": _subs_remove,
        "list": _subs_list,
        "import": _subs_import,
        "export": _subs_export,
        "show": _subs_show,
        "forget": _subs_forget,
    }[args.subcommand]
    return action(settings, store, args, _now(settings))


def _subs_add(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    from publisher.store.rows import SUPPRESSED

    sub, created = store.add(
        args.email, args.name, args.tag, now=now, revive=args.resubscribe, cadence=args.cadence
    )
    if sub.status in SUPPRESSED:
        raise PublisherError(
            f"{sub.email} is {sub.status.value}: left as it is",
            "they can sign up again on the subscribe page; if they asked you to "
            "(or a bounced address works again), add it with --resubscribe",
        )
    if args.resubscribe and store.secret:
        from publisher.store.people import unforget

        unforget(store.engine, sub.email, store.secret)  # at their word
    tags = ", ".join(sub.tags) or "all posts"
    print(f"{'added' if created else 'updated'} {sub.email} ({tags}, {sub.cadence})")
    _warn_unknown_tags(settings, sub.tags)
    return 0


def _subs_remove(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    if not store.remove(args.email, now):
        raise PublisherError(f"no subscriber {args.email}", "see `publisher subscribers list`")
    print(f"unsubscribed {args.email}")
    return 0


def _subs_list(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    from publisher.store.rows import Status

    status = Status(args.status) if args.status else None
    for s in store.all(status):
        print(f"{s.email}\t{s.name}\t{';'.join(s.tags) or '*'}\t{s.status.value}")
    return 0


def _subs_export(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    store.export_csv(sys.stdout)
    return 0


def _subs_import(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    from publisher.store.rows import Status

    try:
        data = args.file.read_bytes()
    except FileNotFoundError:
        raise PublisherError(f"{args.file}: no such file", "check the path") from None
    try:  # whole, before any row goes in: a bad byte on line 900 imports nothing
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PublisherError(
            f"{args.file}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); "
            "nothing was imported",
            "save the file as UTF-8 (in Excel: 'CSV UTF-8') and import it again",
        ) from None
    added, updated, problems = store.import_csv(io.StringIO(text, newline=""), str(args.file), now)
    for problem in problems:
        print(problem, file=sys.stderr)
    bad = sum(p.severity == Severity.ERROR for p in problems)
    kept = len(problems) - bad
    print(
        f"imported {added} new, {updated} updated, {bad} bad row(s) skipped"
        + (f", {kept} unsubscribed, bounced or erased left as they are" if kept else "")
    )
    _warn_unknown_tags(settings, {t for s in store.all(Status.ACTIVE) for t in s.tags})
    return 1 if bad else 0


def _subs_show(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    """Everything held about one person (UK GDPR article 15), as JSON."""
    from publisher.store.people import person_record

    sub = _known(store, args.email)
    print(json.dumps(person_record(store.engine, sub), indent=2, ensure_ascii=False))
    return 0


def _subs_forget(
    settings: Settings, store: SubscriberStore, args: argparse.Namespace, now: datetime
) -> int:
    """Erase one person everywhere the project keeps them (UK GDPR article 17)."""
    from publisher.store.people import forget, purge_outbox

    sub = _known(store, args.email)
    if not store.secret:
        raise PublisherError(
            "PUBLISHER_SECRET is not set: an erased address is kept only as a hash keyed "
            "with it, so that it stays suppressed",
            "run it with PUBLISHER_SECRET set as `serve` and `digest --send` have it",
        )
    gone = forget(store.engine, sub, store.secret, now)
    copies = purge_outbox(Path(settings.delivery.outbox), sub.email)
    print(
        f"forgot {sub.email}: its subscriber row, {gone['ledger rows']} ledger row(s), "
        f"{gone['returns']} return(s) and {copies} outbox cop(y/ies); a keyed hash of "
        "the address is kept so that it stays suppressed"
    )
    return 0


def _known(store: SubscriberStore, email: str) -> Subscriber:
    sub = store.by_email(email)
    if sub is None:
        raise PublisherError(f"no subscriber {email}", "see `publisher subscribers list`")
    return sub
