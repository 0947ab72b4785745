"""BMG Labtech exports (MARS CSV/Excel, Omega .DAT) → one PlateRead per read."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from saa_lab.domain import KineticSeries, Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from ..table import Row, decide_decimal_comma, is_workbook, read_workbook, split_text
from . import constants as c
from .reader import looks_like_dat, looks_like_mars, read_dat, read_mars

if TYPE_CHECKING:
    from .structure import BmgExport, RawRead

__all__ = ["BmgParser", "parse_bmg_datetime", "wavelength_from_title"]

_DATE_TIME = re.compile(
    r"^(\d{1,4})([./-])(\d{1,2})[./-](\d{1,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*([AaPp])?\.?\s*(?:[Mm]\.?)?$"
)
_PARENTHESES = re.compile(r"\(([^()]*)\)\s*$")
_SINGLE_WAVELENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:nm)?(?:\s+\d+)?\s*$", re.I)
_BMG_FOLDER = re.compile(r"\\BMG\\([^\\]+)\\", re.I)
_MARS_KEY_CELL = re.compile(r"^\s*(User|Path|Test run no\.|Test name|Date|Time|ID\d)\s*:", re.I)
_DELIMITERS = (",", ";", "\t")


class BmgParser(PlateParser):
    """BMG Labtech MARS exports (table or plate view) and Omega reader-control .DAT files."""

    INSTRUMENT = Instrument.BMG
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".csv", ".CSV", ".dat", ".DAT", ".txt", ".xlsx")

    @classmethod
    def sniff(cls, head: str) -> bool:
        return looks_like_mars(head) or looks_like_dat(head)

    def parse(self, source: SourceFile) -> list[PlateRead]:
        try:
            if is_workbook(source.contents):
                return _parse_workbook(source)
            return _parse_text(source)
        except InputFileError as err:
            err.path = err.path or source.original_path
            raise


def _parse_text(source: SourceFile) -> list[PlateRead]:
    text, encoding = decode(source)
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.startswith(c.DAT_TESTNAME):
        export = read_dat(_split(text, "\t"))
        decimal_comma = decide_decimal_comma(_raw_cells(export), "\t")
        meta = {Meta.ENCODING: encoding}
        return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)
    delimiter = _mars_delimiter(text)
    export = read_mars(_split(text, delimiter), delimiter=delimiter)
    decimal_comma = decide_decimal_comma(_raw_cells(export), delimiter)
    meta = {Meta.ENCODING: encoding, c.META_DELIMITER: delimiter}
    return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)


def _parse_workbook(source: SourceFile) -> list[PlateRead]:
    for sheet in read_workbook(source):
        head = "\n".join("\t".join(row.cells) for row in sheet.rows[:30])
        if not looks_like_mars(head):
            continue
        try:
            export = read_mars(sheet.rows, delimiter=",")
        except InputFileError as err:
            msg = f"sheet '{sheet.name}': {err.message}"
            raise InputFileError(msg, line=err.line, well=err.well) from err
        decimal_comma = decide_decimal_comma(_raw_cells(export), "\t")
        meta = {Meta.SHEET: sheet.name}
        return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)
    raise InputFileError(c.NO_MARS_HEADER)


def _split(text: str, delimiter: str) -> list[Row]:
    try:
        return split_text(text, delimiter)
    except csv.Error as exc:
        raise InputFileError(f"the file cannot be split into fields: {exc}") from exc


def _mars_delimiter(text: str) -> str:
    """The delimiter that splits the header lines into several 'Key: value' cells."""
    lines = [line for line in text.splitlines()[:20] if line.strip()][:8]
    best, best_score = ",", 0
    for delimiter in _DELIMITERS:
        score = sum(
            sum(1 for cell in line.split(delimiter) if _MARS_KEY_CELL.match(cell)) > 1
            for line in lines
        )
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _raw_cells(export: BmgExport) -> Iterable[str]:
    for read in export.reads:
        for cells in read.cells.values():
            yield from cells


# --- dates -------------------------------------------------------------------------------------


def parse_bmg_datetime(text: str, *, year_first_two_digits: bool = False) -> tuple[datetime, str]:
    """A naive datetime and the date order used, from a MARS or .DAT header date and time.

    ``23/06/2023 16:03:59`` (D/M/Y, MARS default), ``5/14/2021 3:29:50 PM`` (M/D/Y:
    US exports write AM/PM), ``23.06.2023`` (D.M.Y), ``2023-06-23`` and, in Omega
    .DAT files, ``14/09/27 07:46:58 AM`` (YY/MM/DD). Raises ValueError.
    """
    match = _DATE_TIME.match(text.strip())
    if not match:
        raise ValueError(text)
    a, separator, b, y, hour, minute, second, half = match.groups()
    first, middle, last = int(a), int(b), int(y)
    if len(a) == 4:
        year, month, day, order = first, middle, last, "Y-M-D"
    elif year_first_two_digits and len(y) <= 2 and len(a) <= 2:
        year, month, day, order = 2000 + first, middle, last, "YY/MM/DD"
    else:
        year = last + 2000 if len(y) <= 2 else last
        if separator == "." or first > 12:
            month, day, order = middle, first, "D/M/Y"
        elif middle > 12 or half is not None:
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


# --- reads -------------------------------------------------------------------------------------


def wavelength_from_title(title: str) -> float | None:
    """The nm of an absorbance title: 'Raw Data (600)', '(450 1)', 'Chromatic 1 (600nm)'."""
    match = _PARENTHESES.search(title)
    if not match:
        return None
    single = _SINGLE_WAVELENGTH.match(match.group(1))
    if not single:
        return None
    value = float(single.group(1))
    low, high = c.WAVELENGTH_RANGE_NM
    return value if low <= value <= high else None


def _read_time(export: BmgExport, source: SourceFile) -> tuple[datetime | None, dict[str, str]]:
    if not export.date_text:
        return None, {}
    try:
        moment, order = parse_bmg_datetime(
            export.date_text, year_first_two_digits=export.view == c.VIEW_DAT
        )
    except ValueError as exc:
        msg = c.BAD_DATE.format(found=export.date_text)
        raise InputFileError(msg, line=export.date_line) from exc
    aware = moment.replace(tzinfo=source.timezone)
    return aware, {Meta.READ_TIME: moment.isoformat(), c.META_DATE_ORDER: order}


def _export_metadata(export: BmgExport) -> tuple[str | None, dict[str, str]]:
    """(plate id, metadata shared by every read of the export)."""
    header = export.header
    meta: dict[str, str] = {c.META_VIEW: export.view}
    if export.mode:
        meta[c.META_MODE] = export.mode
    meta.update(export.metadata)
    if export.view == c.VIEW_DAT:
        plate_id = header.get("ID1") or None
        pairs = {
            Meta.READER_MODEL: header.get(c.DAT_READER_TYPE),
            Meta.READER_SERIAL: header.get(c.DAT_READER_SERIAL),
            Meta.SOFTWARE: header.get(c.DAT_SOFTWARE),
            c.META_FIRMWARE: header.get(c.DAT_FIRMWARE),
            c.META_MICROPLATE: header.get(c.DAT_MICROPLATE),
            c.META_TEST_NAME: header.get("Testname"),
            c.META_ID1: header.get("ID1"),
            c.META_ID2: header.get("ID2"),
            c.META_ID3: header.get("ID3"),
        }
    else:
        plate_id = header.get(c.MARS_ID1) or None
        folder = _BMG_FOLDER.search(header.get(c.MARS_PATH, ""))
        pairs = {
            # MARS names its data folder after the reader: '…\BMG\CLARIOstar\User\Data'.
            Meta.READER_MODEL: folder.group(1) if folder else None,
            c.META_USER: header.get(c.MARS_USER),
            c.META_PATH: header.get(c.MARS_PATH),
            c.META_TEST_RUN: header.get(c.MARS_RUN),
            c.META_TEST_NAME: header.get(c.MARS_TEST_NAME),
            c.META_ID1: header.get("id1"),
            c.META_ID2: header.get("id2"),
            c.META_ID3: header.get("id3"),
        }
    meta.update({key: value for key, value in pairs.items() if value})
    if plate_id:
        meta[Meta.PLATE_ID] = plate_id
    return plate_id, meta


def _plate_reads(
    export: BmgExport,
    source: SourceFile,
    *,
    decimal_comma: bool,
    metadata: Mapping[str, str],
) -> list[PlateRead]:
    read_time, time_meta = _read_time(export, source)
    plate_id, shared = _export_metadata(export)
    absorbance = export.mode.casefold().startswith("absorbance")
    reads: list[PlateRead] = []
    for index, raw in enumerate(export.reads):
        wavelength = wavelength_from_title(raw.title) if absorbance else None
        derived = export.view != c.VIEW_DAT and not raw.title.casefold().startswith(c.RAW_DATA)
        meta = {**shared, **metadata, **time_meta, **raw.metadata, Meta.LABEL: raw.title}
        spec = _PARENTHESES.search(raw.title)
        if spec and export.view != c.VIEW_DAT:
            meta[c.META_WAVELENGTH_SPEC] = spec.group(1).strip()
        if wavelength is not None:
            meta[Meta.WAVELENGTH] = f"{wavelength:g}"
        wells, kinetic = _wells(raw, decimal_comma=decimal_comma)
        reads.append(
            PlateRead(
                format=Instrument.BMG.value,
                source_path=source.original_path,
                source_sha256=source.sha256,
                wells=wells,
                index=index,
                plate_index=0,
                plate_id=plate_id,
                label=raw.title,
                wavelength_nm=wavelength,
                read_time=read_time,
                kind="kinetic" if kinetic is not None else "endpoint",
                rows=raw.rows,
                columns=raw.columns,
                derived=derived,
                metadata=meta,
                kinetic=kinetic,
            )
        )
    return reads


def _wells(
    raw: RawRead, *, decimal_comma: bool
) -> tuple[dict[str, WellValue], KineticSeries | None]:
    """Endpoint: the wells with a cell; kinetic: every well read at least once, last reading."""
    if not raw.kinetic:
        wells = {
            well: parse_cell(cells[0], decimal_comma=decimal_comma)
            for well, cells in raw.cells.items()
            if cells and cells[0].strip()
        }
        return wells, None
    readings = {
        well: tuple(parse_cell(cell, decimal_comma=decimal_comma) for cell in cells)
        for well, cells in raw.cells.items()
        if any(cell.strip() for cell in cells)
    }
    last = {well: series[-1] for well, series in readings.items()}
    return last, KineticSeries(times_s=raw.times_s, readings=readings)
