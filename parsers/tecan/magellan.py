"""Tecan Magellan exports -> :class:`Export`.

Two shapes, in a workbook or a tab-separated ``.asc``/``.txt``:

* the well list: an optional header line ``Well positions | [Plate] | Raw data | …``,
  one line per well (the position may stand after a sample-id column), then a
  footer that starts ``Date of measurement: 2021-07-06/Time of measurement: 09:43:07``
  and names the method (``.mth``), workspace (``.wsp``), wavelength lines, user,
  device, ``Instrument serial number: …``, the measurement parameters
  (``Measurement mode: Absorbance``, ``Measurement wavelength: 595 nm``,
  ``Plate definition file: 96WEL008.pdfx``, or Magellan Pro's compact
  ``Plate Description: …``, ``Range: A1:H12``, ``Label: …``) and
  ``Meas. temperature: Raw data: 23.4 °C``;
* the kinetic sheet: one line per time point,
  ``Wednesday, August 16, 2023: 16:12:40 / 0 sec / 37.1°C``, then per well its
  name followed by one reading per time point (several wells may share a line).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from saa_lab.errors import InputFileError

from ..table import Row
from . import constants as c
from .reader import clean, well_name
from .structure import EndpointTable, Export, KineticTable, Measurement, RawCell

__all__ = ["is_magellan", "read_magellan"]

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_ANNOTATION = re.compile(r"^[\d.,]+\s*(s|sec|min|h|°c|c|\S?c)$", re.IGNORECASE)
_WAVELENGTH_TEXT = re.compile(r"\d\s*nm\b", re.IGNORECASE)
_TOKENS = frozenset({"OVER", "INVALID", "OVRFLW", "OVERFLOW", "NAN", "N/A", "MASKED"})
_UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "min": 60.0, "h": 3600.0}


def is_magellan(rows: Sequence[Row]) -> bool:
    """A ``Well positions`` header, the ``Date of measurement`` footer, or a kinetic sheet."""
    first_seen = False
    for row in rows:
        if row.is_blank:
            continue
        first = clean(row.cells[0])
        if not first_seen:
            first_seen = True
            if c.MAGELLAN_KINETIC_LINE.match(first):
                return True
        if first.casefold() == c.MAGELLAN_WELL_HEADER or c.MAGELLAN_FOOTER.match(first):
            return True
    return False


def _is_reading(text: str) -> bool:
    return bool(_NUMBER.match(text)) or text.upper() in _TOKENS


@dataclass
class _Block:
    """One measurement's parameters from the footer."""

    label: str | None = None
    mode: str | None = None
    wavelength: str | None = None
    excitation: str | None = None
    emission: str | None = None
    part_of_plate: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class _Footer:
    header: dict[str, str] = field(default_factory=dict)
    blocks: list[_Block] = field(default_factory=list)
    temperatures: dict[str, str] = field(default_factory=dict)
    start_time: str | None = None


def read_magellan(rows: Sequence[Row], sheet: str | None) -> Export:
    content = [row for row in rows if not row.is_blank]
    if content and c.MAGELLAN_KINETIC_LINE.match(clean(content[0].cells[0])):
        return _read_kinetic(content, sheet)
    return _read_list(content, sheet)


def _footer_start(rows: Sequence[Row]) -> int:
    for index, row in enumerate(rows):
        if c.MAGELLAN_FOOTER.match(clean(row.cells[0])):
            return index
    return len(rows)


def _read_footer(rows: Sequence[Row]) -> _Footer:
    footer = _Footer()
    lines = [" ".join(clean(cell) for cell in row.cells if clean(cell)) for row in rows]
    block: _Block | None = None
    for index, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        folded = text.casefold()
        when = c.MAGELLAN_TIME_OF_MEASUREMENT.match(text) or c.MAGELLAN_COMPACT_TIME.match(text)
        serial = c.MAGELLAN_SERIAL.match(text)
        temperature = c.MAGELLAN_TEMPERATURE.match(text)
        if when:
            footer.header.setdefault(c.DATE, when.group("date"))
            footer.header.setdefault(c.TIME, when.group("time"))
        elif folded.endswith(".mth"):
            footer.header.setdefault(c.META_MAGELLAN_METHOD, text)
        elif folded.endswith(".wsp"):
            footer.header.setdefault(c.META_MAGELLAN_WORKSPACE, text)
        elif c.MAGELLAN_WAVELENGTH_LINE.match(text):
            footer.header.setdefault("wavelengths", text)
        elif serial:
            footer.header.setdefault(c.SERIAL, serial.group(1).strip())
            _device_and_user(footer, lines[:index])
        elif temperature:
            footer.temperatures[temperature.group("label").strip()] = temperature.group("value")
        elif re.match(r"^measurement \d+\s*:?$", folded):
            block = _Block()
            footer.blocks.append(block)
        elif folded in c.MAGELLAN_MODE_LINES:
            block = _Block(mode=text)
            footer.blocks.append(block)
        else:
            block = _key_value(footer, block, text)
    return footer


def _device_and_user(footer: _Footer, before: Sequence[str]) -> None:
    """Magellan writes the user, then the device, on the lines before the serial number."""
    plain = [
        line.strip()
        for line in before
        if line.strip()
        and ":" not in line
        and not line.strip().casefold().endswith((".mth", ".wsp"))
        and not _WAVELENGTH_TEXT.search(line)
    ]
    if plain:
        footer.header.setdefault(c.DEVICE, plain[-1])
    if len(plain) > 1:
        footer.header.setdefault(c.USER, plain[-2])


def _key_value(footer: _Footer, block: _Block | None, text: str) -> _Block | None:
    match = c.MAGELLAN_KEY_VALUE.match(text)
    if not match:
        return block
    key, value = match.group(1), match.group(2)
    folded = key.casefold()
    if folded in c.MAGELLAN_PLATE_KEYS:
        footer.header.setdefault(c.PLATE, value)
        return block
    if folded in {"scan barcode", "barcode"} and value and value.casefold() != "no":
        footer.header.setdefault(c.PLATE_ID, value)
        return block
    if folded == "range":
        if block is None:
            footer.header.setdefault("range", value)
        else:
            block.part_of_plate = value
        return block
    if folded in c.MAGELLAN_MODE_KEYS:
        if block is None or block.mode is not None:
            block = _Block()
            footer.blocks.append(block)
        block.mode = value
        return block
    if block is None:
        footer.header.setdefault(key, value)
        return block
    if folded in c.MAGELLAN_WAVELENGTH_KEYS:
        block.wavelength = block.wavelength or value
    elif folded == "excitation wavelength":
        block.excitation = block.excitation or value
    elif folded == "emission wavelength":
        block.emission = block.emission or value
    elif folded == "label":
        block.label = block.label or value
    else:
        block.settings.setdefault(key, value)
    return block


@dataclass(frozen=True)
class _Column:
    index: int
    title: str


def _position_column(rows: Sequence[Row]) -> int:
    """The column every data line has a well name in (Magellan may put a sample id first)."""
    width = max(len(row.cells) for row in rows)
    for index in range(width):
        cells = [clean(row.cells[index]) if index < len(row.cells) else "" for row in rows]
        if all(well_name(cell) for cell in cells if cell) and any(cells):
            return index
    raise InputFileError(c.MAGELLAN_NO_WELLS, line=rows[0].number)


def _read_list(rows: Sequence[Row], sheet: str | None) -> Export:
    end = _footer_start(rows)
    body, footer_rows = list(rows[:end]), rows[end:]
    footer = _read_footer(footer_rows)
    titles: list[str] = []
    position: int | None = None
    if body and any(clean(cell).casefold() == c.MAGELLAN_POSITION_KEY for cell in body[0].cells):
        titles = [clean(cell) for cell in body[0].cells]
        position = next(n for n, t in enumerate(titles) if t.casefold() == c.MAGELLAN_POSITION_KEY)
        body = body[1:]
    data = [row for row in body if _data_line(row, position)]
    if not data:
        line = footer_rows[0].number if footer_rows else (rows[0].number if rows else None)
        raise InputFileError(c.MAGELLAN_NO_WELLS, line=line)
    if position is None:
        position = _position_column(data)
    plate_column = next(
        (n for n, t in enumerate(titles) if t.casefold() == c.MAGELLAN_PLATE_COLUMN), None
    )
    columns = _value_columns(data, titles, position)
    if not columns:
        raise InputFileError(c.MAGELLAN_NO_VALUES, line=data[0].number)
    measurements: list[Measurement] = []
    labels = list(footer.temperatures)
    for number, column in enumerate(columns):
        title = column.title or (labels[number] if number < len(labels) else None)
        title = title or (c.MAGELLAN_DEFAULT_LABEL if len(columns) == 1 else f"Label{number + 1}")
        block = _block_for(footer.blocks, title, number, len(columns))
        for plate_key, wells in _wells(data, position, column.index, plate_column, title).items():
            measurements.append(
                Measurement(
                    line=data[0].number,
                    table=EndpointTable(line=data[0].number, wells=wells),
                    label=title,
                    mode=block.mode if block else None,
                    wavelength=_wavelength(block, footer),
                    excitation=block.excitation if block else None,
                    emission=block.emission if block else None,
                    part_of_plate=(block.part_of_plate if block else None)
                    or footer.header.get("range"),
                    temperature=footer.temperatures.get(title),
                    plate_key=plate_key,
                    derived=_is_derived(title),
                    settings=block.settings if block else {},
                )
            )
    return Export(
        dialect=c.MAGELLAN,
        sheet=sheet,
        header=footer.header,
        measurements=tuple(measurements),
    )


def _data_line(row: Row, position: int | None) -> bool:
    """Well lines; the optional '0s' and '24.8 °C' lines above them are skipped."""
    cells = [clean(cell) for cell in row.cells]
    if position is not None:
        first = cells[position] if position < len(cells) else ""
        return bool(first) and not _ANNOTATION.match(first)
    return any(well_name(cell) for cell in cells)


def _value_columns(data: Sequence[Row], titles: Sequence[str], position: int) -> list[_Column]:
    width = max(len(row.cells) for row in data)
    columns: list[_Column] = []
    for index in range(width):
        title = titles[index] if index < len(titles) else ""
        if index == position or title.casefold() in c.MAGELLAN_TEXT_COLUMNS:
            continue
        cells = [clean(row.cells[index]) if index < len(row.cells) else "" for row in data]
        filled = [cell for cell in cells if cell]
        if not filled and not title:
            continue
        if filled and not any(_NUMBER.match(cell) for cell in filled):
            continue  # a text column (sample names): not readings
        columns.append(_Column(index, title))
    return columns


def _wells(
    data: Sequence[Row], position: int, index: int, plate_column: int | None, title: str
) -> dict[str | None, dict[str, RawCell]]:
    plates: dict[str | None, dict[str, RawCell]] = {}
    current_plate: str | None = None
    for row in data:
        cells = row.cells
        raw_position = clean(cells[position]) if position < len(cells) else ""
        well = well_name(raw_position)
        if well is None:
            raise InputFileError(c.BAD_LIST_WELL.format(found=raw_position), line=row.number)
        if plate_column is not None and plate_column < len(cells) and clean(cells[plate_column]):
            current_plate = clean(cells[plate_column])
        wells = plates.setdefault(current_plate, {})
        if well in wells:
            msg = c.DUPLICATE_WELL.format(well=well, label=title)
            raise InputFileError(msg, line=row.number, well=well)
        wells[well] = RawCell(cells[index] if index < len(cells) else "", row.number)
    return plates


def _block_for(blocks: Sequence[_Block], title: str, number: int, columns: int) -> _Block | None:
    for block in blocks:
        if block.label and block.label.casefold() == title.casefold():
            return block
    if len(blocks) == columns:
        return blocks[number]
    if len(blocks) == 1 and not _is_derived(title):
        return blocks[0]
    return None


def _wavelength(block: _Block | None, footer: _Footer) -> str | None:
    if block is not None and block.wavelength:
        return block.wavelength
    if block is not None and (block.excitation or block.emission):
        return None
    single = footer.header.get("wavelengths")
    return single if single and c.MAGELLAN_WAVELENGTH_LINE.match(single) else None


def _is_derived(title: str) -> bool:
    folded = title.casefold()
    return any(word in folded for word in c.DERIVED_WORDS)


def _read_kinetic(rows: Sequence[Row], sheet: str | None) -> Export:
    times: list[RawCell] = []
    temperatures: list[str] = []
    first_time: datetime | None = None
    index = 0
    while index < len(rows):
        match = c.MAGELLAN_KINETIC_LINE.match(clean(rows[index].cells[0]))
        if not match:
            break
        seconds = float(match.group("offset").replace(",", ".")) * _UNIT_SECONDS.get(
            match.group("unit").casefold(), 1.0
        )
        times.append(RawCell(repr(seconds), rows[index].number))
        temperatures.append(match.group("temperature").replace(",", "."))
        if first_time is None:
            stamp = f"{match.group('date')} {match.group('time')}"
            try:
                # Local time; the parser attaches the lab's zone.
                first_time = datetime.strptime(stamp, c.MAGELLAN_KINETIC_DATE_FORMAT)  # noqa: DTZ007
            except ValueError:
                first_time = None
        index += 1
    end = index + _footer_start(rows[index:])
    footer = _read_footer(rows[end:])
    series: dict[str, tuple[RawCell, ...]] = {}
    for row in rows[index:end]:
        _kinetic_line(row, len(times), series)
    if not series:
        raise InputFileError(
            c.MAGELLAN_NO_WELLS, line=rows[index].number if index < len(rows) else None
        )
    label = next(iter(footer.temperatures), None) or c.MAGELLAN_DEFAULT_LABEL
    block = _block_for(footer.blocks, label, 0, 1)
    header = dict(footer.header)
    if first_time is not None:
        header.setdefault(c.DATE, first_time.date().isoformat())
        header.setdefault(c.TIME, first_time.time().isoformat())
    measurement = Measurement(
        line=rows[0].number,
        table=KineticTable(rows[0].number, tuple(times), tuple(temperatures), series),
        label=label,
        mode=block.mode if block else None,
        wavelength=_wavelength(block, footer),
        temperature=temperatures[0] if temperatures else None,
        settings=block.settings if block else {},
    )
    return Export(dialect=c.MAGELLAN, sheet=sheet, header=header, measurements=(measurement,))


def _kinetic_line(row: Row, count: int, series: dict[str, tuple[RawCell, ...]]) -> None:
    well: str | None = None
    values: list[RawCell] = []

    def close() -> None:
        if well is None:
            return
        if len(values) != count:
            msg = c.MAGELLAN_KINETIC_ROW.format(well=well, found=len(values), times=count)
            raise InputFileError(msg, line=row.number, well=well)
        if well in series:
            msg = c.DUPLICATE_WELL.format(well=well, label=c.MAGELLAN_DEFAULT_LABEL)
            raise InputFileError(msg, line=row.number, well=well)
        series[well] = tuple(values)

    for cell in row.cells:
        text = clean(cell)
        if not text:
            continue
        name = well_name(text)
        if name is not None:
            close()
            well, values = name, []
        elif well is not None:
            values.append(RawCell(cell, row.number))
        else:
            raise InputFileError(c.BAD_KINETIC_WELL.format(found=text), line=row.number)
    close()
