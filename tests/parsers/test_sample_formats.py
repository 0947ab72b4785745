"""Our own sample exports (sample_files/<format>/...) against their expected JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import check_reads, load

from saa_lab.domain import SourceFile
from saa_lab.parsers import detect, parse

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"


def _cases() -> list[Path]:
    return sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.is_file() and (p.parent / f"{p.name}.expected.json").is_file()
    )


@pytest.mark.parametrize("path", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_export_matches_its_expected_json(path: Path) -> None:
    expected = load(path.parent / f"{path.name}.expected.json")
    source = SourceFile.from_path(path)
    assert str(detect(source)) == expected["plates"][0]["format"]
    check_reads(parse(source), expected, path.name)
