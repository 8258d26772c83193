"""Crontab expressions in the site time zone, as APScheduler triggers."""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger


def parse_cron(expr: str, tz: tzinfo) -> CronTrigger:
    """Five crontab fields, or six with seconds first (for tests and fast demos)."""
    fields = expr.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expr, timezone=tz)
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=tz,
        )
    raise ValueError(f"expected 5 fields, got {len(fields)}")
