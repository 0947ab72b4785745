"""What the BMG reader finds in an export, before any cell becomes a number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BmgExport", "RawRead"]


@dataclass(frozen=True)
class RawRead:
    """One read as the file lays it out: a title, its times and each well's raw cells.

    ``cells[well]`` holds one raw cell per time point (one for an endpoint read);
    ``times_s`` is empty for an endpoint read and otherwise counts seconds from
    the read's first time point.
    """

    title: str
    line: int
    rows: int
    columns: int
    cells: Mapping[str, tuple[str, ...]]
    times_s: tuple[float, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", MappingProxyType(dict(self.cells)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def kinetic(self) -> bool:
        return len(self.times_s) > 1


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
        object.__setattr__(self, "header", MappingProxyType(dict(self.header)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
