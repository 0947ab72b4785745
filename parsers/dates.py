"""Dates, times of day and elapsed times as plate-reader software writes them.

Every vendor parser reads the same pieces: a numeric date (``a/b/yyyy``, ``a.b.yy``,
``yyyy-mm-dd``), a time of day on a 24- or 12-hour clock (``9:30:29 AM``, ``15.37.16``)
and an elapsed time ``h:mm:ss``. Vendors differ in the day/month order they assume when
neither the separator nor the numbers decide it, so :func:`numeric_date` takes that
policy as an explicit parameter; a vendor whose syntax is narrower or wider than the
common one passes its own pattern with the same groups. Vendor quirks (Gen5's Excel day
offsets, the two-digit year first of BMG .DAT files, Tecan's per-file order) stay in the
vendor modules.

Everything here is naive: the caller attaches the lab's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import NamedTuple

__all__ = [
    "CLOCK",
    "DAY_FIRST",
    "ELAPSED",
    "MONTH_FIRST",
    "YEAR_FIRST",
    "DateOrder",
    "NumericDate",
    "clock_seconds",
    "find_timestamp",
    "naive_datetime",
    "numeric_date",
    "time_of_day",
    "twelve_hour",
]

# The order a date was read in, as read metadata records it.
YEAR_FIRST = "Y-M-D"
DAY_FIRST = "D/M/Y"
MONTH_FIRST = "M/D/Y"

# h:mm[:ss[.ffffff]] with ':' or '.' between the parts and an optional 'AM', 'p.m.', 'P M'.
# Groups: hour, minute, second, fraction, meridiem (A or P).
CLOCK = re.compile(
    r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,](\d{1,6}))?)?\s*"
    r"(?:([AaPp])\.?\s*[Mm]\.?)?$"
)
# An elapsed time h:mm:ss(.ss), hours unbounded. Groups: hours, minutes, seconds.
ELAPSED = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:[.,]\d+)?)$")

# Dates inside free text (generic exports), as (first, separator, second, last) and a clock.
_FREE_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?"
_FREE_YEAR_FIRST = re.compile(r"(\d{4})([-./])(\d{1,2})[-./](\d{1,2})(?:[ T]+" + _FREE_TIME + ")?")
_FREE_DOTS = re.compile(r"(\d{1,2})(\.)(\d{1,2})\.(\d{4})(?:\s+" + _FREE_TIME + ")?")
_FREE_SLASHES = re.compile(r"(\d{1,2})(/)(\d{1,2})/(\d{4})(?:\s+" + _FREE_TIME + ")?")


@dataclass(frozen=True)
class DateOrder:
    """How to read ``a/b/yyyy`` dates in one file; ``assumed`` when nothing in it decided."""

    day_first: bool
    assumed: bool


class NumericDate(NamedTuple):
    """A date's numbers, unchecked (building a date from them may raise ValueError)."""

    year: int
    month: int
    day: int
    # YEAR_FIRST, DAY_FIRST or MONTH_FIRST (a vendor may name its own, e.g. 'YY/MM/DD').
    order: str
    # Neither the separator nor a number over 12 decided the order, and day != month.
    assumed: bool = False


def numeric_date(
    first: str,
    separator: str,
    second: str,
    last: str,
    *,
    month_first: bool,
    numbers_decide: bool = True,
) -> NumericDate:
    """The date written ``first<separator>second<separator>last``.

    A four-digit first field is the year (year, month, day). Otherwise the last field is
    the year (two digits are 20xx) and the order is: day first after a dot (``D.M.Y`` is
    never month first); day first when the first number is over 12, month first when the
    second is (unless ``numbers_decide`` is False: the caller decided the order for the
    whole file); else ``month_first`` decides, the order is then ``assumed``.
    """
    a, b, c = int(first), int(second), int(last)
    if len(first) == 4:
        return NumericDate(a, b, c, YEAR_FIRST)
    year = c + 2000 if len(last) <= 2 else c
    if separator == "." or (numbers_decide and a > 12):
        day_first, decided = True, True
    elif numbers_decide and b > 12:
        day_first, decided = False, True
    else:
        day_first, decided = not month_first, False
    assumed = not decided and a != b
    if day_first:
        return NumericDate(year, b, a, DAY_FIRST, assumed)
    return NumericDate(year, a, b, MONTH_FIRST, assumed)


def twelve_hour(hour: int, meridiem: str | None, *, strict: bool = True) -> int | None:
    """The hour on a 24-hour clock; ``meridiem`` is ``A``/``P`` (or ``AM``/``PM``) or None.

    With ``strict`` a 12-hour clock's hour must be 1 to 12 (else None); generic tables
    and SkanIt take any hour as written (``13:00 PM`` is 13).
    """
    if not meridiem:
        return hour
    if strict and not 1 <= hour <= 12:
        return None
    return hour % 12 + (12 if meridiem[0].upper() == "P" else 0)


def time_of_day(text: str, pattern: re.Pattern[str] = CLOCK) -> time | None:
    """A time of day, or None; ``pattern`` has :data:`CLOCK`'s five groups."""
    match = pattern.match(text)
    if not match:
        return None
    hour_text, minute_text, second_text, fraction, meridiem = match.groups()
    hour = twelve_hour(int(hour_text), meridiem)
    minute, second = int(minute_text), int(second_text or 0)
    if hour is None or hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second, int((fraction or "0").ljust(6, "0")))


def naive_datetime(
    day: NumericDate, hour: str, minute: str, second: str | None, meridiem: str | None
) -> datetime:
    """The date at a clock time (12-hour when ``meridiem`` is given); raises ValueError."""
    hours = twelve_hour(int(hour), meridiem)
    if hours is None:
        raise ValueError(f"{hour}:{minute} {meridiem}M is not a time of day")
    return datetime(day.year, day.month, day.day, hours, int(minute), int(second or 0))  # noqa: DTZ001


def clock_seconds(text: str, pattern: re.Pattern[str] = ELAPSED) -> float | None:
    """Seconds of an elapsed ``h:mm:ss(.ss)``, or None; ``pattern`` has :data:`ELAPSED`'s groups."""
    match = pattern.match(text.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))


def find_timestamp(text: str, *, year_first_only: bool = False) -> datetime | None:
    """The first date (and time) found in free text, or None; for generic exports.

    Only unambiguous or conventional forms: ``2024-10-01 14:15:02`` (also with dots or
    slashes, year first), ``01.10.2024 14:15`` (day first, the European dotted form) and
    ``10/1/2024 2:15:02 PM`` (month first unless the first number is over 12).
    """
    match = _FREE_YEAR_FIRST.search(text)
    if match is None and not year_first_only:
        match = _FREE_DOTS.search(text) or _FREE_SLASHES.search(text)
    if match is None:
        return None
    first, separator, second, last, hour, minute, seconds, meridiem = match.groups()
    day = numeric_date(first, separator, second, last, month_first=True)
    hours = twelve_hour(int(hour or 0), meridiem, strict=False)
    assert hours is not None  # not strict: any hour is taken as written
    try:
        return datetime(  # noqa: DTZ001
            day.year, day.month, day.day, hours, int(minute or 0), int(seconds or 0)
        )
    except ValueError:
        return None
