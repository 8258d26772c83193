"""ISO weeks in the site's time zone: Monday 00:00 to the next Monday 00:00."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from publisher.errors import PublisherError

_WEEK = re.compile(r"(\d{4})-?W(\d{2})")


@dataclass(frozen=True)
class Week:
    year: int
    number: int
    start: datetime  # Monday 00:00 local
    end: datetime  # next Monday 00:00 local (exclusive)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def week_of(day: date, tz: tzinfo) -> Week:
    year, number, _ = day.isocalendar()
    monday = date.fromisocalendar(year, number, 1)
    start = datetime.combine(monday, time(0), tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tz)
    return Week(year, number, start, end)


def parse_week(text: str, tz: tzinfo) -> Week:
    m = _WEEK.fullmatch(text.strip())
    if not m:
        raise PublisherError(f"'{text}' is not an ISO week", "write it like 2019-W07")
    year, number = int(m.group(1)), int(m.group(2))
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise PublisherError(
            f"{year} has no week {number}", "weeks run from W01 to W52 or W53"
        ) from None
    return week_of(monday, tz)


def last_completed_week(now: datetime, tz: tzinfo) -> Week:
    """The most recent week that has ended by ``now``."""
    return week_of(now.astimezone(tz).date() - timedelta(days=7), tz)
