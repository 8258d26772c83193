"""Digest periods in the site's time zone: ISO weeks (Monday 00:00 to the next
Monday 00:00) and calendar months (the 1st 00:00 to the next 1st 00:00).

Both have the same face (``label``, ``start``, ``end``, ``contains``,
``last_day``, ``name``, ``cadence``): a digest run needs no more of its period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from publisher.errors import PublisherError

_WEEK = re.compile(r"(\d{4})-?W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class _Span:
    """What a week and a month share: ``start`` to ``end`` (exclusive)."""

    start: datetime
    end: datetime

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Week(_Span):
    year: int
    number: int
    start: datetime  # Monday 00:00 local
    end: datetime  # next Monday 00:00 local (exclusive)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def name(self) -> str:
        """As a subject says it: "week of 11 February 2019"."""
        return f"week of {self.start:%-d %B %Y}"

    cadence = "weekly"


@dataclass(frozen=True)
class Month(_Span):
    year: int
    month: int
    start: datetime  # the 1st, 00:00 local
    end: datetime  # the next month's 1st, 00:00 local (exclusive)

    @property
    def label(self) -> str:
        return f"{self.year}-{self.month:02d}"

    @property
    def name(self) -> str:
        return f"{self.start:%B %Y}"

    cadence = "monthly"


#: A digest's period: a subscriber's cadence is one or the other.
Period = Week | Month


def month_of(day: date, tz: tzinfo) -> Month:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Month(
        first.year,
        first.month,
        datetime.combine(first, time(0), tz),
        datetime.combine(following, time(0), tz),
    )


def parse_month(text: str, tz: tzinfo) -> Month:
    m = _MONTH.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise PublisherError(f"'{text}' is not a month", "write it like 2019-02")
    return month_of(date(int(m.group(1)), int(m.group(2)), 1), tz)


def parse_period(label: str, tz: tzinfo) -> Period:
    """A digest's recorded label: a week (``2019-W07``) or a month (``2019-02``)."""
    return parse_week(label, tz) if "W" in label.upper() else parse_month(label, tz)


def last_completed_month(now: datetime, tz: tzinfo) -> Month:
    """The most recent calendar month that has ended by ``now``."""
    first = now.astimezone(tz).date().replace(day=1)
    return month_of(first - timedelta(days=1), tz)


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
