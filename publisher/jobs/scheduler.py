"""``publisher schedule``: one long-lived process that publishes and sends digests on time.

APScheduler 3 with a persistent SQLAlchemyJobStore on the state database.
Restarting keeps a job's pending run time, so a slot missed while the process
was down runs once on start if within ``misfire_grace_seconds`` (and is logged
as missed otherwise). The delivery ledger, not the job store, decides what was
sent: a week already sent is never sent again. A lease row in the database lets
only one scheduler act at a time.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from publisher.crontab import parse_cron
from publisher.errors import PublisherError
from publisher.settings import Settings
from publisher.store.lease import HEARTBEAT_SECONDS, Lease
from publisher.store.schema import open_engine

if TYPE_CHECKING:
    from publisher.weeks import Period

log = logging.getLogger(__name__)
JOB_IDS = ("publish", "digest", "monthly", "retry", "mailbox")
#: How often the mailbox of returns is read, when [mailbox] url is set.
MAILBOX_CRON = "*/15 * * * *"
#: How often, and for how long after a week's digest was planned, the retry job
#: finishes what a digest run left (a server down at the digest slot, say).
RETRY_CRON = "*/15 * * * *"
RETRY_HOURS = 24


# -- the jobs (module-level functions: the job store keeps a reference to them) --


@dataclass
class _Context:
    settings: Settings
    stop: threading.Event


_CTX: _Context | None = None


def _ctx() -> _Context:
    if _CTX is None:
        raise RuntimeError("publisher job run outside `publisher schedule`")
    return _CTX


def mailbox_job() -> str:
    """Act on the bounces, complaints and unsubscribe mails that came back."""
    from publisher.delivery.mailbox import open_source
    from publisher.newsletter.feedback import open_feedback

    s = _ctx().settings
    start = time.monotonic()
    try:
        summary = open_feedback(s).read(open_source(s.mailbox), datetime.now(s.site.tzinfo))
    except PublisherError as exc:
        log.warning("job=mailbox outcome=failed reason=%r fix=%r", exc.message, exc.remedy)
        return "failed"
    log.info("job=mailbox outcome=read duration=%.2fs %s", time.monotonic() - start, summary)
    return "read"


def publish_job() -> str:
    """Rebuild the site; cheap when nothing changed."""
    return _publish()


def _publish() -> str:
    from publisher.site.build import build

    ctx = _ctx()
    s = ctx.settings
    start = time.monotonic()
    try:
        # jobs=1: no forking from a threaded process
        result = build(s, [Path(s.build.seeds)], Path(s.build.output), jobs=1)
    except PublisherError as exc:
        log.warning(
            "job=publish outcome=failed duration=%.2fs reason=%r fix=%r",
            time.monotonic() - start,
            exc.message,
            exc.remedy,
        )
        return "failed"
    outcome = (
        "unchanged" if result.up_to_date or not result.written + result.removed else "published"
    )
    log.info(
        "job=publish outcome=%s posts=%d written=%d unchanged=%d removed=%d duration=%.2fs",
        outcome,
        result.posts,
        result.written,
        result.unchanged,
        result.removed,
        time.monotonic() - start,
    )
    return outcome


def digest_job() -> str:
    """Send the last completed week's digest, unless the archives have errors."""
    return _digest()


def monthly_job() -> str:
    """Send the last completed month's digest to the monthly subscribers."""
    from publisher.weeks import last_completed_month

    s = _ctx().settings
    return _digest("monthly", last_completed_month(datetime.now(s.site.tzinfo), s.site.tzinfo))


def retry_job() -> str:
    """Finish the last completed week's digest if a run left messages unsent."""
    return _retry()


def _retry() -> str:
    """A digest the digest job planned, for ``RETRY_HOURS`` after: a server that
    was down, a refused login fixed since, a 4xx that has cleared. Or one it could
    not plan (the archives had errors), until the slot's misfire grace ends, the
    window in which a slot missed altogether still runs. One query when there is
    nothing to do."""
    from publisher.store.ledger import Ledger
    from publisher.weeks import last_completed_week

    s = _ctx().settings
    now = datetime.now(s.site.tzinfo)
    week = last_completed_week(now, s.site.tzinfo)
    engine = open_engine(s.state.url)
    try:  # every 15 minutes: its connections closed each time, not left to the collector
        ledger = Ledger(engine)
        record = ledger.digest(week.label)
        if record is not None and not ledger.to_send(record.id):
            return "nothing"
    finally:
        engine.dispose()
    if record is None:
        slot = parse_cron(s.schedule.digest_cron, s.site.tzinfo).get_next_fire_time(None, week.end)
        grace = timedelta(seconds=s.schedule.misfire_grace_seconds)
        if slot is None or not slot <= now <= slot + grace:
            return "nothing"  # the slot is to come, or was missed: a person decides
    elif now - datetime.fromisoformat(record.created) > timedelta(hours=RETRY_HOURS):
        return "too-late"
    return _digest("retry", week)  # the week checked, even if Monday 00:00 passed since


def _digest(job: str = "digest", week: Period | None = None) -> str:
    """Send ``week``'s digest (default: the last completed week)."""
    from publisher.newsletter import run as newsletter
    from publisher.site.digests import publish_web_copy
    from publisher.weeks import last_completed_week

    ctx = _ctx()
    s = ctx.settings
    start = time.monotonic()
    if week is None:
        week = last_completed_week(datetime.now(s.site.tzinfo), s.site.tzinfo)
    try:
        run = newsletter.open_run(s, week, real_delivery=s.delivery.method == "smtp")
        summary = newsletter.send(
            run,
            newsletter.transport_for(s),
            lambda: datetime.now(s.site.tzinfo),
            should_stop=ctx.stop.is_set,
            planned=lambda: publish_web_copy(s),
        )
    except PublisherError as exc:
        log.warning(
            "job=%s week=%s outcome=not-sent duration=%.2fs reason=%r fix=%r "
            "(the retry job tries again every 15 minutes while the slot's misfire grace lasts)",
            job,
            week.label,
            time.monotonic() - start,
            exc.message,
            exc.remedy,
        )
        return "not-sent"
    outcome = (
        "stopped"
        if summary.stopped
        else ("partial" if summary.failed or summary.deferred else "sent")
    )
    log.log(
        logging.WARNING if summary.reason else logging.INFO,
        "job=%s week=%s outcome=%s sent=%d skipped=%d failed=%d retried=%d deferred=%d "
        "duration=%.2fs%s",
        job,
        week.label,
        outcome,
        summary.sent,
        summary.skipped,
        summary.failed,
        summary.retried,
        summary.deferred,
        time.monotonic() - start,
        (
            f" reason={summary.reason!r} (the retry job tries again every 15 minutes for "
            f"{RETRY_HOURS} h; or: publisher digest --{_flag(week)} {week.label} --send)"
            if summary.reason
            else ""
        ),
    )
    return outcome


def _flag(period: Period) -> str:
    return "month" if period.cadence == "monthly" else "week"


JOBS: dict[str, Callable[[], str]] = {
    "publish": publish_job,
    "digest": digest_job,
    "monthly": monthly_job,
    "retry": retry_job,
    "mailbox": mailbox_job,
}


# -- the scheduler --


def _crons(settings: Settings) -> dict[str, str]:
    return {
        "publish": settings.schedule.publish_cron,
        "digest": settings.schedule.digest_cron,
        "monthly": settings.schedule.monthly_cron,
        "retry": RETRY_CRON,
        "mailbox": MAILBOX_CRON,
    }


def _job_ids(settings: Settings) -> tuple[str, ...]:
    """The jobs this configuration runs: the mailbox's only when one is set."""
    return tuple(j for j in JOB_IDS if j != "mailbox" or settings.mailbox.url)


def make_scheduler(settings: Settings) -> BackgroundScheduler:
    tz = settings.site.tzinfo
    return BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(url=settings.state.url, tablename="apscheduler_jobs")
        },
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.schedule.misfire_grace_seconds,
        },
        timezone=tz,
    )


def install_jobs(scheduler: BackgroundScheduler, settings: Settings) -> None:
    """Add or replace both jobs by id; a job whose schedule is unchanged keeps its
    pending run time, so a slot missed while the process was down is not lost."""
    crons = _crons(settings)
    for gone in set(JOB_IDS) - set(_job_ids(settings)):
        if scheduler.get_job(gone) is not None:
            scheduler.remove_job(gone)
    for job_id in _job_ids(settings):
        trigger = parse_cron(crons[job_id], settings.site.tzinfo)
        old = scheduler.get_job(job_id)
        kwargs = {}
        if old is not None and str(old.trigger) == str(trigger) and old.next_run_time is not None:
            kwargs["next_run_time"] = old.next_run_time
        scheduler.add_job(
            JOBS[job_id], trigger, id=job_id, name=job_id, replace_existing=True, **kwargs
        )


def describe(settings: Settings, now: datetime | None = None) -> list[str]:
    """Each job with its schedule and next run time in the site time zone."""
    tz = settings.site.tzinfo
    now = now or datetime.now(tz)
    crons = _crons(settings)
    lines = []
    for job_id in _job_ids(settings):
        trigger = parse_cron(crons[job_id], tz)
        nxt = trigger.get_next_fire_time(None, now)
        lines.append(f"{job_id}\t{crons[job_id]}\tnext {nxt.astimezone(tz):%Y-%m-%d %H:%M:%S %Z}")
    return lines


def _listener(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning(
            "job=%s outcome=missed scheduled=%s: the process was down or busy for longer "
            "than [schedule] misfire_grace_seconds; run `publisher schedule --run-now %s` "
            "if it should still happen",
            event.job_id,
            event.scheduled_run_time,
            event.job_id,
        )
    elif event.code == EVENT_JOB_ERROR:
        log.warning(
            "job=%s outcome=error scheduled=%s error=%r: retried at the next slot; "
            "see the traceback above",
            event.job_id,
            event.scheduled_run_time,
            event.exception,
        )


def run_scheduler(settings: Settings, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT: finish the message in flight, record it, exit 0."""
    global _CTX
    stop = stop or threading.Event()
    engine = open_engine(settings.state.url)
    lease = Lease(engine, f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    lease.acquire()
    _CTX = _Context(settings, stop)
    scheduler = make_scheduler(settings)
    scheduler.add_listener(_listener, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        scheduler.start(paused=True)
        install_jobs(scheduler, settings)
        for line in describe(settings):
            log.info("scheduled %s", line.replace("\t", " "))
        scheduler.resume()
        while not stop.wait(HEARTBEAT_SECONDS):
            if not lease.renew():
                log.error("lost the scheduler lease to another process; stopping")
                break
    finally:
        stop.set()  # running jobs see it between messages
        if scheduler.running:
            scheduler.shutdown(wait=True)
        lease.release()
        _CTX = None
        log.info("scheduler stopped cleanly")
    return 0


def run_now(settings: Settings, job_id: str) -> int:
    """Run one job at once, through the same function the scheduler calls."""
    global _CTX
    _CTX = _Context(settings, threading.Event())
    try:
        outcome = JOBS[job_id]()
    finally:
        _CTX = None
    return 0 if outcome in ("published", "unchanged", "sent", "stopped", "read") else 1
