"""PerkinElmer / Revvity exports (EnVision, EnSpire, VICTOR X3, VICTOR Nivo) → PlateReads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from saa_lab.domain import Meta, PlateRead, SourceFile
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode
from ..common import (
    local_read_time,
    note_wavelength,
    plate_read,
    raw_cells,
    series_wells,
    split_rows,
)
from ..table import decide_decimal_comma
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

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        text = text.removeprefix("\ufeff")
        if looks_like_x3(text[:4096]):
            delimiter = "\t"
            export = read_x3(split_rows(text, delimiter))
        elif looks_like_nivo(text[:4096]):
            delimiter = _delimiter(text, c.NIVO_START)
            export = read_nivo(split_rows(text, delimiter))
        else:
            delimiter = _delimiter(text, "Plate")
            export = read_envision(split_rows(text, delimiter))
        decimal_comma = decide_decimal_comma(raw_cells(export.reads), delimiter)
        meta = {Meta.ENCODING: encoding, c.META_DELIMITER: delimiter}
        return _plate_reads(export, source, decimal_comma=decimal_comma, metadata=meta)


def _delimiter(text: str, key: str) -> str:
    """The character after ``key`` at the start of the first line that starts with it."""
    for line in text.splitlines()[:200]:
        if line.startswith(key) and len(line) > len(key):
            following = line[len(key)]
            if following in _DELIMITERS:
                return following
    return ","


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
    line = read.date_line if read.date_text else export.date_line
    return local_read_time(
        text, line=line, source=source, parse=parse_pe_datetime, message=c.BAD_DATE
    )


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
        note_wavelength(meta, wavelength)
        if raw.saturated:
            meta[c.META_SATURATED] = ", ".join(sorted(raw.saturated))
        wells, kinetic = series_wells(raw, decimal_comma=decimal_comma, saturated=raw.saturated)
        reads.append(
            plate_read(
                source,
                Instrument.PERKINELMER,
                wells,
                index=index,
                plate_index=plate_order.index(raw.plate),
                plate_id=raw.plate_id,
                label=raw.label,
                wavelength_nm=wavelength,
                read_time=read_time,
                rows=raw.rows,
                columns=raw.columns,
                derived=raw.derived,
                metadata=meta,
                kinetic=kinetic,
            )
        )
    return reads
