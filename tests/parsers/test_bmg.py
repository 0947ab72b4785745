"""BMG Labtech parser: MARS table and plate views, Omega .DAT, tokens, dates and errors."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from parser_helpers import SAMPLES, claimants, fuzz_outcomes, line_of, other_samples, own_samples

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument, detect, parse
from saa_lab.parsers.bmg import BmgParser
from saa_lab.parsers.bmg import constants as c
from saa_lab.parsers.bmg.parser import parse_bmg_datetime, wavelength_from_title
from saa_lab.parsers.table import head_text

ROWS = "ABCDEFGH"
WELLS = [f"{r}{col}" for r in ROWS for col in range(1, 13)]


def value(i: int, k: int = 0) -> str:
    return f"{0.05 + i * 0.01 + k * 0.002:.3f}"


def header(d: str = ",", *, date: str = "23/06/2023", clock: str = "16:03:59") -> list[str]:
    return [
        d.join(
            [
                "User: USER",
                "Path: C:\\Program Files (x86)\\BMG\\CLARIOstar\\User\\Data",
                "Test run no.: 7",
            ]
        ),
        d.join(["Test name: t", f"Date: {date}", f"Time: {clock}"]),
        "",
        d.join(["ID1: P-1", "ID2: x"]),
        "Absorbance",
        "",
    ]


def table(
    d: str = ",",
    *,
    titles: tuple[str, ...] = ("Raw Data (600)",),
    time_row: list[str] | None = None,
    cells: dict[tuple[str, int], str] | None = None,
    comma: bool = False,
    wells: list[str] | None = None,
    **kw: str,
) -> str:
    cells = cells or {}
    lines = header(d, **kw)
    lines.append(d.join(["Well", "Content", *titles]))
    if time_row is not None:
        lines.append(d.join(["", *time_row]))
    for i, well in enumerate(wells or WELLS):
        values = []
        for k in range(len(titles)):
            text = cells.get((well, k), value(i, k))
            values.append(text.replace(".", ",") if comma else text)
        lines.append(d.join([f"{well[0]}{int(well[1:]):02d}", "S", *values]))
    return "\r\n".join(lines) + "\r\n"


def plate_view(titles: tuple[str, ...] = ("Raw Data (450)",), columns: int = 12) -> str:
    rows = {12: ROWS, 24: "ABCDEFGHIJKLMNOP"}[columns]
    lines = header()
    for title in titles:
        lines += [title, "", "," + ",".join(str(n) for n in range(1, columns + 1))]
        for r, row in enumerate(rows):
            lines.append(",".join([row, *(value(r * columns + k) for k in range(columns))]))
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def source(text: str, *, encoding: str = "utf-8", name: str = "run.CSV") -> SourceFile:
    return SourceFile(text.encode(encoding), name)


def read(text: str, **kw: str) -> list[PlateRead]:
    return BmgParser().parse(source(text, **kw))


# --- MARS table view ------------------------------------------------------------------------


def test_table_endpoint_reads_every_well_with_header_metadata() -> None:
    [plate] = read(table())

    assert plate.format == "bmg" and plate.kind == "endpoint"
    assert (plate.rows, plate.columns, len(plate.wells)) == (8, 12, 96)
    assert plate.wells["A1"].value == pytest.approx(0.05)
    assert plate.wells["H12"].value == pytest.approx(0.05 + 95 * 0.01)
    assert plate.label == "Raw Data (600)" and plate.wavelength_nm == 600
    assert plate.plate_id == "P-1" and plate.derived is False
    assert (
        plate.read_time is not None and plate.read_time.isoformat() == "2023-06-23T16:03:59+00:00"
    )
    assert plate.metadata["reader_model"] == "CLARIOstar"
    assert plate.metadata["view"] == "table"


def test_trailing_comma_padding_and_spilled_id_with_backticks() -> None:
    text = table().replace("ID2: x", "ID2: Wizard `SAA_1`, Prot.2, 23 June 2023")
    text = "\r\n".join(line + ",,,,,,,," for line in text.split("\r\n")[:-1]) + "\r\n"

    [plate] = read(text)

    assert plate.metadata["id2"] == "Wizard `SAA_1`, Prot.2, 23 June 2023"
    assert len(plate.wells) == 96


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("overflow", NoValueReason.OVERFLOW),
        ("OVER", NoValueReason.OVERFLOW),
        ("n.a.", NoValueReason.NON_NUMERIC),
    ],
)
def test_tokens_are_kept_raw_never_zero(token: str, reason: str) -> None:
    [plate] = read(table(cells={("C4", 0): token}))

    assert plate.wells["C4"].value is None
    assert plate.wells["C4"].raw == token
    assert plate.wells["C4"].reason == reason


def test_empty_cell_is_an_unread_well() -> None:
    [plate] = read(table(cells={("B2", 0): ""}))

    assert "B2" not in plate.wells
    assert len(plate.wells) == 95


def test_calculated_columns_are_derived_reads() -> None:
    titles = ("Raw Data (600)", "Blank corrected based on Raw Data (600)")

    raw, blank = read(table(titles=titles))

    assert (raw.derived, blank.derived) == (False, True)
    assert blank.wavelength_nm == 600
    assert blank.wells["A2"].value == pytest.approx(float(value(1, 1)))
    assert (raw.index, blank.index) == (0, 1)


def test_kinetic_table_in_bare_minutes() -> None:
    titles = ("Raw Data (600)",) * 4
    text = table(titles=titles, time_row=["Time", "0", "10", "19", "29"])

    [plate] = read(text)

    assert plate.kind == "kinetic" and plate.kinetic is not None
    assert plate.kinetic.times_s == (0.0, 600.0, 1140.0, 1740.0)
    assert plate.wells["A1"].value == pytest.approx(float(value(0, 3)))
    assert [w.value for w in plate.kinetic.readings["A1"]] == pytest.approx(
        [float(value(0, k)) for k in range(4)]
    )
    assert plate.metadata["time_unit"] == "min"


@pytest.mark.parametrize(
    ("label", "cells", "seconds"),
    [
        ("Time [s]", ["0", "30", "60"], (0.0, 30.0, 60.0)),
        ("Time [h]", ["0", "0.5", "1"], (0.0, 1800.0, 3600.0)),
        ("Time", ["0 h", "0 h 15 min", "1 h 30 min"], (0.0, 900.0, 5400.0)),
        ("Time", ["5 min", "10 min", "15 min 30 s"], (0.0, 300.0, 630.0)),
    ],
)
def test_time_row_units(label: str, cells: list[str], seconds: tuple[float, ...]) -> None:
    text = table(titles=("Raw Data (600)",) * 3, time_row=[label, *cells])

    [plate] = read(text)

    assert plate.kinetic is not None
    assert plate.kinetic.times_s == pytest.approx(seconds)


def test_semicolon_with_decimal_commas() -> None:
    text = table(
        ";",
        titles=("Raw Data (450)",) * 2,
        time_row=["Time", "0", "5"],
        comma=True,
        date="23.06.2023",
    )

    [plate] = read(text, encoding="cp1252")

    assert plate.metadata["delimiter"] == ";"
    assert plate.wells["B3"].value == pytest.approx(float(value(14, 1)))
    assert plate.wells["B3"].raw == value(14, 1).replace(".", ",")
    assert plate.read_time is not None and plate.read_time.date().isoformat() == "2023-06-23"


def test_384_well_table_gets_384_geometry() -> None:
    wells = [f"{r}{col}" for r in "ABCDEFGHIJKLMNOP" for col in range(1, 25)]

    [plate] = read(table(wells=wells))

    assert (plate.rows, plate.columns, len(plate.wells)) == (16, 24, 384)


# --- MARS plate view ------------------------------------------------------------------------


def test_plate_view_one_read_per_grid() -> None:
    first, second = read(plate_view(("Raw Data (450)", "Raw Data (620)")))

    assert (first.label, second.label) == ("Raw Data (450)", "Raw Data (620)")
    assert (first.wavelength_nm, second.wavelength_nm) == (450, 620)
    assert first.metadata["view"] == "plate"
    assert first.wells["H12"].value == pytest.approx(float(value(95)))


def test_plate_view_384_and_short_rows_without_end_separators() -> None:
    text = plate_view(columns=24).replace(
        "P," + ",".join(value(15 * 24 + k) for k in range(24)),
        "P," + ",".join(value(15 * 24 + k) for k in range(10)),
    )

    [plate] = read(text)

    assert (plate.rows, plate.columns) == (16, 24)
    assert len(plate.wells) == 384 - 14
    assert "P11" not in plate.wells and plate.wells["P10"].value is not None


def test_plate_view_wavelength_specs() -> None:
    assert wavelength_from_title("Raw Data (450 1)") == 450
    assert wavelength_from_title("Raw Data  (450)") == 450
    assert wavelength_from_title("Raw Data (580/620)") is None
    assert wavelength_from_title("Raw Data (No filter)") is None


def test_fluorescence_has_no_absorbance_wavelength() -> None:
    text = plate_view(("Raw Data (485/520)",)).replace("Absorbance", "Fluorescence (FI)")

    [plate] = read(text)

    assert plate.wavelength_nm is None
    assert plate.metadata["wavelength_spec"] == "485/520"


def test_plate_view_duplicate_title_is_refused() -> None:
    text = plate_view(("Raw Data (450)", "Raw Data (450)"))

    with pytest.raises(InputFileError, match=re.escape("kinetic runs cannot be read")) as err:
        read(text)

    assert (
        err.value.line
        == [n for n, line in enumerate(text.split("\r\n"), 1) if line == "Raw Data (450)"][1]
    )


def test_1536_well_plate_is_refused_clearly() -> None:
    source_1536 = SourceFile.from_path(SAMPLES / "bmg" / "mars_plate_view_1536_invalid.CSV")

    with pytest.raises(InputFileError, match=re.escape(c.PLATE_1536)) as err:
        parse(source_1536)

    assert err.value.line == 9


def test_1536_well_name_in_a_table_is_refused() -> None:
    text = table(wells=["A1", "a1"]).replace("A01,S", "A01,S", 1)

    with pytest.raises(InputFileError, match=re.escape("1536-well plate")) as err:
        read(text)

    assert err.value.line == line_of(text, "a01")


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso", "order"),
    [
        ("23/06/2023 16:03:59", "2023-06-23T16:03:59", "D/M/Y"),
        ("03/04/2023 16:03:59", "2023-04-03T16:03:59", "D/M/Y"),
        ("5/14/2021 3:29:50 PM", "2021-05-14T15:29:50", "M/D/Y"),
        ("6/5/2026 12:05:00 AM", "2026-06-05T00:05:00", "M/D/Y"),
        ("23.06.2023 16:03:59", "2023-06-23T16:03:59", "D/M/Y"),
        ("2023-06-23 16:03:59", "2023-06-23T16:03:59", "Y-M-D"),
    ],
)
def test_mars_dates(text: str, iso: str, order: str) -> None:
    moment, used = parse_bmg_datetime(text)

    assert (moment.isoformat(), used) == (iso, order)


def test_dat_dates_are_year_first() -> None:
    moment, order = parse_bmg_datetime("14/09/27 07:46:58 AM", year_first_two_digits=True)

    assert (moment.isoformat(), order) == ("2014-09-27T07:46:58", "YY/MM/DD")


def test_read_time_uses_the_lab_zone() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    [plate] = BmgParser().parse(SourceFile(table().encode(), "x.CSV", timezone=zone))

    assert plate.read_time is not None and plate.read_time.tzinfo is zone


def test_bad_date_names_its_line() -> None:
    text = table(date="31/31/2023")

    with pytest.raises(InputFileError, match=re.escape("is not a date saa-lab reads")) as err:
        read(text)

    assert err.value.line == 2


# --- Omega .DAT -----------------------------------------------------------------------------


def dat(*, cycles: int = 1, value_text: str = " .0293  ") -> bytes:
    lines = [
        "Testname: T1",
        "Date: 14/09/27  Time: 07:46:58 AM",
        "ID1: 0431 ",
        "No. of Channels / Multichromatics: 1",
        f"No. of Cycles: {cycles}",
        "Configuration: Absorbance",
        "Used wavelengths and gain values:",
        "  1: 600nm           666",
        "  2: -               ",
        "",
        "Layout",
        "   |" + "\u00af" * 20 + "|",
        "Injection Volume [\u00b5l]",
        "Reader type: FLUOstar Omega",
        "Reader serial number: 415-0337",
        "",
        "Measurement Data",
        "================",
        "",
    ]
    for cycle in range(1, cycles + 1):
        lines += [
            "Chromatic: 1",
            f"Cycle: {cycle}",
            f"Time [s]: {(cycle - 1) * 30}",
            "T[\u00b0C]: 29.4",
            "\t".join(f"{n:>8}" for n in range(1, 13)),
        ]
        for row in ROWS:
            cells = [value_text if (row, col) == ("B", 2) else "1.5199  " for col in range(1, 13)]
            lines.append("\t".join([row, *cells]))
        lines.append("")
    text = "\r\n".join(lines) + "\r\n"
    return text.replace("ID1: 0431 \r\n", "ID1: 0431 \n").encode("latin-1")


def test_dat_latin1_mixed_endings_values_without_leading_zero() -> None:
    [plate] = BmgParser().parse(SourceFile(dat(), "x.DAT"))

    assert plate.wells["B2"].value == pytest.approx(0.0293)
    assert plate.wells["B2"].raw.strip() == ".0293"
    assert plate.wavelength_nm == 600 and plate.plate_id == "0431"
    assert plate.metadata["temperature_c"] == "29.4"
    assert plate.metadata["encoding"] == "cp1252"
    assert plate.read_time is not None and plate.read_time.isoformat().startswith(
        "2014-09-27T07:46"
    )


def test_dat_kinetic_cycles() -> None:
    [plate] = BmgParser().parse(SourceFile(dat(cycles=3), "x.DAT"))

    assert plate.kind == "kinetic" and plate.kinetic is not None
    assert plate.kinetic.times_s == (0.0, 30.0, 60.0)


def test_dat_token_kept_raw() -> None:
    [plate] = BmgParser().parse(SourceFile(dat(value_text="OVER    "), "x.DAT"))

    assert plate.wells["B2"].value is None and plate.wells["B2"].raw == "OVER"


def test_dat_without_data_section() -> None:
    data = dat().split(b"Measurement Data")[0]

    with pytest.raises(InputFileError, match=re.escape(c.DAT_NO_DATA)):
        BmgParser().parse(SourceFile(data, "x.DAT"))


# --- encodings and line endings ---------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_encodings(encoding: str) -> None:
    [plate] = read(table(), encoding=encoding)

    assert len(plate.wells) == 96


@pytest.mark.parametrize("ending", ["\n", "\r"])
def test_line_endings(ending: str) -> None:
    [plate] = read(table().replace("\r\n", ending))

    assert plate.wells["H12"].value is not None


def test_excel_export_of_the_table_view() -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Table"
    for line in table(titles=("Raw Data (600)",) * 2, time_row=["Time", "0", "10"]).splitlines():
        cells: list[object] = []
        for cell in line.split(","):
            try:
                cells.append(float(cell) if cell and cell[0].isdigit() and "." in cell else cell)
            except ValueError:
                cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)

    [plate] = BmgParser().parse(SourceFile(buffer.getvalue(), "run.xlsx"))

    assert plate.kind == "kinetic" and plate.metadata["sheet"] == "Table"
    assert plate.wells["A2"].value == pytest.approx(float(value(1, 1)))


# --- errors name the line -----------------------------------------------------------------------


def test_no_mode_line() -> None:
    text = table().replace("Absorbance\r\n", "")

    with pytest.raises(InputFileError, match=re.escape(c.NO_MODE)) as err:
        read(text)

    assert err.value.line == line_of(text, "Well,")


def test_spectrum_is_refused() -> None:
    text = table().replace("Absorbance\r\n", "Absorbance spectrum\r\n")

    with pytest.raises(InputFileError, match=re.escape("spectrum scan")) as err:
        read(text)

    assert err.value.line == 5


def test_short_table_row_is_a_cut_line() -> None:
    text = table(titles=("Raw Data (600)",) * 3, time_row=["Time", "0", "1", "2"])
    cut = ",".join(text.split("\r\n")[50].split(",")[:-1])
    text = text.replace(text.split("\r\n")[50], cut)

    with pytest.raises(InputFileError, match=re.escape("the line is cut short")) as err:
        read(text)

    assert err.value.line == 51


def test_kinetic_columns_without_time_row() -> None:
    text = table(titles=("Raw Data (600)",) * 3)

    with pytest.raises(InputFileError, match=re.escape("no 'Time' row")) as err:
        read(text)

    assert err.value.line == line_of(text, "Well,")


def test_bad_time_cell() -> None:
    text = table(titles=("Raw Data (600)",) * 2, time_row=["Time", "0", "ten"])

    with pytest.raises(InputFileError, match=re.escape("is not a time")) as err:
        read(text)

    assert err.value.line == line_of(text, ",Time")


def test_duplicate_well_in_table() -> None:
    text = table(wells=["A1", "A2", "A1"])

    with pytest.raises(InputFileError, match=re.escape("well A1 appears twice")) as err:
        read(text)

    assert err.value.line == 10


def test_plate_grid_with_a_missing_row() -> None:
    text = plate_view()
    text = "\r\n".join(line for line in text.split("\r\n") if not line.startswith("E,"))

    with pytest.raises(InputFileError, match=re.escape("row label 'F' is not the next")) as err:
        read(text)

    assert err.value.line == line_of(text, "F,")


def test_not_a_bmg_file() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_MARS_HEADER)) as err:
        read("Hello,world\r\nAbsorbance\r\n")

    assert err.value.line == 1


# --- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", own_samples("bmg"), ids=lambda p: p.name)
def test_only_bmg_claims_bmg_files(path: Path) -> None:
    head = head_text(SourceFile.from_path(path))

    claims = claimants(head)

    assert claims == [Instrument.BMG]


def test_bmg_claims_no_other_sample() -> None:
    others = other_samples("bmg")
    claimed = [p.name for p in others if BmgParser.sniff(head_text(SourceFile.from_path(p)))]

    assert claimed == []


def test_detect_reads_a_semicolon_mars_file() -> None:
    assert detect(source(table(";"))) is Instrument.BMG


# --- robustness and speed -----------------------------------------------------------------------


def test_mutated_files_parse_or_raise_input_errors() -> None:
    originals = [p.read_bytes() for p in own_samples("bmg") if p.stat().st_size < 50_000]
    outcomes = fuzz_outcomes(
        BmgParser(), originals, seed=1536, swap=(b",", b";"), name="mutated.CSV"
    )
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 0


def test_96_well_endpoint_parses_fast() -> None:
    data = table().encode()
    BmgParser().parse(SourceFile(data, "warm.CSV"))
    start = time.perf_counter()
    for _ in range(10):
        BmgParser().parse(SourceFile(data, "x.CSV"))
    assert (time.perf_counter() - start) / 10 < 0.020
