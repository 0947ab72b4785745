"""Generic plate-grid parser: shapes (6 to 384 wells), delimiters, metadata, tokens, errors
and detection."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from parser_helpers import check_claims, check_mutated, format_files, other_files

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument
from saa_lab.parsers.generic_grid import GenericGridParser
from saa_lab.parsers.generic_grid import constants as c
from saa_lab.parsers.table import head_text
from saa_lab.wells import wells_96

ROWS = "ABCDEFGH"
PATH = "plate-7.csv"


def value(row: int, col: int, *, comma: bool = False) -> str:
    text = f"{0.1 + row * 0.1 + col * 0.001:.3f}"
    return text.replace(".", ",") if comma else text


def grid(
    *,
    delimiter: str = ",",
    labels: bool = True,
    header: str | None = "",
    cells: dict[str, str] | None = None,
) -> list[str]:
    """The grid lines; ``header`` is the corner cell, or None for no column header."""
    cells = cells or {}
    lines = []
    if header is not None:
        corner = [header] if labels else []
        lines.append(delimiter.join([*corner, *(str(n) for n in range(1, 13))]))
    for r, row in enumerate(ROWS):
        row_values = [
            cells.get(f"{row}{col}", value(r, col, comma=delimiter == ";")) for col in range(1, 13)
        ]
        lines.append(delimiter.join([row, *row_values] if labels else row_values))
    return lines


def csv_file(*blocks: list[str], encoding: str = "utf-8") -> SourceFile:
    text = "\r\n".join(line for block in blocks for line in block) + "\r\n"
    return SourceFile(contents=text.encode(encoding), original_path=PATH)


def parse(source: SourceFile) -> PlateRead:
    reads = GenericGridParser().parse(source)
    assert len(reads) == 1
    return reads[0]


def line_of(source: SourceFile, startswith: str) -> int:
    lines = source.contents.decode("utf-8").split("\r\n")
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(startswith))


# --- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "header"),
    [(True, ""), (True, "<>"), (True, "Well"), (True, None), (False, ""), (False, None)],
    ids=["letters+header", "corner<>", "cornerWell", "letters-only", "header-only", "bare"],
)
def test_grid_shapes_give_all_96_wells(labels: bool, header: str | None) -> None:
    source = csv_file(grid(labels=labels, header=header))

    read = parse(source)

    assert sorted(read.wells) == sorted(wells_96())
    assert read.wells["A1"].value == pytest.approx(0.101)
    assert read.wells["H12"].value == pytest.approx(0.812)
    assert read.wells["C7"].raw == "0.307"
    assert read.format == "generic_grid"
    assert (read.rows, read.columns, read.index, read.kind) == (8, 12, 0, "endpoint")
    assert read.derived is False
    assert read.source_sha256 == source.sha256
    assert read.metadata["delimiter"] == ","


def test_semicolon_file_with_decimal_commas() -> None:
    read = parse(csv_file(grid(delimiter=";")))

    assert read.wells["A1"].value == pytest.approx(0.101)
    assert read.wells["G10"].value == pytest.approx(0.71)
    assert read.metadata["delimiter"] == ";"


def test_semicolon_file_with_decimal_points() -> None:
    cells = {f"{row}{col}": value(r, col) for r, row in enumerate(ROWS) for col in range(1, 13)}

    read = parse(csv_file(grid(delimiter=";", cells=cells)))

    assert read.wells["B2"].value == pytest.approx(0.202)


def test_quoted_cells_and_padding_commas() -> None:
    lines = [f"{line},,," for line in grid()]
    lines[1] = lines[1].replace("0.101", '"0.101"')

    read = parse(csv_file(lines))

    assert read.wells["A1"].value == pytest.approx(0.101)
    assert len(read.wells) == 96


def test_grid_offset_by_empty_columns() -> None:
    lines = [",,," + line for line in grid(header=None)]

    read = parse(csv_file(lines))

    assert read.wells["E5"].value == pytest.approx(float(value(4, 5)))


# --- metadata -------------------------------------------------------------------------------


def test_metadata_lines_name_plate_wavelength_and_label() -> None:
    meta = [
        "Plate ID,SAA-0042",
        "Wavelength,710 nm",
        "Label,OD710",
        "Operator,J. Doe",
        "Assay: SAA kinetic-free endpoint",
        "",
    ]

    read = parse(csv_file(meta, grid()))

    assert read.plate_id == "SAA-0042"
    assert read.wavelength_nm == 710
    assert read.label == "OD710"
    assert read.metadata["Operator"] == "J. Doe"
    assert read.metadata["Assay"] == "SAA kinetic-free endpoint"


@pytest.mark.parametrize(
    ("line", "plate_id", "wavelength"),
    [
        ("barcode;B-17", "B-17", None),
        ("Plate ID:;B-18", "B-18", None),
        ("WAVELENGTH;710", None, 710),
        ("Wavelength (nm);690,5", None, 690.5),
    ],
)
def test_metadata_keys_are_case_insensitive(
    line: str, plate_id: str | None, wavelength: float | None
) -> None:
    read = parse(csv_file([line], grid(delimiter=";")))

    assert read.plate_id == plate_id
    assert read.wavelength_nm == wavelength


def test_wavelength_that_is_not_a_number_names_its_line() -> None:
    source = csv_file(["Wavelength,red"], grid())

    with pytest.raises(
        InputFileError, match=re.escape(c.BAD_WAVELENGTH.format(found="red"))
    ) as err:
        GenericGridParser().parse(source)

    assert err.value.line == 1
    assert err.value.path == PATH


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_encodings(encoding: str) -> None:
    read = parse(csv_file(["Incubation,37 °C", "Operator,Zoë"], grid(), encoding=encoding))

    assert read.metadata["Incubation"] == "37 °C"
    assert read.metadata["Operator"] == "Zoë"
    assert read.wells["H12"].value == pytest.approx(0.812)


def test_text_layout_grid_beside_the_values_is_skipped() -> None:
    layout = [",1,2,3,4,5,6,7,8,9,10,11,12"] + [
        f"{row}," + ",".join(f"S{r * 12 + col}" for col in range(1, 13))
        for r, row in enumerate(ROWS)
    ]

    read = parse(csv_file(grid(), ["", ""], layout))

    assert read.wells["A1"].value == pytest.approx(0.101)
    assert read.metadata["skipped text grid at line"] == "12"


# --- cells without a number -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("OVER", NoValueReason.OVERFLOW),
        ("OVRFLW", NoValueReason.OVERFLOW),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("MISSED", NoValueReason.NOT_READ),
        ("*1.5*", NoValueReason.MASKED),
        ("", NoValueReason.EMPTY),
        ("n.d.", NoValueReason.NON_NUMERIC),
    ],
)
def test_non_numeric_cells_have_no_value_and_a_reason(raw: str, reason: str) -> None:
    read = parse(csv_file(grid(cells={"B3": raw, "H12": raw})))

    for well in ("B3", "H12"):
        assert read.wells[well].value is None
        assert read.wells[well].reason == reason
        assert well not in read.values
    assert len(read.wells) == 96


# --- shapes refused -------------------------------------------------------------------------


def test_seven_rows_are_refused() -> None:
    source = csv_file(grid()[:-1])

    with pytest.raises(
        InputFileError, match=re.escape(c.ROW_COUNT.format(found=7, columns=12, expected=8))
    ) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "G,")


def test_nine_rows_are_refused() -> None:
    extra = "I," + ",".join("0.5" for _ in range(12))
    source = csv_file(grid(), [extra])

    with pytest.raises(
        InputFileError, match=re.escape(c.ROW_COUNT.format(found=9, columns=12, expected=8))
    ) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "I,")


@pytest.mark.parametrize(("drop", "found"), [(1, 11), (-1, 13)])
def test_row_with_wrong_number_of_values_names_its_line(drop: int, found: int) -> None:
    lines = grid()
    d_row = lines[4]
    lines[4] = d_row.rsplit(",", 1)[0] if drop > 0 else d_row + ",0.999"

    source = csv_file(lines)
    with pytest.raises(
        InputFileError, match=re.escape(c.ROW_VALUES.format(row="D", found=found, columns=12))
    ) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "D,")


def test_column_header_with_eleven_columns_is_refused() -> None:
    lines = grid()
    lines[0] = lines[0].removesuffix(",12")
    source = csv_file(lines)

    with pytest.raises(InputFileError, match=re.escape(c.HEADER_COLUMNS.format(found=11))) as err:
        GenericGridParser().parse(source)

    assert err.value.line == 1


def test_rows_out_of_order_are_refused() -> None:
    lines = grid()
    lines[3], lines[4] = lines[4], lines[3]
    source = csv_file(lines)

    with pytest.raises(
        InputFileError, match=re.escape(c.ROW_ORDER.format(found="D", expected="C"))
    ) as err:
        GenericGridParser().parse(source)

    assert err.value.line == 4


def test_two_grids_are_refused() -> None:
    source = csv_file(grid(), [""], grid())

    with pytest.raises(InputFileError, match=re.escape(c.SECOND_GRID.format(first=1))) as err:
        GenericGridParser().parse(source)

    assert err.value.line == 11


def test_mixed_decimal_marks_are_refused() -> None:
    source = csv_file(grid(delimiter=";", cells={"F6": "0.606"}))

    with pytest.raises(InputFileError, match="mixes decimal commas and decimal points") as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "F;")


def test_file_without_grid_is_refused() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_GRID)):
        GenericGridParser().parse(csv_file(["Plate ID,SAA-1", "Wavelength,710"]))


# --- sniff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        grid(),
        grid(delimiter=";"),
        grid(labels=False, header=None),
        ["Plate ID,X", *grid()],
        [line.replace(",", "\t") for line in grid()],
    ],
    ids=["comma", "semicolon", "bare", "with-metadata", "tab"],
)
def test_sniff_claims_grids(lines: list[str]) -> None:
    assert GenericGridParser.sniff("\r\n".join(lines))


@pytest.mark.parametrize(
    "text",
    [
        "\r\n".join(grid()[:-1]),
        "\r\n".join(line.rsplit(",", 1)[0] for line in grid()),
        "Software Version\t3.15.15\r\nPlate Number\tPlate 1\r\n",
        "",
    ],
    ids=["seven-rows", "eleven-columns", "gen5-header", "empty"],
)
def test_sniff_refuses_other_shapes(text: str) -> None:
    assert not GenericGridParser.sniff(text)


# --- other plate sizes and tab-separated grids ----------------------------------------------------

LETTERS = "ABCDEFGHIJKLMNOP"
SHAPES = {6: (2, 3), 12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24)}


def plate_grid(
    wells: int,
    *,
    delimiter: str = ",",
    labels: bool = True,
    header: bool = True,
    comma: bool = False,
    cells: dict[str, str] | None = None,
) -> list[str]:
    rows, columns = SHAPES[wells]
    cells = cells or {}
    lines = []
    if header:
        lines.append(delimiter.join([""] * labels + [str(n) for n in range(1, columns + 1)]))
    for r in range(rows):
        values = []
        for col in range(1, columns + 1):
            text = f"{0.1 + r * 0.1 + col * 0.001:.3f}"
            values.append(
                cells.get(f"{LETTERS[r]}{col}", text.replace(".", ",") if comma else text)
            )
        lines.append(delimiter.join([LETTERS[r], *values] if labels else values))
    return lines


@pytest.mark.parametrize(
    ("wells", "labels", "header"),
    [
        (6, True, True),
        (6, True, False),
        (12, False, True),
        (24, True, True),
        (48, False, False),
        (96, False, False),
        (384, True, True),
        (384, False, False),
    ],
)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_plate_sizes(wells: int, labels: bool, header: bool, delimiter: str) -> None:
    rows, columns = SHAPES[wells]
    source = csv_file(plate_grid(wells, delimiter=delimiter, labels=labels, header=header))

    assert GenericGridParser.sniff(source.contents.decode())
    read = parse(source)

    assert (read.rows, read.columns, len(read.wells)) == (rows, columns, wells)
    last = f"{LETTERS[rows - 1]}{columns}"
    assert read.wells[last].value == pytest.approx(0.1 + (rows - 1) * 0.1 + columns * 0.001)
    assert read.metadata["delimiter"] == delimiter


def test_tab_grid_with_decimal_commas() -> None:
    read = parse(csv_file(plate_grid(96, delimiter="\t", comma=True)))

    assert read.wells["B2"].value == pytest.approx(0.202)


def test_tab_grid_mixing_decimal_marks_is_refused() -> None:
    source = csv_file(plate_grid(96, delimiter="\t", comma=True, cells={"E4": "0.5"}))

    with pytest.raises(InputFileError, match="mixes decimal commas and decimal points") as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "E\t")


def test_bare_six_well_grid_is_not_a_grid() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_GRID)):
        GenericGridParser().parse(csv_file(plate_grid(6, labels=False, header=False)))


def test_384_grid_missing_a_row_is_refused() -> None:
    source = csv_file(plate_grid(384)[:-1])

    message = c.ROW_COUNT.format(found=15, columns=24, expected=16)
    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "O,")


def test_384_row_missing_a_value_names_its_line() -> None:
    lines = plate_grid(384)
    lines[9] = lines[9].rsplit(",", 1)[0]
    source = csv_file(lines)

    message = c.ROW_VALUES.format(row="I", found=23, columns=24)
    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        GenericGridParser().parse(source)

    assert err.value.line == 10


def test_header_of_five_columns_is_refused() -> None:
    lines = [",1,2,3,4,5", *(f"{r},0.1,0.2,0.3,0.4,0.5" for r in "ABCD")]

    with pytest.raises(InputFileError, match=re.escape(c.HEADER_COLUMNS.format(found=5))) as err:
        GenericGridParser().parse(csv_file(lines))

    assert err.value.line == 1


def test_bare_rows_of_ten_values_are_refused() -> None:
    lines = [",".join(f"0.{r}{col}" for col in range(10)) for r in range(8)]

    with pytest.raises(InputFileError, match=re.escape(c.GRID_COLUMNS.format(found=10))) as err:
        GenericGridParser().parse(csv_file(lines))

    assert err.value.line == 1


# --- read time and vendor-style metadata ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Date,2025-03-14 10:42:00", datetime(2025, 3, 14, 10, 42)),
        ("Measurement date,14.03.2025 10:42", datetime(2025, 3, 14, 10, 42)),
        ("Date,3/14/2025 10:42:00 PM", datetime(2025, 3, 14, 22, 42)),
        ("Result: PER-005 plate1 Quick Read 2024.10.01 14:15:02", datetime(2024, 10, 1, 14, 15, 2)),
    ],
)
def test_read_time_in_the_lab_zone(line: str, expected: datetime) -> None:
    zone = ZoneInfo("Europe/Berlin")
    text = "\r\n".join([line, *grid()]) + "\r\n"

    read = parse(SourceFile(text.encode(), PATH, timezone=zone))

    assert read.read_time == expected.replace(tzinfo=zone)


def test_prose_with_a_day_first_date_is_not_a_read_time() -> None:
    read = parse(csv_file(["Comment,repeat of 14.03.2025"], grid()))

    assert read.read_time is None


def test_glomax_style_offset_grid_and_measurement_filter() -> None:
    lines = [
        ",,,Protocol: Absorbance Quick Read,,",
        ",Measurement Filter:,,600,,",
        ",Reading:,,1,," + ",".join(str(n) for n in range(1, 13)),
        *(",,,," + line for line in grid(header=None)),
    ]

    read = parse(csv_file(lines))

    assert read.wavelength_nm == 600
    assert read.wells["A1"].value == pytest.approx(0.101)
    assert read.metadata["Protocol"] == "Absorbance Quick Read"


# --- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        "Software Version\t3.15.15\r\nReader Type:\tEpoch\r\n"
        + "\r\n".join(plate_grid(96, delimiter="\t")),
        "##BLOCKS= 1\r\n" + "\r\n".join(plate_grid(96, delimiter="\t")),
        "Application: Tecan i-control\r\n" + "\r\n".join(plate_grid(96, delimiter="\t")),
        "Plate information\r\n" + "\r\n".join(plate_grid(384)),
        "##SHEET\tSheet1\n" + "\n".join(plate_grid(96, delimiter="\t")),
    ],
    ids=["gen5", "softmax", "tecan", "envision", "workbook"],
)
def test_sniff_leaves_vendor_files_to_their_parsers(head: str) -> None:
    assert not GenericGridParser.sniff(head)


OURS = [
    p
    for p in format_files("generic_grid")
    if not p.name.startswith("RUN-GC-002.") or p.suffix == ".csv"
]
OURS = [p for p in OURS if not p.name.endswith(".worklist.csv")]


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_only_this_parser_claims_grid_files(path: Path) -> None:
    check_claims(path, Instrument.GENERIC_GRID)


OTHERS = [p for p in other_files(OURS) if not p.name.endswith(".worklist.csv")]


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_generic_grid_claims_no_other_file(path: Path) -> None:
    assert not GenericGridParser.sniff(head_text(SourceFile.from_path(path), head_bytes=16384))


# Each delimiter swapped for another.
SWAPS = [(b",", b";", -1), (b"\t", b",", -1), (b";", b"\t", -1)]


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_mutated_files_parse_or_raise_input_file_error(path: Path) -> None:
    check_mutated(GenericGridParser(), path, SWAPS)
