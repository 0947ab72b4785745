"""Helpers for building plates in tests, independent of the code under test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from saa_lab.config import AppConfig
from saa_lab.domain import PlateRead, SourceFile
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
