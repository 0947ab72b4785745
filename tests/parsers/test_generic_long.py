"""Generic long (Well, Value) table parser: headers, delimiters, wells, metadata, errors,
detection (including the real header-less Gen5 per-well export)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from parser_helpers import REAL, check_claims, check_mutated, format_files, line_of, other_files

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import PARSERS, Instrument
from saa_lab.parsers.generic_long import GenericLongParser
from saa_lab.parsers.generic_long import constants as c
from saa_lab.parsers.table import head_text

REAL_GEN5 = REAL / "generic_long" / "gen5_headerless_wellid_long_384_klmetapool.txt"
BERLIN = ZoneInfo("Europe/Berlin")
ROWS = "ABCDEFGHIJKLMNOP"


def wells(rows: int = 8, columns: int = 12, *, padded: bool = False) -> list[str]:
    return [
        f"{ROWS[r]}{col:02d}" if padded else f"{ROWS[r]}{col}"
        for r in range(rows)
        for col in range(1, columns + 1)
    ]


def value(n: int, *, comma: bool = False) -> str:
    text = f"{0.05 + n * 0.01:.3f}"
    return text.replace(".", ",") if comma else text


def table(
    header: str = "Well,Value",
    names: list[str] | None = None,
    *,
    delimiter: str = ",",
    before: list[str] | None = None,
    extra: str | None = None,
    cells: dict[str, str] | None = None,
    comma: bool = False,
) -> str:
    names = names if names is not None else wells()
    cells = cells or {}
    lines = [*(before or []), header.replace(",", delimiter)]
    for n, well in enumerate(names):
        row = (
            [well]
            + ([extra] if extra is not None else [])
            + [cells.get(well, value(n, comma=comma))]
        )
        lines.append(delimiter.join(row))
    return "\r\n".join(lines) + "\r\n"


def source(text: str, *, encoding: str = "utf-8", name: str = "long.csv") -> SourceFile:
    return SourceFile(text.encode(encoding), name, timezone=BERLIN)


def parse_one(text: str, **kwargs: str) -> PlateRead:
    reads = GenericLongParser().parse(source(text, **kwargs))
    assert len(reads) == 1
    return reads[0]


# --- headers and shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Well,Value",
        "Well ID,Abs",
        "Position,OD",
        "Well Position,Absorbance",
        "WELL,value",
        "Pos,Result",
    ],
)
def test_header_names(header: str) -> None:
    read = parse_one(table(header))

    assert read.format == "generic_long"
    assert len(read.wells) == 96
    assert read.wells["A1"].value == pytest.approx(0.05)
    assert read.wells["H12"].value == pytest.approx(1.0)
    assert (read.rows, read.columns, read.kind, read.index, read.plate_index) == (
        8,
        12,
        "endpoint",
        0,
        0,
    )
    assert read.label == header.split(",")[1]
    assert read.derived is False


@pytest.mark.parametrize(
    ("header", "wavelength"),
    [
        ("Well,OD600", 600),
        ("Well,A405", 405),
        ("Well,710", 710),
        ("Well,710 nm", 710),
        ("Well,Abs 710", 710),
        ("Well,Absorbance (710 nm)", 710),
        ("Well,OD 450nm", 450),
        ("Well,Value", None),
    ],
)
def test_wavelength_from_the_value_header(header: str, wavelength: float | None) -> None:
    assert parse_one(table(header)).wavelength_nm == wavelength


@pytest.mark.parametrize("padded", [False, True], ids=["A1", "A01"])
def test_well_name_forms(padded: bool) -> None:
    read = parse_one(table(names=wells(padded=padded)))

    assert "A1" in read.wells and "H12" in read.wells


def test_well_names_with_a_space() -> None:
    read = parse_one(table(names=[w.replace("A", "A ") for w in wells()]))

    assert read.wells["A10"].value == pytest.approx(0.14)


def test_384_wells_are_inferred_from_the_well_names() -> None:
    read = parse_one(table(names=wells(16, 24)))

    assert (read.rows, read.columns, len(read.wells)) == (16, 24, 384)
    assert read.wells["P24"].value == pytest.approx(0.05 + 383 * 0.01)


def test_partial_plate_keeps_96_geometry() -> None:
    read = parse_one(table(names=["A1", "A2", "B1", "B2", "C1", "C2"]))

    assert (read.rows, read.columns, len(read.wells)) == (8, 12, 6)


def test_declared_plate_type_gives_the_geometry() -> None:
    read = parse_one(table(names=wells(6, 8), before=["Plate type,48 well plate"]))

    assert (read.rows, read.columns) == (6, 8)


def test_well_outside_the_declared_plate_names_its_line() -> None:
    text = table(names=wells(8, 8), before=["Plate type,48 well plate"])

    with pytest.raises(InputFileError, match="well G1 is outside a 6×8 plate") as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == line_of(text, "G1,")


def test_extra_columns_are_allowed_and_ignored() -> None:
    text = table("Well,Sample,Value", extra="S-17")

    read = parse_one(text)

    assert read.wells["B3"].value == pytest.approx(0.05 + 14 * 0.01)
    assert read.metadata["columns"] == "Well, Sample, Value"


def test_gen5_style_well_id_and_well_columns_give_one_read_per_value_column() -> None:
    lines = ["Results", "", "Well ID\tWell\t[Blanked-OD]\t[Concentration]"]
    lines += [f"SPL{n + 1}\t{w}\t{value(n)}\t{n * 1.5:.3f}" for n, w in enumerate(wells())]

    reads = GenericLongParser().parse(source("\r\n".join(lines) + "\r\n"))

    assert [(r.label, r.derived, r.index) for r in reads] == [
        ("[Blanked-OD]", True, 0),
        ("[Concentration]", True, 1),
    ]
    assert reads[1].wells["A2"].value == pytest.approx(1.5)
    assert reads[0].metadata["well_column"] == "Well"
    assert reads[0].metadata["title"] == "Results"


# --- delimiters, decimals, encodings, line ends --------------------------------------------------


def test_semicolon_with_decimal_commas() -> None:
    read = parse_one(table(delimiter=";", comma=True))

    assert read.wells["A2"].value == pytest.approx(0.06)
    assert read.metadata["delimiter"] == ";"


def test_tab_with_decimal_points() -> None:
    read = parse_one(table(delimiter="\t"))

    assert read.wells["A2"].value == pytest.approx(0.06)
    assert read.metadata["delimiter"] == "\t"


def test_comma_file_never_reads_decimal_commas() -> None:
    text = table(cells={"A1": '"0,5"'})

    read = parse_one(text)

    assert read.wells["A1"].value is None
    assert read.wells["A1"].reason == NoValueReason.NON_NUMERIC


def test_mixed_decimal_marks_are_refused() -> None:
    text = table(delimiter=";", comma=True, cells={"C3": "0.777"})

    with pytest.raises(InputFileError, match="mix decimal commas and decimal points") as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == line_of(text, "C3;")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_encodings(encoding: str) -> None:
    text = table(before=["Operator,Zoë", "Incubation,37 °C", ""])

    read = parse_one(text, encoding=encoding)

    assert read.metadata["Operator"] == "Zoë"
    assert read.metadata["Incubation"] == "37 °C"
    assert len(read.wells) == 96


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"], ids=["lf", "cr", "crlf"])
def test_line_endings(newline: str) -> None:
    read = parse_one(table().replace("\r\n", newline))

    assert read.wells["H12"].value == pytest.approx(1.0)


# --- cells without a number ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("OVRFLW", NoValueReason.OVERFLOW),
        ("OVER", NoValueReason.OVERFLOW),
        ("MISSED", NoValueReason.NOT_READ),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("*0.123*", NoValueReason.MASKED),
        ("", NoValueReason.EMPTY),
        ("n.d.", NoValueReason.NON_NUMERIC),
    ],
)
def test_non_numeric_cells_keep_their_token(raw: str, reason: str) -> None:
    read = parse_one(table(cells={"D4": raw}))

    assert read.wells["D4"].value is None
    assert read.wells["D4"].raw == raw
    assert read.wells["D4"].reason == reason
    assert "D4" not in read.values


# --- metadata ------------------------------------------------------------------------------------


def test_metadata_lines_before_the_header() -> None:
    before = ["SAA run 12", "Plate ID,SAA-0042", "Wavelength,710 nm", "Date,2025-03-14 09:30", ""]

    read = parse_one(table(before=before))

    assert read.plate_id == "SAA-0042"
    assert read.wavelength_nm == 710
    assert read.read_time == datetime(2025, 3, 14, 9, 30, tzinfo=BERLIN)
    assert read.metadata["title"] == "SAA run 12"
    assert read.metadata["plate_id"] == "SAA-0042"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Date: 14.03.2025 09:30", datetime(2025, 3, 14, 9, 30, tzinfo=BERLIN)),
        ("Date,3/14/2025 9:30:00 AM", datetime(2025, 3, 14, 9, 30, tzinfo=BERLIN)),
        ("Read time,2025/03/14 21:05:07", datetime(2025, 3, 14, 21, 5, 7, tzinfo=BERLIN)),
    ],
)
def test_read_time_forms(line: str, expected: datetime) -> None:
    assert parse_one(table(before=[line])).read_time == expected


def test_header_wavelength_wins_over_the_metadata_line() -> None:
    read = parse_one(table("Well,OD450", before=["Wavelength,710"]))

    assert read.wavelength_nm == 450


def test_bad_wavelength_names_its_line() -> None:
    text = table(before=["Plate ID,P1", "Wavelength,red"])

    with pytest.raises(
        InputFileError, match=re.escape(c.BAD_WAVELENGTH.format(found="red"))
    ) as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == 2


# --- errors --------------------------------------------------------------------------------------


def test_bad_well_name_names_its_line() -> None:
    names = wells()
    names[20] = "Q9x"
    text = table(names=names)

    with pytest.raises(
        InputFileError, match=re.escape(c.BAD_WELL.format(found="Q9x", column="Well"))
    ) as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == line_of(text, "Q9x,")
    assert err.value.path == "long.csv"


def test_duplicate_well_names_its_line() -> None:
    names = [*wells()[:10], "A3"]
    text = table(names=names)

    with pytest.raises(
        InputFileError, match=re.escape(c.DUPLICATE_WELL.format(well="A3", first=4))
    ) as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == 12


def test_short_row_names_its_line() -> None:
    text = table("Well,Sample,Value", extra="S").replace("C5,S,", "C5,", 1)

    with pytest.raises(
        InputFileError, match=re.escape(c.SHORT_ROW.format(found=2, expected=3, header=1))
    ) as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == line_of(text, "C5")


def test_second_table_is_refused() -> None:
    text = table() + "\r\n" + table()

    with pytest.raises(InputFileError, match=re.escape(c.SECOND_TABLE.format(first=1))) as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == 99


def test_well_lines_after_a_blank_line_are_refused() -> None:
    text = table(names=wells()[:40]) + "\r\nE5,0.5\r\n"

    with pytest.raises(InputFileError, match="a well line after the blank line") as err:
        GenericLongParser().parse(source(text))

    assert err.value.line == 43


def test_trailing_tables_without_wells_are_ignored() -> None:
    text = table() + "\r\nCurve Name,Curve Formula,A,B\r\nCurve2,Y=A*X+B,1.53E+003,0\r\n"

    assert len(parse_one(text).wells) == 96


def test_file_without_table_is_refused() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_TABLE)):
        GenericLongParser().parse(source("Plate ID,1\r\nWavelength,710\r\n"))


# --- detection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        table(),
        table(delimiter=";", comma=True),
        table(delimiter="\t", names=wells(16, 24)),
        table("Well,Sample,OD600", extra="x", before=["Plate ID,P1", ""]),
        table(names=wells(2, 3)),
    ],
    ids=["comma", "semicolon", "tab-384", "extra-and-metadata", "six-wells"],
)
def test_sniff_claims_long_tables(text: str) -> None:
    assert GenericLongParser.sniff(text)


@pytest.mark.parametrize(
    "text",
    [
        "Well,Value\r\nA1,0.1\r\nA2,0.2\r\n",
        table("Well,Time,Value"),
        table("Well,Repeat,Value", extra="1"),
        table(names=[*wells()[:3], *wells()[:3]]),
        table("Well,Sample"),
        "Software Version\t3.15.15\r\n" + table(delimiter="\t"),
        "Plate\tRepeat\tWell\tType\tTime\tAbsorbance @ 600 (A)\r\n"
        "1\t1\tA01\tM\t00:00:41.29\t0.057\r\n",
        "a,b,c,d,e\r\n" + table(),
        "##SHEET\tRaw data 340 nm\nWell\tValue\nA 1\t0.1\n",
        "",
    ],
    ids=[
        "two-rows",
        "kinetic-time",
        "repeat",
        "wells-repeat",
        "no-value-column",
        "gen5-header",
        "victor-x3",
        "wide-preamble",
        "workbook",
        "empty",
    ],
)
def test_sniff_refuses_other_files(text: str) -> None:
    assert not GenericLongParser.sniff(text)


OURS = format_files("generic_long")


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_only_this_parser_claims_long_tables(path: Path) -> None:
    check_claims(path, Instrument.GENERIC_LONG)


OTHERS = other_files(OURS)


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_generic_long_claims_no_other_file(path: Path) -> None:
    assert not GenericLongParser.sniff(head_text(SourceFile.from_path(path), head_bytes=16384))


def test_real_headerless_gen5_export_is_not_gen5() -> None:
    if not REAL_GEN5.is_file():
        pytest.skip("real sample not present")
    head = head_text(SourceFile.from_path(REAL_GEN5))

    assert not PARSERS[Instrument.BIOTEK_GEN5].sniff(head)
    assert GenericLongParser.sniff(head)


# --- robustness ----------------------------------------------------------------------------------


# Each delimiter swapped for another.
SWAPS = [(b",", b";", -1), (b"\t", b",", -1), (b";", b"\t", -1)]


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_mutated_files_parse_or_raise_input_file_error(path: Path) -> None:
    check_mutated(GenericLongParser(), path, SWAPS)
