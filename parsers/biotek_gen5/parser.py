"""BioTek Gen5 text export (endpoint) → one PlateRead per plate and read label."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from saa_lab.domain import PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser, decode, parse_cell
from . import constants as c
from .reader import Grid, PlateBlock, read_plates, split_lines

if TYPE_CHECKING:
    from .reader import Line

__all__ = ["Gen5TextParser", "is_derived_label", "wavelength_from_label"]

_NUMBER = r"(\d+(?:\.\d+)?)\s*(?:nm)?"
_BARE_WAVELENGTH = re.compile(_NUMBER, re.IGNORECASE)
_WAVELENGTH_AFTER_COLON = re.compile(r":\s*" + _NUMBER + r"\s*(?:\[[^\]]*\])?", re.IGNORECASE)
_PROCEDURE_WAVELENGTHS = re.compile(r"^Wavelengths?:\s*(.+)$", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DECIMAL_POINT = re.compile(r"\d\.\d")


class Gen5TextParser(PlateParser):
    """Gen5's tab-separated text export of endpoint reads.

    Each plate starts at a ``Software Version`` header. Reads come from the
    ``Results`` grid (one read per trailing label; further reads of a row are
    stacked on lines with an empty row letter) or from grids titled by the
    read's label. The ``Layout`` grid is skipped.
    """

    INSTRUMENT = Instrument.BIOTEK_GEN5
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".txt",)

    @classmethod
    def sniff(cls, head: str) -> bool:
        lines = split_lines(head)[: c.SNIFF_LINES]
        keys = {line.cells[0].strip() for line in lines if len(line.cells) > 1}
        return c.SOFTWARE_VERSION in keys and any(key in keys for key in c.SNIFF_KEYS)

    def parse(self, source: SourceFile) -> list[PlateRead]:
        text, encoding = decode(source)
        try:
            blocks = read_plates(split_lines(text))
            reads: list[PlateRead] = []
            for plate_index, block in enumerate(blocks):
                reads.extend(
                    _plate_reads(
                        block, source, encoding, first_index=len(reads), plate_index=plate_index
                    )
                )
        except InputFileError as err:
            err.path = err.path or source.original_path
            raise
        return reads


@dataclass
class _ReadBuilder:
    """Wells of one read label gathered over the grids of one plate."""

    label: str | None
    columns: int
    rows: int
    wells: dict[str, WellValue] = field(default_factory=dict)


def _plate_reads(
    block: PlateBlock, source: SourceFile, encoding: str, *, first_index: int, plate_index: int
) -> list[PlateRead]:
    builders: dict[str | None, _ReadBuilder] = {}
    for grid in block.grids:
        if grid.title and grid.title.casefold() in c.SKIPPED_TITLES:
            continue
        _collect(grid, builders)
    if not builders:
        raise InputFileError(c.NO_RESULTS.format(plate=block.name), line=block.start_line)

    header_meta = {key: value for key, value in block.header.items() if value}
    procedure_meta = _procedure_metadata(block.procedure)
    wavelengths = _procedure_wavelengths(procedure_meta.get(c.META_WAVELENGTHS, ""))
    plate_id = next(
        (v for k, v in block.header.items() if k.casefold() in c.PLATE_ID_KEYS and v), None
    )
    reads: list[PlateRead] = []
    for offset, builder in enumerate(builders.values()):
        label = builder.label
        derived = label is not None and is_derived_label(label)
        wavelength = wavelength_from_label(label) if label else None
        if wavelength is None and not derived and len(wavelengths) == 1:
            wavelength = wavelengths[0]
        metadata = {**header_meta, **procedure_meta, **block.extras, c.META_ENCODING: encoding}
        if label:
            metadata[c.META_LABEL] = label
        reads.append(
            PlateRead(
                format=Instrument.BIOTEK_GEN5.value,
                source_path=source.original_path,
                source_sha256=source.sha256,
                wells=builder.wells,
                index=first_index + offset,
                plate_index=plate_index,
                plate_id=plate_id,
                label=label,
                wavelength_nm=wavelength,
                kind="endpoint",
                rows=builder.rows,
                columns=builder.columns,
                derived=derived,
                metadata=metadata,
            )
        )
    return reads


def _collect(grid: Grid, builders: dict[str | None, _ReadBuilder]) -> None:
    title = grid.title
    if title and title.casefold() == c.RESULTS_TITLE:
        title = None
    decimal_comma = _uses_decimal_comma(grid)
    for row in grid.rows:
        label = row.label or title
        if label and label.casefold() in c.SKIPPED_LABELS:
            continue
        builder = builders.get(label)
        if builder is None:
            builder = _ReadBuilder(label, grid.columns, c.ROWS_FOR_COLUMNS[grid.columns])
            builders[label] = builder
        for column, raw in enumerate(row.values, start=1):
            well = f"{row.row}{column}"
            if well in builder.wells:
                msg = c.DUPLICATE_WELL.format(well=well, label=label or c.RESULTS_TITLE)
                raise InputFileError(msg, line=row.line, well=well)
            builder.wells[well] = parse_cell(raw, decimal_comma=decimal_comma)


def _uses_decimal_comma(grid: Grid) -> bool:
    """Decide the decimal mark per grid: commas only when no cell uses a point."""
    cells = [cell.strip() for row in grid.rows for cell in row.values]
    has_comma = any(_DECIMAL_COMMA.match(cell) for cell in cells)
    return has_comma and not any(_DECIMAL_POINT.search(cell) for cell in cells)


def _procedure_metadata(procedure: Sequence[Line]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in procedure:
        filled = line.filled
        if len(filled) > 1 and filled[0] in c.PROCEDURE_KEYS:
            meta.setdefault(filled[0], filled[1])
        for cell in filled:
            match = _PROCEDURE_WAVELENGTHS.match(cell)
            if match:
                meta.setdefault(c.META_WAVELENGTHS, match.group(1).strip())
    return meta


def _procedure_wavelengths(text: str) -> list[float]:
    values = [part.strip() for part in text.split(",")]
    found = [_in_range(float(v)) for v in values if re.fullmatch(r"\d+(?:\.\d+)?", v)]
    return [v for v in found if v is not None]


def _in_range(value: float) -> float | None:
    low, high = c.WAVELENGTH_RANGE_NM
    return value if low <= value <= high else None


def wavelength_from_label(label: str) -> float | None:
    """The read's wavelength in nm from a Gen5 label, or None.

    ``710``, ``710nm``, ``OD:710``, ``690nm:690``, ``Read 1:710``,
    ``abs710:710`` and ``Blank 710`` all give 710.
    """
    text = label.strip()
    for prefix in c.DERIVED_PREFIXES:
        if text.casefold().startswith(prefix + " "):
            text = text[len(prefix) + 1 :].strip()
            break
    bare = _BARE_WAVELENGTH.fullmatch(text)
    if bare:
        return _in_range(float(bare.group(1)))
    matches = list(_WAVELENGTH_AFTER_COLON.finditer(text))
    if matches and matches[-1].end() == len(text):
        return _in_range(float(matches[-1].group(1)))
    return None


def is_derived_label(label: str) -> bool:
    """True for Gen5 calculation labels (``Blank 710``, ``[Concentration]``, ``Delta OD``)."""
    text = label.strip().casefold()
    if text.startswith("["):
        return True
    tail = text.rsplit(":", 1)[-1].strip()
    return any(text.startswith(p) or tail.startswith(p) for p in c.DERIVED_PREFIXES)
