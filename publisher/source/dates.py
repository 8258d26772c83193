"""Date lines and date-archive headers, in the English forms saved pages show.

A post's date line comes in many forms: ``Monday, February 11th, 2019``,
``February 11, 2019``, ``11 February 2019``, ``Mon, 11th Feb. 2019``,
``Feb 11 2019``. ``DATE_LINE`` takes them all (weekday optional, full or
abbreviated names, day before or after the month, ordinals and commas
optional) and ``read_date`` reads the parts as written: no date is invented.
A line shaped like a date that is not one (``Febuary 11th, 2019``) is
``DATE_LIKE``: it still separates posts (so no post is glued to the one
before), and python-dateutil gets one strict try at it (every part must be
written: parsed against two different defaults, it must give one date);
otherwise it is an error at its line.
"""

from __future__ import annotations

import re
from datetime import date, datetime

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_MONTH_WORDS = (
    {m.casefold(): i + 1 for i, m in enumerate(MONTHS)}
    | {m[:3].casefold(): i + 1 for i, m in enumerate(MONTHS)}
    | {"sept": 9}
)
_WEEKDAY_WORDS = (
    {w.casefold(): i for i, w in enumerate(WEEKDAYS)}
    | {w[:3].casefold(): i for i, w in enumerate(WEEKDAYS)}
    | {"tues": 1, "weds": 2, "thur": 3, "thurs": 3}
)

_MONTH = "|".join(sorted(_MONTH_WORDS, key=len, reverse=True))
_WEEKDAY = "|".join(sorted(_WEEKDAY_WORDS, key=len, reverse=True))
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
DATE_LINE = re.compile(
    rf"(?:(?P<weekday>{_WEEKDAY})\.?,?\s+)?"
    rf"(?:(?P<month>{_MONTH})\.?\s+(?P<day>{_DAY}),?"
    rf"|(?P<day2>{_DAY})\s+(?:of\s+)?(?P<month2>{_MONTH})\.?,?)"
    r"\s+(?P<year>\d{4})",
    re.I,
)
#: Shaped like a date line (a word, a day, a year) without being one we know.
DATE_LIKE = re.compile(
    rf"(?:[A-Za-z]{{3,9}}\.?,?\s+)?(?:[A-Za-z]{{3,9}}\.?\s+{_DAY}|{_DAY}\s+[A-Za-z]{{3,9}}\.?),?"
    r"\s+(?:19|20)\d{2}"
)
DATE_HEADER = re.compile(
    rf"Archive for\s+(?:(?P<month>{'|'.join(MONTHS)})(?:\s+(?P<day>{_DAY}))?,?\s+)?"
    r"(?P<year>\d{4})\s*",
    re.I,
)


def is_date_line(text: str) -> bool:
    """Whether ``text`` (stripped) separates a post's title from its body."""
    return bool(DATE_LINE.fullmatch(text) or DATE_LIKE.fullmatch(text))


def read_date(text: str) -> tuple[date | None, str]:
    """The date a date line says, and a problem to report ("" for none). A date is
    returned with a problem only for a weekday that does not match (a warning)."""
    m = DATE_LINE.fullmatch(text)
    if m is None:
        return _dateutil_strict(text)
    month = _MONTH_WORDS[(m["month"] or m["month2"]).casefold()]
    day = int((m["day"] or m["day2"]).rstrip("stndrhSTNDRH"))
    try:
        when = date(int(m["year"]), month, day)
    except ValueError:
        return None, f"impossible date '{text}': check the day of the month"
    weekday = m["weekday"]
    if weekday and _WEEKDAY_WORDS[weekday.casefold()] != when.weekday():
        actual = WEEKDAYS[when.weekday()]
        return when, (
            f"'{text}': {when:%B} {when.day}, {when.year} is a {actual}, "
            f"not a {weekday.capitalize()}; the date is used"
        )
    return when, ""


def _dateutil_strict(text: str) -> tuple[date | None, str]:
    from dateutil import parser

    cannot = (
        f"'{text}' looks like a date line but is not a date this can read: write it "
        "like 'Monday, February 11th, 2019' (the post is left out until then)"
    )
    try:
        one = parser.parse(text, default=datetime(2000, 1, 1), fuzzy=False)
        two = parser.parse(text, default=datetime(2001, 2, 2), fuzzy=False)
    except (ValueError, OverflowError):
        return None, cannot
    if one != two:  # a part was missing, and the defaults filled it in
        return None, cannot
    return one.date(), ""


def header_period(head: str) -> tuple[date, date] | None:
    """The first and last day a date archive's header covers (``Archive for May,
    2017``: May 2017), or ``None`` for a header that is not a date archive's."""
    m = DATE_HEADER.fullmatch(head)
    if m is None:
        return None
    year = int(m["year"])
    if m["month"] is None:
        return date(year, 1, 1), date(year, 12, 31)
    month = MONTHS.index(m["month"].capitalize()) + 1
    if m["day"]:
        try:
            day = date(year, month, int(m["day"].rstrip("stndrhSTNDRH")))
        except ValueError:
            return None
        return day, day
    last = (date(year + month // 12, month % 12 + 1, 1) - date.resolution).day
    return date(year, month, 1), date(year, month, last)
