"""i-control / SparkControl rows -> one :class:`Export` per sheet (or text file).

The export is a column of keys (column A) with values further right (column E
in i-control and SparkControl, column B for some keys), then per read its
settings and a table: a ``<>`` grid, a ``<>,Value,Time [ms]`` well list, or a
``Cycle Nr.`` kinetic table with wells as rows or as columns. The reader checks
the tables' shape and raises InputFileError with the row number; it does not
turn cells into numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from saa_lab.errors import InputFileError

from ..table import Row
from . import constants as c
from .structure import EndpointTable, Export, KineticTable, Measurement, RawCell

__all__ = ["clean", "fold_key", "is_icontrol", "read_icontrol", "well_name"]

_KEY = re.compile(r"^([^:]*?)\s*:\s*(.*)$")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_DEGREE = re.compile("[\ufffd\u00a1\u00ba\u221e\u00b0]")
_SERIAL = re.compile(r"^(?:serial number|seriennummer)\s*:\s*(.*)$", re.IGNORECASE)


def fold_key(text: str) -> str:
    """A key for lookup: case-folded, any mis-decoded degree sign read as '°'.

    i-control 1.11 CSV writes '°' as a lone cp1252 byte in a UTF-8 file (decoded as
    U+FFFD); older exports show '¡', 'º' or '∞' in its place.
    """
    return _DEGREE.sub("°", text.strip()).casefold()


def clean(text: str) -> str:
    """A cell without surrounding space, quotes or Excel's leading apostrophe."""
    return text.strip().strip('"').strip().lstrip("'").strip()


def well_name(text: str) -> str | None:
    """``A1`` for ``A1``/``a01``; None for anything that is not a well name."""
    match = c.WELL_NAME.match(text.strip())
    if not match:
        return None
    column = int(match.group(2))
    return f"{match.group(1).upper()}{column}" if column >= 1 else None


def is_icontrol(rows: Sequence[Row]) -> bool:
    """An i-control or SparkControl export names its application in its first lines."""
    seen = 0
    for row in rows:
        if row.is_blank:
            continue
        line = "\t".join(cell.strip() for cell in row.cells)
        if c.APPLICATION_LINE.match(line):
            return True
        seen += 1
        if seen >= c.SNIFF_HEADER_LINES:
            return False
    return False


def _split_key(first: str) -> tuple[str, str]:
    match = _KEY.match(first)
    if match:
        return match.group(1).strip(), match.group(2).strip()
    return first, ""


def _values(row: Row) -> list[str]:
    return [value for value in (clean(cell) for cell in row.cells[1:]) if value]


@dataclass
class _Group:
    """A read being gathered: its settings, then its table."""

    line: int
    label: str | None = None
    title: str | None = None
    mode: str | None = None
    wavelength: str | None = None
    excitation: str | None = None
    emission: str | None = None
    part_of_plate: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    temperature: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    table: EndpointTable | KineticTable | None = None

    def freeze(self, table: EndpointTable | KineticTable) -> Measurement:
        return Measurement(
            line=self.line,
            table=table,
            label=self.label,
            title=self.title,
            mode=self.mode,
            wavelength=self.wavelength,
            excitation=self.excitation,
            emission=self.emission,
            part_of_plate=self.part_of_plate,
            start_time=self.start_time,
            end_time=self.end_time,
            temperature=self.temperature,
            settings=self.settings,
        )


@dataclass
class _State:
    header: dict[str, str] = field(default_factory=dict)
    extras: dict[str, str] = field(default_factory=dict)
    groups: list[_Group] = field(default_factory=list)
    current: _Group | None = None
    last_table: _Group | None = None
    title: str | None = None
    start_time: str | None = None
    is_spark: bool = False

    def assign(self, line: int) -> _Group:
        """The read a table belongs to: named by the title above it, else the next unused."""
        title = self.title
        name = title.split(":", 1)[0].strip() if title else None
        unused = [group for group in self.groups if group.table is None]
        chosen = None
        if name:
            chosen = next(
                (g for g in unused if g.label and g.label.casefold() == name.casefold()), None
            )
        if chosen is None and unused:
            chosen = unused[0]
        if chosen is None:
            chosen = _Group(line=line)
            self.groups.append(chosen)
        if title:
            chosen.title = title
            chosen.label = chosen.label or name
        return chosen


def read_icontrol(rows: Sequence[Row], sheet: str | None) -> Export:
    """Header facts, and every read that has a table, in file order."""
    state = _State()
    i = 0
    while i < len(rows):
        row = rows[i]
        filled = row.filled
        if not filled:
            i += 1
            continue
        first = clean(filled[0])
        folded = fold_key(first)
        if first == c.GRID_CORNER:
            group = state.assign(row.number)
            group.table, i = _read_endpoint(rows, i, group.label)
            state.current, state.last_table, state.title = None, group, None
            continue
        if folded in c.CYCLE_KEYS:
            group = state.assign(row.number)
            group.table, i = _read_kinetic(rows, i, group.label)
            state.current, state.last_table, state.title = None, group, None
            continue
        _read_line(state, row, first)
        i += 1
    measurements = tuple(g.freeze(g.table) for g in state.groups if g.table is not None)
    header = {**state.extras, **state.header}
    dialect = c.SPARKCONTROL if state.is_spark else c.ICONTROL
    return Export(
        dialect=dialect,
        sheet=sheet,
        header=header,
        measurements=measurements,
        start_time=state.start_time,
    )


def _read_line(state: _State, row: Row, first: str) -> None:
    """A key line (header fact or read setting), a title, or a line to skip."""
    values = _values(row)
    if not first:
        # Column A empty: i-control writes " | Temperature: 25.3 °C" above the grid.
        for value in values:
            match = c.INLINE_TEMPERATURE.match(value)
            if match:
                _set_temperature(state, match.group(1))
        state.title = None
        return
    key, inline = _split_key(first)
    canon = c.KEY_ALIASES.get(fold_key(key))
    if canon is None:
        match = c.INLINE_TEMPERATURE.match(first)
        if match:
            _set_temperature(state, match.group(1))
        elif not values:
            # A line of its own: the title of the table that may follow ("OD600:600").
            state.title = first
            return
        elif state.current is not None:
            state.current.settings.setdefault(key, inline or " ".join(values))
        else:
            state.extras.setdefault(key, inline or " ".join(values))
        state.title = None
        return
    state.title = None
    value = inline or (values[0] if values else "")
    _HANDLERS.get(canon, _setting)(state, canon, value, values, row)


def _set_temperature(state: _State, text: str) -> None:
    number = _NUMBER.search(text)
    if not number:
        return
    target = state.current or state.last_table
    if target is not None and target.temperature is None:
        target.temperature = number.group(0)
    else:
        state.extras.setdefault(c.TEMPERATURE, number.group(0))


def _application(state: _State, _canon: str, value: str, values: list[str], row: Row) -> None:
    _key, inline = _split_key(clean(row.cells[0]))
    application = inline or value
    state.header.setdefault(c.APPLICATION, application)
    state.is_spark = state.is_spark or "spark" in application.casefold()
    version = values[0] if inline and values else ""
    # "Tecan i-control , 1.8.50.0" -> "1.8.50.0"; SparkControl writes "V3.1 SP1".
    version = version.rsplit(",", 1)[-1].strip()
    if version:
        state.header.setdefault("version", version)


def _device(state: _State, _canon: str, value: str, values: list[str], row: Row) -> None:
    _key, inline = _split_key(clean(row.cells[0]))
    if inline:
        state.header.setdefault(c.DEVICE, inline)
    for cell in values:
        match = _SERIAL.match(cell)
        if match and match.group(1).strip():
            state.header.setdefault(c.SERIAL, match.group(1).strip())


def _header(state: _State, canon: str, value: str, _values: list[str], _row: Row) -> None:
    if value:
        state.header.setdefault(canon, value)


def _plate(state: _State, canon: str, value: str, _values: list[str], _row: Row) -> None:
    # "Plate" is a header line (the plate type) and also an action in the script list.
    if value and state.current is None:
        state.header.setdefault(canon, value)


def _label(state: _State, _canon: str, value: str, _values: list[str], row: Row) -> None:
    group = _Group(line=row.number, label=value or None)
    state.groups.append(group)
    state.current = group


def _mode(state: _State, _canon: str, value: str, _values: list[str], row: Row) -> None:
    if value.casefold() in c.KINETIC_MODES:
        state.current = None
        state.extras.setdefault("kinetic", value)
        return
    current = state.current
    if current is not None and current.mode is None and current.table is None:
        current.mode = value or None
        return
    group = _Group(line=row.number, mode=value or None)
    state.groups.append(group)
    state.current = group


def _name(state: _State, _canon: str, value: str, _values: list[str], _row: Row) -> None:
    # SparkControl names the read on the line after its Mode; "Name | GRE96ft" above the
    # reads names the plate definition.
    current = state.current
    if current is not None and current.label is None and value:
        current.label = value
    elif current is None and value:
        state.extras.setdefault("plate definition", value)


def _read_setting(state: _State, canon: str, value: str, values: list[str], row: Row) -> None:
    current = state.current
    if current is None:
        _setting(state, canon, value, values, row)
        return
    if canon == c.WAVELENGTH and current.wavelength is None:
        current.wavelength = value or None
    elif canon == c.EXCITATION and current.excitation is None:
        current.excitation = value or None
    elif canon == c.EMISSION and current.emission is None:
        current.emission = value or None
    elif canon == c.PART_OF_PLATE and current.part_of_plate is None:
        current.part_of_plate = value or None


def _start_time(state: _State, _canon: str, value: str, _values: list[str], _row: Row) -> None:
    if not value:
        return
    if state.start_time is None:
        state.start_time = value
    if state.current is not None and state.current.start_time is None:
        state.current.start_time = value


def _end_time(state: _State, _canon: str, value: str, _values: list[str], _row: Row) -> None:
    target = state.last_table
    if value and target is not None and target.end_time is None:
        target.end_time = value


def _temperature(state: _State, _canon: str, value: str, _values: list[str], _row: Row) -> None:
    _set_temperature(state, value)


def _setting(state: _State, canon: str, value: str, values: list[str], row: Row) -> None:
    key, _inline = _split_key(clean(row.cells[0]))
    text = " ".join(values) if values else value
    if not text:
        return
    if state.current is not None:
        state.current.settings.setdefault(key, text)
    else:
        state.extras.setdefault(canon, text)


_HANDLERS = {
    c.APPLICATION: _application,
    c.DEVICE: _device,
    c.SERIAL: _header,
    c.FIRMWARE: _header,
    c.METHOD: _header,
    c.DATE: _header,
    c.TIME: _header,
    c.SYSTEM: _header,
    c.USER: _header,
    c.PLATE: _plate,
    c.PLATE_ID: _header,
    c.PLATE_AREA: _header,
    c.COMMENT: _header,
    c.LABEL: _label,
    c.MODE: _mode,
    c.NAME: _name,
    c.WAVELENGTH: _read_setting,
    c.EXCITATION: _read_setting,
    c.EMISSION: _read_setting,
    c.PART_OF_PLATE: _read_setting,
    c.START_TIME: _start_time,
    c.END_TIME: _end_time,
    c.TEMPERATURE: _temperature,
}


# --- tables -----------------------------------------------------------------------------------


def _column_number(text: str) -> int | None:
    """``1`` (text) or ``1.0`` (a number cell) -> 1; anything else None."""
    try:
        number = float(text)
    except ValueError:
        return None
    if number != int(number) or number < 1:
        return None
    return int(number)


def _trimmed(cells: Sequence[str]) -> list[str]:
    out = [clean(cell) for cell in cells]
    while out and not out[-1]:
        out.pop()
    return out


def _read_endpoint(rows: Sequence[Row], start: int, label: str | None) -> tuple[EndpointTable, int]:
    header = rows[start]
    cells = _trimmed(header.cells[1:])
    if cells and _column_number(cells[0]) is None:
        return _read_list(rows, start, cells, label)
    columns: list[int] = []
    for cell in cells:
        number = _column_number(cell)
        if number is None or (columns and number <= columns[-1]):
            found = " ".join(cells)
            raise InputFileError(c.BAD_COLUMN_HEADER.format(found=found), line=header.number)
        columns.append(number)
    if not columns:
        raise InputFileError(c.BAD_COLUMN_HEADER.format(found=""), line=header.number)
    wells: dict[str, RawCell] = {}
    previous = ""
    i = start + 1
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        letter = clean(row.cells[0]) if row.cells else ""
        if not c.ROW_LETTER.match(letter):
            break
        if previous and letter <= previous:
            msg = c.BAD_ROW_LETTER.format(found=letter, previous=previous)
            raise InputFileError(msg, line=row.number)
        previous = letter
        values = list(row.cells[1:])
        if any(clean(cell) for cell in values[len(columns) :]):
            msg = c.EXTRA_CELLS.format(row=letter, columns=len(columns))
            raise InputFileError(msg, line=row.number)
        values += [""] * (len(columns) - len(values))
        for column, raw in zip(columns, values, strict=False):
            wells[f"{letter}{column}"] = RawCell(raw, row.number)
        i += 1
    if not wells:
        raise InputFileError(c.EMPTY_GRID, line=header.number)
    return EndpointTable(line=header.number, wells=wells), i


def _read_list(
    rows: Sequence[Row], start: int, cells: list[str], label: str | None
) -> tuple[EndpointTable, int]:
    """SparkControl's ``<>,Value,Time [ms]`` list: one line per well."""
    header = rows[start]
    index = next((n for n, cell in enumerate(cells) if fold_key(cell) in c.LIST_VALUE_KEYS), None)
    if index is None:
        found = " ".join(cells)
        raise InputFileError(c.LIST_WITHOUT_VALUE.format(found=found), line=header.number)
    wells: dict[str, RawCell] = {}
    i = start + 1
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        first = clean(row.cells[0]) if row.cells else ""
        well = well_name(first)
        if well is None:
            if not wells:
                raise InputFileError(c.BAD_LIST_WELL.format(found=first), line=row.number)
            break
        if well in wells:
            msg = c.DUPLICATE_WELL.format(well=well, label=label or "")
            raise InputFileError(msg, line=row.number, well=well)
        raw = row.cells[index + 1] if index + 1 < len(row.cells) else ""
        wells[well] = RawCell(raw, row.number)
        i += 1
    if not wells:
        raise InputFileError(c.EMPTY_GRID, line=header.number)
    return EndpointTable(line=header.number, wells=wells), i


def _read_kinetic(rows: Sequence[Row], start: int, label: str | None) -> tuple[KineticTable, int]:
    header = rows[start]
    cells = _trimmed(header.cells)
    if len(cells) > 1 and fold_key(cells[1]) in c.TIME_KEYS:
        return _read_cycles_as_rows(rows, start, cells, label)
    return _read_wells_as_rows(rows, start, label)


def _times(row: Row, cells: Sequence[str]) -> tuple[RawCell, ...]:
    times: list[RawCell] = []
    for cell in cells:
        if not clean(cell):
            break
        times.append(RawCell(clean(cell), row.number))
    return tuple(times)


def _read_wells_as_rows(
    rows: Sequence[Row], start: int, label: str | None
) -> tuple[KineticTable, int]:
    """i-control: ``Cycle Nr.``, ``Time [s]``, ``Temp. [°C]`` lines, then one line per well."""
    header = rows[start]
    times: tuple[RawCell, ...] | None = None
    temperatures: tuple[str, ...] = ()
    i = start + 1
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        first = fold_key(clean(row.cells[0]))
        if first in c.TIME_KEYS:
            times = _times(row, row.cells[1:])
        elif first in c.TEMPERATURE_ROW_KEYS:
            temperatures = tuple(cell for cell in _trimmed(row.cells[1:]))
        elif well_name(first) is not None:
            break
        else:
            raise InputFileError(
                c.BAD_KINETIC_WELL.format(found=clean(row.cells[0])), line=row.number
            )
        i += 1
    if not times:
        raise InputFileError(c.NO_TIME_ROW, line=header.number)
    series: dict[str, tuple[RawCell, ...]] = {}
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        first = clean(row.cells[0])
        well = well_name(first)
        if well is None:
            break
        values = list(row.cells[1:])
        if any(clean(cell) for cell in values[len(times) :]):
            found = len(_trimmed(values))
            msg = c.TOO_MANY_READINGS.format(well=well, found=found, times=len(times))
            raise InputFileError(msg, line=row.number, well=well)
        values += [""] * (len(times) - len(values))
        if well in series:
            msg = c.DUPLICATE_WELL.format(well=well, label=label or "")
            raise InputFileError(msg, line=row.number, well=well)
        if any(clean(cell) for cell in values):
            series[well] = tuple(RawCell(raw, row.number) for raw in values[: len(times)])
        i += 1
    if not series:
        raise InputFileError(c.NO_KINETIC_WELLS, line=header.number)
    return KineticTable(header.number, times, temperatures, series), i


def _read_cycles_as_rows(
    rows: Sequence[Row], start: int, cells: list[str], label: str | None
) -> tuple[KineticTable, int]:
    """i-control 1.11 CSV / SparkControl: ``Cycle Nr.,Time [s],Temp. [°C],A1,A2,…`` then cycles."""
    header = rows[start]
    temp_column = next(
        (n for n, cell in enumerate(cells) if fold_key(cell) in c.TEMPERATURE_ROW_KEYS), None
    )
    columns: dict[str, int] = {}
    for n, cell in enumerate(cells[2:], start=2):
        if n == temp_column or not cell:
            continue
        well = well_name(cell)
        if well is None:
            raise InputFileError(c.BAD_KINETIC_WELL.format(found=cell), line=header.number)
        if well in columns:
            msg = c.DUPLICATE_WELL.format(well=well, label=label or "")
            raise InputFileError(msg, line=header.number, well=well)
        columns[well] = n
    if not columns:
        raise InputFileError(c.NO_KINETIC_WELLS, line=header.number)
    times: list[RawCell] = []
    temperatures: list[str] = []
    readings: dict[str, list[RawCell]] = {well: [] for well in columns}
    i = start + 1
    while i < len(rows) and not rows[i].is_blank:
        row = rows[i]
        cells_i = [clean(cell) for cell in row.cells]
        time = cells_i[1] if len(cells_i) > 1 else ""
        values = {w: cells_i[n] if n < len(cells_i) else "" for w, n in columns.items()}
        if not time and not any(values.values()):
            break
        if not time:
            cycle = cells_i[0] if cells_i else ""
            raise InputFileError(c.BAD_TIME.format(found=time, cycle=cycle), line=row.number)
        times.append(RawCell(time, row.number))
        if temp_column is not None and temp_column < len(cells_i):
            temperatures.append(cells_i[temp_column])
        for well, n in columns.items():
            raw = row.cells[n] if n < len(row.cells) else ""
            readings[well].append(RawCell(raw, row.number))
        i += 1
    if not times:
        raise InputFileError(c.NO_TIME_ROW, line=header.number)
    series = {w: tuple(v) for w, v in readings.items() if any(clean(x.raw) for x in v)}
    if not series:
        raise InputFileError(c.NO_KINETIC_WELLS, line=header.number)
    return KineticTable(header.number, tuple(times), tuple(temperatures), series), i
