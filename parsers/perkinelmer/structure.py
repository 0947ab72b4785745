"""What the PerkinElmer readers find in an export, before any cell becomes a number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..common import RawSeries, freeze

__all__ = ["PeExport", "PeRead"]


@dataclass(frozen=True)
class PeRead(RawSeries):
    """One read of one plate: its label, each well's raw cells over time (see
    :class:`..common.RawSeries`), and its context.

    ``date_text`` is the read's local date and time as written; ``utc_text`` an ISO
    time with offset when the file gives one.
    """

    plate: str
    label: str
    line: int
    rows: int
    columns: int
    cells: Mapping[str, tuple[str, ...]]
    times_s: tuple[float, ...] = ()
    plate_id: str | None = None
    derived: bool = False
    date_text: str | None = None
    date_line: int | None = None
    utc_text: str | None = None
    saturated: frozenset[str] = frozenset()
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PeExport:
    """The reads of one export, its family and the metadata every read shares."""

    family: str
    reads: tuple[PeRead, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The file-level date (assay start, 'Measured on') when reads carry none of their own.
    date_text: str | None = None
    date_line: int | None = None

    def __post_init__(self) -> None:
        freeze(self, "metadata")
