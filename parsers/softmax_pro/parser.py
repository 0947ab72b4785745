"""SoftMax Pro text export → one PlateRead per plate section and wavelength.

``Plate:`` blocks give the raw reads (PlateFormat or TimeFormat, endpoint or
kinetic, one read per wavelength) and, when exported, a derived read of the
reduced data. ``Group:`` tables that list one well per row give derived
reads, one per column with numbers: a group table is SoftMax's report (its
``!WellValues`` column rounded to the group's display precision, the other
columns calculated), so even a file of group tables only holds no raw read.
The export carries no read time, only the date it was last saved, which is
kept in the metadata as written (``date_last_saved``); ``read_time`` stays None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from saa_lab.domain import KineticSeries, Meta, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError
from saa_lab.wells import normalize_well, well_sort_key

from ..base import Instrument, PlateParser, decode, parse_cell
from ..common import plate_read
from ..table import SHEET_MARKER, Row, decide_decimal_comma, is_workbook, read_workbook, split_text
from . import constants as c
from .reader import read_export
from .structure import Export, GroupTable, PlateHeader, PlateSection, TimePoint

__all__ = ["SoftMaxProParser", "cell_value"]


class SoftMaxProParser(PlateParser):
    """SoftMax Pro's tab-separated text export (``##BLOCKS= n`` then n blocks)."""

    INSTRUMENT = Instrument.SOFTMAX_PRO
    DISPLAY_NAME = c.DISPLAY_NAME
    SUPPORTED_EXTENSIONS = (".txt", ".xls", ".xlsx")

    @classmethod
    def sniff(cls, head: str) -> bool:
        """The first non-blank line is ``##BLOCKS=`` (of the text, or of a sheet's rows)."""
        text = head.removeprefix("\ufeff")
        if not text.startswith(SHEET_MARKER):
            first = next((line for line in text.splitlines() if line.strip()), "")
            return first.strip().startswith(c.BLOCKS_MARKER)
        expect_first = False
        for line in text.splitlines():
            if line.startswith(SHEET_MARKER):
                expect_first = True
            elif expect_first and line.strip():
                if line.strip().startswith(c.BLOCKS_MARKER):
                    return True
                expect_first = False
        return False

    def read_file(self, source: SourceFile) -> list[PlateRead]:
        sheet: str | None = None
        try:
            if is_workbook(source.contents):
                sheet, rows = _workbook_rows(source)
                encoding = None
            else:
                text, encoding = decode(source)
                rows = split_text(text.removeprefix("\ufeff"), "\t")
            export = read_export(rows)
            return _Builder(source, export, encoding=encoding, sheet=sheet).reads()
        except InputFileError as err:
            if sheet is None:
                raise
            message = f"sheet {sheet!r}: {err.message}"
            raise InputFileError(message, path=err.path, line=err.line, well=err.well) from err


def _workbook_rows(source: SourceFile) -> tuple[str, list[Row]]:
    """The first sheet that starts with ``##BLOCKS=`` (an export pasted into Excel)."""
    for sheet in read_workbook(source):
        first = next((row for row in sheet.rows if not row.is_blank), None)
        if first is not None and first.first.startswith(c.BLOCKS_MARKER):
            return sheet.name, list(sheet.rows)
    raise InputFileError(c.NO_BLOCKS_LINE, line=1)


def cell_value(raw: str, *, decimal_comma: bool) -> WellValue:
    """parse_cell with SoftMax's own tokens (``Path?``); the raw text is kept as written."""
    text = raw.strip()
    reason = c.VENDOR_TOKENS.get(text.upper())
    if reason is not None:
        return WellValue(None, text, reason)
    return parse_cell(raw, decimal_comma=decimal_comma)


class _Builder:
    """Turns the reader's sections into PlateReads, numbering reads and plates."""

    def __init__(
        self, source: SourceFile, export: Export, *, encoding: str | None, sheet: str | None
    ) -> None:
        self.source = source
        self.export = export
        self.base: dict[str, str] = {}
        if encoding:
            self.base[Meta.ENCODING] = encoding
        if sheet:
            self.base[Meta.SHEET] = sheet
        footer = export.footer
        for key, meta in (
            (c.FOOTER_ORIGINAL_FILENAME, c.META_ORIGINAL_FILENAME),
            (c.FOOTER_DATE_LAST_SAVED, c.META_DATE_LAST_SAVED),
            (c.FOOTER_INSTRUMENT_TYPE, Meta.READER_MODEL),
            (c.FOOTER_INSTRUMENT_SERIAL, Meta.READER_SERIAL),
        ):
            if footer.get(key):
                self.base[meta] = footer.get(key)
        self.plates = [s for s in export.sections if isinstance(s, PlateSection)]
        self.other_plates: list[str] = []
        self.out: list[PlateRead] = []

    def reads(self) -> list[PlateRead]:
        plate_index = 0
        for section in self.export.sections:
            if isinstance(section, PlateSection):
                self._plate_reads(section, plate_index)
                plate_index += 1
            else:
                self._group_reads(section)
        if not self.out:
            raise InputFileError(c.NO_PLATE_DATA, line=self.export.blocks_line)
        return self.out

    def _add(
        self,
        wells: Mapping[str, WellValue],
        *,
        plate_index: int,
        label: str,
        rows: int,
        columns: int,
        metadata: Mapping[str, str],
        wavelength_nm: float | None = None,
        kinetic: KineticSeries | None = None,
        derived: bool = False,
    ) -> None:
        self.out.append(
            plate_read(
                self.source,
                Instrument.SOFTMAX_PRO,
                wells,
                index=len(self.out),
                plate_index=plate_index,
                label=label,
                wavelength_nm=wavelength_nm,
                rows=rows,
                columns=columns,
                derived=derived,
                metadata=metadata,
                kinetic=kinetic,
            )
        )

    # --- Plate: sections ------------------------------------------------------------------

    def _plate_reads(self, section: PlateSection, plate_index: int) -> None:
        header = section.header
        decimal_comma = decide_decimal_comma(_section_cells(section), "\t")
        meta = {**self.base, **_header_metadata(header)}
        if decimal_comma:
            meta[c.META_DECIMAL_COMMA] = "true"
        for number, data in enumerate(section.reads):
            points = data.points
            series = [_point_wells(p, header, decimal_comma) for p in points]
            read_meta = dict(meta)
            read_meta[Meta.LABEL] = header.name
            if header.wavelengths[number] is not None:
                read_meta[Meta.WAVELENGTH] = header.wavelength_texts[number]
            temperature = _temperature(points, decimal_comma)
            if temperature:
                read_meta[Meta.TEMPERATURE] = temperature
            wells = series[-1]
            kinetic = None
            if header.is_kinetic:
                kinetic = _kinetic(points, series)
                wells = {well: values[-1] for well, values in kinetic.readings.items()}
            self._add(
                wells,
                plate_index=plate_index,
                label=header.name,
                wavelength_nm=header.wavelengths[number],
                rows=header.plate_rows,
                columns=header.plate_columns,
                metadata=read_meta,
                kinetic=kinetic,
            )
        for number, grid in enumerate(section.reduced):
            label = f"{header.name} {c.REDUCED_LABEL}"
            if len(section.reduced) > 1:
                label += f" {number + 1}"
            wells = _grid_wells(grid.cells, header, decimal_comma)
            self._add(
                wells,
                plate_index=plate_index,
                label=label,
                rows=header.plate_rows,
                columns=header.plate_columns,
                derived=True,
                metadata={**meta, Meta.LABEL: label},
            )

    # --- Group: tables --------------------------------------------------------------------

    def _group_reads(self, table: GroupTable) -> None:
        """One derived read per value column of a table that lists one well per row."""
        lowered = [name.casefold() for name in table.columns]
        well_at = next((i for i, n in enumerate(lowered) if n in c.GROUP_WELL_COLUMNS), None)
        if well_at is None:
            return
        plate_at = lowered.index(c.GROUP_PLATE_COLUMN) if c.GROUP_PLATE_COLUMN in lowered else None
        keyed: list[tuple[str, str, Row]] = []
        seen: set[tuple[str, str]] = set()
        for row in table.rows:
            raw_well = row.cell(well_at)
            if not raw_well:
                continue
            well = normalize_well(raw_well)
            plate = row.cell(plate_at) if plate_at is not None else ""
            if well is None or (plate, well) in seen:
                return  # not a table of one well per row: nothing to read as wells
            seen.add((plate, well))
            keyed.append((plate, well, row))
        if not keyed:
            return
        value_columns = [
            i
            for i, name in enumerate(table.columns)
            if name and i not in (well_at, plate_at) and lowered[i] not in c.GROUP_TEXT_COLUMNS
        ]
        cells = [row.cell(i) for _, _, row in keyed for i in value_columns]
        decimal_comma = decide_decimal_comma(cells, "\t")
        plates = list(dict.fromkeys(plate for plate, _, _ in keyed))
        for column in value_columns:
            name = table.columns[column]
            values = {
                (plate, well): cell_value(row.cell(column), decimal_comma=decimal_comma)
                for plate, well, row in keyed
            }
            if all(v.value is None for v in values.values()):
                continue
            label = f"{table.name}: {name}"
            for plate in plates:
                wells = {w: v for (p, w), v in values.items() if p == plate}
                plate_index, rows, columns = self._group_plate(plate, wells)
                meta = {
                    **self.base,
                    Meta.LABEL: label,
                    c.META_GROUP: table.name,
                    c.META_GROUP_COLUMN: name,
                }
                if table.formulas.get(name):
                    meta[c.META_FORMULA] = table.formulas[name]
                if plate:
                    meta[c.META_PLATE_SECTION] = plate
                if decimal_comma:
                    meta[c.META_DECIMAL_COMMA] = "true"
                self._add(
                    dict(sorted(wells.items(), key=lambda item: well_sort_key(item[0]))),
                    plate_index=plate_index,
                    label=label,
                    rows=rows,
                    columns=columns,
                    derived=True,
                    metadata=meta,
                )

    def _group_plate(self, plate: str, wells: Iterable[str]) -> tuple[int, int, int]:
        """(plate_index, rows, columns) of the plate a group's wells lie on.

        A group names its plate section in a ``WellPlateName`` column, or names
        none (then it lies on the file's first plate section, if any). Plates
        named but not in the file are numbered after the file's sections.
        """
        names = [section.header.name for section in self.plates]
        if plate in names or (not plate and self.plates):
            index = names.index(plate) if plate in names else 0
            header = self.plates[index].header
            if all(_fits(w, header.plate_rows, header.plate_columns) for w in wells):
                return index, header.plate_rows, header.plate_columns
        else:
            if plate not in self.other_plates:
                self.other_plates.append(plate)
            index = len(self.plates) + self.other_plates.index(plate)
        rows, columns = c.PLATE_SHAPES[96]
        if not all(_fits(w, rows, columns) for w in wells):
            rows, columns = c.PLATE_SHAPES[384]
        return index, rows, columns


def _fits(well: str, rows: int, columns: int) -> bool:
    return normalize_well(well, rows=rows, cols=columns) is not None


def _section_cells(section: PlateSection) -> Iterable[str]:
    for data in section.reads:
        for point in data.points:
            yield from point.cells.values()
    for grid in section.reduced:
        yield from grid.cells.values()


def _header_metadata(header: PlateHeader) -> dict[str, str]:
    meta = {
        c.META_PLATE_SECTION: header.name,
        c.META_EXPORT_VERSION: header.export_version,
        c.META_EXPORT_FORMAT: header.export_format,
        c.META_READ_TYPE: header.read_type,
        c.META_READ_MODE: header.read_mode,
        c.META_READ_AREA: header.read_area,
    }
    if header.is_kinetic:
        meta[c.META_KINETIC_POINTS] = str(header.kinetic_points)
        if header.run_time:
            meta[c.META_RUN_TIME] = header.run_time
        if header.interval:
            meta[c.META_INTERVAL] = header.interval
    if header.excitation:
        meta[c.META_EXCITATION] = " ".join(header.excitation)
    if header.bottom_read:
        meta[c.META_BOTTOM_READ] = header.bottom_read
    return meta


def _grid_wells(
    cells: Mapping[str, str], header: PlateHeader, decimal_comma: bool
) -> dict[str, WellValue]:
    """The wells of one grid: every cell with text, and the empty cells of the read area."""
    wells: dict[str, WellValue] = {}
    for well, raw in cells.items():  # row by row, as the reader found them
        if raw.strip() or header.in_area(ord(well[0]) - ord("A"), int(well[1:])):
            wells[well] = cell_value(raw, decimal_comma=decimal_comma)
    return wells


def _point_wells(
    point: TimePoint, header: PlateHeader, decimal_comma: bool
) -> dict[str, WellValue]:
    return _grid_wells(point.cells, header, decimal_comma)


def _temperature(points: Sequence[TimePoint], decimal_comma: bool) -> str | None:
    """The first temperature the read gives (as written), skipping ``NaN`` and empty cells."""
    for point in points:
        if cell_value(point.temperature, decimal_comma=decimal_comma).value is not None:
            return point.temperature.strip()
    return None


def _kinetic(
    points: Sequence[TimePoint], series: Sequence[Mapping[str, WellValue]]
) -> KineticSeries:
    first = points[0].seconds or 0.0
    times = tuple((p.seconds or 0.0) - first for p in points)
    wells: list[str] = sorted({w for s in series for w in s}, key=well_sort_key)
    empty = parse_cell("")
    readings = {well: tuple(s.get(well, empty) for s in series) for well in wells}
    return KineticSeries(times_s=times, readings=readings)
