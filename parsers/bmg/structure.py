"""What the BMG reader finds in an export, before any cell becomes a number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..common import RawSeries, freeze

__all__ = ["BmgExport", "RawRead"]


@dataclass(frozen=True)
class RawRead(RawSeries):
    """One read as the file lays it out: a title, its times and each well's raw cells
    (see :class:`..common.RawSeries`)."""

    title: str
    line: int
    rows: int
    columns: int
    cells: Mapping[str, tuple[str, ...]]
    times_s: tuple[float, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BmgExport:
    """A whole export: its header fields, the mode, the view and the reads."""

    view: str
    mode: str
    header: Mapping[str, str]
    reads: tuple[RawRead, ...]
    date_text: str | None = None
    date_line: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze(self, "header", "metadata")
