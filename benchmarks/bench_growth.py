"""Per-plate processing time against the number of stored results (0, 100,000, 1,000,000).

    python benchmarks/bench_growth.py [--sizes 0,1e5,1e6] [--plates 20]
                                      [--database-url postgresql+psycopg://...]

For each size, a database filled as by ``bench_history.py`` (a fresh copy of the cached
SQLite file; PostgreSQL is filled again) processes the same plates through
``saa_lab.pipeline.process_export``, in this process: parse, calibrate, Westgard with its
control history, interpret with each patient's history, and the store's transaction.
Each plate is 96-well Gen5 text with 40 samples; half of its samples belong to patients of
the filled database with 20 results of history each (so the history query runs for
real), the others to new patients. The workspace releases every result on processing.
One warm-up plate is not timed. Prints per-plate p50/p95/max at each size.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_history import (
    DEFAULT_CACHE,
    RESULTS_PER_PATIENT,
    filled_database,
    machine_line,
    patient,
    percentile,
    reset_postgres,
)

from saa_lab.config import AppConfig, load_config
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.synth import PlannedSample, gen5_text, plate_values, standard_plate_plan, worklist_csv
from saa_lab.worklist import parse_worklist

SAMPLES_PER_PLATE = 40
RELEASE_ON_PROCESSING = """
[[autoverification]]
name = "benchmark-release-on-processing"
run_statuses = ["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"]
hold_flags = []
"""


def workspace(root: Path, database_url: str) -> AppConfig:
    root.mkdir(parents=True, exist_ok=True)
    text = '[lab]\ntimezone = "Europe/Berlin"\n' + RELEASE_ON_PROCESSING
    text += f'[database]\nurl = "{database_url}"\n'
    (root / "saa-lab.toml").write_text(text)
    return load_config(root / "saa-lab.toml")


def plate(index: int, known_patients: int) -> tuple[str, bytes, bytes]:
    """Name, Gen5 export and worklist of plate ``index`` (the same at every size)."""
    name = f"GROW{index:04d}"
    rng = random.Random(index)
    plan = []
    for i, sample in enumerate(standard_plate_plan(SAMPLES_PER_PLATE, prefix=f"{name}-S")):
        known = i % 2 == 0 and known_patients > 0
        pid = patient(rng.randint(1, known_patients)) if known else f"NEW-{name}-{i:02d}"
        order = {
            "patient_id": pid,
            "formulation": "peg-asparaginase",
            "dose_time": "2026-11-18T08:00",
            "collection_time": "2026-11-20T08:00",
        }
        plan.append(
            PlannedSample(
                sample.accession, sample.activity_u_per_l, replicates=sample.replicates, order=order
            )
        )
    values, rows = plate_values(plan, seed=7000 + index)
    return name, gen5_text(values, barcode=name).encode(), worklist_csv(rows).encode()


def process_plates(config: AppConfig, plates: int, known_patients: int) -> list[float]:
    store = Store(config.database_url, zone=config.lab.zone)
    zone = config.lab.zone
    took = []
    try:
        for index in range(plates + 1):  # plate 0 warms up and is not timed
            name, export, worklist_bytes = plate(index, known_patients)
            start = time.perf_counter()
            worklist = parse_worklist(
                SourceFile(worklist_bytes, f"/inbox/{name}.worklist.csv"), zone=zone
            )
            source = SourceFile(export, f"/inbox/{name}.txt", timezone=zone)
            outcome = process_export(store, config, source, worklist_for=lambda _r, w=worklist: w)
            if index:
                took.append((time.perf_counter() - start) * 1000)
            results = sum(len(run.results) for run in outcome.runs)
            if results != SAMPLES_PER_PLATE:
                raise SystemExit(f"{name}: {results} results, expected {SAMPLES_PER_PLATE}")
    finally:
        store.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,1e5,1e6", help="stored results, comma-separated")
    parser.add_argument("--plates", type=int, default=20, help="timed plates per size")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="saa-bench-growth-") as tmp:
        for size in sizes:
            root = Path(tmp) / f"size-{size}"
            root.mkdir()
            if args.database_url:
                if size:
                    url, _how = filled_database(size, args.database_url, args.cache_dir)
                else:
                    reset_postgres(args.database_url)
                    url = args.database_url
            elif size:
                cached, _how = filled_database(size, None, args.cache_dir)
                shutil.copyfile(cached.removeprefix("sqlite:///"), root / "saa-lab.db")
                url = f"sqlite:///{root / 'saa-lab.db'}"
            else:
                url = f"sqlite:///{root / 'saa-lab.db'}"
            config = workspace(root, url)
            took = process_plates(config, args.plates, size // RESULTS_PER_PATIENT)
            rows.append((size, took))
            if args.database_url and size:
                reset_postgres(args.database_url)  # the next size fills it again
    backend = "postgresql" if args.database_url else "sqlite"
    print(machine_line(backend))
    print()
    print("| stored results | plates | per-plate p50 | p95 | max |")
    print("|---|---|---|---|---|")
    for size, took in rows:
        print(f"| {size:,} | {len(took)} | {statistics.median(took):.1f} ms "
              f"| {percentile(took, 0.95):.1f} ms | {max(took):.1f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
