"""BMG Labtech exports (MARS CSV/Excel, Omega .DAT) → one PlateRead per read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from saa_lab.domain import Meta, PlateRead, SourceFile
from saa_lab.errors import InputFileError

from .. import dates
from ..base import Instrument, PlateParser, decode
from ..common import (
    local_read_time,
    note_wavelength,
    plate_read,
    present,
    raw_cells,
    series_wells,
    split_rows,
    wavelength_in,
)
from ..table import decide_decimal_comma, is_workbook, read_workbook
from . import constants as c
from .reader import looks_like_dat, looks_like_mars, read_dat, read_mars

if TYPE_CHECKING:
    from .structure import BmgExport

__all__ = ["BmgParser", "parse_bmg_datetime", "wavelength_from_title"]

_DATE_TIME = re.compile(
    r"^(\d{1,4})([./-])(\d{1,2})[./-](\d{1,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*([AaPp])?\.?\s*(?:[Mm]\.?)?$"
)
_PARENTHESES = re.compile(r"\(([^()]*)\)\s*$")
# A single number in the title's closing parentheses: '(600)', '(450 1)', '(600nm)'.
_TITLE_WAVELENGTH = re.compile(r"\(\s*(\d+(?:\.\d+)?)\s*(?:nm)?(?:\s+\d+)?\s*\)\s*$", re.I)
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

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        if is_workbook(source.contents):
            return _parse_workbook(source)
        return _parse_text(source)


def _parse_text(source: SourceFile) -> list[PlateRead]:
    text, encoding = decode(source)
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.startswith(c.DAT_TESTNAME):
        export = read_dat(split_rows(text, "\t"))
        decimal_comma = decide_decimal_comma(raw_cells(export.reads), "\t")
        meta = {Meta.ENCODING: encoding}
        return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)
    delimiter = _mars_delimiter(text)
    export = read_mars(split_rows(text, delimiter), delimiter=delimiter)
    decimal_comma = decide_decimal_comma(raw_cells(export.reads), delimiter)
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
        decimal_comma = decide_decimal_comma(raw_cells(export.reads), "\t")
        meta = {Meta.SHEET: sheet.name}
        return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)
    raise InputFileError(c.NO_MARS_HEADER)


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
    first, separator, second, last, hour, minute, seconds, half = match.groups()
    if year_first_two_digits and len(last) <= 2 and len(first) <= 2:
        day = dates.NumericDate(2000 + int(first), int(second), int(last), "YY/MM/DD")
    else:
        day = dates.numeric_date(first, separator, second, last, month_first=half is not None)
    return dates.naive_datetime(day, hour, minute, seconds, half), day.order


# --- reads -------------------------------------------------------------------------------------


def wavelength_from_title(title: str) -> float | None:
    """The nm of an absorbance title: 'Raw Data (600)', '(450 1)', 'Chromatic 1 (600nm)'."""
    return wavelength_in(title, (_TITLE_WAVELENGTH,))


def _read_time(export: BmgExport, source: SourceFile) -> tuple[datetime | None, dict[str, str]]:
    if not export.date_text:
        return None, {}
    dat = export.view == c.VIEW_DAT
    return local_read_time(
        export.date_text,
        line=export.date_line,
        source=source,
        parse=partial(parse_bmg_datetime, year_first_two_digits=dat),
        message=c.BAD_DATE,
    )


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
    meta.update(present(pairs))
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
        note_wavelength(meta, wavelength)
        wells, kinetic = series_wells(raw, decimal_comma=decimal_comma)
        reads.append(
            plate_read(
                source,
                Instrument.BMG,
                wells,
                index=index,
                plate_id=plate_id,
                label=raw.title,
                wavelength_nm=wavelength,
                read_time=read_time,
                rows=raw.rows,
                columns=raw.columns,
                derived=derived,
                metadata=meta,
                kinetic=kinetic,
            )
        )
    return reads
