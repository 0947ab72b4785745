"""Gen5 dates, times of day and elapsed kinetic times, as text exports and workbooks give them.

Text exports write ``7/1/2015`` and ``9:30:29 AM`` (or the Windows locale's forms), and
kinetic times as ``H:MM:SS``. Workbooks arrive here as :mod:`..table` renders them: a date
cell as ISO text (``2025-01-13T00:00:00``), a time-of-day cell as ``10:03:07``, a duration
cell as ``[-]H:MM:SS``, and a time stored past one day under a plain ``h:mm:ss`` format as
a 1900-era datetime (``1900-01-02T00:15:00``: Excel serial 2.0104…). One non-Excel writer
adds whole days to every time cell, the header's time of day included; the header then
tells how many (:func:`day_offset`). The date and clock grammar is :mod:`..dates`'; what
is Gen5's own is here: its slightly different clock and duration forms, month-first
dates and the Excel serials.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from .. import dates
from . import constants as c

__all__ = ["day_offset", "elapsed_seconds", "parse_date", "parse_time_of_day"]

# Stricter than dates.ELAPSED: minutes and seconds below 60, a point before any fraction.
_DURATION = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")
_DAYS_DURATION = re.compile(r"^(\d+)\.(\d{1,2}):([0-5]\d):([0-5]\d(?:\.\d+)?)$")
_ISO_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")
_ISO_DATE = re.compile(r"^(\d{4})([-/.])(\d{1,2})[-/.](\d{1,2})$")
_SLASH_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})$")
# dates.CLOCK's groups; Gen5 also takes a bare 'A'/'P' after the time.
_CLOCK = re.compile(
    r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.(\d{1,6}))?)?\s*([AaPp])?\.?\s*(?:[Mm]\.?)?$"
)
# Excel's 1900 date system counts 1900-01-01 as day 1 and invents 1900-02-29 (day 60).
_EXCEL_DAY_ONE = date(1899, 12, 31)
_EXCEL_LEAP_BUG_FROM = date(1900, 3, 1)
_LAST_DURATION_DATE = date(1900, 12, 31)


def _excel_seconds(moment: datetime) -> float | None:
    """Seconds since Excel's day 0 of a 1900-era datetime (a duration stored as a date)."""
    day = moment.date()
    if not date(1899, 12, 30) <= day <= _LAST_DURATION_DATE:
        return None
    days = max(0, (day - _EXCEL_DAY_ONE).days)
    if day >= _EXCEL_LEAP_BUG_FROM:
        days += 1
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return days * c.SECONDS_PER_DAY + seconds + moment.microsecond / 1e6


def _iso_datetime(text: str) -> datetime | None:
    match = _ISO_DATETIME.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = int((match.group(7) or "0").ljust(6, "0"))
    try:
        # A naive cell value: the caller attaches the lab's zone.
        return datetime(year, month, day, hour, minute, second, fraction)  # noqa: DTZ001
    except ValueError:
        return None


def elapsed_seconds(text: str) -> float | None:
    """Seconds in a kinetic Time cell, or None when the cell is not an elapsed time.

    ``0:14:43``, ``100:00:00``, ``1.02:03:04`` (days.hours), ``00:15:00`` (a time
    cell) and ``1900-01-02T00:15:00`` (a time past one day stored as a 1900 date).
    """
    text = text.strip()
    seconds = dates.clock_seconds(text, _DURATION)
    if seconds is not None:
        return seconds
    match = _DAYS_DURATION.match(text)
    if match:
        days, hours, minutes, rest = match.groups()
        if int(hours) > 23:
            return None
        total = int(days) * c.SECONDS_PER_DAY + int(hours) * 3600 + int(minutes) * 60
        return total + float(rest)
    moment = _iso_datetime(text)
    if moment is not None:
        return _excel_seconds(moment)
    return None


def day_offset(header_time: str) -> int:
    """Whole days a workbook writer added to its time cells, read from the header's Time.

    A time of day is less than one day, so a header Time stored as ``1900-01-02T17:46:19``
    (Excel serial 2.74) shows the writer added 2 days to every time cell. Excel itself
    writes ``17:46:19`` (serial 0.74): no offset.
    """
    moment = _iso_datetime(header_time.strip())
    if moment is None:
        return 0
    seconds = _excel_seconds(moment)
    return int(seconds // c.SECONDS_PER_DAY) if seconds is not None else 0


def parse_date(text: str) -> tuple[date | None, bool]:
    """The header's Date, and whether the day/month order had to be assumed.

    ISO (workbook cells, ``2025-01-13``), ``M/D/YYYY`` as Gen5 writes in US locales,
    ``D/M/YYYY`` when the first number cannot be a month, ``D.M.YYYY`` (European).
    Ambiguous slash dates are read month first, as Gen5's default locale writes them.
    """
    text = text.strip()
    moment = _iso_datetime(text)
    if moment is not None:
        return moment.date(), False
    match = _ISO_DATE.match(text) or _SLASH_DATE.match(text)
    if not match:
        return None, False
    day = dates.numeric_date(*match.groups(), month_first=True)
    try:
        return date(day.year, day.month, day.day), day.assumed
    except ValueError:
        return None, day.assumed


def parse_time_of_day(text: str) -> time | None:
    """The header's Time: ``9:30:29 AM``, ``17:46:19``, ``15.37.16`` or a workbook cell."""
    text = text.strip()
    moment = _iso_datetime(text)
    if moment is not None:
        return moment.time()
    return dates.time_of_day(text, _CLOCK)
