"""Crontab expressions in the site time zone, as APScheduler triggers."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


def poll_minutes(expr: str) -> int:
    """How often a crontab runs, in minutes, for feed readers' polling hints (RSS
    ``ttl``, ``sy:updateFrequency``): ``*/15 * * * *`` every 15, ``0 * * * *``
    every 60; any other schedule reads as hourly. Without APScheduler: a build
    asks this."""
    fields = expr.split()
    if len(fields) == 6:
        fields = fields[1:]
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        return 60
    minute, hour = fields[0], fields[1]
    if hour == "*" and minute.startswith("*/") and minute[2:].isdigit() and int(minute[2:]) > 0:
        return min(int(minute[2:]), 60)
    if hour == "*" and minute == "*":
        return 1
    if minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit() and int(hour[2:]) > 0:
        return 60 * int(hour[2:])
    return 60


def parse_cron(expr: str, tz: tzinfo) -> CronTrigger:
    """Five crontab fields, or six with seconds first (for tests and fast demos)."""
    from apscheduler.triggers.cron import CronTrigger

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
