"""BioTek Gen5 kinetic text exports: the Time/T°/wells table, padding, tokens and errors.

Every export is built here from invented numbers in the layout Gen5 writes: a title line
(the read's label), a blank line, ``Time<TAB>T° 405<TAB>A1…`` and one row per reading.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from saa_lab.domain import Meta, NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers.biotek_gen5 import Gen5TextParser
from saa_lab.parsers.biotek_gen5 import constants as c
from saa_lab.parsers.biotek_gen5.clock import (
    day_offset,
    elapsed_seconds,
    parse_date,
    parse_time_of_day,
)

PATH = "KIN-2025-03-14.txt"
LETTERS = "ABCDEFGHIJKLMNOP"
GEOMETRY = {6: (2, 3), 12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24)}


def names(wells: int) -> list[str]:
    rows, columns = GEOMETRY[wells]
    return [f"{LETTERS[r]}{col}" for r in range(rows) for col in range(1, columns + 1)]


def reading(k: int, w: int) -> str:
    """An invented absorbance for reading k of well w."""
    return f"{0.1 + 0.01 * k + 0.0001 * w:.4f}"


def clock(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def header(plate_type: str = "96 WELL PLATE", reads: int = 5) -> list[str]:
    return [
        "",
        "",
        "Software Version\t2.09.1",
        "",
        "Experiment File Path:\tC:\\Gen5\\kinetic.xpt",
        "Protocol File Path:\tC:\\Gen5\\kinetic.prt",
        "",
        "Plate Number\tPlate 1",
        "Date\t3/14/2025",
        "Time\t8:05:12 AM",
        "Reader Type:\tSynergy HTX",
        "Reader Serial Number:\t1912345",
        "Reading Type\tReader",
        "",
        "Procedure Details",
        "",
        f"Plate Type\t{plate_type}",
        "Set Temperature\tSetpoint 37°C",
        f"Start Kinetic\tRuntime 0:04:00 (HH:MM:SS), Interval 0:01:00, {reads} Reads",
        "    Read\tAbsorbance Endpoint",
        "\tFull Plate",
        "\tWavelengths:  405",
        "End Kinetic\t",
        "",
    ]


def table(
    title: str = "405",
    *,
    wells: list[str] | None = None,
    reads: int = 5,
    interval: int = 60,
    start: int = 0,
    temperature: bool = True,
    cells: dict[tuple[int, str], str] | None = None,
    padding: int = 0,
) -> list[str]:
    wells = wells if wells is not None else names(96)
    cells = cells or {}
    temp_header = "\tT° 405" if temperature else ""
    lines = [title, "", "Time" + temp_header + "\t" + "\t".join(wells)]
    for k in range(reads):
        values = [cells.get((k, well), reading(k, w)) for w, well in enumerate(wells)]
        temp = f"\t{37.0 + 0.1 * k:.1f}" if temperature else ""
        lines.append(clock(start + k * interval) + temp + "\t" + "\t".join(values))
    for _ in range(padding):
        lines.append("0:00:00" + ("\t" if temperature else "") + "\t" * len(wells))
    return [*lines, ""]


def export(*blocks: list[str], encoding: str = "utf-8", newline: str = "\r\n") -> SourceFile:
    text = newline.join(line for block in blocks for line in block) + newline
    return SourceFile(contents=text.encode(encoding), original_path=PATH)


def parse(source: SourceFile) -> list[PlateRead]:
    return Gen5TextParser().parse(source)


def line_of(source: SourceFile, startswith: str, nth: int = 1) -> int:
    lines = source.contents.decode("utf-8").split("\r\n")
    found = [n for n, line in enumerate(lines, start=1) if line.startswith(startswith)]
    return found[nth - 1]


# --- the table ------------------------------------------------------------------------------


def test_kinetic_read_has_times_from_the_first_reading_and_every_series() -> None:
    source = export(header(), table(start=883))

    [read] = parse(source)

    assert read.kind == "kinetic"
    assert read.label == "405"
    assert read.wavelength_nm == 405
    assert read.derived is False
    assert (read.rows, read.columns) == (8, 12)
    assert read.read_time == datetime(2025, 3, 14, 8, 5, 12, tzinfo=UTC)
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 60.0, 120.0, 180.0, 240.0)
    assert sorted(read.kinetic.readings) == sorted(names(96))
    assert [v.value for v in read.kinetic.readings["B3"]] == [
        pytest.approx(float(reading(k, 14))) for k in range(5)
    ]
    assert read.metadata[c.META_KINETIC_FIRST_TIME] == "0:14:43"
    assert read.metadata[c.META_KINETIC_READS] == "5"
    assert read.metadata[c.META_KINETIC_INTERVAL] == "60"


def test_wells_are_the_last_reading() -> None:
    [read] = parse(export(header(), table()))

    assert len(read.wells) == 96
    assert read.wells["H12"].value == pytest.approx(float(reading(4, 95)))
    assert read.wells["A1"] == read.kinetic.readings["A1"][-1]  # type: ignore[union-attr]


def test_temperature_column_is_metadata() -> None:
    [read] = parse(export(header(), table()))

    assert read.metadata[c.META_TEMPERATURE_COLUMN] == "T° 405"
    assert read.metadata[Meta.TEMPERATURE] == "37.4"
    assert read.metadata[c.META_TEMPERATURE_RANGE] == "37.0–37.4"


def test_table_without_a_temperature_column() -> None:
    [read] = parse(export(header(), table(temperature=False)))

    assert read.kinetic is not None
    assert len(read.kinetic.times_s) == 5
    assert read.wells["C7"].value == pytest.approx(float(reading(4, 30)))
    assert c.META_TEMPERATURE_COLUMN not in read.metadata


def test_empty_padding_rows_after_the_last_cycle_are_dropped() -> None:
    [read] = parse(export(header(reads=8), table(padding=3)))

    assert read.kinetic is not None
    assert len(read.kinetic.times_s) == 5
    assert read.kinetic.times_s[-1] == 240.0
    assert read.wells["A1"].value == pytest.approx(float(reading(4, 0)))
    assert read.metadata[c.META_DROPPED_PADDING] == "3"


def test_times_past_one_day() -> None:
    [read] = parse(export(header(), table(reads=4, interval=12 * 3600, start=600)))

    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 43200.0, 86400.0, 129600.0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("OVRFLW", NoValueReason.OVERFLOW),
        ("MISSED", NoValueReason.NOT_READ),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("*0.123*", NoValueReason.MASKED),
        ("", NoValueReason.EMPTY),
    ],
)
def test_tokens_in_a_series_have_no_value(raw: str, reason: str) -> None:
    cells = {(2, "D4"): raw, (4, "E5"): raw}

    [read] = parse(export(header(), table(cells=cells)))

    series = read.kinetic.readings["D4"]  # type: ignore[union-attr]
    assert series[2].value is None
    assert series[2].raw == raw
    assert series[2].reason == reason
    assert series[3].value == pytest.approx(float(reading(3, 39)))
    assert read.wells["E5"].value is None
    assert read.wells["E5"].reason == reason


def test_two_kinetic_reads_and_their_analysis_grid_in_file_order() -> None:
    grid = ["Results", "\t" + "\t".join(str(n) for n in range(1, 13))]
    for r in range(8):
        grid.append(
            f"{LETTERS[r]}\t"
            + "\t".join(f"{r + col / 100:.3f}" for col in range(1, 13))
            + "\tMax V [405]"
        )
    source = export(header(), table("405"), table("Blank 405"), grid)

    reads = parse(source)

    assert [(r.label, r.kind, r.derived) for r in reads] == [
        ("405", "kinetic", False),
        ("Blank 405", "kinetic", True),
        ("Max V [405]", "endpoint", True),
    ]
    assert [r.index for r in reads] == [0, 1, 2]
    assert {r.plate_index for r in reads} == {0}
    assert [r.wavelength_nm for r in reads] == [405, 405, 405]
    assert reads[2].wells["H12"].value == pytest.approx(7.12)


def test_partial_plate_keeps_its_geometry_and_lacks_the_unread_wells() -> None:
    wells = [f"{row}{col}" for row in "ABCD" for col in range(1, 10)]

    [read] = parse(export(header(), table(wells=wells)))

    assert (read.rows, read.columns) == (8, 12)
    assert len(read.wells) == 36
    assert "E1" not in read.wells
    assert "A10" not in read.wells


@pytest.mark.parametrize(
    ("plate_type", "wells"),
    [
        ("Sarstedt 6-well (Use plate lid)", 6),
        ("Costar 12 well", 12),
        ("Costar 24 flat bottom", 24),
        ("CellStar 48", 48),
        ("96 WELL PLATE (Use plate lid)", 96),
        ("Greiner 384 F bottom", 384),
    ],
)
def test_plate_type_gives_the_geometry(plate_type: str, wells: int) -> None:
    [read] = parse(export(header(plate_type), table(wells=names(wells))))

    assert (read.rows, read.columns) == GEOMETRY[wells]
    assert len(read.wells) == wells


def test_without_a_plate_type_the_smallest_plate_holding_the_wells() -> None:
    lines = [line for line in header() if not line.startswith("Plate Type")]

    [read] = parse(export(lines, table(wells=names(48))))

    assert (read.rows, read.columns) == (6, 8)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16", "utf-8-sig"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_encodings_and_line_endings(encoding: str, newline: str) -> None:
    source = export(header(), table(padding=2), encoding=encoding, newline=newline)

    [read] = parse(source)

    assert read.metadata[c.META_TEMPERATURE_COLUMN] == "T° 405"
    assert read.kinetic is not None
    assert len(read.kinetic.times_s) == 5


def test_decimal_comma_readings_and_temperatures() -> None:
    lines = [line.replace(".", ",") if line[:1].isdigit() else line for line in table()]

    [read] = parse(export(header(), lines))

    assert read.wells["A2"].value == pytest.approx(float(reading(4, 1)))
    assert read.metadata[Meta.TEMPERATURE] == "37,4"


def test_time_and_temperature_run_together_are_split() -> None:
    """Gen5 2.01 wrote '12:14:4324.0' (no tab) on its last kinetic row."""
    lines = table()
    last = lines[-2]
    time_cell, temperature, rest = last.split("\t", 2)
    lines[-2] = f"{time_cell}{temperature}\t{rest}"
    source = export(header(), lines)

    [read] = parse(source)

    assert read.kinetic is not None
    assert read.kinetic.times_s[-1] == 240.0
    assert read.wells["A1"].value == pytest.approx(float(reading(4, 0)))
    assert read.metadata[Meta.TEMPERATURE] == "37.4"
    assert read.metadata[c.META_REPAIRED_LINES] == str(line_of(source, "0:04:00"))


# --- errors name the line -------------------------------------------------------------------


def test_time_that_is_not_a_time_names_its_line() -> None:
    lines = table()
    lines[5] = "later" + lines[5][len("0:02:00") :]
    source = export(header(), lines)

    with pytest.raises(
        InputFileError, match=re.escape(c.KINETIC_BAD_TIME.format(found="later"))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "later")


def test_empty_time_after_the_first_row_is_refused() -> None:
    lines = table()
    lines[6] = lines[6][len("0:03:00") :]
    source = export(header(), lines)

    with pytest.raises(InputFileError, match=re.escape(c.KINETIC_EMPTY_TIME)) as err:
        parse(source)

    assert err.value.line == line_of(source, "\t37.3")


def test_time_going_back_is_refused() -> None:
    lines = table()
    lines[6] = "0:00:30" + lines[6][len("0:03:00") :]
    source = export(header(), lines)

    with pytest.raises(InputFileError, match="comes before the previous reading") as err:
        parse(source)

    assert err.value.line == line_of(source, "0:00:30")


def test_ragged_kinetic_row_names_its_line() -> None:
    lines = table()
    lines[4] = lines[4].rsplit("\t", 2)[0]
    source = export(header(), lines)
    message = c.KINETIC_RAGGED_ROW.format(
        found=96, expected=98, temperature="temperature, ", wells=96
    )

    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        parse(source)

    assert err.value.line == line_of(source, "0:01:00")


def test_extra_cells_after_the_wells_are_refused() -> None:
    lines = table()
    lines[4] += "\t0.5"
    source = export(header(), lines)

    with pytest.raises(
        InputFileError, match=re.escape(c.KINETIC_EXTRA_CELLS.format(found=1, wells=96))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "0:01:00")


@pytest.mark.parametrize(
    ("wells", "message"),
    [
        (["A1", "A2", "A2"], c.KINETIC_DUPLICATE_WELL.format(well="A2")),
        (["A1", "Q1", "A3"], c.KINETIC_BAD_COLUMN.format(column=4, found="Q1")),
        (["A1", "A2", "Mean"], c.KINETIC_BAD_COLUMN.format(column=5, found="Mean")),
    ],
)
def test_bad_kinetic_header_names_its_line(wells: list[str], message: str) -> None:
    source = export(header(), table(wells=wells))

    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        parse(source)

    assert err.value.line == line_of(source, "Time\tT°")


def test_well_outside_the_declared_plate_is_refused() -> None:
    source = export(header("CellStar 48"), table(wells=["A1", "G1"]))
    message = c.WELL_OUTSIDE_PLATE.format(well="G1", wells=48, rows=6, columns=8)

    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        parse(source)

    assert err.value.line == line_of(source, "Time\tT°")
    assert err.value.well == "G1"


def test_table_of_padding_rows_only_is_refused() -> None:
    source = export(header(), table(reads=0, padding=4))

    with pytest.raises(InputFileError, match=re.escape(c.KINETIC_NO_ROWS)) as err:
        parse(source)

    assert err.value.line == line_of(source, "Time\tT°")


def test_error_names_the_file_through_the_registry() -> None:
    from saa_lab.parsers import parse as registry_parse

    lines = table()
    lines[5] = "later" + lines[5][len("0:02:00") :]

    with pytest.raises(InputFileError) as err:
        registry_parse(export(header(), lines))

    assert str(err.value).startswith(f"{PATH}:")


# --- clock: dates, times of day and elapsed times -------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:14:43", 883.0),
        ("12:14:43", 44083.0),
        ("100:00:00", 360000.0),
        ("0:00:01.5", 1.5),
        ("00:15:00", 900.0),  # a workbook time cell
        ("1.02:03:04", 93784.0),  # days.hours:minutes:seconds
        ("1900-01-01T00:15:00", 86400.0 + 900.0),  # Excel serial 1.0104: 24:15:00
        ("1900-01-02T00:15:00", 2 * 86400.0 + 900.0),
        ("1900-03-01T00:00:00", 61 * 86400.0),  # past Excel's invented 1900-02-29
    ],
)
def test_elapsed_seconds(text: str, seconds: float) -> None:
    assert elapsed_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "later", "0:75:00", "2025-03-14T10:00:00", "0.0104", "1:2"])
def test_not_an_elapsed_time(text: str) -> None:
    assert elapsed_seconds(text) is None


@pytest.mark.parametrize(
    ("text", "days"), [("1900-01-02T17:46:19", 2), ("17:46:19", 0), ("5:46:19 PM", 0), ("", 0)]
)
def test_day_offset_of_the_header_time(text: str, days: int) -> None:
    assert day_offset(text) == days


def test_dates_and_times_of_day() -> None:
    assert parse_date("7/1/2015") == (datetime(2015, 7, 1).date(), True)
    assert parse_date("13/1/2015") == (datetime(2015, 1, 13).date(), False)
    assert parse_date("2/30/2015") == (None, False)
    assert parse_time_of_day("1900-01-02T17:46:19") == datetime(2000, 1, 1, 17, 46, 19).time()
    assert parse_time_of_day("13:00:00 PM") is None
    assert parse_time_of_day("25:00:00") is None
