"""Every real export in ../shared/samples/real is read as a person reading it by hand would.

The expected values live in tests/parsers/real_expected/<folder>/<file>.expected.json,
written by reading each file (not from the parser's output). Skips when the shared
folder is absent; fails when a real file has no expected JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import check_reads, load

from saa_lab.domain import SourceFile
from saa_lab.parsers import detect, parse

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "real"
EXPECTED = Path(__file__).resolve().parent / "real_expected"


def _real_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    return sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix.lower() != ".md")


@pytest.mark.parametrize("path", _real_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_export_matches_hand_read_expectations(path: Path) -> None:
    relative = path.relative_to(REAL)
    expected_path = EXPECTED / relative.parent / f"{relative.name}.expected.json"
    assert expected_path.is_file(), f"no hand-written expectations for {relative}"
    expected = load(expected_path)
    source = SourceFile.from_path(path)
    assert str(detect(source)) == expected["plates"][0]["format"]
    check_reads(parse(source), expected, str(relative))


def test_real_folder_present_or_skipped() -> None:
    if not REAL.is_dir():
        pytest.skip(f"no real sample exports at {REAL}")
    assert len(_real_files()) == 22
