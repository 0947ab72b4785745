"""BioTek Gen5 Excel exports: one sheet per plate, the grid one column right, real date and
time cells, kinetic Time cells past one day, and a writer that adds days to every time.

Each workbook is written here with openpyxl from invented numbers, cell by cell where
Gen5 puts them (header keys in column A, values in B; grids and tables from column B).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, time
from typing import Any

import pytest
from openpyxl import Workbook

from saa_lab.domain import Meta, NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument, detect
from saa_lab.parsers import parse as registry_parse
from saa_lab.parsers.biotek_gen5 import Gen5TextParser
from saa_lab.parsers.biotek_gen5 import constants as c
from saa_lab.parsers.table import head_text

LETTERS = "ABCDEFGH"
WELLS_96 = [f"{row}{col}" for row in LETTERS for col in range(1, 13)]
PATH = "Gen5 export.xlsx"


def od(plate: int, well: int) -> float:
    return round(0.05 + plate + well * 0.001, 3)


def write_header(ws: Any, *, plate: int, day: Any = None, clock: Any = None) -> int:
    """Header and procedure in column A/B from row 2; returns the next free row."""
    rows: list[tuple[str | None, Any]] = [
        ("Software Version", "3.14.03"),
        (None, None),
        ("Experiment File Path:", "C:\\Gen5\\x.xpt"),
        ("Protocol File Path:", "C:\\Gen5\\x.prt"),
        ("Plate Number", f"Plate {plate}"),
        ("Date", datetime(2025, 1, 13) if day is None else day),
        ("Time", time(10, 3, 7) if clock is None else clock),
        ("Reader Type:", "Synergy H1"),
        ("Reader Serial Number:", 17072623),
        ("Reading Type", "Reader"),
        (None, None),
        ("Procedure Details", None),
        ("Plate Type", "96 WELL PLATE (Use plate lid)"),
        ("Read", "OD"),
        (None, "Absorbance Endpoint"),
        (None, "Wavelengths:  600"),
    ]
    for offset, (key, value) in enumerate(rows):
        if key is not None:
            ws.cell(2 + offset, 1, key)
        if value is not None:
            ws.cell(2 + offset, 2, value)
    ws.cell(8, 2).number_format = "mm-dd-yy"
    ws.cell(9, 2).number_format = "h:mm:ss AM/PM"
    return 2 + len(rows) + 1


def write_grid(
    ws: Any, top: int, plate: int, *, label: str = "OD:600", cells: dict[str, Any] | None = None
) -> int:
    """'Results' in column A, numbers 1..12 from C, letters in B, label in O."""
    cells = cells or {}
    ws.cell(top, 1, "Results")
    ws.cell(top + 1, 1, "Actual Temperature:")
    ws.cell(top + 1, 2, 36.8)
    head = top + 3
    for col in range(1, 13):
        ws.cell(head, 2 + col, col)
    for r, letter in enumerate(LETTERS):
        ws.cell(head + 1 + r, 2, letter)
        for col in range(1, 13):
            well = f"{letter}{col}"
            ws.cell(head + 1 + r, 2 + col, cells.get(well, od(plate, r * 12 + col)))
        ws.cell(head + 1 + r, 15, label)
    return head


def workbook_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def endpoint_book(plates: int = 3, cells: dict[tuple[int, str], Any] | None = None) -> Workbook:
    cells = cells or {}
    book = Workbook()
    book.remove(book.active)
    for plate in range(1, plates + 1):
        ws = book.create_sheet(f"Plate {plate} - Sheet1")
        top = write_header(ws, plate=plate, clock=time(10, plate, 7))
        mine = {well: v for (p, well), v in cells.items() if p == plate}
        write_grid(ws, top, plate, cells=mine)
    return book


def parse(data: bytes, name: str = PATH) -> list[PlateRead]:
    return Gen5TextParser().parse(SourceFile(data, name))


# --- endpoint, one sheet per plate ----------------------------------------------------------


def test_one_read_per_sheet_with_the_grid_one_column_right() -> None:
    reads = parse(workbook_bytes(endpoint_book()))

    assert [r.plate_index for r in reads] == [0, 1, 2]
    assert [r.index for r in reads] == [0, 1, 2]
    assert [r.metadata[Meta.SHEET] for r in reads] == [f"Plate {n} - Sheet1" for n in (1, 2, 3)]
    for p, read in enumerate(reads, start=1):
        assert read.format == "biotek_gen5"
        assert read.label == "OD:600"
        assert read.wavelength_nm == 600
        assert (read.rows, read.columns) == (8, 12)
        assert sorted(read.wells) == sorted(WELLS_96)
        assert read.wells["A1"].value == pytest.approx(od(p, 1))
        assert read.wells["H12"].value == pytest.approx(od(p, 96))
        assert read.metadata[Meta.TEMPERATURE] == "36.8"
        assert read.metadata[Meta.READER_SERIAL] == "17072623"


def test_date_and_time_cells_give_the_read_time() -> None:
    reads = parse(workbook_bytes(endpoint_book(plates=2)))

    assert [r.read_time for r in reads] == [
        datetime(2025, 1, 13, 10, 1, 7, tzinfo=UTC),
        datetime(2025, 1, 13, 10, 2, 7, tzinfo=UTC),
    ]
    assert reads[0].metadata[Meta.READ_TIME] == "2025-01-13T10:01:07"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("OVRFLW", NoValueReason.OVERFLOW),
        ("MISSED", NoValueReason.NOT_READ),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("*0.512*", NoValueReason.MASKED),
    ],
)
def test_token_cells(raw: str, reason: str) -> None:
    reads = parse(workbook_bytes(endpoint_book(plates=2, cells={(2, "C5"): raw})))

    assert reads[1].wells["C5"].value is None
    assert reads[1].wells["C5"].raw == raw
    assert reads[1].wells["C5"].reason == reason
    assert reads[0].wells["C5"].value == pytest.approx(od(1, 29))


def test_empty_cell_is_never_zero() -> None:
    reads = parse(workbook_bytes(endpoint_book(plates=1, cells={(1, "B2"): None})))

    assert reads[0].wells["B2"].value is None
    assert reads[0].wells["B2"].reason == NoValueReason.EMPTY


def test_a_sheet_without_a_gen5_header_is_skipped() -> None:
    book = endpoint_book(plates=1)
    notes = book.create_sheet("Notes")
    notes["A1"] = "checked by JD"

    [read] = parse(workbook_bytes(book))

    assert read.metadata[Meta.SHEET] == "Plate 1 - Sheet1"


def test_a_workbook_without_any_gen5_sheet_is_refused() -> None:
    book = Workbook()
    book.active["A1"] = "Well"
    book.active["B1"] = "OD"

    with pytest.raises(InputFileError, match=re.escape(c.NO_HEADER_IN_WORKBOOK)):
        parse(workbook_bytes(book))


def test_error_names_the_sheet_and_its_row() -> None:
    book = endpoint_book(plates=2)
    ws = book["Plate 2 - Sheet1"]
    bad_row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 2).value == "D")
    ws.cell(bad_row, 2, "X")
    message = c.BAD_ROW_LETTER.format(found="X", expected="D")

    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        registry_parse(SourceFile(workbook_bytes(book), PATH))

    assert err.value.line == bad_row
    assert err.value.path == PATH
    assert err.value.message.startswith("sheet 'Plate 2 - Sheet1': ")


def test_grid_pasted_from_text_into_column_a_is_read_too() -> None:
    """A text export opened and saved in Excel keeps the text layout (row letters in A)."""
    book = Workbook()
    ws = book.active
    top = write_header(ws, plate=1)
    ws.cell(top, 1, "Results")
    for col in range(1, 13):
        ws.cell(top + 1, 1 + col, col)
    for r, letter in enumerate(LETTERS):
        ws.cell(top + 2 + r, 1, letter)
        for col in range(1, 13):
            ws.cell(top + 2 + r, 1 + col, od(1, r * 12 + col))
        ws.cell(top + 2 + r, 14, "600")

    [read] = parse(workbook_bytes(book))

    assert read.wells["H12"].value == pytest.approx(od(1, 96))
    assert read.label == "600"


def test_workbook_named_xls_is_read_by_content() -> None:
    reads = parse(workbook_bytes(endpoint_book(plates=1)), name="export.xls")

    assert len(reads) == 1


# --- kinetic workbooks ----------------------------------------------------------------------


def kinetic_book(
    times: list[Any], *, clock: Any = None, formats: list[str] | None = None
) -> tuple[Workbook, int]:
    """A kinetic sheet: title '600' in A, 'Time' in B, 'T° 600' in C, wells from D."""
    book = Workbook()
    ws = book.active
    ws.title = "Plate 1 - Sheet1"
    top = write_header(ws, plate=1, clock=clock)
    ws.cell(top, 1, 600)
    head = top + 2
    ws.cell(head, 2, "Time")
    ws.cell(head, 3, "T° 600")
    for j, well in enumerate(WELLS_96):
        ws.cell(head, 4 + j, well)
    for k, value in enumerate(times):
        row = head + 1 + k
        if value is not None:
            cell = ws.cell(row, 2, value)
            cell.number_format = (formats or ["h:mm:ss"] * len(times))[k]
        ws.cell(row, 3, 37.0)
        for j in range(96):
            ws.cell(row, 4 + j, round(0.1 + 0.01 * k + 0.0001 * j, 4))
    return book, head


def test_kinetic_time_cells_past_one_day() -> None:
    """Excel stores 25:00:00 as serial 1.0417; under h:mm:ss it reads back as 1900-01-01."""
    times = [
        time(0, 0),
        time(12, 0),
        datetime(1900, 1, 1, 1, 0),
        datetime(1900, 1, 2, 2, 0),
    ]
    book, _ = kinetic_book(times)

    [read] = parse(workbook_bytes(book))

    assert read.kind == "kinetic"
    assert read.label == "600"
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 43200.0, 90000.0, 180000.0)
    assert read.wells["H12"].value == pytest.approx(0.1 + 0.03 + 0.0095)
    assert c.META_TIME_DAY_OFFSET not in read.metadata


def test_kinetic_duration_cells() -> None:
    """Under [h]:mm:ss the cells are durations (openpyxl gives timedelta)."""
    book, _ = kinetic_book([0.0, 0.5, 1.25], formats=["[h]:mm:ss"] * 3)

    [read] = parse(workbook_bytes(book))

    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 43200.0, 108000.0)


def test_writer_that_adds_two_days_to_every_time_cell() -> None:
    """The header's Time of day is serial 2.74 and the first kinetic Time cell is empty."""
    times = [None, 2 + 900 / 86400, 2 + 1800 / 86400, 3 + 900 / 86400]
    formats = ["h:mm:ss", "h:mm:ss", "h:mm:ss", "[h]:mm:ss"]
    book, _ = kinetic_book(times, clock=2 + (17 * 3600 + 46 * 60 + 19) / 86400, formats=formats)
    book.active.cell(9, 2).number_format = "h:mm:ss"

    [read] = parse(workbook_bytes(book))

    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 900.0, 1800.0, 87300.0)
    assert read.read_time == datetime(2025, 1, 13, 17, 46, 19, tzinfo=UTC)
    assert read.metadata[c.META_TIME_DAY_OFFSET] == "2"
    assert read.metadata[c.META_KINETIC_FIRST_TIME] == c.FIRST_TIME_EMPTY


def test_day_offset_from_the_second_time_when_the_header_time_has_none() -> None:
    times = [None, 2 + 900 / 86400, 2 + 1800 / 86400]
    book, _ = kinetic_book(times)

    [read] = parse(workbook_bytes(book))

    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 900.0, 1800.0)


def test_kinetic_time_cell_that_is_a_number_names_the_sheet_row() -> None:
    book, head = kinetic_book([time(0, 0), time(0, 1), time(0, 2)])
    book.active.cell(head + 2, 2).value = 0.5
    book.active.cell(head + 2, 2).number_format = "General"

    with pytest.raises(
        InputFileError, match=re.escape(c.KINETIC_BAD_TIME.format(found="0.5"))
    ) as err:
        parse(workbook_bytes(book))

    assert err.value.line == head + 2
    assert "sheet 'Plate 1 - Sheet1'" in err.value.message


# --- detection ------------------------------------------------------------------------------


def test_sniff_claims_the_workbook_head_and_detect_picks_gen5() -> None:
    source = SourceFile(workbook_bytes(endpoint_book(plates=2)), PATH)

    assert Gen5TextParser.sniff(head_text(source))
    assert detect(source) is Instrument.BIOTEK_GEN5
