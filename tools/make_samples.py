"""Regenerate the bundled sample exports in sample_files/ (invented data).

    python tools/make_samples.py

Writes each export, its worklist and ``<run>.truth.json``: the true activity
and the expected flag of every accession, as designed here (not as computed by
saa-lab), for the tests to check against.
"""

from __future__ import annotations

import json
from pathlib import Path

from saa_lab.synth import PlannedSample, gen5_text, grid_csv, plate_values, worklist_csv

ROOT = Path(__file__).resolve().parents[1] / "sample_files"


def order(patient: str, drug: str, dose: str, collected: str, protocol: str = "") -> dict[str, str]:
    return {
        "patient_id": patient,
        "formulation": drug,
        "dose_time": dose,
        "collection_time": collected,
        "protocol": protocol,
        "clinic": "CLINIC-NORTH",
    }


# accession, true U/L, dilution, expected flag, extras
GEN5_RUN = [
    PlannedSample(
        "SAA-0001",
        250,
        order=order(
            "PAT-1001",
            "PEG-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T08:30",
            "AIEOP-BFM-2009",
        ),
    ),
    PlannedSample(
        "SAA-0002",
        60,
        order=order(
            "PAT-1002", "pegaspargase", "2026-11-13T10:00", "2026-11-20T09:10", "AIEOP-BFM-2009"
        ),
    ),
    PlannedSample("SAA-0003", 2),
    PlannedSample(
        "SAA-0004", 0, order=order("PAT-1004", "Erwinia", "2026-11-18T08:00", "2026-11-20T08:00")
    ),
    PlannedSample("SAA-0005", 820),
    PlannedSample("SAA-0006", 1800),
    PlannedSample("SAA-0007", 2600, dilution=10),
    PlannedSample("SAA-0008", 140, overrides={1: "?????"}),
    PlannedSample("SAA-0009", 300, overrides={1: 180.0}),
    PlannedSample("SAA-0010", 80),
    PlannedSample("SAA-0011", 1400, overrides={0: "OVRFLW"}),
    PlannedSample(
        "SAA-0012",
        45,
        order=order(
            "PAT-1012", "crisantaspase", "2026-11-17T09:00", "2026-11-20T09:00", "DCOG-ALL11"
        ),
    ),
    PlannedSample("SAA-0013", 14),
    PlannedSample("SAA-0014", 600, dilution=5),
]
# Flags from the protocol rules (consensus 2016 unless the order names another):
# SAA-0002 PEG day 7 < 100 U/L (AIEOP-BFM 2009) -> possible silent inactivation;
# SAA-0004 Erwinia 48 h below the LLOQ (consensus) -> possible silent inactivation;
# SAA-0012 Erwinia 72 h trough < 100 U/L (DCOG ALL-11) -> below the threshold.
GEN5_FLAGS = {
    "SAA-0001": "therapeutic", "SAA-0002": "possible-silent-inactivation",
    "SAA-0003": "below-lloq", "SAA-0004": "possible-silent-inactivation",
    "SAA-0005": "therapeutic", "SAA-0006": "above-uloq-rerun",
    "SAA-0007": "therapeutic", "SAA-0008": "therapeutic", "SAA-0009": "invalid",
    "SAA-0010": "below-threshold", "SAA-0011": "above-uloq-rerun", "SAA-0012": "below-threshold",
    "SAA-0013": "below-threshold", "SAA-0014": "therapeutic",
}  # fmt: skip

GRID_RUN = [
    PlannedSample("GC-0101", 180),
    PlannedSample("GC-0102", 35),
    PlannedSample("GC-0103", 3),
    PlannedSample("GC-0104", 700),
    PlannedSample("GC-0105", 110),
    PlannedSample("GC-0106", 1500, dilution=2),
    PlannedSample("GC-0107", 2400),
    PlannedSample("GC-0108", 90, overrides={1: ""}),
]
GRID_FLAGS = {
    "GC-0101": "therapeutic", "GC-0102": "below-threshold", "GC-0103": "below-lloq",
    "GC-0104": "therapeutic", "GC-0105": "therapeutic", "GC-0106": "therapeutic",
    "GC-0107": "above-uloq-rerun", "GC-0108": "below-threshold",
}  # fmt: skip


def truth(plan: list[PlannedSample], flags: dict[str, str]) -> dict[str, object]:
    return {
        "note": "Designed truth for invented samples; see tools/make_samples.py",
        "nominal_curve": {"blank_od": 0.045, "od_per_u_per_l": 0.0011, "wavelength_nm": 710},
        "samples": {
            s.accession: {
                "true_u_per_l": s.activity_u_per_l,
                "dilution": s.dilution,
                "flag": flags[s.accession],
            }
            for s in plan
        },
    }


def main() -> None:
    gen5_dir = ROOT / "biotek_gen5"
    gen5_dir.mkdir(parents=True, exist_ok=True)
    values, rows = plate_values(GEN5_RUN, seed=2026)
    text = gen5_text(values, barcode="RUN-G5-001")
    # Gen5 on Windows: cp1252 with the degree sign in the procedure.
    text = text.replace("Plate Type\t", "Set Temperature\tSetpoint 37°C\r\nPlate Type\t")
    (gen5_dir / "RUN-G5-001.txt").write_bytes(text.encode("cp1252"))
    (gen5_dir / "RUN-G5-001.worklist.csv").write_text(worklist_csv(rows), encoding="utf-8")
    (gen5_dir / "RUN-G5-001.truth.json").write_text(
        json.dumps(truth(GEN5_RUN, GEN5_FLAGS), indent=2) + "\n", encoding="utf-8"
    )

    grid_dir = ROOT / "generic_grid"
    grid_dir.mkdir(parents=True, exist_ok=True)
    values, rows = plate_values(GRID_RUN, seed=4242)
    (grid_dir / "RUN-GC-002.csv").write_text(
        grid_csv(values, plate_id="RUN-GC-002", wavelength=710), encoding="utf-8"
    )
    (grid_dir / "RUN-GC-002.worklist.csv").write_text(worklist_csv(rows), encoding="utf-8")
    (grid_dir / "RUN-GC-002.truth.json").write_text(
        json.dumps(truth(GRID_RUN, GRID_FLAGS), indent=2) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
