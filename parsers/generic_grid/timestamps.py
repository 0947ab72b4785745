"""Read times written in free-form metadata of generic exports.

Only unambiguous or conventional forms are read: ``2024-10-01 14:15:02``
(also with dots or slashes, year first), ``01.10.2024 14:15`` (day first, the
European dotted form) and ``10/1/2024 2:15:02 PM`` (month first unless the first
number is over 12). The result is naive: the caller attaches the lab's zone.
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["find_timestamp"]

_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?"
_YEAR_FIRST = re.compile(r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})(?:[ T]+" + _TIME + ")?")
_DAY_FIRST_DOTS = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s+" + _TIME + ")?")
_MONTH_FIRST_SLASHES = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+" + _TIME + ")?")


def find_timestamp(text: str, *, year_first_only: bool = False) -> datetime | None:
    """The first date (and time) found in ``text``, naive; None when there is none."""
    match = _YEAR_FIRST.search(text)
    if match:
        year, month, day = match.group(1), match.group(2), match.group(3)
        return _build(year, month, day, match.groups()[3:])
    if year_first_only:
        return None
    match = _DAY_FIRST_DOTS.search(text)
    if match:
        day, month, year = match.group(1), match.group(2), match.group(3)
        return _build(year, month, day, match.groups()[3:])
    match = _MONTH_FIRST_SLASHES.search(text)
    if match:
        month, day, year = match.group(1), match.group(2), match.group(3)
        if int(month) > 12:
            month, day = day, month
        return _build(year, month, day, match.groups()[3:])
    return None


def _build(year: str, month: str, day: str, clock: tuple[str | None, ...]) -> datetime | None:
    hour, minute, second, half = clock
    hours = int(hour) if hour else 0
    if half and hour:
        hours = hours % 12 + (12 if half.upper() == "PM" else 0)
    try:
        return datetime(  # noqa: DTZ001 - naive on purpose; the caller attaches the lab's zone
            int(year), int(month), int(day), hours, int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
