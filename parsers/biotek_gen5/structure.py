"""The parts of a Gen5 export as the reader finds them: still text, already shape-checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..common import freeze
from ..table import Row

__all__ = ["Grid", "GridRow", "KineticRow", "KineticTable", "PlateBlock"]


@dataclass(frozen=True)
class GridRow:
    """One grid line: plate row ``row``, its values, and the read label if written."""

    line: int
    row: str
    values: tuple[str, ...]
    label: str | None
    continuation: bool


@dataclass(frozen=True)
class Grid:
    """A column header and the rows under it, with the section title above it."""

    title: str | None
    header_line: int
    columns: int
    rows: tuple[GridRow, ...]

    @property
    def row_count(self) -> int:
        return len({row.row for row in self.rows})


@dataclass(frozen=True)
class KineticRow:
    """One reading of every well: the Time cell, the temperature and the well values."""

    line: int
    time: str
    temperature: str | None
    values: tuple[str, ...]

    @property
    def is_padding(self) -> bool:
        """Gen5's filler after the last cycle: no values, time empty or ``0:00:00``."""
        return not any(value.strip() for value in self.values) and self.time.strip() in (
            "",
            "0:00:00",
            "00:00:00",
        )


@dataclass(frozen=True)
class KineticTable:
    """``Time<TAB>T° 600<TAB>A1…`` and its rows, with the section title above it."""

    title: str | None
    header_line: int
    wells: tuple[str, ...]
    temperature_header: str | None
    rows: tuple[KineticRow, ...]
    # Trailing empty rows Gen5 pads the table with (dropped) and rows whose time and
    # temperature the file ran together (``12:14:4324.0``), split again.
    padding_dropped: int = 0
    repaired_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlateBlock:
    """Everything from one ``Software Version`` line to the next (or to the sheet's end)."""

    start_line: int
    header: Mapping[str, str]
    procedure: tuple[Row, ...]
    grids: tuple[Grid, ...]
    kinetics: tuple[KineticTable, ...] = ()
    extras: Mapping[str, str] = field(default_factory=dict)
    sheet: str | None = None

    def __post_init__(self) -> None:
        freeze(self, "header", "extras")

    @property
    def name(self) -> str:
        return self.header.get("Plate Number") or f"the plate starting at line {self.start_line}"
