"""Helpers for building plates in tests, independent of the code under test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from saa_lab.assay import AssayDefinition, load_assay
from saa_lab.config import AppConfig
from saa_lab.domain import KineticSeries, PlateRead, SourceFile, WellValue
from saa_lab.layout import PlateLayout, load_layout
from saa_lab.mapping import Plate, map_plate
from saa_lab.parsers import parse_cell
from saa_lab.synth import NOMINAL_BLANK, NOMINAL_SLOPE, PlannedSample, plate_values, worklist_csv
from saa_lab.worklist import Worklist, parse_worklist

ZONE = ZoneInfo("Europe/Berlin")


def nominal_activity(od: float, dilution: float = 1.0) -> float:
    """Invert the designed curve: what the samples were made from."""
    return (od - NOMINAL_BLANK) / NOMINAL_SLOPE * dilution


def default_layout() -> PlateLayout:
    return load_layout("aha-96", AppConfig().search_dirs("layouts"))


def read_from_values(values: Mapping[str, str], name: str = "plate.csv") -> PlateRead:
    return PlateRead(
        format="test",
        source_path=name,
        source_sha256="0" * 64,
        wells={w: parse_cell(v) for w, v in values.items()},
        wavelength_nm=710,
    )


def make_plate(
    samples: Sequence[PlannedSample],
    *,
    seed: int = 1,
    overrides: Mapping[str, str] | None = None,
    noise: float = 0.004,
) -> tuple[Plate, Worklist, dict[str, str]]:
    values, rows = plate_values(samples, seed=seed, noise=noise)
    values.update(overrides or {})
    worklist = parse_worklist(
        SourceFile(worklist_csv(rows).encode(), "test.worklist.csv"), zone=ZONE
    )
    plate = map_plate(read_from_values(values), default_layout(), worklist)
    return plate, worklist, values


# -- generic builders: any assay, any layout, values chosen by the test ------------

CellValue = float | str


def assay_definition(name: str) -> AssayDefinition:
    """A shipped assay file, as the pipeline loads it."""
    return load_assay(name, AppConfig().search_dirs("assays")).definition


def layout_named(name: str) -> PlateLayout:
    return load_layout(name, AppConfig().search_dirs("layouts"))


def cell(value: CellValue) -> WellValue:
    """A float is a reading as is; a string is exported text (``OVRFLW``, ``""``)."""
    return (
        WellValue(float(value), repr(value))
        if isinstance(value, float | int)
        else (parse_cell(value))
    )


def endpoint_read(
    values: Mapping[str, CellValue],
    *,
    wavelength_nm: float | None = 710,
    name: str = "plate.csv",
    plate_id: str | None = None,
) -> PlateRead:
    return PlateRead(
        format="test",
        source_path=name,
        source_sha256="0" * 64,
        wells={w: cell(v) for w, v in values.items()},
        wavelength_nm=wavelength_nm,
        plate_id=plate_id,
    )


def kinetic_read(
    slopes: Mapping[str, float | None],
    *,
    times_s: Sequence[float] = (0, 30, 60, 90, 120, 150, 180, 210, 240),
    start_od: float = 1.8,
    wavelength_nm: float = 340,
    name: str = "kinetic.xlsx",
) -> PlateRead:
    """Each well reads ``start_od + slope × minutes`` exactly (None: every reading overflowed)."""
    readings: dict[str, tuple[WellValue, ...]] = {}
    for well, slope in slopes.items():
        if slope is None:
            readings[well] = tuple(WellValue(None, "OVRFLW", "overflow") for _ in times_s)
        else:
            readings[well] = tuple(
                WellValue(start_od + slope * t / 60.0, f"{start_od + slope * t / 60.0:.6f}")
                for t in times_s
            )
    series = KineticSeries(tuple(float(t) for t in times_s), readings)
    return PlateRead(
        format="test",
        source_path=name,
        source_sha256="0" * 64,
        wells={w: r[-1] for w, r in readings.items()},
        wavelength_nm=wavelength_nm,
        kind="kinetic",
        kinetic=series,
    )


def worklist_of(
    rows: Sequence[tuple[str, str, float]],
    *,
    formulation: Mapping[str, str] | None = None,
    name: str = "test.worklist.csv",
) -> Worklist:
    """A worklist CSV of (well, accession, dilution) rows; ``formulation`` per accession."""
    header = "well,accession,dilution" + (",formulation" if formulation else "")
    lines = [header]
    for well, accession, dilution in rows:
        line = f"{well},{accession},{dilution:g}"
        if formulation:
            line += f",{formulation.get(accession, '')}"
        lines.append(line)
    return parse_worklist(SourceFile(("\n".join(lines) + "\n").encode(), name), zone=ZONE)


def plate_of(read: PlateRead, layout: str, worklist: Worklist | None) -> Plate:
    return map_plate(read, layout_named(layout), worklist)


def synth_read(
    samples: Sequence[PlannedSample],
    *,
    seed: int = 1,
    overrides: Mapping[str, str] | None = None,
    noise: float = 0.004,
    name: str = "plate.csv",
) -> tuple[PlateRead, Worklist, dict[str, str]]:
    """An aha-96 read on the nominal curve (as :func:`make_plate`) and its worklist."""
    values, rows = plate_values(samples, seed=seed, noise=noise)
    values.update(overrides or {})
    worklist = parse_worklist(
        SourceFile(worklist_csv(rows).encode(), f"{name}.worklist.csv"), zone=ZONE
    )
    read = PlateRead(
        format="test",
        source_path=name,
        source_sha256="0" * 64,
        wells={w: parse_cell(v) for w, v in values.items()},
        wavelength_nm=710,
    )
    return read, worklist, values


# -- arithmetic the tests check the code against -----------------------------------


def line_by_sums(
    xs: Sequence[float], ys: Sequence[float], ws: Sequence[float] | None = None
) -> tuple[float, float]:
    """(intercept, slope) from the normal equations: Σw, Σwx, Σwy, Σwx², Σwxy."""
    ws = ws or [1.0] * len(xs)
    s = sum(ws)
    sx = sum(w * x for w, x in zip(ws, xs, strict=True))
    sy = sum(w * y for w, y in zip(ws, ys, strict=True))
    sxx = sum(w * x * x for w, x in zip(ws, xs, strict=True))
    sxy = sum(w * x * y for w, x, y in zip(ws, xs, ys, strict=True))
    slope = (s * sxy - sx * sy) / (s * sxx - sx * sx)
    return (sy - slope * sx) / s, slope


def weighted_r2(ys: Sequence[float], predicted: Sequence[float], ws: Sequence[float]) -> float:
    mean = sum(w * y for w, y in zip(ws, ys, strict=True)) / sum(ws)
    total = sum(w * (y - mean) ** 2 for w, y in zip(ws, ys, strict=True))
    resid = sum(w * (y - p) ** 2 for w, y, p in zip(ws, ys, predicted, strict=True))
    return 1 - resid / total


def cv_percent(values: Sequence[float]) -> float:
    """Sample standard deviation (n − 1) over the mean, in percent."""
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / mean * 100
