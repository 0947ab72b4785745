"""Compare parsed reads with an expected JSON written by reading the file by hand.

Schema (every key but ``plates`` optional; each plate entry matches the read at
the same position in the parser's output, and lists only what was checked)::

    {
      "source": "tecan/x.xlsx",
      "note": "what was read by hand, and where (sheet, line)",
      "n_reads": 2,
      "plates": [{
        "plate_index": 0, "format": "tecan", "kind": "endpoint" | "kinetic",
        "label": "Label1", "wavelength_nm": 600, "plate_id": "P1" | null,
        "rows": 8, "columns": 12, "n_wells": 96, "derived": false,
        "read_time": "2014-02-20T15:37:16",        # naive ISO, the file's local time
        "wells": {"A1": 0.1234},                   # exact numbers (1e-9)
        "missing": {"B5": "OVER"},                 # well -> the raw token the file has
        "reasons": {"B5": "overflow"},             # well -> NoValueReason
        "metadata": {"reader_model": "infinite 200Pro"},
        "kinetic": {"n_times": 49, "times_s": {"0": 0.0, "1": 600.0},
                    "readings": {"A1": {"0": 0.1, "48": 0.5}},
                    "missing": {"A1": {"3": "OVER"}}}
      }]
    }

For kinetic reads, ``wells`` and ``missing`` refer to the last reading.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from saa_lab.domain import PlateRead

TOLERANCE = 1e-9


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def check_reads(reads: Sequence[PlateRead], expected: dict[str, Any], where: str = "") -> None:
    if "n_reads" in expected:
        assert len(reads) == expected["n_reads"], f"{where}: number of reads"
    plates = expected["plates"]
    assert len(reads) >= len(plates), f"{where}: fewer reads than expected entries"
    for position, want in enumerate(plates):
        _check_one(reads[want.get("position", position)], want, f"{where} read {position}")


def _check_one(read: PlateRead, want: dict[str, Any], where: str) -> None:
    simple = ("plate_index", "format", "kind", "label", "plate_id", "rows", "columns", "derived")
    for key in simple:
        if key in want:
            assert getattr(read, key) == want[key], f"{where}: {key}"
    if "wavelength_nm" in want:
        assert read.wavelength_nm == pytest.approx(want["wavelength_nm"]), f"{where}: wavelength"
    if "n_wells" in want:
        assert len(read.wells) == want["n_wells"], f"{where}: number of wells"
    if "read_time" in want:
        assert read.read_time is not None, f"{where}: read_time missing"
        assert read.read_time.tzinfo is not None, f"{where}: read_time must be aware"
        got = read.read_time.replace(tzinfo=None).isoformat()
        assert got == want["read_time"], f"{where}: read_time"
    for well, value in want.get("wells", {}).items():
        got = read.wells[well]
        assert got.value is not None, f"{where}: {well} has no value ({got.reason} {got.raw!r})"
        assert got.value == pytest.approx(value, abs=TOLERANCE, rel=TOLERANCE), f"{where}: {well}"
    for well, raw in want.get("missing", {}).items():
        got = read.wells[well]
        assert got.value is None, f"{where}: {well} should have no value, got {got.value}"
        assert got.raw.strip() == raw, f"{where}: {well} raw token"
    for well, reason in want.get("reasons", {}).items():
        assert read.wells[well].reason == reason, f"{where}: {well} reason"
    for key, value in want.get("metadata", {}).items():
        assert read.metadata.get(key) == value, f"{where}: metadata {key}"
    if "kinetic" in want:
        _check_kinetic(read, want["kinetic"], where)


def _check_kinetic(read: PlateRead, want: dict[str, Any], where: str) -> None:
    series = read.kinetic
    assert series is not None, f"{where}: no kinetic series"
    if "n_times" in want:
        assert len(series.times_s) == want["n_times"], f"{where}: number of times"
    for index, seconds in want.get("times_s", {}).items():
        assert series.times_s[int(index)] == pytest.approx(seconds), f"{where}: time {index}"
    for well, points in want.get("readings", {}).items():
        for index, value in points.items():
            got = series.readings[well][int(index)]
            assert got.value == pytest.approx(value, abs=TOLERANCE), f"{where}: {well}[{index}]"
    for well, points in want.get("missing", {}).items():
        for index, raw in points.items():
            got = series.readings[well][int(index)]
            assert got.value is None, f"{where}: {well}[{index}] should have no value"
            assert got.raw.strip() == raw, f"{where}: {well}[{index}] raw token"
