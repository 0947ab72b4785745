"""Frozen values that travel between the stages of the pipeline.

Parsers produce :class:`PlateRead` from a :class:`SourceFile`; nothing here
knows about assays, samples, the database or HL7.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType

__all__ = ["KineticSeries", "Meta", "NoValueReason", "PlateRead", "SourceFile", "WellValue"]


@dataclass(frozen=True)
class SourceFile:
    """The bytes of one dropped file and where they came from.

    Parsers take this instead of a path: the watcher opens the real file, tests
    pass bytes. ``original_path`` keeps the name for plate ids and messages.
    """

    contents: bytes
    original_path: str
    sha256: str = ""
    # The lab's time zone: instrument times carry no offset and are read in it.
    timezone: tzinfo = UTC

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.contents).hexdigest())

    @classmethod
    def from_path(cls, path: Path, *, timezone: tzinfo = UTC) -> SourceFile:
        return cls(contents=path.read_bytes(), original_path=str(path), timezone=timezone)

    @property
    def name(self) -> str:
        return Path(self.original_path).name

    @property
    def stem(self) -> str:
        """The file name without its last extension (``RUN42`` for ``RUN42.txt``)."""
        return Path(self.original_path).stem


class Meta:
    """Metadata keys every parser uses for the same facts (vendor keys may be added too)."""

    READ_TIME = "read_time"  # ISO 8601 text of the read (or save) time as the file gives it
    PLATE_ID = "plate_id"
    WAVELENGTH = "wavelength_nm"
    READER_MODEL = "reader_model"
    READER_SERIAL = "reader_serial"
    SOFTWARE = "software_version"
    TEMPERATURE = "temperature_c"
    LABEL = "label"
    ENCODING = "encoding"
    SHEET = "sheet"


class NoValueReason:
    """Why a well has no value. The strings are stored and shown to users."""

    EMPTY = "empty"
    OVERFLOW = "overflow"
    NOT_READ = "not read"
    NOT_CALCULABLE = "not calculable"
    MASKED = "masked"
    NON_NUMERIC = "non-numeric"


@dataclass(frozen=True)
class WellValue:
    """One well's reading: a number, or None with the reason and the raw text.

    An empty, overflowed or unreadable well is ``None`` with a reason, never 0.0.
    """

    value: float | None
    raw: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            msg = "a WellValue has either a value or a reason for having none"
            raise ValueError(msg)


def _frozen_wells(wells: Mapping[str, WellValue]) -> Mapping[str, WellValue]:
    return MappingProxyType(dict(wells))


@dataclass(frozen=True)
class KineticSeries:
    """The readings of a kinetic read: one time axis (seconds), one series per well.

    ``readings[well][i]`` is the reading at ``times_s[i]``; a missing or
    non-numeric reading is a WellValue with no value and its reason.
    """

    times_s: tuple[float, ...]
    readings: Mapping[str, tuple[WellValue, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "readings", MappingProxyType(dict(self.readings)))
        for well, series in self.readings.items():
            if len(series) != len(self.times_s):
                msg = f"well {well}: {len(series)} readings for {len(self.times_s)} times"
                raise ValueError(msg)


@dataclass(frozen=True)
class PlateRead:
    """One read of one plate as the instrument exported it.

    ``wells`` maps canonical well names (``A1``) to readings; wells the reader did
    not report are absent. ``plate_id`` is the barcode or plate id the export
    names, when it names one. ``index`` numbers the reads within a file and
    ``plate_index`` the plates (a plate read at two wavelengths gives two reads
    with one ``plate_index``). A kinetic read (``kind == "kinetic"``) has its
    time series in ``kinetic``; its ``wells`` are then the last reading of each
    well (the rate is computed by :func:`saa_lab.kinetics.rate`, over the
    assay's window). ``read_time`` is timezone-aware (the lab's zone when the
    file gives none).
    """

    format: str
    source_path: str
    source_sha256: str
    wells: Mapping[str, WellValue]
    index: int = 0
    plate_index: int = 0
    plate_id: str | None = None
    label: str | None = None
    wavelength_nm: float | None = None
    read_time: datetime | None = None
    kind: str = "endpoint"
    rows: int = 8
    columns: int = 12
    derived: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)
    kinetic: KineticSeries | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "wells", _frozen_wells(self.wells))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def values(self) -> dict[str, float]:
        """The wells that have a number."""
        return {w: v.value for w, v in self.wells.items() if v.value is not None}
