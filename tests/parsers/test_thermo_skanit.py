"""Thermo SkanIt parser: session text (Varioskan), results grids (Multiskan Spectrum) and
workbooks (Multiskan Sky): variants, tokens, encodings, line ends, errors, detection."""

from __future__ import annotations

import io
import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from parser_helpers import SAMPLES, check_claims, check_mutated, format_files, line_of, other_files

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument
from saa_lab.parsers.table import head_text
from saa_lab.parsers.thermo_skanit import SkanItParser
from saa_lab.parsers.thermo_skanit import constants as c

PAD = "\t" * 40
BERLIN = ZoneInfo("Europe/Berlin")


# --- builders -------------------------------------------------------------------------------------


def key(name: str, value: str) -> str:
    return f"\t{name}\t\t\t\t{value}"


def session(
    *,
    started: str = "11/17/2014 16:29:11+01:00",
    template: str = "96-well Greiner Bio-One, flat bottom plate",
    header: str = "Plate\tWell\tType\tSample\tValue\tTime (s)\tWL\tRead.",
    table: list[str] | None = None,
    after: list[str] | None = None,
    newline: str = "\r\n",
    pad: bool = True,
) -> str:
    lines = [
        "",
        "General Info",
        "",
        "Run information",
        key("Run started", started),
        "",
        "Instrument parameters",
        key("Instrument name", "Varioskan"),
        key("Instrument serial number", "74"),
        "",
        "SW Parameters",
        key("Run Software Version", "SkanIt Software 2.4.3 RE for Varioskan"),
        "",
        "Steps Data",
        "Protocol properties",
        key("Plate template", template),
        "",
        "Photometric1",
        key("Wavelength [nm]", "405"),
        "",
        "Photometric1",
        "",
        header,
        *(table if table is not None else kinetic_rows()),
        "",
        *(after or []),
    ]
    return newline.join(line + (PAD if pad else "") for line in lines) + newline


def kinetic_rows(
    wells: tuple[str, ...] = ("A01", "A02", "B01"),
    readings: int = 3,
    wavelengths: tuple[int, ...] = (405, 492),
    cells: dict[tuple[str, int, int], str] | None = None,
) -> list[str]:
    cells = cells or {}
    rows = []
    for w, well in enumerate(wells):
        for reading in range(1, readings + 1):
            for k, wl in enumerate(wavelengths):
                value = cells.get((well, reading, wl), f"{0.1 * (w + 1) + 0.01 * reading:.3f}")
                time = (reading - 1) * 60 + w * 0.5 + k * 0.14
                rows.append(f"7\t{well}\tUnknown\tS{w}\t{value}\t{time:g}\t{wl}\t{reading}")
    return rows


def text_source(text: str, *, encoding: str = "utf-8", name: str = "run.txt") -> SourceFile:
    return SourceFile(text.encode(encoding), name, timezone=BERLIN)


def parse(source: SourceFile) -> list[PlateRead]:
    return SkanItParser().parse(source)


def results(blocks: list[tuple[str, list[list[list[str]]]]], *, iterations: bool = True) -> str:
    lines = ["Results of Photometric1", ""]
    for plate_line, grids in blocks:
        lines += [f"\t{plate_line}", ""]
        for number, grid in enumerate(grids, start=1):
            if iterations:
                lines.append(f"\tIteration: {number}")
            lines += ["\t" + "\t".join(row) for row in grid]
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


def grid(value: float, *, rows: int = 8, columns: int = 12, read: int = 3) -> list[list[str]]:
    """Rows A.. of which the first ``read`` hold values in columns 1-4; the rest empty."""
    return [
        [
            f"{value + r * 0.1 + col * 0.01:.3f}" if r < read and col < 4 else ""
            for col in range(columns)
        ]
        for r in range(rows)
    ]


# --- session text (Varioskan) -----------------------------------------------------------------


def test_session_kinetic_two_wavelengths() -> None:
    source = text_source(session())

    reads = parse(source)

    assert [(r.label, r.wavelength_nm, r.kind) for r in reads] == [
        ("Photometric1", 405, "kinetic"),
        ("Photometric1", 492, "kinetic"),
    ]
    first = reads[0]
    assert first.format == "thermo_skanit"
    assert (first.index, first.plate_index, first.plate_id) == (0, 0, "7")
    assert (first.rows, first.columns, first.derived) == (8, 12, False)
    assert sorted(first.wells) == ["A1", "A2", "B1"]
    assert first.kinetic is not None
    assert first.kinetic.times_s == (0.0, 60.0, 120.0)
    assert reads[1].kinetic is not None
    assert reads[1].kinetic.times_s == pytest.approx((0.14, 60.14, 120.14))
    assert [v.value for v in first.kinetic.readings["A2"]] == pytest.approx([0.21, 0.22, 0.23])
    assert first.wells["A2"].value == pytest.approx(0.23)  # the last reading
    assert first.metadata["reader_model"] == "Varioskan"
    assert first.metadata["reader_serial"] == "74"
    assert first.metadata["software_version"] == "SkanIt Software 2.4.3 RE for Varioskan"
    assert first.source_sha256 == source.sha256


def test_run_started_offset_is_kept() -> None:
    [read, _] = parse(text_source(session()))

    assert read.read_time == datetime.fromisoformat("2014-11-17T16:29:11+01:00")
    assert read.read_time is not None
    assert read.read_time.utcoffset() == timedelta(hours=1)
    assert read.metadata["read_time"] == "2014-11-17T16:29:11+01:00"


@pytest.mark.parametrize(
    ("started", "expected"),
    [
        ("11/17/2014 16:29:11", datetime(2014, 11, 17, 16, 29, 11, tzinfo=BERLIN)),
        ("17/11/2014 16:29:11", datetime(2014, 11, 17, 16, 29, 11, tzinfo=BERLIN)),
        ("11/17/2014 4:29:11 PM", datetime(2014, 11, 17, 16, 29, 11, tzinfo=BERLIN)),
        ("11/17/2014 16:29:11-05:00", datetime.fromisoformat("2014-11-17T16:29:11-05:00")),
        ("2014-11-17T16:29:11", datetime(2014, 11, 17, 16, 29, 11, tzinfo=BERLIN)),
    ],
    ids=["no-offset", "day-first", "am-pm", "negative-offset", "iso"],
)
def test_run_started_forms(started: str, expected: datetime) -> None:
    read = parse(text_source(session(started=started)))[0]

    assert read.read_time == expected
    assert read.read_time is not None and read.read_time.tzinfo is not None


def test_run_started_that_is_not_a_date_names_its_line() -> None:
    text = session(started="yesterday")

    with pytest.raises(
        InputFileError, match=re.escape(c.BAD_RUN_STARTED.format(found="yesterday"))
    ) as err:
        parse(text_source(text))

    assert err.value.line == line_of(text, "\tRun started")
    assert err.value.path == "run.txt"


def test_nan_reading_keeps_its_token_and_is_never_zero() -> None:
    rows = kinetic_rows(cells={("A02", 2, 405): "NaN", ("B01", 3, 405): "NaN"})

    read = parse(text_source(session(table=rows)))[0]

    assert read.kinetic is not None
    middle = read.kinetic.readings["A2"][1]
    assert (middle.value, middle.raw, middle.reason) == (None, "NaN", NoValueReason.NOT_CALCULABLE)
    assert read.wells["B1"].value is None
    assert read.wells["B1"].raw == "NaN"
    assert "B1" not in read.values


def test_calculation_table_is_a_derived_endpoint_read() -> None:
    after = [
        "KineticCalculation1",
        "",
        "Parameters",
        key("Processor Type", "AvgRate"),
        "",
        "Plate\tWell\tType\tSample\tValue\tTime (s)\tWL",
        "7\tA01\tUnknown\tS0\t0.00102712746753247\t0\t405",
        "7\tA02\tUnknown\tS1\t-1.23977068521943E-05\t0\t405",
    ]

    reads = parse(text_source(session(after=after)))

    rate = reads[2]
    assert (rate.label, rate.kind, rate.derived, rate.kinetic) == (
        "KineticCalculation1",
        "endpoint",
        True,
        None,
    )
    assert rate.wells["A2"].value == pytest.approx(-1.23977068521943e-05)
    assert rate.index == 2


def test_endpoint_table_without_time_or_read_columns() -> None:
    table = [f"P1\t{w}\tUnknown\tS\t0.{n + 1}\t450" for n, w in enumerate(["A01", "H12", "C05"])]

    [read] = parse(text_source(session(header="Plate\tWell\tType\tSample\tValue\tWL", table=table)))

    assert (read.kind, read.kinetic, read.wavelength_nm) == ("endpoint", None, 450)
    assert read.wells["H12"].value == pytest.approx(0.2)


def test_decimal_commas_in_a_session_export() -> None:
    table = [row.replace(".", ",") for row in kinetic_rows(wavelengths=(405,))]

    [read] = parse(text_source(session(table=table)))

    assert read.wells["A1"].value == pytest.approx(0.13)
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 60.0, 120.0)


def test_plate_template_of_384_wells() -> None:
    table = [f"P1\t{w}\tUnknown\tS\t0.5\t0\t450\t1" for w in ("A01", "P24")]

    [read] = parse(text_source(session(template="384-well Greiner", table=table)))

    assert (read.rows, read.columns) == (16, 24)
    assert sorted(read.wells) == ["A1", "P24"]


def test_well_outside_the_plate_template_names_its_line() -> None:
    table = [f"P1\t{w}\tUnknown\tS\t0.5\t0\t450\t1" for w in ("A01", "I01")]
    text = session(table=table)

    with pytest.raises(InputFileError, match="well I1 is outside the 8×12 plate") as err:
        parse(text_source(text))

    assert err.value.line == line_of(text, "P1\tI01")
    assert err.value.well == "I1"


def test_two_plates_in_one_table() -> None:
    table = [
        f"{plate}\t{w}\tUnknown\tS\t0.{n}\t0\t450\t1"
        for plate in ("101", "102")
        for n, w in enumerate(("A01", "A02"), start=1)
    ]

    reads = parse(text_source(session(table=table)))

    assert [(r.plate_id, r.plate_index, r.index) for r in reads] == [
        ("101", 0, 0),
        ("102", 1, 1),
    ]


def test_stray_blank_line_inside_the_table_does_not_cut_it() -> None:
    rows = kinetic_rows()
    table = [*rows[:5], "", *rows[5:]]

    reads = parse(text_source(session(table=table)))

    assert reads[0].kinetic is not None
    assert len(reads[0].kinetic.readings["B1"]) == 3


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_line_endings(newline: str) -> None:
    reads = parse(text_source(session(newline=newline, pad=False)))

    assert len(reads) == 2
    assert reads[1].wells["B1"].value == pytest.approx(0.33)


def test_mixed_crlf_and_lone_lf_lines() -> None:
    text = session().replace("\r\n", "\r\n\n", 3)

    assert len(parse(text_source(text))) == 2


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_encodings(encoding: str) -> None:
    text = session().replace(key("Instrument serial number", "74"), key("Incubator", "37 °C"))

    read = parse(text_source(text, encoding=encoding))[0]

    assert read.metadata["Incubator"] == "37 °C"
    assert read.wells["A1"].value == pytest.approx(0.13)


def test_row_with_missing_cells_names_its_line() -> None:
    rows = kinetic_rows()
    rows[4] = rows[4].rsplit("\t", 1)[0]
    text = session(table=rows)

    with pytest.raises(
        InputFileError, match=re.escape(c.SHORT_ROW.format(found=7, expected=8))
    ) as err:
        parse(text_source(text))

    assert err.value.line == line_of(text, rows[4])


def test_bad_well_name_names_its_line() -> None:
    rows = kinetic_rows()
    rows[2] = rows[2].replace("A01", "X-1")
    text = session(table=rows)

    with pytest.raises(InputFileError, match=re.escape(c.BAD_WELL.format(found="X-1"))) as err:
        parse(text_source(text))

    assert err.value.line == line_of(text, rows[2])


def test_second_value_for_one_reading_is_refused() -> None:
    rows = kinetic_rows()
    rows.append(rows[0])
    text = session(table=rows)

    message = c.DUPLICATE_READING.format(well="A1", reading=1, label="Photometric1")
    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        parse(text_source(text))

    lines = re.split(r"\r\n", text)
    duplicates = [n for n, line in enumerate(lines, start=1) if line.startswith(rows[0])]
    assert err.value.line == duplicates[-1]


def test_reading_number_that_is_not_a_number_is_refused() -> None:
    rows = kinetic_rows()
    rows[3] = rows[3].rsplit("\t", 1)[0] + "\tx"

    with pytest.raises(InputFileError, match=re.escape(c.BAD_READING_INDEX.format(found="x"))):
        parse(text_source(session(table=rows)))


def test_times_going_backwards_are_refused() -> None:
    rows = [
        "7\tA01\tUnknown\tS\t0.1\t0\t405\t1",
        "7\tA01\tUnknown\tS\t0.2\t60\t405\t2",
        "7\tA01\tUnknown\tS\t0.3\t30\t405\t3",
    ]

    with pytest.raises(InputFileError, match="reading 3 of 'Photometric1' starts at 30 s") as err:
        parse(text_source(session(table=rows)))

    assert err.value.line is not None


def test_session_without_a_table_is_refused() -> None:
    text = session(header="", table=[])

    with pytest.raises(InputFileError, match=re.escape(c.NO_TABLE)):
        parse(text_source(text))


def test_table_header_without_well_column() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_TABLE)):
        parse(text_source(session(header="Plate\tPosition\tValue", table=["7\tA01\t0.1"])))


# --- results text (Multiskan Spectrum) ------------------------------------------------------------


def test_results_kinetic_iterations_without_times() -> None:
    grids = [grid(0.1), grid(0.2), grid(0.3)]
    grids[2][0][0] = "NaN"
    text = results([("Plate:1 - Wavelength:340", grids), ("Plate:1 - Wavelength:420", grids)])

    reads = parse(text_source(text))

    assert [(r.wavelength_nm, r.kind, r.plate_index) for r in reads] == [
        (340, "kinetic", 0),
        (420, "kinetic", 0),
    ]
    read = reads[0]
    assert (read.label, read.rows, read.columns, read.read_time) == ("Photometric1", 8, 12, None)
    assert sorted(read.wells) == sorted(f"{r}{c}" for r in "ABC" for c in range(1, 5))
    assert read.kinetic is not None
    assert len(read.kinetic.times_s) == 3
    assert all(math.isnan(t) for t in read.kinetic.times_s)
    assert read.metadata["kinetic_times"] == c.KINETIC_TIMES_MISSING
    assert read.wells["A1"].raw == "NaN"
    assert read.wells["A1"].value is None
    assert read.kinetic.readings["A1"][0].value == pytest.approx(0.1)
    assert read.wells["C4"].value == pytest.approx(0.53)


def test_results_endpoint_grid_without_iteration_line() -> None:
    text = results([("Plate:1 - Wavelength:405", [grid(0.1, read=8)])], iterations=False)

    [read] = parse(text_source(text))

    assert (read.kind, read.kinetic, len(read.wells)) == ("endpoint", None, 32)


def test_results_384_well_grid() -> None:
    text = results([("Plate:1 - Wavelength:405", [grid(0.1, rows=16, columns=24, read=16)])])

    [read] = parse(text_source(text))

    assert (read.rows, read.columns) == (16, 24)
    assert read.wells["P4"].value == pytest.approx(0.1 + 1.5 + 0.03)


def test_stray_tab_inside_a_grid_row_is_refused() -> None:
    """The corrupted copy of the Multiskan sample has tabs inserted mid-row."""
    rows = grid(0.1, read=8)
    rows[2] = [*rows[2][:5], "", *rows[2][5:]]
    rows[2][12] = "0.999"
    text = results([("Plate:1 - Wavelength:340", [rows])])

    with pytest.raises(InputFileError, match="grid row C has a value in column 13") as err:
        parse(text_source(text))

    assert err.value.line == 8


def test_grid_of_seven_rows_is_refused() -> None:
    text = results([("Plate:1 - Wavelength:340", [grid(0.1, rows=7)])])

    with pytest.raises(InputFileError, match=re.escape(c.GRID_ROWS.format(found=7))) as err:
        parse(text_source(text))

    assert err.value.line == 12


def test_iterations_out_of_order_are_refused() -> None:
    text = results([("Plate:1 - Wavelength:340", [grid(0.1), grid(0.2)])])
    text = text.replace("Iteration: 2", "Iteration: 3")

    message = c.ITERATION_ORDER.format(found=3, previous=1, expected=2)
    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        parse(text_source(text))

    assert err.value.line == line_of(text, "\tIteration: 3")


def test_iteration_without_a_grid_is_refused() -> None:
    text = "Results of Photometric1\r\n\r\n\tPlate:1 - Wavelength:340\r\n\r\n\tIteration: 1\r\n\r\n"

    with pytest.raises(InputFileError, match=re.escape(c.EMPTY_ITERATION.format(number=1))) as err:
        parse(text_source(text))

    assert err.value.line == 5


def test_grid_before_the_plate_line_is_refused() -> None:
    text = "Results of Photometric1\r\n\t0.1\t0.2\r\n\tPlate:1 - Wavelength:340\r\n"

    with pytest.raises(InputFileError, match=re.escape(c.NO_PLATE_LINE)) as err:
        parse(text_source(text))

    assert err.value.line == 2


def test_second_grid_without_iteration_line_is_refused() -> None:
    text = results([("Plate:1 - Wavelength:340", [grid(0.1), grid(0.2)])], iterations=False)

    with pytest.raises(InputFileError, match=re.escape(c.GRID_WITHOUT_ITERATION)):
        parse(text_source(text))


def test_results_without_grids_are_refused() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_GRIDS)):
        parse(text_source("Results of Photometric1\r\n\tPlate:1 - Wavelength:340\r\n"))


# --- workbooks (Multiskan Sky) --------------------------------------------------------------------


def workbook(
    rows: list[list[object]],
    *,
    header: tuple[str, ...] = (
        "Well",
        "Wavelength(s) [nm]",
        "Raw absorbance",
        "Measurement time(s)",
    ),
    run_log: bool = True,
    general: bool = True,
    sheet: str = "Raw data 405 nm",
) -> SourceFile:
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "Absorbance results"
    raw = book.create_sheet(sheet)
    raw.append(["Raw data"])
    raw.append([])
    raw.append(list(header))
    for row in rows:
        raw.append(row)
    if general:
        info = book.create_sheet("General information")
        info.append([None, None, "Execution time", datetime(2025, 3, 14, 11, 20, 5)])
        info.append([None, None, "Name", "Multiskan Sky"])
        info.append([None, None, "Serial number:", "1530-1"])
        info.append([None, None, "Set temperature", "30,5 °C"])
    if run_log:
        log = book.create_sheet("Run log")
        log.append(["Start time", datetime(2025, 3, 14, 11, 15, 0)])
    buffer = io.BytesIO()
    book.save(buffer)
    return SourceFile(buffer.getvalue(), "sky.xlsx", timezone=BERLIN)


def sky_rows() -> list[list[object]]:
    return [
        [well, 405, 0.1 * (w + 1) + 0.01 * reading, reading * 30 + w * 0.4]
        for w, well in enumerate(["A 1", "A 2", "H 12"])
        for reading in range(4)
    ]


def test_workbook_kinetic() -> None:
    [read] = parse(workbook(sky_rows()))

    assert (read.kind, read.label, read.wavelength_nm) == ("kinetic", "Raw absorbance", 405)
    assert sorted(read.wells) == ["A1", "A2", "H12"]
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 30.0, 60.0, 90.0)
    assert read.wells["H12"].value == pytest.approx(0.33)
    assert read.read_time == datetime(2025, 3, 14, 11, 15, tzinfo=BERLIN)
    assert read.metadata["temperature_c"] == "30.5"
    assert read.metadata["sheet"] == "Raw data 405 nm"
    assert read.metadata["reader_serial"] == "1530-1"
    assert "encoding" not in read.metadata


def test_workbook_without_run_log_uses_the_execution_time() -> None:
    [read] = parse(workbook(sky_rows(), run_log=False))

    assert read.read_time == datetime(2025, 3, 14, 11, 20, 5, tzinfo=BERLIN)


def test_workbook_endpoint_with_text_token() -> None:
    rows: list[list[object]] = [["A 1", 405, 0.5], ["B 1", 405, "NaN"], ["C 1", 405, None]]

    [read] = parse(workbook(rows, header=("Well", "Wavelength(s) [nm]", "Raw absorbance")))

    assert (read.kind, read.kinetic) == ("endpoint", None)
    assert read.wells["B1"].raw == "NaN"
    assert read.wells["B1"].value is None
    assert "C1" not in read.wells  # an empty cell: the well was not read


def test_workbook_bad_well_names_sheet_and_row() -> None:
    rows = sky_rows()
    rows[5][0] = "Z"

    with pytest.raises(InputFileError, match="sheet 'Raw data 405 nm': 'Z' is not a well") as err:
        parse(workbook(rows))

    assert err.value.line == 9
    assert err.value.path == "sky.xlsx"


def test_workbook_without_raw_data_header() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_RAW_HEADER)):
        parse(workbook(sky_rows(), header=("Position", "WL", "Abs")))


def test_workbook_without_raw_data_sheet() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_RAW_SHEET)):
        parse(workbook([], sheet="Notes"))


# --- detection ------------------------------------------------------------------------------------


def test_sniff_claims_each_layout() -> None:
    assert SkanItParser.sniff(session())
    assert SkanItParser.sniff(results([("Plate:1 - Wavelength:340", [grid(0.1)])]))
    assert SkanItParser.sniff(head_text(workbook(sky_rows())))


@pytest.mark.parametrize(
    "head",
    [
        "",
        "Software Version\t3.15.15\r\nPlate Number\tPlate 1\r\n",
        "Well\tValue\r\nA1\t0.1\r\n",
        "Results of the week\r\nall fine\r\n",
        "General Info\r\nnothing else\r\n",
        head_text(workbook(sky_rows(), general=False)),
    ],
    ids=["empty", "gen5", "long-table", "results-prose", "general-info-only", "no-general-sheet"],
)
def test_sniff_refuses_other_files(head: str) -> None:
    assert not SkanItParser.sniff(head)


OURS = format_files("thermo_skanit")


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_only_this_parser_claims_skanit_files(path: Path) -> None:
    check_claims(path, Instrument.THERMO_SKANIT)


OTHERS = other_files(OURS)


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_skanit_claims_no_other_file(path: Path) -> None:
    assert not SkanItParser.sniff(head_text(SourceFile.from_path(path), head_bytes=16384))


# --- robustness -----------------------------------------------------------------------------------


# Tabs as semicolons; the first 40 tabs as commas.
SWAPS = [(b"\t", b";", -1), (b"\t", b",", 40)]
TEXT_SAMPLES = [p for p in OURS if p.suffix == ".txt" and p.is_relative_to(SAMPLES)]


@pytest.mark.parametrize("path", TEXT_SAMPLES, ids=lambda p: p.name)
def test_mutated_files_parse_or_raise_input_file_error(path: Path) -> None:
    check_mutated(SkanItParser(), path, SWAPS)


def test_truncated_workbook_raises_input_file_error() -> None:
    data = (SAMPLES / "thermo_skanit" / "multiskan_sky_kinetic_405.xlsx").read_bytes()

    with pytest.raises(InputFileError):
        parse(SourceFile(data[: len(data) // 2], "cut.xlsx"))
