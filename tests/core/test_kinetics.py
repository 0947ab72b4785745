from __future__ import annotations

from pathlib import Path

import pytest

from saa_lab.assay import AssayDefinition
from saa_lab.config import load_config
from saa_lab.domain import KineticSeries, PlateRead, WellValue
from saa_lab.errors import ConfigError, InputFileError
from saa_lab.kinetics import RateWindow, rate
from saa_lab.mapping import select_read


def values(*numbers: float | None) -> tuple[WellValue, ...]:
    return tuple(
        WellValue(n, str(n)) if n is not None else WellValue(None, "OVER", "overflow")
        for n in numbers
    )


TIMES = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)


def test_rate_is_the_least_squares_slope_per_minute() -> None:
    got = rate(TIMES, values(0.1, 0.11, 0.12, 0.13, 0.14, 0.15), RateWindow())
    assert got.value == pytest.approx(0.02)


def test_rate_uses_only_the_window_and_skips_missing_readings() -> None:
    # Lag phase then linear: the window 60-150 s sees only the linear part.
    readings = values(0.1, 0.1, 0.2, None, 0.4, 0.5)
    got = rate(TIMES, readings, RateWindow(start_s=60, end_s=150))
    assert got.value == pytest.approx(0.2)


def test_too_few_readings_is_no_value_with_reason() -> None:
    got = rate(TIMES, values(0.1, None, None, None, None, 0.2), RateWindow())
    assert got.value is None and got.reason == "too few readings"


def _kinetic_read() -> PlateRead:
    series = KineticSeries(TIMES, {"A1": values(0.1, 0.13, 0.16, 0.19, 0.22, 0.25)})
    return PlateRead("tecan", "k.xlsx", "0" * 64, {"A1": series.readings["A1"][-1]},
                     wavelength_nm=340, kind="kinetic", kinetic=series)  # fmt: skip


def _assay(read: str) -> AssayDefinition:
    return AssayDefinition(name="nadh", wavelength_nm=340, read=read,  # type: ignore[arg-type]
                           lloq_u_per_l=25, uloq_u_per_l=2200)  # fmt: skip


def test_a_kinetic_assay_reads_each_wells_rate() -> None:
    (chosen,) = select_read([_kinetic_read()], _assay("kinetic"), path="k.xlsx")
    assert chosen.wells["A1"].value == pytest.approx(0.06)


def test_an_endpoint_assay_refuses_a_kinetic_read_and_vice_versa() -> None:
    with pytest.raises(InputFileError, match="this is a kinetic read"):
        select_read([_kinetic_read()], _assay("endpoint"), path="k.xlsx")
    endpoint = PlateRead("tecan", "e.xlsx", "0" * 64, {"A1": WellValue(0.2, "0.2")},
                         wavelength_nm=340)  # fmt: skip
    with pytest.raises(InputFileError, match="needs a kinetic read"):
        select_read([endpoint], _assay("kinetic"), path="e.xlsx")


def test_a_file_without_the_assays_wavelength_lists_what_it_has() -> None:
    read = PlateRead("tecan", "e.xlsx", "0" * 64, {"A1": WellValue(0.2, "0.2")},
                     wavelength_nm=450, label="Label1")  # fmt: skip
    with pytest.raises(
        InputFileError, match=r"no read at the assay's 340 nm; reads found: Label1 \(450 nm\)"
    ):
        select_read([read], _assay("endpoint"), path="e.xlsx")


def test_inbox_format_override_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "saa-lab.toml"
    path.write_text('[watch]\nformat = "tecan"\n')
    assert load_config(path).watch.instrument == "tecan"
    path.write_text('[watch]\nformat = "tekan"\n')
    with pytest.raises(ConfigError, match="unknown format 'tekan' \\(did you mean 'tecan'\\?\\)"):
        load_config(path)
