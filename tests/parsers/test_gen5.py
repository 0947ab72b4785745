"""BioTek Gen5 export parser (text): layout, encodings, reads, tokens and errors.

Every export here is built in the test from invented numbers, in the layout
Gen5 3.x writes (header block, procedure, titled sections, tab-separated).
Kinetic text exports are in test_gen5_kinetic.py, workbooks in test_gen5_xlsx.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from time import time_ns
from zoneinfo import ZoneInfo

import pytest

from saa_lab.domain import Meta, NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers.biotek_gen5 import Gen5TextParser
from saa_lab.parsers.biotek_gen5 import constants as c
from saa_lab.wells import wells_96

ROWS = "ABCDEFGH"
ROWS_384 = "ABCDEFGHIJKLMNOP"
PATH = "RUN-2025-03-14.txt"


def value(read: int, row: int, col: int) -> str:
    """An invented, distinct absorbance per read, row and column."""
    return f"{0.05 + read + row * 0.1 + col * 0.001:.3f}"


def header(*, plate: str = "Plate 1", extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "",
        "",
        "Software Version\t3.15.15",
        "",
        "",
        "",
        "Experiment File Path:\tC:\\Gen5\\Experiments\\SAA 710.xpt",
        "Protocol File Path:\tC:\\Gen5\\Protocols\\SAA 710.prt",
        "",
        "",
        "",
        f"Plate Number\t{plate}",
        "Date\t3/14/2025",
        "Time\t2:07:55 PM",
        "Reader Type:\tEpoch 2",
        "Reader Serial Number:\t21041234",
        "Reading Type\tReader",
        *extra,
        "",
        "Procedure Details",
        "",
        "Plate Type\t96 WELL PLATE (Use plate lid)",
        "Eject plate on completion\t",
        "Set Temperature\tSetpoint 37°C",
        "Read\tOD",
        "\tAbsorbance Endpoint",
        "\tFull Plate",
        "\tWavelengths:  710",
        "\tRead Speed: Normal,  Delay: 100 msec,  Measurements/Data Point: 8",
        "",
    ]


def layout() -> list[str]:
    lines = ["Layout", "\t" + "\t".join(str(n) for n in range(1, 13))]
    for r, row in enumerate(ROWS):
        ids = [f"SPL{r * 12 + col}" for col in range(1, 13)]
        lines.append(f"{row}\t" + "\t".join(ids) + "\tWell ID")
    return [*lines, ""]


def results(
    labels: tuple[str, ...] = ("710",),
    *,
    cells: dict[tuple[str, str], str] | None = None,
    title: str = "Results",
) -> list[str]:
    """The Results grid with every read stacked per row and labelled in the last column."""
    cells = cells or {}
    lines = [title, "\t" + "\t".join(str(n) for n in range(1, 13))]
    for r, row in enumerate(ROWS):
        for i, label in enumerate(labels):
            row_values = [
                cells.get((label, f"{row}{col}"), value(i, r, col)) for col in range(1, 13)
            ]
            letter = row if i == 0 else ""
            lines.append(f"{letter}\t" + "\t".join(row_values) + f"\t{label}")
    return [*lines, ""]


def section(label: str, read: int) -> list[str]:
    """One read as its own section: the label as title, then a grid without labels."""
    lines = [label, "\t" + "\t".join(str(n) for n in range(1, 13))]
    for r, row in enumerate(ROWS):
        lines.append(f"{row}\t" + "\t".join(value(read, r, col) for col in range(1, 13)))
    return [*lines, ""]


def export(*blocks: list[str], encoding: str = "utf-8") -> SourceFile:
    text = "\r\n".join(line for block in blocks for line in block) + "\r\n"
    return SourceFile(contents=text.encode(encoding), original_path=PATH)


def parse(source: SourceFile) -> list[PlateRead]:
    return Gen5TextParser().parse(source)


def line_of(source: SourceFile, startswith: str) -> int:
    """1-based number of the first line starting with the text (for error assertions)."""
    lines = source.contents.decode("utf-8").split("\r\n")
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(startswith))


# --- one plate, one read --------------------------------------------------------------------


def test_endpoint_read_has_every_well_with_its_value() -> None:
    source = export(header(), layout(), results())

    [read] = parse(source)

    assert sorted(read.wells) == sorted(wells_96())
    assert read.wells["A1"].value == pytest.approx(0.051)
    assert read.wells["H12"].value == pytest.approx(0.762)
    assert read.wells["C5"].raw == "0.255"
    assert read.format == "biotek_gen5"
    assert read.kind == "endpoint"
    assert (read.rows, read.columns) == (8, 12)
    assert read.index == 0
    assert read.label == "710"
    assert read.wavelength_nm == 710
    assert read.derived is False
    assert read.plate_id is None
    assert read.read_time == datetime(2025, 3, 14, 14, 7, 55, tzinfo=UTC)
    assert read.source_path == PATH
    assert read.source_sha256 == source.sha256


def test_header_and_procedure_are_kept_as_metadata() -> None:
    [read] = parse(export(header(), results()))

    assert read.metadata["Plate Number"] == "Plate 1"
    assert read.metadata["Reader Type"] == "Epoch 2"
    assert read.metadata["Reader Serial Number"] == "21041234"
    assert read.metadata["Software Version"] == "3.15.15"
    assert read.metadata["Date"] == "3/14/2025"
    assert read.metadata["Time"] == "2:07:55 PM"
    assert read.metadata["Plate Type"] == "96 WELL PLATE (Use plate lid)"
    assert read.metadata["Label"] == "710"


def test_layout_grid_is_not_a_read() -> None:
    reads = parse(export(header(), layout(), results()))

    assert [read.label for read in reads] == ["710"]
    assert all(well.value is not None for well in reads[0].wells.values())


def test_results_right_after_the_procedure_without_a_blank_line() -> None:
    lines = header()
    assert lines[-1] == ""

    [read] = parse(export(lines[:-1], results(("Blank 710",))))

    assert read.label == "Blank 710"
    assert read.wells["A1"].value == pytest.approx(0.051)
    assert "Results" not in read.metadata.values()


def test_actual_temperature_line_before_the_grid_is_metadata() -> None:
    grid = results()
    source = export(header(), [grid[0], "Actual Temperature:\t36.8", "", *grid[1:]])

    [read] = parse(source)

    assert read.metadata["Actual Temperature"] == "36.8"
    assert read.wells["A1"].value == pytest.approx(0.051)


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"]
)
def test_every_encoding_gives_the_same_read(encoding: str) -> None:
    source = export(header(), results(), encoding=encoding)
    if encoding == "utf-16":
        assert source.contents[:2] in (b"\xff\xfe", b"\xfe\xff")
    if encoding == "cp1252":
        assert b"37\xb0C" in source.contents

    [read] = parse(source)

    assert read.metadata["Set Temperature"] == "Setpoint 37°C"
    assert read.metadata["Plate Number"] == "Plate 1"
    assert read.wells["H12"].value == pytest.approx(0.762)
    assert len(read.wells) == 96


def test_lf_and_bare_cr_line_endings() -> None:
    text = "\n".join([*header(), *results()[:5]]) + "\r" + "\r".join(results()[5:])

    [read] = parse(SourceFile(text.encode(), PATH))

    assert len(read.wells) == 96


# --- several reads and plates ---------------------------------------------------------------


def test_stacked_reads_become_one_plate_read_each() -> None:
    labels = ("OD:710", "Blank 710", "[Concentration]")

    reads = parse(export(header(), results(labels)))

    assert [read.label for read in reads] == list(labels)
    assert [read.index for read in reads] == [0, 1, 2]
    assert [read.derived for read in reads] == [False, True, True]
    assert [read.wavelength_nm for read in reads] == [710, 710, None]
    for i, read in enumerate(reads):
        assert sorted(read.wells) == sorted(wells_96())
        assert read.wells["B3"].value == pytest.approx(float(value(i, 1, 3)))


def test_reads_in_their_own_sections_are_labelled_by_the_title() -> None:
    reads = parse(export(header(), layout(), section("710", 0), section("Blank 710", 1)))

    assert [read.label for read in reads] == ["710", "Blank 710"]
    assert [read.derived for read in reads] == [False, True]
    assert reads[1].wells["D7"].value == pytest.approx(float(value(1, 3, 7)))
    assert len(reads[1].wells) == 96


def test_unlabelled_results_grid_takes_the_procedure_wavelength() -> None:
    [read] = parse(export(header(), section("Results", 0)))

    assert read.label is None
    assert read.wavelength_nm == 710
    assert len(read.wells) == 96


def test_several_plates_in_one_file_are_indexed_in_order() -> None:
    source = export(
        header(plate="Plate 1"),
        results(("710", "Blank 710")),
        ["", ""],
        header(plate="Plate 2", extra=("Barcode\tSAA-0002",)),
        results(("710", "Blank 710")),
    )

    reads = parse(source)

    assert [read.index for read in reads] == [0, 1, 2, 3]
    assert [read.metadata["Plate Number"] for read in reads] == ["Plate 1"] * 2 + ["Plate 2"] * 2
    assert [read.plate_id for read in reads] == [None, None, "SAA-0002", "SAA-0002"]
    assert [read.label for read in reads] == ["710", "Blank 710"] * 2


@pytest.mark.parametrize("key", ["Barcode", "Plate ID", "Plate Barcode:"])
def test_plate_id_comes_from_the_barcode_header(key: str) -> None:
    [read] = parse(export(header(extra=(f"{key}\tP-4711",)), results()))

    assert read.plate_id == "P-4711"


@pytest.mark.parametrize(
    ("label", "wavelength", "derived"),
    [
        ("710", 710, False),
        ("OD:710", 710, False),
        ("690nm:690", 690, False),
        ("Read 1:710", 710, False),
        ("abs710:710", 710, False),
        ("Blank 710", 710, True),
        ("Blank OD:710", 710, True),
        ("[Concentration]", None, True),
        ("Conc. U/L", None, True),
        ("Delta OD", None, True),
    ],
)
def test_label_gives_wavelength_and_whether_it_is_a_calculation(
    label: str, wavelength: float | None, derived: bool
) -> None:
    [read] = parse(export(header(), results((label,))))

    assert read.label == label
    assert read.wavelength_nm == wavelength
    assert read.derived is derived


# --- cells without a number -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("OVRFLW", NoValueReason.OVERFLOW),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("MISSED", NoValueReason.NOT_READ),
        ("*1.234*", NoValueReason.MASKED),
        ("", NoValueReason.EMPTY),
        ("n.d.", NoValueReason.NON_NUMERIC),
    ],
)
def test_non_numeric_cells_have_no_value_and_a_reason(raw: str, reason: str) -> None:
    cells = {("710", "D4"): raw, ("710", "A12"): raw}

    [read] = parse(export(header(), results(cells=cells)))

    for well in ("D4", "A12"):
        assert read.wells[well].value is None
        assert read.wells[well].reason == reason
        assert well not in read.values
    assert read.wells["D5"].value == pytest.approx(float(value(0, 3, 5)))
    assert len(read.wells) == 96


def test_zero_is_a_value_but_a_token_is_never_zero() -> None:
    cells = {("710", "A1"): "0.000", ("710", "A2"): "OVRFLW"}

    [read] = parse(export(header(), results(cells=cells)))

    assert read.wells["A1"].value == 0.0
    assert read.wells["A2"].value is None
    assert read.values.get("A2") is None


def test_decimal_comma_cells() -> None:
    cells = {
        ("710", f"{row}{col}"): f"0,{r}{col:02d}"
        for r, row in enumerate(ROWS)
        for col in range(1, 13)
    }

    [read] = parse(export(header(), results(cells=cells)))

    assert read.wells["C11"].value == pytest.approx(0.211)


# --- exports this parser refuses ------------------------------------------------------------


def test_spectrum_scan_is_refused_naming_the_line() -> None:
    wells = "\t".join(f"{row}{col}" for row in ROWS for col in range(1, 13))
    source = export(header(), ["Spectrum", "", f"Wavelength\t{wells}", "400\t" + "0.1\t" * 96])

    with pytest.raises(InputFileError, match=re.escape(c.SPECTRUM_NOT_SUPPORTED)) as err:
        parse(source)

    assert err.value.line == line_of(source, "Wavelength\t")


def test_ragged_row_names_its_line() -> None:
    grid = results()
    row_c = next(i for i, line in enumerate(grid) if line.startswith("C\t"))
    cells = grid[row_c].split("\t")
    grid[row_c] = "\t".join(cells[:12])  # letter and 11 values, no label
    source = export(header(), grid)

    with pytest.raises(
        InputFileError, match=re.escape(c.RAGGED_ROW.format(row="C", found=11, columns=12))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "C\t")


def test_row_missing_a_value_in_a_labelled_grid_is_refused() -> None:
    grid = results()
    row_e = next(i for i, line in enumerate(grid) if line.startswith("E\t"))
    cells = grid[row_e].split("\t")
    grid[row_e] = "\t".join(cells[:5] + cells[6:])  # one value fewer, label kept
    source = export(header(), grid)

    with pytest.raises(InputFileError, match=re.escape(c.MISSING_LABEL.format(row="E"))) as err:
        parse(source)

    assert err.value.line == line_of(source, "E\t")


def test_unexpected_row_letter_names_its_line() -> None:
    grid = [line.replace("D\t", "X\t", 1) if line.startswith("D\t") else line for line in results()]
    source = export(header(), grid)

    with pytest.raises(
        InputFileError, match=re.escape(c.BAD_ROW_LETTER.format(found="X", expected="D"))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "X\t")


def test_missing_plate_row_is_refused() -> None:
    grid = [line for line in results() if not line.startswith("H\t")]
    source = export(header(), grid)

    with pytest.raises(
        InputFileError, match=re.escape(c.WRONG_ROW_COUNT.format(found=7, columns=12, expected=8))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "G\t")


def test_column_header_that_does_not_count_from_one_is_refused() -> None:
    grid = results()
    grid[1] = grid[1].replace("\t5\t", "\t15\t")
    source = export(header(), grid)

    with pytest.raises(InputFileError, match="column header must number the columns") as err:
        parse(source)

    assert err.value.line == line_of(source, "\t1\t2")


def test_plate_without_results_is_refused() -> None:
    source = export(header(), layout())

    with pytest.raises(
        InputFileError, match=re.escape(c.NO_RESULTS.format(plate="Plate 1"))
    ) as err:
        parse(source)

    assert err.value.line == line_of(source, "Software Version")


def test_grid_without_header_block_is_refused() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_HEADER)):
        parse(export(results()))


# --- sniff ----------------------------------------------------------------------------------


def test_sniff_claims_the_gen5_header() -> None:
    text = "\r\n".join(header())

    assert Gen5TextParser.sniff(text)


@pytest.mark.parametrize(
    "head",
    [
        "",
        "Software Version\t3.15.15\r\nDate\t3/14/2025\r\n",  # no other Gen5 key
        "Software Version,3.15.15\r\nPlate Number,Plate 1\r\n",  # not tab-separated
        ",1,2,3,4,5,6,7,8,9,10,11,12\r\nA,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\r\n",
    ],
)
def test_sniff_refuses_other_text(head: str) -> None:
    assert not Gen5TextParser.sniff(head)


# --- read time and standard metadata --------------------------------------------------------


def header_with(date: str, time: str) -> list[str]:
    lines = header()
    lines[lines.index("Date\t3/14/2025")] = f"Date\t{date}"
    lines[lines.index("Time\t2:07:55 PM")] = f"Time\t{time}"
    return lines


@pytest.mark.parametrize(
    ("date", "time", "local"),
    [
        ("3/14/2025", "2:07:55 PM", datetime(2025, 3, 14, 14, 7, 55)),
        ("3/14/2025", "12:07:55 AM", datetime(2025, 3, 14, 0, 7, 55)),
        ("14/03/2025", "14:07:55", datetime(2025, 3, 14, 14, 7, 55)),
        ("14.03.2025", "14:07:55", datetime(2025, 3, 14, 14, 7, 55)),
        ("2025-03-14", "2:07:55 p.m.", datetime(2025, 3, 14, 14, 7, 55)),
        ("3/14/25", "15.37.16", datetime(2025, 3, 14, 15, 37, 16)),
    ],
)
def test_read_time_is_the_header_date_and_time_in_the_lab_zone(
    date: str, time: str, local: datetime
) -> None:
    zone = ZoneInfo("Europe/Amsterdam")
    text = "\r\n".join([*header_with(date, time), *results()]) + "\r\n"

    [read] = parse(SourceFile(text.encode(), PATH, timezone=zone))

    assert read.read_time == local.replace(tzinfo=zone)
    assert read.read_time.utcoffset() is not None
    assert read.metadata[Meta.READ_TIME] == local.isoformat()
    assert c.META_DATE_ORDER not in read.metadata


def test_ambiguous_slash_date_is_read_month_first_and_says_so() -> None:
    [read] = parse(export(header_with("03/04/2025", "9:00:00 AM"), results()))

    assert read.read_time == datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert read.metadata[c.META_DATE_ORDER] == c.DATE_ORDER_ASSUMED


@pytest.mark.parametrize(("date", "time"), [("soon", "2:07:55 PM"), ("3/14/2025", "later")])
def test_unreadable_date_or_time_leaves_no_read_time_but_keeps_the_text(
    date: str, time: str
) -> None:
    [read] = parse(export(header_with(date, time), results()))

    assert read.read_time is None
    assert Meta.READ_TIME not in read.metadata
    assert (read.metadata["Date"], read.metadata["Time"]) == (date, time)
    assert read.wells["A1"].value == pytest.approx(0.051)


def test_standard_metadata_keys() -> None:
    grid = results()
    source = export(
        header(extra=("Barcode\tP-77",)), [grid[0], "Actual Temperature:\t36.8", *grid[1:]]
    )

    [read] = parse(source)

    assert read.metadata[Meta.READER_MODEL] == "Epoch 2"
    assert read.metadata[Meta.READER_SERIAL] == "21041234"
    assert read.metadata[Meta.SOFTWARE] == "Gen5 3.15.15"
    assert read.metadata[Meta.PLATE_ID] == "P-77"
    assert read.metadata[Meta.LABEL] == "710"
    assert read.metadata[Meta.WAVELENGTH] == "710"
    assert read.metadata[Meta.TEMPERATURE] == "36.8"
    assert read.metadata[Meta.ENCODING] == "utf-8"
    assert Meta.SHEET not in read.metadata


def test_results_title_right_after_procedure_details_without_steps() -> None:
    """Gen5 3.03 wrote a plate whose procedure is empty: 'Procedure Details', '', 'Results'."""
    lines = header()
    cut = lines.index("Procedure Details") + 2
    grid = results()
    source = export(lines[:cut], [grid[0], "Actual Temperature:\t44.9", "", "", *grid[1:]])

    [read] = parse(source)

    assert read.label == "710"
    assert read.metadata[Meta.TEMPERATURE] == "44.9"
    assert "Results" not in read.metadata
    assert len(read.wells) == 96


@pytest.mark.parametrize(
    ("label", "wavelength"),
    [
        ("Max V [600]", 600),
        ("R-Squared [600]", 600),
        ("t at Max V [600]", 600),
        ("Lagtime [600]", 600),
    ],
)
def test_kinetic_analysis_labels_are_calculations(label: str, wavelength: float) -> None:
    [read] = parse(export(header(), results((label,))))

    assert read.derived is True
    assert read.wavelength_nm == wavelength


def test_time_values_in_a_results_grid_are_not_numbers() -> None:
    cells = {("t at Max V [710]", "A1"): "0:37:13"}

    [read] = parse(export(header(), results(("t at Max V [710]",), cells=cells)))

    assert read.wells["A1"].value is None
    assert read.wells["A1"].raw == "0:37:13"
    assert read.wells["A1"].reason == NoValueReason.NON_NUMERIC


@pytest.mark.parametrize(("columns", "rows"), [(3, 2), (4, 3), (6, 4), (8, 6), (12, 8), (24, 16)])
def test_every_plate_size_from_6_to_384_wells(columns: int, rows: int) -> None:
    lines = ["Results", "\t" + "\t".join(str(n) for n in range(1, columns + 1))]
    for r in range(rows):
        lines.append(
            f"{ROWS_384[r]}\t"
            + "\t".join(value(0, r, col) for col in range(1, columns + 1))
            + "\t600"
        )

    [read] = parse(export(header(), lines))

    assert (read.rows, read.columns) == (rows, columns)
    assert len(read.wells) == rows * columns
    last = f"{ROWS_384[rows - 1]}{columns}"
    assert read.wells[last].value == pytest.approx(float(value(0, rows - 1, columns)))


def test_a_96_well_text_export_parses_quickly() -> None:
    source = export(header(), layout(), results(("710", "Blank 710")))
    parser = Gen5TextParser()
    parser.parse(source)

    started = time_ns()
    for _ in range(10):
        parser.parse(source)
    per_parse_ms = (time_ns() - started) / 10 / 1e6

    assert per_parse_ms < 20
