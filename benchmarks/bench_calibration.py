"""Fitting and classifying one 96-well plate, per curve model (after imports).

    python benchmarks/bench_calibration.py [--repeat 200]

Times ``saa_lab.calibrate.calibrate`` (blank correction, curve fit, every
standard back-calculated with exclusions, controls, Westgard on 30 runs of
history, 40 samples classified) on the AHA layout with invented data, for each
curve model. Targets: linear under 5 ms, 4PL/5PL under 50 ms (median). Prints a
table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from zoneinfo import ZoneInfo

from saa_lab.assay import AssayDefinition, CurveSettings, load_assay
from saa_lab.calibrate import calibrate
from saa_lab.config import AppConfig
from saa_lab.curves import four_pl
from saa_lab.domain import PlateRead, SourceFile
from saa_lab.layout import load_layout
from saa_lab.mapping import map_plate
from saa_lab.parsers import parse_cell
from saa_lab.synth import plate_values, standard_plate_plan, worklist_csv
from saa_lab.worklist import parse_worklist

CASES = [
    ("linear", CurveSettings(model="linear")),
    ("weighted linear 1/x2", CurveSettings(model="linear", weighting="1/x2")),
    ("two-segment linear", CurveSettings(model="two-segment-linear",
                                         segments=((5, 100), (100, 1000)))),
    ("4PL", CurveSettings(model="4pl")),
    ("4PL 1/x", CurveSettings(model="4pl", weighting="1/x")),
    ("5PL", CurveSettings(model="5pl")),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    config = AppConfig()
    base = load_assay("aha-indooxine", config.search_dirs("assays")).definition
    layout = load_layout("aha-96", config.search_dirs("layouts"))
    values, rows = plate_values(standard_plate_plan(40), seed=11)
    worklist = parse_worklist(SourceFile(worklist_csv(rows).encode(), "b.worklist.csv"),
                              zone=ZoneInfo("UTC"))  # fmt: skip
    history = {"LOW": [40.0 + (i % 5) - 2 for i in range(30)],
               "HIGH": [400.0 + 4 * ((i % 7) - 3) for i in range(30)]}  # fmt: skip
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    print("| curve model | median ms | p95 ms | accepted | samples |")
    print("|---|---|---|---|---|")
    for name, curve in CASES:
        assay: AssayDefinition = base.model_copy(update={"curve": curve})
        plate_values_ = dict(values)
        if curve.model in ("4pl", "5pl"):
            # A sigmoid plate for the logistic models (same layout, invented signals).
            import numpy as np

            targets = {"LOW": 40.0, "HIGH": 400.0}
            for well, spec in layout.wells.items():
                activity = spec.nominal_u_per_l or targets.get(spec.control or "")
                if activity:
                    od = float(four_pl(np.array([activity]), 0.0, 1.2, 400, 2.4)[0])
                    plate_values_[well] = f"{od + 0.045:.4f}"
        read = PlateRead("bench", "b.txt", "0" * 64,
                         {w: parse_cell(v) for w, v in plate_values_.items()},
                         wavelength_nm=710)  # fmt: skip
        plate = map_plate(read, layout, worklist)
        calibrate(plate, assay, control_history=history)  # warm-up (imports)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            cal = calibrate(plate, assay, control_history=history)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        print(f"| {name} | {statistics.median(times):.2f} | {p95:.2f} | {cal.accepted} "
              f"| {len(cal.samples)} |")  # fmt: skip
        if not cal.accepted:
            print(f"|  rejected: {'; '.join(cal.reasons)} | | | | |")


if __name__ == "__main__":
    main()
