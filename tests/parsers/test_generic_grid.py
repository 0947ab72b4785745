"""Generic 8×12 grid CSV parser: shapes, delimiters, metadata, tokens and errors."""

from __future__ import annotations

import re

import pytest

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers.generic_grid import GenericGridParser
from saa_lab.parsers.generic_grid import constants as c
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

    with pytest.raises(InputFileError, match=re.escape(c.ROW_COUNT.format(found=7))) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "G,")


def test_nine_rows_are_refused() -> None:
    extra = "I," + ",".join("0.5" for _ in range(12))
    source = csv_file(grid(), [extra])

    with pytest.raises(InputFileError, match=re.escape(c.ROW_COUNT.format(found=9))) as err:
        GenericGridParser().parse(source)

    assert err.value.line == line_of(source, "I,")


@pytest.mark.parametrize(("drop", "found"), [(1, 11), (-1, 13)])
def test_row_with_wrong_number_of_values_names_its_line(drop: int, found: int) -> None:
    lines = grid()
    d_row = lines[4]
    lines[4] = d_row.rsplit(",", 1)[0] if drop > 0 else d_row + ",0.999"

    source = csv_file(lines)
    with pytest.raises(
        InputFileError, match=re.escape(c.ROW_VALUES.format(row="D", found=found))
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
    [grid(), grid(delimiter=";"), grid(labels=False, header=None), ["Plate ID,X", *grid()]],
    ids=["comma", "semicolon", "bare", "with-metadata"],
)
def test_sniff_claims_grids(lines: list[str]) -> None:
    assert GenericGridParser.sniff("\r\n".join(lines))


@pytest.mark.parametrize(
    "text",
    [
        "\r\n".join(line.replace(",", "\t") for line in grid()),
        "\r\n".join(grid()[:-1]),
        "\r\n".join(line.rsplit(",", 1)[0] for line in grid()),
        "Software Version\t3.15.15\r\nPlate Number\tPlate 1\r\n",
        "",
    ],
    ids=["tab", "seven-rows", "eleven-columns", "gen5-header", "empty"],
)
def test_sniff_refuses_other_shapes(text: str) -> None:
    assert not GenericGridParser.sniff(text)
