"""Thermo SkanIt exports (Varioskan, Multiskan) → one PlateRead per plate, step and wavelength."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from saa_lab.domain import KineticSeries, Meta, NoValueReason, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError
from saa_lab.wells import well_sort_key

from .. import dates
from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import plate_read, present
from ..table import SHEET_MARKER, is_workbook, read_workbook, split_text
from . import constants as c
from .reader import (
    is_results_text,
    is_session_text,
    parse_well,
    read_results,
    read_session,
    read_workbook_export,
)
from .structure import Export, Measurement

__all__ = ["SkanItParser", "parse_run_time"]

_US_DATE_TIME = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_TEMPERATURE = re.compile(r"^(-?\d+(?:[.,]\d+)?)\s*°?\s*C?$")


class SkanItParser(PlateParser):
    """SkanIt session text (Varioskan), 'Results of …' text (Multiskan Spectrum) and
    SkanIt workbooks with raw-data sheets (Multiskan Sky).

    Kinetic reads keep every reading of every well; their ``wells`` are the last
    reading. Calculated tables (e.g. ``KineticCalculation1``) are derived reads.
    """

    INSTRUMENT = Instrument.THERMO_SKANIT
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".txt", ".xlsx")

    @classmethod
    def sniff(cls, head: str) -> bool:
        if head.startswith(SHEET_MARKER):
            names = [
                line.split("\t", 1)[1].strip()
                for line in head.splitlines()
                if line.startswith(SHEET_MARKER + "\t")
            ]
            return c.GENERAL_SHEET in names and any(
                name.startswith(c.RAW_SHEET_PREFIX) for name in names
            )
        rows = split_text(head, "\t")[: c.SNIFF_LINES]
        return is_session_text(rows) or is_results_text(rows)

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        export, encoding = _read(source)
        return _plate_reads(export, source, encoding)


def _read(source: SourceFile) -> tuple[Export, str | None]:
    if is_workbook(source.contents):
        return read_workbook_export(read_workbook(source)), None
    text, encoding = decode(source)
    rows = split_text(text.removeprefix("\ufeff"), "\t")
    if is_session_text(rows):
        return read_session(rows), encoding
    if is_results_text(rows):
        return read_results(rows), encoding
    raise InputFileError(c.NOT_SKANIT, line=1)


def parse_run_time(text: str, zone: tzinfo) -> datetime | None:
    """``11/17/2014 16:29:11+01:00`` (month first unless the first number is over 12; the
    offset if written, else ``zone``) or ISO 8601; None when the text is neither."""
    text = text.strip()
    match = _US_DATE_TIME.match(text)
    if match:
        first, second, year, hour, minute, sec, half, offset = match.groups()
        day = dates.numeric_date(first, "/", second, year, month_first=True)
        hours = dates.twelve_hour(int(hour), half, strict=False)
        assert hours is not None  # not strict: any hour is taken as written
        try:
            naive = datetime(day.year, day.month, day.day, hours, int(minute), int(sec or 0))  # noqa: DTZ001
        except ValueError:
            return None
        return naive.replace(tzinfo=_zone(offset, zone))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def _zone(offset: str | None, default: tzinfo) -> tzinfo:
    if not offset:
        return default
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(sign * delta)


def _plate_reads(export: Export, source: SourceFile, encoding: str | None) -> list[PlateRead]:
    read_time: datetime | None = None
    if export.read_time_text:
        read_time = parse_run_time(export.read_time_text, source.timezone)
        if read_time is None:
            msg = c.BAD_RUN_STARTED.format(found=export.read_time_text)
            raise InputFileError(msg, line=export.read_time_line)
    common = _common_metadata(export, encoding, read_time)
    plate_order: dict[str, int] = {}
    reads: list[PlateRead] = []
    for measurement in export.measurements:
        plate_index = plate_order.setdefault(measurement.plate_key, len(plate_order))
        wells, series = _wells(measurement, decimal_comma=export.decimal_comma)
        wavelength = _wavelength(measurement.wavelength_text)
        metadata = dict(common)
        metadata.update(measurement.extra)
        metadata[Meta.LABEL] = measurement.label
        if measurement.extra.get("sheet"):
            metadata[Meta.SHEET] = measurement.extra["sheet"]
        if measurement.wavelength_text:
            metadata[Meta.WAVELENGTH] = measurement.wavelength_text
        if measurement.plate_id:
            metadata[Meta.PLATE_ID] = measurement.plate_id
        if series is not None and any(math.isnan(t) for t in series.times_s):
            metadata[c.META_KINETIC_TIMES] = c.KINETIC_TIMES_MISSING
        reads.append(
            plate_read(
                source,
                Instrument.THERMO_SKANIT,
                wells,
                index=len(reads),
                plate_index=plate_index,
                plate_id=measurement.plate_id,
                label=measurement.label,
                wavelength_nm=wavelength,
                read_time=read_time,
                rows=measurement.rows,
                columns=measurement.columns,
                derived=measurement.derived,
                metadata=metadata,
                kinetic=series,
            )
        )
    return reads


def _common_metadata(
    export: Export, encoding: str | None, read_time: datetime | None
) -> dict[str, str]:
    metadata = dict(export.header)
    metadata["layout"] = export.layout
    if encoding:
        metadata[Meta.ENCODING] = encoding
    if read_time is not None:
        metadata[Meta.READ_TIME] = read_time.isoformat()
    header = export.header
    reader = {
        Meta.READER_MODEL: header.get(c.KEY_INSTRUMENT) or header.get(c.WB_KEY_NAME),
        Meta.READER_SERIAL: header.get(c.KEY_SERIAL) or header.get(c.WB_KEY_SERIAL),
        Meta.SOFTWARE: header.get(c.KEY_SOFTWARE) or header.get(c.WB_KEY_VERSION),
    }
    metadata.update(present(reader))
    set_temperature = header.get(c.WB_KEY_SET_TEMPERATURE)
    if set_temperature:
        match = _TEMPERATURE.match(set_temperature.strip())
        if match:
            metadata[Meta.TEMPERATURE] = match.group(1).replace(",", ".")
    return metadata


def _wavelength(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


_NOT_READ = WellValue(None, "", NoValueReason.NOT_READ)


def _wells(
    measurement: Measurement, *, decimal_comma: bool
) -> tuple[dict[str, WellValue], KineticSeries | None]:
    """The wells (last reading) and, for a kinetic read, the series with its time axis."""
    count = max(reading.reading for reading in measurement.readings)
    slots: dict[str, list[WellValue | None]] = {}
    reported: set[str] = set()
    times: list[tuple[float, int] | None] = [None] * count
    for reading in measurement.readings:
        position = parse_well(reading.well)
        assert position is not None  # the readers only make canonical well names
        row, column = position
        if row >= measurement.rows or column > measurement.columns:
            msg = c.WELL_OUTSIDE.format(
                well=reading.well, rows=measurement.rows, columns=measurement.columns
            )
            raise InputFileError(msg, line=reading.line, well=reading.well)
        slot = slots.setdefault(reading.well, [None] * count)
        index = reading.reading - 1
        if slot[index] is not None:
            msg = c.DUPLICATE_READING.format(
                well=reading.well, reading=reading.reading, label=measurement.label
            )
            raise InputFileError(msg, line=reading.line, well=reading.well)
        slot[index] = parse_cell(reading.raw, decimal_comma=decimal_comma)
        if reading.raw.strip():
            reported.add(reading.well)
        if reading.time_s is not None:
            known = times[index]
            if known is None or reading.time_s < known[0]:
                times[index] = (reading.time_s, reading.line)
    filled = {
        well: tuple(value or _NOT_READ for value in slot)
        for well, slot in sorted(slots.items(), key=lambda item: well_sort_key(item[0]))
        if well in reported
    }
    wells = {well: series[-1] for well, series in filled.items()}
    if count == 1 and not measurement.kinetic:
        return wells, None
    _check_times(times, measurement.label)
    axis = tuple(math.nan if t is None else t[0] for t in times)
    return wells, KineticSeries(times_s=axis, readings=filled)


def _check_times(times: list[tuple[float, int] | None], label: str) -> None:
    previous = -math.inf
    for number, entry in enumerate(times, start=1):
        if entry is None:
            continue
        seconds, line = entry
        if seconds < previous:
            msg = c.TIMES_BACKWARDS.format(reading=number, label=label, time=f"{seconds:g}")
            raise InputFileError(msg, line=line)
        previous = seconds
