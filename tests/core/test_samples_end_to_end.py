"""The bundled samples give the results they were designed to give.

Expected activities are computed here from the raw ODs in the files and the
nominal curve the samples were made from (tools/make_samples.py), and the flags
come from the designed truth file; neither asks the code under test.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import assert_hl7_strict_valid, release_on_processing
from helpers import nominal_activity

from saa_lab.config import load_config
from saa_lab.delivery import deliver_pending
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.worklist import parse_worklist

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"
CASES = [
    SAMPLES / "biotek_gen5" / "RUN-G5-001.txt",
    SAMPLES / "generic_grid" / "RUN-GC-002.csv",
]


def raw_grid(path: Path) -> dict[str, str]:
    """Read the 8x12 grid with the simplest possible code (independent of the parsers)."""
    text = path.read_bytes().decode("cp1252")
    delimiter = "\t" if path.suffix == ".txt" else ","
    grid = {}
    for line in text.splitlines():
        cells = line.split(delimiter)
        if len(cells) >= 13 and len(cells[0]) == 1 and cells[0] in "ABCDEFGH":
            for col in range(1, 13):
                grid[f"{cells[0]}{col}"] = cells[col].strip()
    assert len(grid) == 96
    return grid


@pytest.mark.parametrize("export", CASES, ids=lambda p: p.name)
def test_sample_results_match_the_designed_truth(export: Path, tmp_path: Path) -> None:
    truth = json.loads(export.with_name(export.stem + ".truth.json").read_text())["samples"]
    worklist_path = export.with_name(export.stem + ".worklist.csv")
    with worklist_path.open() as fh:
        wells_of: dict[str, list[str]] = {}
        for row in csv.DictReader(fh):
            wells_of.setdefault(row["accession"], []).append(row["well"])
    grid = raw_grid(export)
    config = release_on_processing(load_config(None).model_copy(update={"base_dir": tmp_path}))
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    worklist = parse_worklist(SourceFile.from_path(worklist_path), zone=config.lab.zone)
    outcome = process_export(
        store, config, SourceFile.from_path(export), worklist_for=lambda _r: worklist
    )
    outbox = config.outbox
    config.check_routes()  # creates the outbox folder, as `saa-lab process` does
    written = sum(deliver_pending(store, config).values())
    store.close()
    # Results above the ULOQ wait for their re-assay and are not sent.
    waiting = [r for r in outcome.runs[0].results if r.result_status == "RA"]
    assert {r.flag for r in waiting} <= {"above-uloq-rerun"}
    assert written == len(truth) - len(waiting)
    # Every message the pipeline produced passes hl7apy's strict validation.
    for message in sorted(outbox.glob("*.hl7")):
        assert_hl7_strict_valid(message.read_bytes().decode("utf-8"), tmp_path / "report.txt")
    (run,) = outcome.runs
    assert run.status == "accepted", run.reasons
    results = {r.accession: r for r in run.results}
    assert set(results) == set(truth)
    for accession, expected in truth.items():
        got = results[accession]
        assert got.flag == expected["flag"], accession
        ods = [float(grid[w]) for w in wells_of[accession] if _is_number(grid[w])]
        if got.comparator == "=" and got.flag != "invalid":
            from_curve = nominal_activity(sum(ods) / len(ods), expected["dilution"])
            assert got.activity_u_per_l == pytest.approx(from_curve, rel=0.04, abs=0.8), accession
            assert got.activity_u_per_l == pytest.approx(expected["true_u_per_l"], rel=0.06)
        elif got.comparator == "<":
            assert expected["true_u_per_l"] < got.activity_u_per_l
        elif got.comparator == ">":
            assert expected["true_u_per_l"] > got.activity_u_per_l


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
