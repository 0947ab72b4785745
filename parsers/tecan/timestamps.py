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
from dataclasses import dataclass
from datetime import datetime

__all__ = ["DateOrder", "decide_order", "parse_timestamp"]

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]+(.+))?$")
_NUMERIC = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:[ ,T]+(.+))?$")
_TIME = re.compile(
    r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,](\d{1,6}))?)?\s*"
    r"(?:([AaPp])\.?\s*[Mm]\.?)?$"
)
_MIDNIGHT = (0, 0, 0, 0)
_AM_PM = re.compile(r"\d\s*[AaPp]\.?\s*[Mm]\b")


@dataclass(frozen=True)
class DateOrder:
    """How to read ``a/b/yyyy`` dates in one file; ``assumed`` when nothing in it decided."""

    day_first: bool
    assumed: bool


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


def _time_of(text: str) -> tuple[int, int, int, int] | None:
    match = _TIME.match(_clean(text))
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    micro = int((match.group(4) or "0").ljust(6, "0"))
    meridiem = (match.group(5) or "").upper()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "P" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second, micro


def parse_timestamp(date_text: str, time_text: str | None, order: DateOrder) -> datetime | None:
    """The naive local date and time, or None when the text is not one Tecan writes.

    None too when no time of day can be found: a date alone is not a read time.

    ``date_text`` may carry the time itself (``20/02/2014 15.38.00``); the
    separate ``time_text`` is used otherwise. The caller attaches the lab's
    time zone.
    """
    text = _clean(date_text)
    iso = _ISO.match(text)
    rest: str | None
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
        rest = iso.group(4)
    else:
        numeric = _NUMERIC.match(text)
        if not numeric:
            return None
        first, second = int(numeric.group(1)), int(numeric.group(3))
        day_first = numeric.group(2) == "." or order.day_first
        day, month = (first, second) if day_first else (second, first)
        year = int(numeric.group(4))
        if year < 100:
            year += 2000
        rest = numeric.group(5)
    clock = _time_of(rest) if rest else None
    if time_text and (clock is None or clock == _MIDNIGHT):
        # An Excel date cell renders as 'yyyy-mm-ddT00:00:00'; the Time: line has the clock.
        clock = _time_of(time_text) or clock
    if clock is None:
        return None
    try:
        return datetime(year, month, day, *clock)  # noqa: DTZ001 - the caller attaches the zone
    except ValueError:
        return None
