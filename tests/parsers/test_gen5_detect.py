"""Detection of Gen5 exports: the Gen5 parser claims every Gen5 file and nothing else.

Runs over the bundled samples (sample_files/) and, when present, the real exports in
../shared/samples/real/ (never copied into the repository).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from parser_helpers import check_claims

from saa_lab.domain import SourceFile
from saa_lab.parsers import Instrument
from saa_lab.parsers.biotek_gen5 import Gen5TextParser
from saa_lab.parsers.table import head_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_files"
REAL = ROOT.parent / "shared" / "samples" / "real"
NOT_EXPORTS = (".json", ".md", ".py", ".worklist.csv")


def _exports() -> list[Path]:
    found = [
        p
        for p in sorted(SAMPLES.rglob("*"))
        if p.is_file() and not p.name.endswith(NOT_EXPORTS) and not p.name.startswith("_")
    ]
    if REAL.is_dir():
        found += sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix != ".md")
    return found


def _is_gen5(path: Path) -> bool:
    """Gen5 exports with their file header; the headerless 'Well ID' table is generic_long's."""
    return path.parent.name == "biotek_gen5"


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


GEN5 = [p for p in _exports() if _is_gen5(p)]
OTHERS = [p for p in _exports() if not _is_gen5(p)]


def test_the_gen5_samples_cover_text_and_workbooks() -> None:
    names = {p.name for p in GEN5 if p.parent.parent == SAMPLES}
    assert {
        "RUN-G5-001.txt",
        "gen5_multiplate_6well.xlsx",
        "gen5_kinetic_24well_cp1252.txt",
    } <= names


@pytest.mark.parametrize("path", GEN5, ids=_id)
def test_only_the_gen5_parser_claims_a_gen5_export(path: Path) -> None:
    check_claims(path, Instrument.BIOTEK_GEN5)


@pytest.mark.parametrize("path", OTHERS or [None], ids=lambda p: "none" if p is None else _id(p))
def test_the_gen5_parser_claims_no_other_export(path: Path | None) -> None:
    if path is None:
        pytest.skip("no other exports to check")
    head = head_text(SourceFile.from_path(path))

    assert not Gen5TextParser.sniff(head)
