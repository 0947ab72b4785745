"""Tecan i-control, SparkControl and Magellan exports -> one PlateRead per plate and read.

Workbooks (``.xlsx``, also when named ``.xls``, and legacy BIFF ``.xls``) hold one
export per sheet, each sheet a plate. Text exports (i-control 1.11 / SparkControl
CSV, tab-separated ``.txt``/``.asc``) hold one. Every read (an i-control
``Label``, a SparkControl ``Mode``/``Name`` group, a Magellan column) becomes a
PlateRead; kinetic tables become ``kind="kinetic"`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from saa_lab.domain import KineticSeries, Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import PLATE_SHAPES, geometry_for, plate_read, present
from ..table import (
    SHEET_MARKER,
    Row,
    Sheet,
    decide_decimal_comma,
    guess_delimiter,
    is_workbook,
    read_workbook,
    split_text,
)
from . import constants as c
from .magellan import is_magellan, read_magellan
from .reader import clean, is_icontrol, read_icontrol
from .structure import EndpointTable, Export, KineticTable, Measurement
from .timestamps import DateOrder, decide_order, parse_timestamp

__all__ = ["TecanParser"]

_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_FIRST_CELL = re.compile(r"[\t,;]")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_RANGE = re.compile(r"^\s*([A-Pa-p])0?(\d{1,2})\s*[-:]\s*([A-Pa-p])0?(\d{1,2})\s*$")


class TecanParser(PlateParser):
    """Tecan i-control / SparkControl / Magellan exports, as workbook or text."""

    INSTRUMENT = Instrument.TECAN
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".xlsx", ".xls", ".csv", ".txt", ".asc")

    @classmethod
    def sniff(cls, head: str) -> bool:
        position = 0
        for line in _LINE_BREAK.split(head):
            if line.startswith(SHEET_MARKER + "\t"):
                position = 0
                continue
            text = line.lstrip("\ufeff")
            if not text.strip(' \t,;"'):
                continue
            position += 1
            if position <= c.SNIFF_HEADER_LINES and c.APPLICATION_LINE.match(text):
                return True
            tab_first = clean(text.split("\t", 1)[0])
            first = clean(_FIRST_CELL.split(text, 1)[0])
            if first.casefold() == c.MAGELLAN_WELL_HEADER or c.MAGELLAN_FOOTER.match(text):
                return True
            if position == 1 and c.MAGELLAN_KINETIC_LINE.match(tab_first):
                return True
        return False

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        return _parse(source)


def _parse(source: SourceFile) -> list[PlateRead]:
    encoding: str | None = None
    units: list[tuple[str | None, Sequence[Row]]]
    if is_workbook(source.contents):
        delimiter = "\t"
        units = [(sheet.name, sheet.rows) for sheet in _read_sheets(source)]
    else:
        text, encoding = decode(source)
        text = text.lstrip("\ufeff")
        delimiter = guess_delimiter(text)
        units = [(None, split_text(text, delimiter))]
    exports = [export for name, rows in units if (export := _read_unit(name, rows))]
    if not exports:
        raise InputFileError(c.NOT_TECAN)
    if not any(export.measurements for export in exports):
        raise InputFileError(c.NO_READS)
    decimal_comma = decide_decimal_comma(_data_cells(exports), delimiter)
    order = decide_order(_date_texts(exports))
    builder = _Builder(source, encoding, decimal_comma, order)
    for export in exports:
        builder.add(export)
    return builder.reads


def _read_sheets(source: SourceFile) -> list[Sheet]:
    """Every sheet; a damaged workbook is an InputFileError, whatever the reader library raises.

    table.read_workbook catches the errors of opening a workbook, but openpyxl reads
    rows lazily (a damaged part raises zlib/XML errors while iterating) and xlrd
    raises its own errors for damaged BIFF files.
    """
    import struct
    import zipfile
    import zlib
    from xml.etree.ElementTree import ParseError

    from xlrd.compdoc import CompDocError

    damaged = (
        zlib.error,
        zipfile.BadZipFile,
        ParseError,
        CompDocError,
        struct.error,
        EOFError,
        NotImplementedError,
        KeyError,
        ValueError,
        IndexError,
        AssertionError,
        TypeError,
        OSError,
    )
    try:
        return read_workbook(source)
    except InputFileError:
        raise
    except damaged as exc:
        raise InputFileError(c.DAMAGED_WORKBOOK.format(error=exc or type(exc).__name__)) from exc


def _read_unit(name: str | None, rows: Sequence[Row]) -> Export | None:
    """One sheet (or the text file) as an export; None when it is not a Tecan export."""
    try:
        if is_icontrol(rows):
            return read_icontrol(rows, name)
        if is_magellan(rows):
            return read_magellan(rows, name)
    except InputFileError as err:
        if name is None:
            raise
        message = c.SHEET_PREFIX.format(sheet=name, message=err.message)
        raise InputFileError(message, line=err.line, well=err.well) from err
    return None


def _data_cells(exports: Iterable[Export]) -> Iterable[str]:
    for export in exports:
        for measurement in export.measurements:
            table = measurement.table
            if isinstance(table, EndpointTable):
                yield from (cell.raw for cell in table.wells.values())
            else:
                yield from (cell.raw for cell in table.times)
                for series in table.series.values():
                    yield from (cell.raw for cell in series)


def _date_texts(exports: Iterable[Export]) -> Iterable[str]:
    for export in exports:
        yield from (export.header.get(key, "") for key in (c.DATE, c.TIME))
        yield export.start_time or ""
        for measurement in export.measurements:
            yield measurement.start_time or ""
            yield measurement.end_time or ""


def _cell(raw: str, decimal_comma: bool) -> WellValue:
    token = c.TOKENS.get(clean(raw).upper())
    if token is not None:
        return WellValue(None, clean(raw), token)
    return parse_cell(raw, decimal_comma=decimal_comma)


def _number(text: str | None) -> str | None:
    """The first number in a setting (``600``, ``25.3 °C``, ``24,6``) as plain text (``600``)."""
    match = _NUMBER.search(text or "")
    return f"{float(match.group(0).replace(',', '.')):g}" if match else None


def _part_of_plate(text: str | None) -> set[str] | None:
    """Wells named by ``A1-E12`` / ``A1-B12;C1-C9`` / ``A1:H12`` (rectangles); None if absent."""
    if not text:
        return None
    wells: set[str] = set()
    for part in text.split(";"):
        match = _RANGE.match(part)
        if not match:
            return None
        top, bottom = sorted((match.group(1).upper(), match.group(3).upper()))
        left, right = sorted((int(match.group(2)), int(match.group(4))))
        for row in range(ord(top), ord(bottom) + 1):
            wells.update(f"{chr(row)}{col}" for col in range(left, right + 1))
    return wells


def _wells_of(measurement: Measurement) -> Iterable[tuple[str, int]]:
    table = measurement.table
    if isinstance(table, EndpointTable):
        yield from ((well, cell.line) for well, cell in table.wells.items())
    else:
        yield from ((well, series[0].line) for well, series in table.series.items())


def _geometry(plate_type: str, measurements: Sequence[Measurement]) -> tuple[int, int]:
    """The plate's rows and columns: from its type (``Greiner 96 Flat``), else the wells."""
    found = [(well, line) for m in measurements for well, line in _wells_of(m)]
    match = c.PLATE_WELLS.search(plate_type)
    if match:
        rows, columns = PLATE_SHAPES[int(match.group(1))]
        for well, line in found:
            if ord(well[0]) - ord("A") >= rows or int(well[1:]) > columns:
                msg = c.WELL_OUTSIDE_PLATE.format(well=well, wells=rows * columns, plate=plate_type)
                raise InputFileError(msg, line=line, well=well)
        return rows, columns
    return geometry_for(well for well, _ in found)


class _Builder:
    """PlateReads in file order, numbering reads and plates across the sheets."""

    def __init__(
        self, source: SourceFile, encoding: str | None, decimal_comma: bool, order: DateOrder
    ) -> None:
        self.source = source
        self.encoding = encoding
        self.decimal_comma = decimal_comma
        self.order = order
        self.reads: list[PlateRead] = []
        self.plate_index = -1

    def add(self, export: Export) -> None:
        plates: dict[str | None, list[Measurement]] = {}
        for measurement in export.measurements:
            plates.setdefault(measurement.plate_key, []).append(measurement)
        plate_type = export.header.get(c.PLATE, "")
        for plate_key, measurements in plates.items():
            self.plate_index += 1
            rows, columns = _geometry(plate_type, measurements)
            for measurement in measurements:
                self.reads.append(self._read(export, measurement, plate_key, rows, columns))

    def _time(self, export: Export, measurement: Measurement) -> datetime | None:
        start = measurement.start_time or export.start_time
        naive = parse_timestamp(start, None, self.order) if start else None
        date = export.header.get(c.DATE)
        if naive is None and date:
            naive = parse_timestamp(date, export.header.get(c.TIME), self.order)
        return naive

    def _read(
        self, export: Export, m: Measurement, plate_key: str | None, rows: int, columns: int
    ) -> PlateRead:
        absorbance = m.mode is None or m.mode.casefold() in c.ABSORBANCE_MODES
        wavelength = _number(m.wavelength) if absorbance and not m.derived else None
        naive = self._time(export, m)
        plate_id = export.header.get(c.PLATE_ID) or plate_key
        kinetic: KineticSeries | None = None
        if isinstance(m.table, EndpointTable):
            wells = self._endpoint(m.table, _part_of_plate(m.part_of_plate))
        else:
            kinetic = self._kinetic(m.table)
            wells = {well: series[-1] for well, series in kinetic.readings.items()}
        metadata = self._metadata(export, m, naive, wavelength, plate_id)
        return plate_read(
            self.source,
            Instrument.TECAN,
            wells,
            index=len(self.reads),
            plate_index=self.plate_index,
            plate_id=plate_id,
            label=m.label,
            wavelength_nm=float(wavelength) if wavelength else None,
            read_time=naive.replace(tzinfo=self.source.timezone) if naive else None,
            rows=rows,
            columns=columns,
            derived=m.derived,
            metadata=metadata,
            kinetic=kinetic,
        )

    def _endpoint(self, table: EndpointTable, declared: set[str] | None) -> dict[str, WellValue]:
        wells: dict[str, WellValue] = {}
        for well, cell in table.wells.items():
            if declared is not None and well not in declared and not clean(cell.raw):
                continue  # outside 'Part of Plate': not read
            wells[well] = _cell(cell.raw, self.decimal_comma)
        return wells

    def _kinetic(self, table: KineticTable) -> KineticSeries:
        seconds: list[float] = []
        for cycle, cell in enumerate(table.times, start=1):
            value = _cell(cell.raw, self.decimal_comma).value
            if value is None:
                msg = c.BAD_TIME.format(found=clean(cell.raw), cycle=cycle)
                raise InputFileError(msg, line=cell.line)
            seconds.append(value)
        times = tuple(t - seconds[0] for t in seconds)
        readings = {
            well: tuple(_cell(cell.raw, self.decimal_comma) for cell in series)
            for well, series in table.series.items()
        }
        return KineticSeries(times_s=times, readings=readings)

    def _metadata(
        self,
        export: Export,
        m: Measurement,
        naive: datetime | None,
        wavelength: str | None,
        plate_id: str | None,
    ) -> dict[str, str]:
        header = export.header
        if export.dialect == c.MAGELLAN:
            software = c.MAGELLAN
        else:
            software = " ".join(x for x in (header.get(c.APPLICATION), header.get("version")) if x)
        temperature = _number(m.temperature)
        if temperature is None and isinstance(m.table, KineticTable) and m.table.temperatures:
            temperature = _number(m.table.temperatures[0])
        meta: dict[str, str | None] = {
            **present(m.settings),
            c.META_DIALECT: export.dialect,
            c.META_APPLICATION: header.get(c.APPLICATION),
            c.META_FIRMWARE: header.get(c.FIRMWARE),
            c.META_METHOD: header.get(c.METHOD),
            c.META_MAGELLAN_METHOD: header.get(c.META_MAGELLAN_METHOD),
            c.META_MAGELLAN_WORKSPACE: header.get(c.META_MAGELLAN_WORKSPACE),
            c.META_USER: header.get(c.USER),
            c.META_SYSTEM: header.get(c.SYSTEM),
            c.META_PLATE_TYPE: header.get(c.PLATE),
            c.META_COMMENT: header.get(c.COMMENT),
            c.META_DATE: header.get(c.DATE),
            c.META_TIME: header.get(c.TIME),
            c.META_MODE: m.mode,
            c.META_PART_OF_PLATE: m.part_of_plate,
            c.META_START_TIME: m.start_time or export.start_time,
            c.META_END_TIME: m.end_time,
            c.META_EXCITATION: _number(m.excitation),
            c.META_EMISSION: _number(m.emission),
            c.META_TITLE: m.title,
            Meta.SOFTWARE: software,
            Meta.READER_MODEL: header.get(c.DEVICE),
            Meta.READER_SERIAL: header.get(c.SERIAL),
            Meta.READ_TIME: naive.isoformat() if naive else None,
            Meta.WAVELENGTH: wavelength,
            Meta.TEMPERATURE: temperature,
            Meta.LABEL: m.label,
            Meta.PLATE_ID: plate_id,
            Meta.ENCODING: self.encoding,
            Meta.SHEET: export.sheet,
        }
        used = (m.start_time or export.start_time or header.get(c.DATE) or "") if naive else ""
        if self.order.assumed and "/" in used:
            meta[c.META_DATE_ORDER] = "day-first" if self.order.day_first else "month-first"
        return present(meta)
