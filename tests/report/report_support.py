"""Workspaces with processed runs for the report tests, and reading PDFs back.

Plates are on the designed AHA curve without noise (OD = 0.045 + 0.0011 × U/L in
the well), so the expected back-calculations are the arithmetic of that line: a
standard of 25 U/L read as 35 U/L back-calculates to 140 %; a HIGH control read as
425 U/L with the lab's mean 400 and SD 10 is +2.5 SD.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from conftest import write_config

from saa_lab.config import AppConfig, load_config, packaged_config_dir
from saa_lab.domain import PlateRead, SourceFile
from saa_lab.parsers import parse_cell
from saa_lab.pipeline import process_export
from saa_lab.store import Store, StoredRun
from saa_lab.synth import NOMINAL_BLANK, NOMINAL_SLOPE, PlannedSample, plate_values, worklist_csv
from saa_lab.worklist import parse_worklist

ASSAY = "aha-indooxine"
WESTGARD = """
[westgard.controls.LOW]
mean_u_per_l = 40
sd_u_per_l = 2
[westgard.controls.HIGH]
mean_u_per_l = 400
sd_u_per_l = 10
"""
USERS = """
[[users]]
name = "amoss"
full_name = "Ada Moss"
roles = ["reviewer", "approver"]
"""


def od(activity_in_well: float) -> str:
    return f"{NOMINAL_BLANK + NOMINAL_SLOPE * activity_in_well:.6f}"


def high_at(z: float) -> dict[str, str]:
    """The HIGH control wells (E3, F3) read at ``z`` SD from the lab's mean 400, SD 10."""
    return {"E3": od(400 + 10 * z), "F3": od(400 + 10 * z)}


def lab(folder: Path, *, extra: str = "") -> AppConfig:
    """A workspace whose aha-indooxine file sets the control lots' mean and SD."""
    path = write_config(folder, extra)
    assays = folder / "config" / "assays"
    assays.mkdir(parents=True)
    text = (packaged_config_dir() / "assays" / f"{ASSAY}.toml").read_text(encoding="utf-8")
    (assays / f"{ASSAY}.toml").write_text(text + WESTGARD, encoding="utf-8")
    return load_config(path)


def process(
    store: Store,
    config: AppConfig,
    number: int,
    samples: Sequence[PlannedSample],
    overrides: Mapping[str, str] | None = None,
    name: str | None = None,
) -> tuple[StoredRun, dict[str, str]]:
    """Process one synthetic plate; the stored run and every well's exported text."""
    values, rows = plate_values(samples, seed=number, noise=0.0)
    values.update(overrides or {})
    file_name = name or f"RUN-{number}.csv"
    worklist = parse_worklist(
        SourceFile(worklist_csv(rows).encode(), f"{file_name}.worklist.csv"), zone=config.lab.zone
    )
    read = PlateRead(
        format="test",
        source_path=file_name,
        source_sha256="0" * 64,
        wells={w: parse_cell(v) for w, v in values.items()},
        wavelength_nm=710,
    )
    source = SourceFile(f"run {number}".encode(), file_name)
    outcome = process_export(store, config, source, reads=[read], worklist_for=lambda _r: worklist)
    (run,) = outcome.runs
    return run, values


def pdf_pages_text(content: bytes) -> list[str]:
    """The text of each page, as a PDF reader extracts it."""
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def html_rows(html: str, table_class: str) -> list[str]:
    """The ``<tr>`` elements of the table with this class (markup kept)."""
    found = re.search(rf'<table class="{table_class}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_class!r} in the report"
    return re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)
