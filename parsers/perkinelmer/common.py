"""Helpers the PerkinElmer readers share: wells, geometry, times, dates and wavelengths."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from saa_lab.errors import InputFileError
from saa_lab.wells import normalize_well

from . import constants as c

__all__ = [
    "clean_value",
    "clock_seconds",
    "geometry_for",
    "parse_pe_datetime",
    "wavelength_from_label",
    "well_name",
]

_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:[.,]\d+)?)$")
_DATE_TIME = re.compile(
    r"^(\d{1,4})([./-])(\d{1,2})[./-](\d{1,4})[\sT]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
    r"(?:[.,]\d+)?\s*(?:([AaPp])(\.?)\s*[Mm]\.?)?$"
)
_ABSORBANCE = (
    re.compile(r"(?:^|[^A-Za-z])(?:A|Abs|OD)\s?(\d{3,4}(?:\.\d+)?)(?!\d)", re.I),
    re.compile(r"@\s*(\d{3,4}(?:\.\d+)?)(?!\d)"),
    re.compile(r"absorbance\D{0,6}(\d{3,4}(?:\.\d+)?)(?!\d)", re.I),
)


def clean_value(text: str) -> str:
    """A metadata cell without Excel's ``="…"`` quoting and surrounding blanks."""
    value = text.strip()
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.strip()


def given(text: str | None) -> str | None:
    """The value, or None for empty and N/A cells."""
    if text is None:
        return None
    value = clean_value(text)
    return None if value.casefold() in c.NOT_GIVEN else value


def well_name(text: str, *, line: int, message: str) -> str:
    well = normalize_well(text)
    if well is None or not text.strip()[:1].isupper():
        raise InputFileError(message.format(found=text.strip()), line=line)
    return well


def geometry_for(wells: Iterable[str]) -> tuple[int, int]:
    """96 (8×12) unless a well lies beyond H or 12, then 384 (16×24)."""
    if all(w[0] <= "H" and int(w[1:]) <= 12 for w in wells):
        return 8, 12
    return 16, 24


def clock_seconds(text: str) -> float | None:
    """Seconds from 'hh:mm:ss(.ss)'; None when the text is not such a time."""
    match = _CLOCK.match(text.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))


def parse_pe_datetime(text: str) -> tuple[datetime, str]:
    """A naive datetime and the date order used; raises ValueError.

    ``1/15/2024 10:30:00 AM`` (M/D/Y: AM/PM as US exports write it),
    ``3/07/2011 1:41:34 p.m.`` (D/M/Y: 'p.m.' with dots is the NZ/AU locale),
    ``15.01.2024 10:30:00`` (D.M.Y), ``2024-01-15 10:30:00``. A day over 12
    decides the order whatever the clock style.
    """
    match = _DATE_TIME.match(" ".join(text.split()))
    if not match:
        raise ValueError(text)
    a, separator, b, y, hour, minute, second, half, dot = match.groups()
    first, middle, last = int(a), int(b), int(y)
    if len(a) == 4:
        year, month, day, order = first, middle, last, "Y-M-D"
    else:
        year = last + 2000 if len(y) <= 2 else last
        if separator == "." or first > 12:
            month, day, order = middle, first, "D/M/Y"
        elif middle > 12 or (half is not None and not dot):
            month, day, order = first, middle, "M/D/Y"
        else:
            month, day, order = middle, first, "D/M/Y"
    hours = int(hour)
    if half is not None:
        if not 1 <= hours <= 12:
            raise ValueError(text)
        hours = hours % 12 + (12 if half.upper() == "P" else 0)
    moment = datetime(year, month, day, hours, int(minute), int(second or 0))  # noqa: DTZ001
    return moment, order


def wavelength_from_label(label: str) -> float | None:
    """The nm of an absorbance label: 'A450(1)', 'OD600', 'Absorbance @ 600 (A)', 'Abs 562'."""
    for pattern in _ABSORBANCE:
        match = pattern.search(label)
        if match:
            value = float(match.group(1))
            low, high = c.WAVELENGTH_RANGE_NM
            return value if low <= value <= high else None
    return None
