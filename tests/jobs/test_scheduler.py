"""The scheduler: APScheduler jobs on the state database, real SMTP, real processes."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from dateutil import tz

from publisher.config import load_settings
from publisher.crontab import parse_cron
from publisher.errors import PublisherError
from publisher.jobs import scheduler as schedule
from publisher.settings import Settings
from publisher.store.lease import Lease
from publisher.store.schema import deliveries, open_engine, scheduler_lease
from publisher.store.subscribers import SubscriberStore
from publisher.weeks import last_completed_week
from tests.helpers import SECRET, smtp_settings, write
from tests.helpers.archives import long_date
from tests.helpers.smtp import SmtpServer

LONDON = tz.gettz("Europe/London")


def make_site(tmp: Path, smtp_port: int, extra: str = "", state_url: str = "") -> Settings:
    """Archives with a post in the last completed week (relative to now) and one older."""
    last_week = last_completed_week(datetime.now(LONDON), LONDON).start.date() + timedelta(days=2)
    write(
        tmp / "seeds" / "news.txt",
        f"Posts Tagged ‘news’\n\nFresh news\n\n{long_date(last_week)}\n\nIt happened.\n\n"
        f"Old news\n\n{long_date(date(2019, 2, 11))}\n\nLong ago.\n",
    )
    s = smtp_settings(
        tmp,
        smtp_port,
        seeds=tmp / "seeds",
        output=(tmp / "site").as_posix(),
        extra=extra,
        state_url=state_url,
    )
    SubscriberStore(open_engine(s.state.url)).add("reader@example.org", now=datetime.now(LONDON))
    return s


def test_jobs_created_replaced_and_listed_across_dst(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    s = load_settings(cfg, environ={})
    sched = schedule.make_scheduler(s)
    sched.start(paused=True)
    schedule.install_jobs(sched, s)
    assert sorted(j.id for j in sched.get_jobs()) == ["digest", "monthly", "publish", "retry"]
    sched.shutdown()
    cfg.write_text(cfg.read_text() + '[schedule]\ndigest_cron = "30 8 * * tue"\n', encoding="utf-8")
    s2 = load_settings(cfg, environ={})
    sched = schedule.make_scheduler(s2)
    sched.start(paused=True)
    schedule.install_jobs(sched, s2)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert len(jobs) == 4 and "hour='8'" in str(jobs["digest"].trigger)
    nxt = jobs["digest"].next_run_time.astimezone(LONDON)
    assert (nxt.weekday(), nxt.hour, nxt.minute) == (1, 8, 30)
    sched.shutdown()
    # DST: Monday 07:00 stays 07:00 local after the March and October changes
    spring = schedule.describe(s, datetime(2026, 3, 27, 12, 0, tzinfo=LONDON))
    autumn = schedule.describe(s, datetime(2026, 10, 24, 12, 0, tzinfo=LONDON))
    assert "digest\t0 7 * * mon\tnext 2026-03-30 07:00:00 BST" in spring
    assert "digest\t0 7 * * mon\tnext 2026-10-26 07:00:00 GMT" in autumn
    trigger = parse_cron("0 7 * * mon", LONDON)
    march = trigger.get_next_fire_time(None, datetime(2026, 3, 27, tzinfo=LONDON))
    assert march.utcoffset() == timedelta(hours=1) and march.hour == 7


def test_bad_cron_is_a_config_error(tmp_path: Path) -> None:
    from publisher.errors import ConfigError

    cfg = tmp_path / "p.toml"
    cfg.write_text('[schedule]\ndigest_cron = "every monday"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[schedule\] digest_cron"):
        load_settings(cfg, environ={})


def _run_in_thread(s: Settings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    t = threading.Thread(target=schedule.run_scheduler, args=(s, stop), daemon=True)
    t.start()
    return t, stop


def _set_pending(s: Settings, job_id: str, when: datetime) -> None:
    """Pretend the process was down: the job store holds a run time in the past."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    sched = schedule.make_scheduler(s)
    sched.start(paused=True)
    schedule.install_jobs(sched, s)
    sched.shutdown()
    # edit the stored job directly: a running scheduler would move it on at once
    store = SQLAlchemyJobStore(url=s.state.url, tablename="apscheduler_jobs")
    store.start(schedule.make_scheduler(s), "default")
    job = store.lookup_job(job_id)
    job._modify(next_run_time=when)
    store.update_job(job)
    store.shutdown()


def _wait(cond, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_missed_slot_within_grace_sent_once_and_not_after_restart(
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    state_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On SQLite and on PostgreSQL (the job store and the ledger both live there)."""
    caplog.set_level(logging.INFO, logger="publisher.jobs.scheduler")
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = make_site(tmp_path, smtp.port, '[schedule]\npublish_cron = "0 0 1 1 *"\n', state_url)
    _set_pending(s, "digest", datetime.now(LONDON) - timedelta(minutes=30))
    t, stop = _run_in_thread(s)
    assert _wait(lambda: len(smtp.recorder.messages) == 1)
    time.sleep(0.5)
    stop.set()
    t.join(10)
    assert "Fresh news" in smtp.recorder.messages[0].get_body(("plain",)).get_content()
    # restart with the slot pending again: the job runs, the ledger says sent, and
    # nothing goes out
    caplog.clear()
    _set_pending(s, "digest", datetime.now(LONDON) - timedelta(minutes=5))
    t, stop = _run_in_thread(s)
    ran = _wait(lambda: "job=digest" in caplog.text and "outcome=sent sent=0" in caplog.text)
    stop.set()
    t.join(10)
    assert ran, caplog.text  # the job did run after the restart
    assert len(smtp.recorder.messages) == 1


def test_missed_slot_beyond_grace_is_skipped_and_logged(
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = make_site(
        tmp_path,
        smtp.port,
        '[schedule]\npublish_cron = "0 0 1 1 *"\nmisfire_grace_seconds = 3600\n',
    )
    _set_pending(s, "digest", datetime.now(LONDON) - timedelta(hours=3))
    caplog.set_level(logging.WARNING, logger="publisher.jobs.scheduler")
    t, stop = _run_in_thread(s)
    assert _wait(lambda: "outcome=missed" in caplog.text)
    stop.set()
    t.join(10)
    assert not smtp.recorder.messages
    assert "job=digest outcome=missed" in caplog.text and "--run-now digest" in caplog.text


def test_broken_archives_block_the_digest(
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = make_site(tmp_path, smtp.port)
    write(tmp_path / "seeds" / "bad.txt", "")
    caplog.set_level(logging.INFO, logger="publisher.jobs.scheduler")
    assert schedule.run_now(s, "digest") == 1
    assert not smtp.recorder.messages
    assert "job=digest" in caplog.text and "outcome=not-sent" in caplog.text


def test_two_schedulers_only_one_acts(tmp_path: Path, smtp: SmtpServer, state_url: str) -> None:
    s = make_site(tmp_path, smtp.port, state_url=state_url)
    engine = open_engine(s.state.url)
    first = Lease(engine, "first")
    first.acquire()
    with pytest.raises(PublisherError, match="another scheduler") as exc:
        Lease(engine, "second").acquire()
    assert exc.value.exit_code == 3
    first.release()
    Lease(engine, "second").acquire()  # free once the first is gone


def _take_lease(name: str, engine: sa.Engine, start: threading.Barrier, out: list[str]) -> None:
    start.wait()
    try:
        Lease(engine, name).acquire()
        out.append("acts")
    except PublisherError as exc:
        out.append(f"refused {exc.exit_code}")
    except Exception as exc:  # noqa: BLE001 - recorded: the test fails on it
        out.append(repr(exc))


def test_two_schedulers_starting_together_only_one_acts(state_url: str) -> None:
    """Started at the same moment, again and again: one takes the lease, the other
    is refused with the usual error, never both (nor a database error)."""
    engines = [open_engine(state_url) for _ in range(2)]
    for _ in range(25):
        with engines[0].begin() as conn:
            conn.execute(scheduler_lease.delete())
        start, outcomes = threading.Barrier(2), []
        threads = [
            threading.Thread(target=_take_lease, args=(f"s{i}", e, start, outcomes))
            for i, e in enumerate(engines)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["acts", "refused 3"]


def test_publish_job_rebuilds_only_what_changed(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    s = make_site(tmp_path, smtp.port)
    caplog.set_level(logging.INFO, logger="publisher.jobs.scheduler")
    assert schedule.run_now(s, "publish") == 0
    assert "job=publish outcome=published" in caplog.text
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*.html")}
    caplog.clear()
    assert schedule.run_now(s, "publish") == 0
    assert "outcome=unchanged" in caplog.text
    f = tmp_path / "seeds" / "news.txt"
    f.write_text(
        f.read_text(encoding="utf-8").replace("Long ago.", "Long, long ago."), encoding="utf-8"
    )
    caplog.clear()
    assert schedule.run_now(s, "publish") == 0
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*.html")}
    changed = sorted(
        p.relative_to(tmp_path / "site").as_posix() for p in after if after[p] != before.get(p)
    )
    # the pages that show its words: its own, its tag's, its year's, and the index
    # (one of the newest posts)
    assert changed == ["index.html", "posts/old-news.html", "tag/news.html", "years/2019.html"]
    assert gc.get_freeze_count() == 0  # a long-running scheduler keeps nothing frozen


def test_real_scheduler_process_sends_then_stops_cleanly_on_sigterm(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    s = make_site(
        tmp_path,
        smtp.port,
        '[schedule]\npublish_cron = "*/2 * * * * *"\ndigest_cron = "*/3 * * * * *"\n',
    )
    smtp.recorder.delay = 0.3  # a slow server, so SIGTERM can land mid-send
    store = SubscriberStore(open_engine(s.state.url))
    for i in range(5):
        store.add(f"more{i}@example.org", now=datetime.now(LONDON))
    env = {**os.environ, "PUBLISHER_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "schedule"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # both jobs have run: two messages out, and the site written (the publish job's
        # first slot may come after the digest's: waiting for messages alone raced it)
        manifest = tmp_path / "site" / ".publisher-manifest.json"
        assert _wait(lambda: len(smtp.recorder.messages) >= 2 and manifest.is_file(), timeout=30)
        second = subprocess.run(
            [sys.executable, "-m", "publisher", "schedule"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 3 and "another scheduler" in second.stderr
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "scheduler stopped cleanly" in err and "job=publish" in err
    with open_engine(s.state.url).connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.status)).scalars().all()
    assert "sending" not in rows  # the message in flight was finished and recorded
    sent = rows.count("sent")
    assert sent == len(smtp.recorder.messages) >= 2
    assert len({m["To"] for m in smtp.recorder.messages}) == sent  # nobody got it twice
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_retry_job_finishes_a_digest_the_server_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The SMTP server is down at the digest slot: the run stops with the reason.
    Every 15 minutes the retry job tries the week again; once the server is back
    the digest goes, once; then, and for a digest planned over RETRY_HOURS ago,
    it does nothing. (Before, the week's digest waited for someone to notice.)"""
    from tests.helpers.smtp import free_port

    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    port = free_port()
    s = make_site(tmp_path, port)  # nothing listens there yet
    caplog.set_level(logging.INFO, logger="publisher.jobs.scheduler")
    schedule.run_now(s, "digest")
    assert (
        "job=digest" in caplog.text and f"reason='cannot connect to 127.0.0.1:{port}" in caplog.text
    )
    assert "the retry job tries again" in caplog.text
    caplog.clear()
    schedule.run_now(s, "retry")  # still down: tried, stopped again
    assert "job=retry" in caplog.text and "outcome=stopped" in caplog.text
    server = SmtpServer()
    server.port = server.controller.port = port
    with server:
        caplog.clear()
        schedule.run_now(s, "retry")
        assert "job=retry" in caplog.text and "outcome=sent sent=1" in caplog.text
        caplog.clear()
        assert schedule.JOBS["retry"] is schedule.retry_job
        schedule.run_now(s, "retry")  # nothing left: not even a log line
        assert "job=retry" not in caplog.text
    assert [m["To"] for m in server.recorder.messages] == ["reader@example.org"]

    # a digest planned more than RETRY_HOURS ago is left to a person
    engine = open_engine(s.state.url)
    with engine.begin() as conn:
        conn.execute(deliveries.update().values(status="deferred"))
        conn.execute(
            sa.text("UPDATE digests SET created = :c"),
            {"c": (datetime.now(LONDON) - timedelta(hours=schedule.RETRY_HOURS + 1)).isoformat()},
        )
    late = SmtpServer()
    late.port = late.controller.port = port
    with late:
        caplog.clear()
        schedule.run_now(s, "retry")
        assert not late.recorder.messages and "job=retry" not in caplog.text


def test_the_retry_job_sends_a_digest_the_archives_blocked_within_the_grace(
    tmp_path: Path,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The digest job finds the archives broken and plans nothing. Once they are
    fixed, the retry job sends the week, while the slot's misfire grace lasts (the
    window in which a missed slot still runs); after it, a person decides."""
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    # a slot at the start of this week (the first after the last week ended), and a
    # grace of eight days: the slot has passed and its grace lasts, whenever this runs
    s = make_site(
        tmp_path,
        smtp.port,
        '[schedule]\ndigest_cron = "0 0 * * *"\nmisfire_grace_seconds = 691200\n',
    )
    bad = write(tmp_path / "seeds" / "bad.txt", "")
    caplog.set_level(logging.INFO, logger="publisher.jobs.scheduler")
    assert schedule.run_now(s, "digest") == 1 and not smtp.recorder.messages
    schedule.run_now(s, "retry")  # still broken: not sent, said again
    assert "job=retry" in caplog.text and "outcome=not-sent" in caplog.text
    bad.unlink()
    caplog.clear()
    schedule.run_now(s, "retry")
    assert "job=retry" in caplog.text and "outcome=sent sent=1" in caplog.text
    assert [m["To"] for m in smtp.recorder.messages] == ["reader@example.org"]
    caplog.clear()
    schedule.run_now(s, "retry")  # sent: nothing left
    assert "job=retry" not in caplog.text and len(smtp.recorder.messages) == 1

    week = last_completed_week(datetime.now(LONDON), LONDON)
    if datetime.now(LONDON) - week.end > timedelta(minutes=2):  # the slot's grace is over
        short = make_site(tmp_path / "short", smtp.port, "[schedule]\ndigest_cron = "
                          '"0 0 * * *"\nmisfire_grace_seconds = 60\n')  # fmt: skip
        caplog.clear()
        schedule.run_now(short, "retry")
        assert "job=retry" not in caplog.text and len(smtp.recorder.messages) == 1


def test_the_mailbox_job_runs_only_with_a_mailbox_and_acts_on_returns(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No [mailbox] url: no mailbox job. With one: the job reads it (here a Maildir)
    and a complaint in it unsubscribes its subscriber."""
    import mailbox as maildir_lib

    from publisher.store.schema import open_engine
    from publisher.store.subscribers import SubscriberStore
    from tests.newsletter.test_returns import fixture

    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    s = make_site(tmp_path, smtp.port)
    assert [line.split("\t")[0] for line in schedule.describe(s)] == [
        "publish",
        "digest",
        "monthly",
        "retry",
    ]
    box_path = tmp_path / "returns"
    box = maildir_lib.Maildir(box_path, create=True)
    sub, _ = SubscriberStore(open_engine(s.state.url)).add(
        "angry@example.net", now=datetime.now(LONDON)
    )
    box.add(fixture("arf-complaint.eml", 1, sub.id, rcpt="angry@example.net"))
    box.close()
    s = make_site(tmp_path, smtp.port, f'[mailbox]\nurl = "maildir://{box_path.as_posix()}"\n')
    assert "mailbox" in [line.split("\t")[0] for line in schedule.describe(s)]
    assert schedule.run_now(s, "mailbox") == 0
    store = SubscriberStore(open_engine(s.state.url))
    assert store.by_email("angry@example.net").status.value == "complained"
