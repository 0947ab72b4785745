"""Frozen values that travel between the stages of the pipeline.

Parsers produce :class:`PlateRead` from a :class:`SourceFile`; nothing here
knows about assays, samples, the database or HL7.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

__all__ = ["NoValueReason", "PlateRead", "SourceFile", "WellValue"]


@dataclass(frozen=True)
class SourceFile:
    """The bytes of one dropped file and where they came from.

    Parsers take this instead of a path: the watcher opens the real file, tests
    pass bytes. ``original_path`` keeps the name for plate ids and messages.
    """

    contents: bytes
    original_path: str
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.contents).hexdigest())

    @classmethod
    def from_path(cls, path: Path) -> SourceFile:
        return cls(contents=path.read_bytes(), original_path=str(path))

    @property
    def name(self) -> str:
        return Path(self.original_path).name

    @property
    def stem(self) -> str:
        """The file name without its last extension (``RUN42`` for ``RUN42.txt``)."""
        return Path(self.original_path).stem


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
class PlateRead:
    """One read of one plate as the instrument exported it.

    ``wells`` maps canonical well names (``A1``) to readings; wells the reader did
    not report are absent. ``plate_id`` is the barcode or plate id the export
    names, when it names one. ``index`` numbers the reads within a file and
    ``plate_index`` the plates (a plate read at two wavelengths gives two reads
    with one ``plate_index``).
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "wells", _frozen_wells(self.wells))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def values(self) -> dict[str, float]:
        """The wells that have a number."""
        return {w: v.value for w, v in self.wells.items() if v.value is not None}
