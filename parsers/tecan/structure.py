"""What the reader finds in one Tecan export (one sheet, or one text file).

Raw text only: cells are turned into numbers by the parser, which decides the
decimal mark and the date order once per file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..common import freeze

__all__ = ["EndpointTable", "Export", "KineticTable", "Measurement", "RawCell"]


@dataclass(frozen=True)
class RawCell:
    """One exported cell as text, and the line (row) it stands on."""

    raw: str
    line: int


@dataclass(frozen=True)
class EndpointTable:
    """A ``<>`` grid or a well list: one reading per well."""

    line: int
    wells: Mapping[str, RawCell]

    def __post_init__(self) -> None:
        freeze(self, "wells")


@dataclass(frozen=True)
class KineticTable:
    """A kinetic table: the time axis and one series of raw readings per well.

    Every series has one entry per time (cells the file leaves empty are ``""``).
    """

    line: int
    times: tuple[RawCell, ...]
    temperatures: tuple[str, ...]
    series: Mapping[str, tuple[RawCell, ...]]

    def __post_init__(self) -> None:
        freeze(self, "series")


@dataclass(frozen=True)
class Measurement:
    """One read (an i-control label, a SparkControl ``Mode`` group, a Magellan column)."""

    line: int
    table: EndpointTable | KineticTable
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
    plate_key: str | None = None
    derived: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze(self, "settings")


@dataclass(frozen=True)
class Export:
    """One export: its header facts (canonical keys of ``constants``) and its reads."""

    dialect: str
    sheet: str | None
    header: Mapping[str, str]
    measurements: tuple[Measurement, ...]
    start_time: str | None = None

    def __post_init__(self) -> None:
        freeze(self, "header")
