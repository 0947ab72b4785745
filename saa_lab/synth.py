"""Synthetic AHA plates: invented data for the bundled samples, tests and benchmarks.

The signal follows a known nominal curve (``NOMINAL_BLANK`` + ``NOMINAL_SLOPE``
× activity) with small deterministic noise, so tests can compute the expected
activities from the curve without asking the code under test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .wells import ROWS_96

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "NOMINAL_BLANK",
    "NOMINAL_SLOPE",
    "PlannedSample",
    "gen5_text",
    "grid_csv",
    "plate_values",
    "queue_synthetic_messages",
    "standard_plate_plan",
    "worklist_csv",
]

NOMINAL_BLANK = 0.045  # OD at 710 nm of a blank well
NOMINAL_SLOPE = 0.0011  # OD per U/L in the well
STANDARDS = {"A": 5, "B": 10, "C": 25, "D": 50, "E": 100, "F": 250, "G": 500, "H": 1000}
CONTROLS = {"C3": 40, "D3": 40, "E3": 400, "F3": 400}
BLANKS = ("A3", "B3")
SAMPLE_WELLS = ("G3", "H3", *(f"{r}{c}" for c in range(4, 13) for r in ROWS_96))


@dataclass(frozen=True)
class PlannedSample:
    """A sample to put on a plate: its true serum activity and how it is pipetted.

    ``overrides`` replaces well readings with raw text (``OVRFLW``, ``?????``) or a
    different activity to create replicate disagreement.
    """

    accession: str
    activity_u_per_l: float
    dilution: float = 1.0
    replicates: int = 2
    overrides: Mapping[int, str | float] | None = None
    order: Mapping[str, str] | None = None


def _od(activity_in_well: float, rng: random.Random, noise: float) -> float:
    signal = NOMINAL_BLANK + NOMINAL_SLOPE * activity_in_well
    return signal * (1 + rng.gauss(0, noise)) + rng.gauss(0, noise * 0.02)


def plate_values(
    samples: Sequence[PlannedSample], *, seed: int = 7, noise: float = 0.006
) -> tuple[dict[str, str], list[tuple[str, str, float, Mapping[str, str] | None]]]:
    """Well → exported text for the aha-96 layout, and the worklist rows.

    Wells not used stay empty (as readers export them when not read... or read
    at blank level: we write the blank level, as a full-plate read would).
    """
    rng = random.Random(seed)
    values: dict[str, str] = {}
    for row, nominal in STANDARDS.items():
        for col in (1, 2):
            values[f"{row}{col}"] = f"{_od(nominal, rng, noise):.4f}"
    for well in BLANKS:
        values[well] = f"{_od(0, rng, noise):.4f}"
    for well, nominal in CONTROLS.items():
        values[well] = f"{_od(nominal, rng, noise):.4f}"
    free = iter(SAMPLE_WELLS)
    rows: list[tuple[str, str, float, Mapping[str, str] | None]] = []
    for sample in samples:
        for replicate in range(sample.replicates):
            well = next(free)
            override = (sample.overrides or {}).get(replicate)
            if isinstance(override, str):
                values[well] = override
            else:
                activity = override if override is not None else sample.activity_u_per_l
                values[well] = f"{_od(activity / sample.dilution, rng, noise):.4f}"
            rows.append((well, sample.accession, sample.dilution, sample.order))
    for well in free:
        values[well] = f"{_od(0, rng, noise):.4f}"
    return values, rows


def _grid_rows(values: Mapping[str, str]) -> Iterable[tuple[str, list[str]]]:
    for row in ROWS_96:
        yield row, [values.get(f"{row}{c}", "") for c in range(1, 13)]


def gen5_text(
    values: Mapping[str, str],
    *,
    plate_number: int = 1,
    barcode: str | None = None,
    wavelength: int = 710,
    date: str = "11/20/2026",
    time: str = "10:15:32 AM",
) -> str:
    """A BioTek Gen5 3.x text export (tab-separated) of one endpoint read."""
    lines = [
        "",
        "Software Version\t3.11.19",
        "Experiment File Path:\tC:\\Users\\Public\\Documents\\Experiments\\SAA-AHA.xpt",
        "Protocol File Path:\tC:\\Users\\Public\\Documents\\Protocols\\SAA-AHA-710.prt",
        f"Plate Number\tPlate {plate_number}",
    ]
    if barcode:
        lines.append(f"Barcode\t{barcode}")
    lines += [
        f"Date\t{date}",
        f"Time\t{time}",
        "Reader Type:\tSynergy H1",
        "Reader Serial Number:\t21030512",
        "Reading Type\tReader",
        "",
        "Procedure Details",
        "",
        "Plate Type\t96 WELL PLATE (Use plate lid)",
        "Read\tAbsorbance Endpoint",
        "\tFull Plate",
        f"\tWavelengths:  {wavelength}",
        "\tRead Speed: Normal,  Delay: 100 msec,  Measurements/Data Point: 8",
        "",
        "Results",
        "Actual Temperature:\t25.1",
        "",
        "\t" + "\t".join(str(c) for c in range(1, 13)),
    ]
    for row, cells in _grid_rows(values):
        lines.append("\t".join([row, *cells, str(wavelength)]))
    lines.append("")
    return "\r\n".join(lines)


def grid_csv(
    values: Mapping[str, str],
    *,
    labels: bool = True,
    plate_id: str | None = None,
    wavelength: int | None = None,
    delimiter: str = ",",
) -> str:
    """A generic 8×12 grid CSV, optionally with metadata lines and row/column labels."""
    lines = []
    if plate_id:
        lines.append(f"Plate ID{delimiter}{plate_id}")
    if wavelength:
        lines.append(f"Wavelength{delimiter}{wavelength}")
    if labels:
        lines.append(delimiter.join(["", *(str(c) for c in range(1, 13))]))
    for row, cells in _grid_rows(values):
        if delimiter == ";":
            cells = [c.replace(".", ",") for c in cells]
        lines.append(delimiter.join([row, *cells] if labels else cells))
    return "\n".join(lines) + "\n"


ORDER_COLUMNS = ("patient_id", "formulation", "dose_time", "collection_time", "protocol", "clinic")


def worklist_csv(rows: Sequence[tuple[str, str, float, Mapping[str, str] | None]]) -> str:
    with_orders = any(order for *_, order in rows)
    header = ["well", "accession", "dilution", *(ORDER_COLUMNS if with_orders else ())]
    lines = [",".join(header)]
    for well, accession, dilution, order in rows:
        cells = [well, accession, f"{dilution:g}"]
        if with_orders:
            cells += [(order or {}).get(c, "") for c in ORDER_COLUMNS]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def standard_plate_plan(n_samples: int = 40, *, prefix: str = "BENCH") -> list[PlannedSample]:
    """``n_samples`` accessions filling the 74 sample wells (duplicates first)."""
    duplicates = min(n_samples, len(SAMPLE_WELLS) - n_samples)
    rng = random.Random(n_samples)
    plan = []
    for i in range(n_samples):
        plan.append(
            PlannedSample(
                accession=f"{prefix}-{i + 1:04d}",
                activity_u_per_l=round(rng.uniform(10, 900), 1),
                replicates=2 if i < duplicates else 1,
            )
        )
    return plan


def queue_synthetic_messages(
    store: Store, destination: str, count: int, build: Callable[[str, str], str]
) -> list[str]:
    """Queue ``count`` invented results of one new run for ``destination``.

    ``build(control_id, accession)`` returns each message's ER7 text. Returns the
    MSH-10s in queue order. For delivery tests and benchmarks: it writes the rows
    a processed plate would, without a plate.
    """
    import uuid

    from .store.models import OutboxMessage, ResultRow, RunRow, SourceFileRow

    ids = []
    with store.session() as s:
        source = SourceFileRow(sha256=uuid.uuid4().hex * 2, name="plate.txt",
                               original_path="/in/plate.txt", size=1, status="done")  # fmt: skip
        s.add(source)
        s.flush()
        run = RunRow(source_file_id=source.id, plate_index=0, format="test", assay_name="a",
                     assay_version="1", layout_name="l", layout_version="1",
                     status="accepted")  # fmt: skip
        s.add(run)
        s.flush()
        for number in range(count):
            accession = f"ACC-{run.id}-{number}"
            result = ResultRow(result_uid=uuid.uuid4().hex, run_id=run.id, accession=accession,
                               wells="A1", dilution=1.0, comparator="=", status="quantified",
                               flag="ok", comment="", rule_id="r",
                               result_status="F")  # fmt: skip
            s.add(result)
            s.flush()
            control_id = uuid.uuid4().hex[:20].upper()
            s.add(OutboxMessage(result_id=result.id, destination=destination,
                                control_id=control_id, status="pending",
                                payload=build(control_id, accession)))  # fmt: skip
            ids.append(control_id)
    return ids
