"""SoftMax Pro text export parser: layouts, encodings, line ends, tokens, groups and errors.

Exports here are built in the test from invented numbers in the layout SoftMax
Pro 5/6/7 write (``##BLOCKS= n``, ``Plate:`` header, grids or time lines,
``~End``, footer). The bundled samples and the real exports (outside the
repository) are used for detection and for the mutation tests.
"""

from __future__ import annotations

import io
import random
import re
import time
from pathlib import Path

import pytest
from parser_helpers import check_claims

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument, detect, parse
from saa_lab.parsers.softmax_pro import SoftMaxProParser
from saa_lab.parsers.softmax_pro import constants as c
from saa_lab.parsers.softmax_pro.reader import parse_time
from saa_lab.parsers.table import head_text

ROWS = "ABCDEFGHIJKLMNOP"
PATH = "RUN-SM-001.txt"
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_files"
OWN_SAMPLES = SAMPLES / "softmax_pro"
REAL = REPO.parent / "shared" / "samples" / "real"
DEGREE = "Temperature(¡C)"
FOOTER = "Original Filename: SAA run; Date Last Saved: 3/14/2025 2:07:55 PM"


def value(row: int, col: int, *, wl: int = 0, point: int = 0) -> str:
    return f"{0.05 + wl + row * 0.1 + col * 0.001 + point * 0.01:.4f}"


def header(
    *,
    fmt: str = "PlateFormat",
    read: str = "Endpoint",
    mode: str = "Absorbance",
    points: int = 1,
    wavelengths: str = "710",
    n_wavelengths: int | None = None,
    area: tuple[int, int, int, int] | None = None,
    wells: int = 96,
    data: str = "Raw",
) -> str:
    rows, cols = {96: (8, 12), 384: (16, 24)}.get(wells, (8, 12))
    first_col, n_cols, first_row, n_rows = area or (1, cols, 1, rows)
    n_wl = n_wavelengths if n_wavelengths is not None else len(wavelengths.split())
    front = ["Plate:", "Plate1", "1.3", fmt, read, mode]
    if mode == "Fluorescence":
        front.append("FALSE")
    fields = [
        *front,
        data,
        "FALSE",
        str(points),
        "120" if points > 1 else "",
        "",
        "",
        "",
        "",
        str(n_wl),
        wavelengths + " ",
        str(first_col),
        str(n_cols),
        str(wells),
    ]
    if mode == "Absorbance":
        fields += [str(first_row), str(n_rows), "None", ""]
    else:
        fields += ["485 "] + [""] * 8 + [str(first_row), str(n_rows), ""]
    return "\t".join(fields)


def plate_format(
    *,
    wavelengths: int = 1,
    times: tuple[str, ...] = ("",),
    cells: dict[str, str] | None = None,
    rows: int = 8,
    cols: int = 12,
    area: tuple[int, int, int, int] | None = None,
    separator: bool = True,
) -> list[str]:
    """Column header and one grid per time point (plate rows as lines, wavelengths side by side)."""
    cells = cells or {}
    first_col, n_cols, first_row, n_rows = area or (1, cols, 1, rows)
    numbers = [str(n) for n in range(1, cols + 1)]
    group: list[str] = []
    for w in range(wavelengths):
        group += ([""] if w else []) + numbers
    corner = "Time(hh:mm:ss)" if times != ("",) else ""
    lines = ["\t".join([corner, DEGREE, *group, "", ""])]
    for p, stamp in enumerate(times):
        for r in range(rows):
            out = [stamp if r == 0 else "", "25.0" if r == 0 else ""]
            for w in range(wavelengths):
                row_cells = []
                for col in range(1, cols + 1):
                    inside = first_row <= r + 1 < first_row + n_rows
                    inside = inside and first_col <= col < first_col + n_cols
                    default = value(r, col, wl=w, point=p) if inside else ""
                    row_cells.append(cells.get(f"{w}:{p}:{ROWS[r]}{col}", default))
                out += ([""] if w else []) + row_cells
            lines.append("\t".join([*out, "", ""]))
        if separator:
            lines.append("\t\t")
    return lines


def time_format(
    *, times: tuple[str, ...] = ("00:00:00", "00:00:30", "00:01:00"), wavelengths: int = 1
) -> list[str]:
    names = [f"{r}{col}" for r in ROWS[:8] for col in range(1, 13)]
    lines = ["\t".join(["Time" if times != ("",) else "", DEGREE, *names, ""])]
    for w in range(wavelengths):
        for p, stamp in enumerate(times):
            values = [value(i // 12, i % 12 + 1, wl=w, point=p) for i in range(96)]
            lines.append("\t".join([stamp, "30.0", *values, ""]))
        lines.append("")
    return lines


def export(*blocks: list[str], footer: str = FOOTER, count: int | None = None) -> list[str]:
    lines = [f"##BLOCKS= {len(blocks) if count is None else count}"]
    for block in blocks:
        lines += [*block, "~End"]
    return [*lines, footer]


def endpoint(**kwargs: object) -> list[str]:
    return [header(), *plate_format(**kwargs)]  # type: ignore[arg-type]


def source(lines: list[str], *, encoding: str = "utf-8", eol: str = "\r\n") -> SourceFile:
    return SourceFile(contents=(eol.join(lines) + eol).encode(encoding), original_path=PATH)


def read_all(lines: list[str], **kwargs: str) -> list[PlateRead]:
    reads: list[PlateRead] = SoftMaxProParser().parse(source(lines, **kwargs))
    return reads


def read_one(lines: list[str], **kwargs: str) -> PlateRead:
    reads = read_all(lines, **kwargs)
    assert len(reads) == 1
    return reads[0]


def line_of(lines: list[str], startswith: str, nth: int = 0) -> int:
    found = [n for n, line in enumerate(lines, start=1) if line.startswith(startswith)]
    return found[nth]


def raises(lines: list[str], message: str, *, line: int | None = None) -> InputFileError:
    pattern = re.escape(message.split("{")[0])
    with pytest.raises(InputFileError, match=pattern) as err:
        read_all(lines)
    assert err.value.path == PATH
    if line is not None:
        assert err.value.line == line
    return err.value


# --- detection ------------------------------------------------------------------------------


def _own_samples() -> list[Path]:
    return sorted(p for p in OWN_SAMPLES.glob("*.txt"))


def _real_softmax() -> list[Path]:
    folder = REAL / "softmax_pro"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _other_exports() -> list[Path]:
    """Every sample and real export of the other formats."""
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix not in {".json", ".py"}]
    if REAL.is_dir():
        files += [p for p in REAL.rglob("*") if p.is_file() and p.suffix.lower() != ".md"]
    return sorted(p for p in files if p.parent.name != "softmax_pro" and p.suffix != ".md")


@pytest.mark.parametrize("path", _own_samples() + _real_softmax(), ids=lambda p: p.name)
def test_only_softmax_claims_softmax_exports(path: Path) -> None:
    check_claims(path, Instrument.SOFTMAX_PRO)


@pytest.mark.parametrize("path", _other_exports(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_softmax_claims_no_other_export(path: Path) -> None:
    head = head_text(SourceFile.from_path(path))

    assert not SoftMaxProParser.sniff(head)


def test_sniff_needs_the_blocks_line_first() -> None:
    assert SoftMaxProParser.sniff("\ufeff##BLOCKS= 1\r\nPlate:\t…")
    assert SoftMaxProParser.sniff("\r\n##BLOCKS= 2\r\n")
    assert not SoftMaxProParser.sniff("Note: ##BLOCKS= 1\r\n")
    assert not SoftMaxProParser.sniff("Software Version\t3.15\r\n##BLOCKS= 1\r\n")
    assert SoftMaxProParser.sniff("##SHEET\tSheet1\n##BLOCKS= 1\t\t\nPlate:\t")
    assert not SoftMaxProParser.sniff("##SHEET\tSheet1\nPlate:\t\n##BLOCKS= 1")


@pytest.mark.parametrize("name", ["error_blocks_count_larger.txt", "error_missing_end.txt"])
def test_damaged_samples_are_refused_with_a_line(name: str) -> None:
    source = SourceFile.from_path(OWN_SAMPLES / name)

    with pytest.raises(InputFileError) as err:
        parse(source)

    assert err.value.line is not None
    assert err.value.path == str(OWN_SAMPLES / name)


# --- endpoint PlateFormat -------------------------------------------------------------------


def test_endpoint_plate_format() -> None:
    read = read_one(export(endpoint()))

    assert read.format == "softmax_pro"
    assert read.kind == "endpoint"
    assert (read.rows, read.columns, len(read.wells)) == (8, 12, 96)
    assert read.wavelength_nm == 710
    assert read.label == "Plate1"
    assert read.plate_id is None
    assert read.derived is False
    assert read.wells["A1"].value == pytest.approx(float(value(0, 1)))
    assert read.wells["H12"].value == pytest.approx(float(value(7, 12)))
    assert read.metadata["temperature_c"] == "25.0"
    assert read.metadata["read_area"] == "A1:H12"


def test_save_date_is_metadata_and_never_the_read_time() -> None:
    read = read_one(export(endpoint()))

    assert read.read_time is None
    assert read.metadata[c.META_DATE_LAST_SAVED] == "3/14/2025 2:07:55 PM"
    assert read.metadata[c.META_ORIGINAL_FILENAME] == "SAA run"
    assert "read_time" not in read.metadata


def test_softmax5_footer_with_spaces_and_instrument_footer() -> None:
    v5 = read_one(export(endpoint(), footer="Original Filename: x.pda   Date Last Saved: 1/2/2024"))
    instrument = "Instrument type: SpectraMax 340PC  Instrument serial number: SN123"
    v4 = read_one(export(endpoint(), footer=instrument))

    assert v5.metadata[c.META_ORIGINAL_FILENAME] == "x.pda"
    assert v5.metadata[c.META_DATE_LAST_SAVED] == "1/2/2024"
    assert v4.metadata["reader_model"] == "SpectraMax 340PC"
    assert v4.metadata["reader_serial"] == "SN123"


def test_several_wavelengths_side_by_side_are_separate_reads() -> None:
    lines = export([header(wavelengths="450 650"), *plate_format(wavelengths=2)])

    reads = read_all(lines)

    assert [r.wavelength_nm for r in reads] == [450, 650]
    assert [r.index for r in reads] == [0, 1]
    assert [r.plate_index for r in reads] == [0, 0]
    assert reads[1].wells["B3"].value == pytest.approx(float(value(1, 3, wl=1)))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("Range?", NoValueReason.OVERFLOW),
        ("Path?", NoValueReason.NOT_CALCULABLE),
        ("NaN", NoValueReason.NOT_CALCULABLE),
        ("Masked", NoValueReason.MASKED),
        ("", NoValueReason.EMPTY),
    ],
)
def test_tokens_keep_their_text_and_are_never_zero(token: str, reason: str) -> None:
    read = read_one(export(endpoint(cells={"0:0:C5": token})))

    well = read.wells["C5"]
    assert well.value is None
    assert well.raw.strip() == token
    assert well.reason == reason


def test_reduced_grid_is_a_derived_read() -> None:
    reduced = ["\t".join(["", "", *(str(n) for n in range(1, 13)), "", ""])]
    reduced += [
        "\t".join(["", "", *(f"{r + col / 100:.2f}" for col in range(1, 13))]) for r in range(8)
    ]
    lines = export([*endpoint(), *reduced])

    raw, derived = read_all(lines)

    assert raw.derived is False
    assert derived.derived is True
    assert derived.label == f"Plate1 {c.REDUCED_LABEL}"
    assert derived.wells["H12"].value == pytest.approx(7.12)
    assert derived.plate_index == 0


def test_whole_number_rows_are_not_taken_for_a_reduced_header() -> None:
    # Row B starts "1, 2, 3" like the column header, then goes on with counts.
    counts = {f"0:0:B{col}": str(col if col < 4 else col * 1000) for col in range(1, 13)}
    grid = plate_format(cells=counts)
    read = read_one(export([header(mode="Luminescence", wavelengths="0"), *grid]))

    assert read.wells["B3"].value == 3
    assert read.wells["B7"].value == 7000
    assert read.wavelength_nm is None


# --- partial plates -------------------------------------------------------------------------


def test_partial_plate_keeps_geometry_and_lacks_unread_wells() -> None:
    area = (3, 4, 2, 5)  # columns 3-6, rows B-F
    read = read_one(export([header(area=area), *plate_format(area=area)]))

    assert (read.rows, read.columns) == (8, 12)
    assert len(read.wells) == 20
    assert "A1" not in read.wells
    assert "B3" in read.wells and "F6" in read.wells
    assert read.metadata["read_area"] == "B3:F6"


def test_partial_plate_empty_cell_inside_the_area_is_an_empty_well() -> None:
    area = (3, 4, 2, 5)
    read = read_one(export([header(area=area), *plate_format(area=area, cells={"0:0:C4": ""})]))

    assert read.wells["C4"].value is None
    assert read.wells["C4"].reason == NoValueReason.EMPTY


def test_partial_plate_with_only_the_read_rows_written() -> None:
    area = (1, 12, 3, 2)  # rows C-D only, written as two lines
    grid = plate_format(area=area)
    row_c = grid[3].split("\t")
    row_c[1] = "25.0"  # the first line of a grid carries the temperature
    compact = [grid[0], "\t".join(row_c), grid[4], "\t\t"]

    read = read_one(export([header(area=area), *compact]))

    assert sorted(read.wells) == sorted(f"{r}{col}" for r in "CD" for col in range(1, 13))
    assert read.wells["C1"].value == pytest.approx(float(value(2, 1)))


def test_384_well_plate() -> None:
    lines = export([header(wells=384), *plate_format(rows=16, cols=24)])

    read = read_one(lines)

    assert (read.rows, read.columns, len(read.wells)) == (16, 24, 384)
    assert read.wells["P24"].value == pytest.approx(float(value(15, 24)))


# --- kinetic --------------------------------------------------------------------------------


def test_kinetic_plate_format_repeats_the_grid_per_time_point() -> None:
    times = ("0:00", "0:30", "1:00", "1:30")
    lines = export([header(read="Kinetic", points=4), *plate_format(times=times)])

    read = read_one(lines)

    assert read.kind == "kinetic"
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 30.0, 60.0, 90.0)
    assert read.kinetic.readings["D4"][2].value == pytest.approx(float(value(3, 4, point=2)))
    assert read.wells["D4"].value == pytest.approx(float(value(3, 4, point=3)))
    assert read.metadata[c.META_KINETIC_POINTS] == "4"


def test_kinetic_time_format_has_one_line_per_time_point() -> None:
    lines = export([header(fmt="TimeFormat", read="Kinetic", points=3), *time_format()])

    read = read_one(lines)

    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 30.0, 60.0)
    assert read.kinetic.readings["H12"][0].value == pytest.approx(float(value(7, 12)))
    assert read.wells["H12"].value == pytest.approx(float(value(7, 12, point=2)))
    assert len(read.wells) == 96


def test_kinetic_time_format_with_two_wavelengths() -> None:
    lines = export(
        [
            header(fmt="TimeFormat", read="Kinetic", points=3, wavelengths="340 405"),
            *time_format(wavelengths=2),
        ]
    )

    first, second = read_all(lines)

    assert (first.wavelength_nm, second.wavelength_nm) == (340, 405)
    assert second.wells["A1"].value == pytest.approx(float(value(0, 1, wl=1, point=2)))


def test_endpoint_time_format() -> None:
    lines = export([header(fmt="TimeFormat"), *time_format(times=("",))])

    read = read_one(lines)

    assert read.kind == "endpoint"
    assert read.wells["G5"].value == pytest.approx(float(value(6, 5)))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0:00", 0.0), ("3:00", 180.0), ("00:00:15", 15.0), ("1:02:03", 3723.0), ("0:07.5", 7.5)],
)
def test_time_texts(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


# --- encodings and line ends ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "cp1252", "utf-8-sig"])
def test_encodings(encoding: str) -> None:
    read = read_one(export(endpoint()), encoding=encoding)

    assert len(read.wells) == 96
    assert read.metadata["encoding"].replace("_", "-") in {encoding, "utf-16", "utf-8-sig"}


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_line_ends(eol: str) -> None:
    assert len(read_one(export(endpoint()), eol=eol).wells) == 96


def test_mixed_line_ends_and_a_bare_cr_inside_a_note() -> None:
    lines = export(["Note:\r"], endpoint())
    text = "\r\n".join(lines[:3]) + "\n" + "\r\n".join(lines[3:]) + "\n"

    reads = SoftMaxProParser().parse(SourceFile(text.encode("cp1252"), PATH))

    assert len(reads[0].wells) == 96


def test_decimal_comma_is_decided_per_plate_block() -> None:
    cells = {
        f"0:0:{r}{col}": value(ROWS.index(r), col).replace(".", ",")
        for r in "ABCDEFGH"
        for col in range(1, 13)
    }
    group = ["Group: Std", "Sample\tWells\tValues", "S1\tA1\t0.125"]
    lines = export(endpoint(cells=cells), group)

    plate, derived = read_all(lines)

    assert plate.wells["B2"].value == pytest.approx(float(value(1, 2)))
    assert plate.metadata[c.META_DECIMAL_COMMA] == "true"
    assert derived.wells["A1"].value == 0.125


# --- other read modes -----------------------------------------------------------------------


def test_fluorescence_header_has_one_more_field() -> None:
    lines = export([header(mode="Fluorescence", wavelengths="535"), *plate_format()])

    read = read_one(lines)

    assert read.wavelength_nm == 535
    assert read.metadata[c.META_EXCITATION] == "485"
    assert read.metadata[c.META_BOTTOM_READ] == "FALSE"
    assert read.metadata[c.META_READ_MODE] == "Fluorescence"


# --- group tables ---------------------------------------------------------------------------


def test_group_only_export_gives_derived_reads_per_value_column() -> None:
    group = [
        "Group: Unknowns",
        "Sample\tWells\tValues\tMeanValue\tR",
        "01\tA1\t0.100\t0.105\tR",
        " \tA2\t0.110\t \t ",
        "02\tB1\tMasked\t0.200\t",
        " \tB2\tRange?\t \t",
        "",
        "Group Column\tFormula Name\tFormula\tPrecision\tNotation",
        "1\tValues\t!WellValues\t3 decimal places\tNumeric",
        "",
        "Group Summaries",
    ]
    values, means = read_all(export(group))

    assert values.derived and means.derived
    assert values.label == "Unknowns: Values"
    assert values.metadata[c.META_FORMULA] == "!WellValues"
    assert values.wells["A2"].value == 0.11
    assert values.wells["B1"].reason == NoValueReason.MASKED
    assert values.wells["B2"].raw == "Range?"
    assert means.wells["A2"].reason == NoValueReason.EMPTY
    assert (values.rows, values.columns) == (8, 12)


def test_group_with_wells_beyond_96_lies_on_a_384_plate() -> None:
    group = ["Group:\tStd\t1", "Sample\tWell\tValues", "S1\tP24\t1.5", "S2\tA1\t2.5"]

    read = read_one(export(group))

    assert (read.rows, read.columns) == (16, 24)
    assert read.wells["P24"].value == 1.5


def test_group_without_wells_is_no_plate_data() -> None:
    group = ["Group: Summary", "Name\tValue", "Blank\t0.05"]

    raises(export(group), c.NO_PLATE_DATA, line=1)


def test_group_with_a_non_well_in_its_well_column_is_not_read() -> None:
    group = ["Group: Odd", "Sample\tWells\tValues", "S1\tA1-A3\t0.1"]

    raises(export(group), c.NO_PLATE_DATA, line=1)


def test_group_naming_its_plate_takes_that_plate_index() -> None:
    second = [header().replace("Plate1", "Plate2", 1), *plate_format()]
    group = ["Group: Std", "Sample\tWells\tWellPlateName\tValues", "S1\tA1\tPlate2\t0.5"]

    reads = read_all(export(endpoint(), second, group))

    assert [r.plate_index for r in reads] == [0, 1, 1]
    assert reads[2].derived


def test_notes_and_unknown_blocks_are_skipped() -> None:
    lines = export(["Note:", "Plate: this is text", "any: thing"], ["Graph:", "x"], endpoint())

    assert len(read_one(lines).wells) == 96


# --- workbooks ------------------------------------------------------------------------------


def _workbook(lines: list[str]) -> SourceFile:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Export"
    for line in lines:
        sheet.append([cell or None for cell in line.split("\t")])
    buffer = io.BytesIO()
    book.save(buffer)
    return SourceFile(buffer.getvalue(), "pasted.xlsx")


def test_export_pasted_into_a_workbook() -> None:
    source = _workbook(export(endpoint()))

    assert detect(source) is Instrument.SOFTMAX_PRO
    [read] = parse(source)
    assert read.metadata["sheet"] == "Export"
    assert read.wells["A1"].value == pytest.approx(float(value(0, 1)))


def test_workbook_errors_name_the_sheet() -> None:
    lines = export(endpoint(), count=2)

    with pytest.raises(InputFileError, match="sheet 'Export'") as err:
        parse(_workbook(lines))
    assert err.value.line == 1


# --- errors with line numbers ---------------------------------------------------------------


def test_block_count_larger_than_the_blocks_present() -> None:
    raises(export(endpoint(), count=3), c.BLOCK_COUNT_MISMATCH.format(declared=3, found=1), line=1)


def test_block_count_smaller_than_the_blocks_present() -> None:
    raises(
        export(["Note:"], endpoint(), count=1),
        c.BLOCK_COUNT_MISMATCH.format(declared=1, found=2),
        line=1,
    )


def test_missing_end_at_the_end_of_the_file() -> None:
    lines = export(endpoint())
    lines.remove("~End")

    raises(lines, c.MISSING_END.format(kind="Plate", start=2, where="the end of the file"), line=2)


def test_missing_end_before_the_next_plate() -> None:
    lines = export(endpoint(), endpoint())
    lines.remove("~End")

    raises(lines, "the Plate block starting on line 2 has no '~End' line before", line=2)


def test_first_line_must_be_the_blocks_line() -> None:
    raises(export(endpoint())[1:], c.NO_BLOCKS_LINE, line=1)


def test_blocks_count_must_be_a_number() -> None:
    lines = export(endpoint())
    lines[0] = "##BLOCKS= two"

    raises(lines, c.BAD_BLOCKS_COUNT.format(found="two"), line=1)


def test_text_between_blocks() -> None:
    lines = export(endpoint())
    lines.insert(line_of(lines, "~End"), "stray text")

    raises(lines, c.NOT_A_BLOCK.format(found="stray text"), line=line_of(lines, "stray text"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "Time Resolved"}, c.UNKNOWN_READ_MODE.format(found="Time Resolved")),
        ({"read": "Spectrum"}, c.UNSUPPORTED_READ_TYPE.format(found="Spectrum")),
        ({"read": "Well Scan"}, c.UNSUPPORTED_READ_TYPE.format(found="Well Scan")),
        ({"read": "Sweep"}, c.UNKNOWN_READ_TYPE.format(found="Sweep")),
        ({"fmt": "ListFormat"}, c.UNKNOWN_FORMAT.format(found="ListFormat")),
        ({"data": "Reduced"}, c.REDUCED_ONLY.format(found="Reduced")),
        ({"wells": 1536}, c.UNSUPPORTED_PLATE.format(wells=1536)),
        ({"wavelengths": "450 x"}, c.BAD_WAVELENGTH.format(found="x")),
        (
            {"wavelengths": "450 650", "n_wavelengths": 3},
            c.WAVELENGTH_COUNT.format(declared=3, found=2, text="450 650"),
        ),
        (
            {"area": (10, 4, 1, 8)},
            c.AREA_OUTSIDE_PLATE.format(first_column=10, columns=4, first_row=1, rows=8, wells=96),
        ),
    ],
)
def test_bad_plate_header(kwargs: dict[str, object], message: str) -> None:
    lines = export([header(**kwargs), *plate_format()])  # type: ignore[arg-type]

    raises(lines, message, line=2)


def test_header_field_that_must_be_a_number() -> None:
    text = header().split("\t")
    text[c.FIELD_N_WELLS] = "ninety-six"

    message = c.BAD_INTEGER.format(field="number of wells", position=18, found="ninety-six")
    raises(export(["\t".join(text), *plate_format()]), message, line=2)


def test_short_plate_header() -> None:
    raises(
        export(["Plate:\tPlate1\t1.3\tPlateFormat\tEndpoint\tAbsorbance", *plate_format()]),
        c.SHORT_HEADER.format(found=6, mode="Absorbance", needed=19),
        line=2,
    )


def test_missing_column_header() -> None:
    lines = export([header(), *plate_format()[1:]])

    raises(lines, c.NO_COLUMN_HEADER, line=3)


def test_column_header_must_number_columns() -> None:
    grid = plate_format()
    grid[0] = grid[0].replace("\t5\t", "\tfive\t")

    raises(export([header(), *grid]), "the column header must number", line=3)


def test_column_groups_must_match_the_wavelengths() -> None:
    raises(
        export([header(wavelengths="450 650"), *plate_format()]),
        c.COLUMN_GROUPS.format(found=1, declared=2),
        line=3,
    )


def test_deleted_grid_row_is_refused() -> None:
    lines = export(endpoint())
    del lines[7]  # row E (line 8): rows F-H move up and the separator becomes row H

    raises(lines, "row H has no values", line=11)


def test_deleted_grid_row_without_a_separator() -> None:
    lines = export(endpoint(separator=False))
    del lines[6]

    raises(lines, "the plate grid starting on line 4 has 7 rows", line=4)


def test_added_grid_row_is_refused() -> None:
    lines = export(endpoint())
    lines.insert(5, lines[5])

    raises(lines, "the plate grid starting on line 4 has 9 rows", line=4)


def test_value_outside_the_read_area_is_refused() -> None:
    lines = export([header(area=(3, 4, 2, 5)), *plate_format()])

    raises(lines, c.VALUE_OUTSIDE_AREA.format(well="A1", area="B3:F6"), line=4)


def test_duplicated_row_of_a_partial_plate_is_refused() -> None:
    area = (3, 4, 2, 5)
    lines = export([header(area=area), *plate_format(area=area)])
    lines.insert(6, lines[6])  # row D (line 7) twice: row F's values move to row G (line 10)

    raises(lines, c.VALUE_OUTSIDE_AREA.format(well="G3", area="B3:F6"), line=10)


def test_shifted_cell_is_refused() -> None:
    lines = export(endpoint())
    lines[5] = lines[5].replace("\t", "\t\t", 5)

    raises(lines, "in a column the column header does not name", line=6)


def test_kinetic_grid_without_its_time() -> None:
    grid = plate_format(times=("0:00", "0:30"))
    grid[1] = "\t" + grid[1].split("\t", 1)[1]

    raises(
        export([header(read="Kinetic", points=2), *grid]), c.MISSING_TIME.format(point=1), line=4
    )


def test_kinetic_bad_time() -> None:
    grid = plate_format(times=("0:00", "half past"))

    raises(export([header(read="Kinetic", points=2), *grid]), "'half past' is not a time", line=13)


def test_kinetic_times_must_increase() -> None:
    grid = plate_format(times=("0:30", "0:10"))

    raises(export([header(read="Kinetic", points=2), *grid]), "time 0:10 is not after", line=13)


def test_kinetic_plate_format_with_fewer_grids_than_declared() -> None:
    grid = plate_format(times=("0:00", "0:30"))

    raises(
        export([header(read="Kinetic", points=3), *grid]),
        c.TOO_FEW_POINTS.format(what="the plate section", found=2, declared=3),
    )


def test_kinetic_plate_format_with_more_grids_than_declared() -> None:
    grid = plate_format(times=("0:00", "0:30", "1:00"))

    raises(
        export([header(read="Kinetic", points=2), *grid]),
        c.TOO_MANY_POINTS.format(declared=2),
        line=22,
    )


def test_time_format_with_a_deleted_time_line() -> None:
    body = time_format()
    del body[2]

    raises(
        export([header(fmt="TimeFormat", read="Kinetic", points=3), *body]),
        c.TOO_FEW_POINTS.format(what="wavelength 1", found=2, declared=3),
        line=6,
    )


def test_time_format_with_an_extra_time_line() -> None:
    body = time_format()
    body.insert(4, body[3].replace("00:01:00", "00:01:30", 1))

    raises(
        export([header(fmt="TimeFormat", read="Kinetic", points=3), *body]),
        c.TOO_MANY_POINTS.format(declared=3),
        line=7,
    )


def test_time_format_bad_well_and_duplicate_well() -> None:
    body = time_format()
    bad = [body[0].replace("\tH12", "\tZ12"), *body[1:]]
    duplicate = [body[0].replace("\tH12", "\tH11"), *body[1:]]
    kinetic = header(fmt="TimeFormat", read="Kinetic", points=3)

    raises(export([kinetic, *bad]), c.BAD_WELL_HEADER.format(found="Z12", wells=96), line=3)
    raises(export([kinetic, *duplicate]), c.DUPLICATE_WELL.format(well="H11"), line=3)


def test_unexpected_line_after_the_data() -> None:
    lines = export(endpoint())
    lines.insert(line_of(lines, "~End") - 1, "Summary:\t42")

    raises(lines, "unexpected line in the plate block", line=line_of(lines, "Summary"))


# --- robustness -----------------------------------------------------------------------------


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    lines = data.splitlines(keepends=True)
    out = [data[: rng.randrange(len(data))] for _ in range(6)]
    for _ in range(6):
        i = rng.randrange(len(lines))
        out.append(b"".join(lines[:i] + lines[i + 1 :]))
    out.append(data.replace(b"\t", b","))
    out.append(data.replace(b"\t", b";"))
    for _ in range(6):
        noisy = bytearray(data)
        for _ in range(8):
            noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        out.append(bytes(noisy))
    return out


@pytest.mark.parametrize("path", _own_samples() + _real_softmax(), ids=lambda p: p.name)
def test_mutated_exports_parse_or_raise_input_file_errors(path: Path) -> None:
    rng = random.Random(path.name)
    for contents in _mutations(path.read_bytes(), rng):
        try:
            reads = SoftMaxProParser().parse(SourceFile(contents, path.name))
        except InputFileError as err:
            assert err.path == path.name
            continue
        assert reads
        for read in reads:
            assert all(v.value is not None or v.reason for v in read.wells.values())


def _snapshot(reads: list[PlateRead]) -> list[object]:
    out: list[object] = []
    for read in reads:
        out.append({w: v.value for w, v in read.wells.items()})
        if read.kinetic is not None:
            out.append(read.kinetic.times_s)
            out.append({w: [v.value for v in s] for w, s in read.kinetic.readings.items()})
    return out


@pytest.mark.parametrize(
    "lines",
    [
        export(endpoint()),
        export(endpoint(separator=False)),
        export([header(wavelengths="450 650"), *plate_format(wavelengths=2)]),
        export([header(area=(3, 4, 2, 5)), *plate_format(area=(3, 4, 2, 5))]),
        export(
            [
                header(wells=384, area=(5, 8, 3, 10)),
                *plate_format(rows=16, cols=24, area=(5, 8, 3, 10)),
            ]
        ),
        export([header(read="Kinetic", points=3), *plate_format(times=("0:00", "0:30", "1:00"))]),
        export([header(fmt="TimeFormat", read="Kinetic", points=3), *time_format()]),
        export(
            [
                header(fmt="TimeFormat", read="Kinetic", points=3, wavelengths="340 405"),
                *time_format(wavelengths=2),
            ]
        ),
    ],
    ids=[
        "endpoint",
        "no-separator",
        "two-wavelengths",
        "partial",
        "partial-384",
        "kinetic",
        "time",
        "time-2wl",
    ],
)
def test_every_deleted_line_is_refused_or_harmless(lines: list[str]) -> None:
    full = _snapshot(read_all(lines))
    for n in range(len(lines)):
        shorter = lines[:n] + lines[n + 1 :]
        try:
            reads = read_all(shorter)
        except InputFileError:
            continue
        # Only lines that carry no value may go unnoticed (separators, blank rows, footer).
        assert _snapshot(reads) == full, f"deleting line {n + 1} changed the readings"


def test_a_96_well_endpoint_export_parses_well_under_20_ms() -> None:
    data = source(export(endpoint()), encoding="utf-16")
    parser = SoftMaxProParser()
    timings = []
    for _ in range(15):
        start = time.perf_counter()
        parser.parse(data)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.010
