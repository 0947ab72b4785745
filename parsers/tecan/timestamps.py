"""Dates and times as Tecan software writes them, in whatever locale the PC had.

Seen in real exports: ``2023-09-21`` and ``2023-09-21 15:10:21`` (SparkControl),
``20/02/2014`` with ``15.37.16`` (Italian i-control), ``12/25/2014 4:49:44 PM``
(US), ``14.10.2016 14:11:38`` (German), ``28/02/2020`` with ``9:11 AM`` (UK
SparkControl), Excel date cells (rendered ``2014-12-25T00:00:00``) and a leading
apostrophe (``'15:37:16``). A ``D.M.Y`` date is always day first; for ``/``
dates the order is decided once per file (:func:`decide_order`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time

from .. import dates
from ..dates import DateOrder

__all__ = ["DateOrder", "decide_order", "parse_timestamp"]

_ISO = re.compile(r"^(\d{4})(-)(\d{1,2})-(\d{1,2})(?:[T ]+(.+))?$")
_NUMERIC = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:[ ,T]+(.+))?$")
_MIDNIGHT = time(0)
_AM_PM = re.compile(r"\d\s*[AaPp]\.?\s*[Mm]\b")


def _clean(text: str) -> str:
    return text.strip().lstrip("'").strip()


def decide_order(texts: Iterable[str]) -> DateOrder:
    """Day or month first for the slash dates of one file.

    A first field above 12 proves day first, a second field above 12 proves
    month first. With no proof, a 12-hour clock (``PM``) suggests a US
    month-first locale and a 24-hour clock day first; the result is then
    marked ``assumed``.
    """
    day = month = ambiguous = 0
    twelve_hour = False
    for raw in texts:
        text = _clean(raw)
        if _AM_PM.search(text):
            twelve_hour = True
        match = _NUMERIC.match(text)
        if not match or match.group(2) == ".":
            continue
        first, second = int(match.group(1)), int(match.group(3))
        if first > 12 >= second:
            day += 1
        elif second > 12 >= first:
            month += 1
        else:
            ambiguous += 1
    if day and not month:
        return DateOrder(day_first=True, assumed=False)
    if month and not day:
        return DateOrder(day_first=False, assumed=False)
    return DateOrder(day_first=not twelve_hour, assumed=bool(ambiguous or (day and month)))


def _time_of(text: str) -> time | None:
    return dates.time_of_day(_clean(text))


def parse_timestamp(date_text: str, time_text: str | None, order: DateOrder) -> datetime | None:
    """The naive local date and time, or None when the text is not one Tecan writes.

    None too when no time of day can be found: a date alone is not a read time.

    ``date_text`` may carry the time itself (``20/02/2014 15.38.00``); the
    separate ``time_text`` is used otherwise. The caller attaches the lab's
    time zone.
    """
    text = _clean(date_text)
    match = _ISO.match(text) or _NUMERIC.match(text)
    if not match:
        return None
    first, separator, second, last, rest = match.groups()
    # The file's order (decide_order weighed its numbers); a dot still means day first.
    # Any year below 100 (even '0099') is 20xx: the leading zeros go.
    found = dates.numeric_date(
        first,
        separator,
        second,
        str(int(last)),
        month_first=not order.day_first,
        numbers_decide=False,
    )
    clock = _time_of(rest) if rest else None
    if time_text and (clock is None or clock == _MIDNIGHT):
        # An Excel date cell renders as 'yyyy-mm-ddT00:00:00'; the Time: line has the clock.
        clock = _time_of(time_text) or clock
    if clock is None:
        return None
    try:
        return datetime.combine(date(found.year, found.month, found.day), clock)
    except ValueError:
        return None
