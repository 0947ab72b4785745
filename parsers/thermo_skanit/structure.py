"""What the SkanIt readers hand the parser: measurements as lists of cell readings.

All three layouts (session long table, ``Iteration`` grids, workbook raw-data
sheet) come down to the same shape: for one plate, step and wavelength, the
raw cell of each well at each reading, with the line it came from and the time
the file gives for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..common import freeze


@dataclass(frozen=True)
class Reading:
    """One cell: ``well`` at reading number ``reading`` (1-based), as the file writes it."""

    line: int
    well: str
    raw: str
    reading: int
    time_s: float | None = None


@dataclass(frozen=True)
class Measurement:
    """The readings of one plate for one step (label) and wavelength, in file order."""

    label: str
    wavelength_text: str | None
    derived: bool
    readings: tuple[Reading, ...]
    rows: int
    columns: int
    plate_key: str
    plate_id: str | None = None
    # True when the layout itself says "kinetic" (Iteration blocks), even with one reading.
    kinetic: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze(self, "extra")


@dataclass(frozen=True)
class Export:
    """A whole file: its measurements, header keys, read time text and decimal mark."""

    measurements: tuple[Measurement, ...]
    header: Mapping[str, str]
    read_time_text: str | None
    read_time_line: int | None
    decimal_comma: bool
    layout: str

    def __post_init__(self) -> None:
        freeze(self, "header")
