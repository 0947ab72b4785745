"""``saa-lab inspect``: what a parser read from an export, for people and scripts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .domain import PlateRead, WellValue
from .kinetics import rates
from .numbers import format_number
from .wells import well_sort_key

__all__ = ["read_to_json", "render_read"]


def _missing_token(value: WellValue) -> str:
    return value.raw.strip() or (value.reason or "empty")


def read_to_json(read: PlateRead) -> dict[str, Any]:
    """The documented JSON of one read (``wells`` holds the rate for kinetic reads)."""
    wells = dict(read.wells)
    series: dict[str, Any] | None = None
    if read.kinetic is not None:
        wells = rates(read.kinetic)
        series = {
            # null where the file gives no time (JSON has no NaN)
            "times_s": [t if math.isfinite(t) else None for t in read.kinetic.times_s],
            "readings": {
                well: [v.value for v in values]
                for well, values in sorted(
                    read.kinetic.readings.items(), key=lambda item: well_sort_key(item[0])
                )
            },
        }
    ordered = sorted(wells.items(), key=lambda item: well_sort_key(item[0]))
    data: dict[str, Any] = {
        "format": read.format,
        "plate_id": read.plate_id,
        "plate_index": read.plate_index,
        "label": read.label,
        "wavelengths_nm": [read.wavelength_nm] if read.wavelength_nm is not None else [],
        "kinetic": read.kinetic is not None,
        "derived": read.derived,
        "rows": read.rows,
        "columns": read.columns,
        "read_time": read.read_time.isoformat() if read.read_time else None,
        "wells": {well: value.value for well, value in ordered},
        "missing": {w: _missing_token(v) for w, v in ordered if v.value is None},
        "reasons": {w: v.reason for w, v in ordered if v.value is None},
        "metadata": dict(read.metadata),
    }
    if series is not None:
        data["series"] = series
    return data


def _cell(value: WellValue | None) -> str:
    if value is None:
        return "."
    if value.value is None:
        return _missing_token(value)[:8]
    raw = value.raw.strip()
    return raw if 0 < len(raw) <= 8 else format_number(value.value)


def render_read(read: PlateRead, number: int) -> list[str]:
    """A grid (rates for kinetic reads) with the reason for every well without a value."""
    kind = "kinetic (grid shows ΔOD/min)" if read.kinetic is not None else read.kind
    wavelength = f"{read.wavelength_nm:g} nm" if read.wavelength_nm is not None else "? nm"
    title = f"read {number}: plate {read.plate_index + 1}"
    if read.plate_id:
        title += f" ({read.plate_id})"
    title += f", {wavelength}, {kind}, {read.rows}×{read.columns}"
    if read.label:
        title += f", label {read.label!r}"
    if read.derived:
        title += ", calculated by the reader software"
    lines = [title]
    if read.read_time:
        lines.append(f"  read at {read.read_time.isoformat()}")
    if read.kinetic is not None:
        times = [t for t in read.kinetic.times_s if math.isfinite(t)]
        count = len(read.kinetic.times_s)
        if times:
            lines.append(f"  {count} readings from {times[0]:g} s to {times[-1]:g} s")
        else:
            lines.append(f"  {count} readings; the file gives no times (no rate can be computed)")
    for key, value in sorted(read.metadata.items()):
        lines.append(f"  {key}: {value}")
    wells = rates(read.kinetic) if read.kinetic is not None else dict(read.wells)
    columns = range(1, read.columns + 1)
    rows = [chr(ord("A") + r) for r in range(read.rows)]
    grid = [[_cell(wells.get(f"{row}{col}")) for col in columns] for row in rows]
    width = max([len(c) for line in grid for c in line] + [len(str(read.columns))])
    lines.append("     " + " ".join(f"{c:>{width}}" for c in columns))
    for row, cells in zip(rows, grid, strict=True):
        lines.append(f"  {row}  " + " ".join(f"{c:>{width}}" for c in cells))
    missing = [(w, v) for w, v in sorted(wells.items(), key=lambda i: well_sort_key(i[0]))
               if v.value is None]  # fmt: skip
    if missing:
        lines.append("  no value: " + ", ".join(
            f"{w} {_missing_token(v)!r} ({v.reason})" for w, v in missing
        ))  # fmt: skip
    return lines


def summary(reads: Sequence[PlateRead]) -> str:
    plates = len({r.plate_index for r in reads})
    return f"{len(reads)} read(s) of {plates} plate(s)"
