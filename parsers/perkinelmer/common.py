"""What the PerkinElmer readers share: cell values, well names, dates and wavelengths.

Plate shapes, elapsed times and the date grammar are the parsers' shared ones
(:mod:`..common`, :mod:`..dates`); PerkinElmer's own conventions are here.
"""

from __future__ import annotations

import re
from datetime import datetime

from saa_lab.errors import InputFileError
from saa_lab.wells import normalize_well

from .. import dates
from ..common import geometry_for, wavelength_in
from ..dates import clock_seconds
from . import constants as c

__all__ = [
    "clean_value",
    "clock_seconds",
    "geometry_for",
    "parse_pe_datetime",
    "wavelength_from_label",
    "well_name",
]

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
    first, separator, second, last, hour, minute, seconds, half, dot = match.groups()
    us_clock = half is not None and not dot
    day = dates.numeric_date(first, separator, second, last, month_first=us_clock)
    return dates.naive_datetime(day, hour, minute, seconds, half), day.order


def wavelength_from_label(label: str) -> float | None:
    """The nm of an absorbance label: 'A450(1)', 'OD600', 'Absorbance @ 600 (A)', 'Abs 562'."""
    return wavelength_in(label, _ABSORBANCE)
