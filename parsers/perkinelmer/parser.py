"""PerkinElmer / Revvity exports (EnVision, EnSpire, VICTOR X3, VICTOR Nivo) → PlateReads."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from saa_lab.domain import KineticSeries, Meta, NoValueReason, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..table import Row, decide_decimal_comma, split_text
from . import constants as c
from .common import parse_pe_datetime, wavelength_from_label
from .reader import looks_like_envision, read_envision
from .victor import filter_wavelength, looks_like_nivo, looks_like_x3, read_nivo, read_x3

if TYPE_CHECKING:
    from .structure import PeExport, PeRead

__all__ = ["PerkinElmerParser"]

_DELIMITERS = (",", ";", "\t")


class PerkinElmerParser(PlateParser):
    """EnVision/EnSpire 'Plate information' CSV, VICTOR X3 tab text and VICTOR Nivo CSV."""

    INSTRUMENT = Instrument.PERKINELMER
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".csv", ".txt")

    @classmethod
    def sniff(cls, head: str) -> bool:
        return looks_like_envision(head) or looks_like_x3(head) or looks_like_nivo(head)

    def parse(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        text = text.removeprefix("\ufeff")
        try:
            if looks_like_x3(text[:4096]):
                delimiter = "\t"
                export = read_x3(_split(text, delimiter))
            elif looks_like_nivo(text[:4096]):
                delimiter = _delimiter(text, c.NIVO_START)
                export = read_nivo(_split(text, delimiter))
            else:
                delimiter = _delimiter(text, "Plate")
                export = read_envision(_split(text, delimiter))
            decimal_comma = decide_decimal_comma(_raw_cells(export), delimiter)
            meta = {Meta.ENCODING: encoding, c.META_DELIMITER: delimiter}
            return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)
        except InputFileError as err:
            err.path = err.path or source.original_path
            raise


def _split(text: str, delimiter: str) -> list[Row]:
    try:
        return split_text(text, delimiter)
    except csv.Error as exc:
        raise InputFileError(f"the file cannot be split into fields: {exc}") from exc


def _delimiter(text: str, key: str) -> str:
    """The character after ``key`` at the start of the first line that starts with it."""
    for line in text.splitlines()[:200]:
        if line.startswith(key) and len(line) > len(key):
            following = line[len(key)]
            if following in _DELIMITERS:
                return following
    return ","


def _raw_cells(export: PeExport) -> Iterable[str]:
    for read in export.reads:
        for cells in read.cells.values():
            yield from cells


def _read_time(
    read: PeRead, export: PeExport, source: SourceFile
) -> tuple[datetime | None, dict[str, str]]:
    if read.utc_text:
        try:
            moment = datetime.strptime(read.utc_text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError as exc:
            msg = c.NIVO_BAD_UTC.format(found=read.utc_text)
            raise InputFileError(msg, line=read.date_line) from exc
        return moment, {Meta.READ_TIME: moment.isoformat()}
    text = read.date_text or export.date_text
    if not text:
        return None, {}
    try:
        naive, order = parse_pe_datetime(text)
    except ValueError as exc:
        line = read.date_line if read.date_text else export.date_line
        raise InputFileError(c.BAD_DATE.format(found=text), line=line) from exc
    return naive.replace(tzinfo=source.timezone), {
        Meta.READ_TIME: naive.isoformat(),
        c.META_DATE_ORDER: order,
    }


def _wavelength(read: PeRead) -> float | None:
    spec = read.metadata.get(c.META_FILTER)
    if spec and read.label.casefold().startswith("abs"):
        return filter_wavelength(spec)
    return wavelength_from_label(read.label)


def _plate_reads(
    export: PeExport,
    source: SourceFile,
    *,
    decimal_comma: bool,
    metadata: Mapping[str, str],
) -> list[PlateRead]:
    if not export.reads:
        raise InputFileError(c.NO_READS)
    plate_order = list(dict.fromkeys(read.plate for read in export.reads))
    reads: list[PlateRead] = []
    for index, raw in enumerate(export.reads):
        read_time, time_meta = _read_time(raw, export, source)
        wavelength = None if raw.derived else _wavelength(raw)
        meta = {
            c.META_FAMILY: export.family,
            **export.metadata,
            **metadata,
            **time_meta,
            **raw.metadata,
            Meta.LABEL: raw.label,
        }
        if raw.plate_id:
            meta[Meta.PLATE_ID] = raw.plate_id
        if wavelength is not None:
            meta[Meta.WAVELENGTH] = f"{wavelength:g}"
        if raw.saturated:
            meta[c.META_SATURATED] = ", ".join(sorted(raw.saturated))
        wells, kinetic = _wells(raw, decimal_comma=decimal_comma)
        reads.append(
            PlateRead(
                format=Instrument.PERKINELMER.value,
                source_path=source.original_path,
                source_sha256=source.sha256,
                wells=wells,
                index=index,
                plate_index=plate_order.index(raw.plate),
                plate_id=raw.plate_id,
                label=raw.label,
                wavelength_nm=wavelength,
                read_time=read_time,
                kind="kinetic" if kinetic is not None else "endpoint",
                rows=raw.rows,
                columns=raw.columns,
                derived=raw.derived,
                metadata=meta,
                kinetic=kinetic,
            )
        )
    return reads


def _cell(raw: str, well: str, saturated: frozenset[str], *, decimal_comma: bool) -> WellValue:
    value = parse_cell(raw, decimal_comma=decimal_comma)
    if well in saturated and value.value is not None:
        # The 'Saturated for …' grid marks this well SAT: its number is not a reading.
        return WellValue(None, value.raw, NoValueReason.OVERFLOW)
    return value


def _wells(
    raw: PeRead, *, decimal_comma: bool
) -> tuple[dict[str, WellValue], KineticSeries | None]:
    """Endpoint: the wells with a cell; kinetic: every well read at least once, last reading."""
    if not raw.kinetic:
        wells = {
            well: _cell(cells[0], well, raw.saturated, decimal_comma=decimal_comma)
            for well, cells in raw.cells.items()
            if cells and cells[0].strip()
        }
        return wells, None
    readings = {
        well: tuple(_cell(x, well, raw.saturated, decimal_comma=decimal_comma) for x in cells)
        for well, cells in raw.cells.items()
        if any(cell.strip() for cell in cells)
    }
    last = {well: series[-1] for well, series in readings.items()}
    return last, KineticSeries(times_s=raw.times_s, readings=readings)
