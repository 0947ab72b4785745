"""Tecan i-control / SparkControl / Magellan exports: layouts, tokens, encodings and errors.

The exports built here are invented and small, in the layouts real exports have
(column A keys, values in column E, ``<>`` grids, ``Cycle Nr.`` tables); the
sample files in sample_files/tecan/ and the real exports in ../shared/samples/real/
are checked against their expected JSON elsewhere (test_sample_formats,
test_real_files) and for detection here.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import PARSERS, Instrument, detect, parse
from saa_lab.parsers.table import head_text
from saa_lab.parsers.tecan import TecanParser
from saa_lab.parsers.tecan import constants as c
from saa_lab.parsers.tecan.timestamps import DateOrder, decide_order, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_files"
REAL = ROOT.parent / "shared" / "samples" / "real"
ROWS = "ABCDEFGH"
DAY_FIRST = DateOrder(day_first=True, assumed=False)
MONTH_FIRST = DateOrder(day_first=False, assumed=False)


def value(read: int, row: int, col: int) -> str:
    """An invented absorbance per read, row and column."""
    return f"{0.05 + read * 0.3 + row * 0.1 + col * 0.001:.4f}"


def kv(key: str, val: str, *more: str) -> list[str]:
    """An i-control key line: the key in column A, the value in column E."""
    return [key, "", "", "", val, *more]


def header(
    *, plate: str = "Greiner 96 Flat Bottom Transparent Polystyrol [GRE96ft.pdfx]"
) -> list[list[str]]:
    return [
        kv("Application: Tecan i-control", "Tecan i-control , 2.0.10.0"),
        kv("Device: infinite 200Pro", "Serial number: 1412004537"),
        [],
        ["Date:", "14/03/2025"],
        ["Time:", "14:07:55"],
        [],
        kv("System", "LAB-PC"),
        kv("User", "LAB-PC\\technician"),
        kv("Plate", plate),
        kv("Plate-ID (Stacker)", "SAA-0001"),
        [],
    ]


def grid(
    read: int = 0,
    *,
    cells: dict[str, str] | None = None,
    rows: str = ROWS,
    columns: range = range(1, 13),
) -> list[list[str]]:
    cells = cells or {}
    lines = [["<>", *(str(n) for n in columns)]]
    for letter in rows:
        r = ROWS.index(letter) if letter in ROWS else 0
        lines.append([letter, *(cells.get(f"{letter}{n}", value(read, r, n)) for n in columns)])
    return lines


def label(
    name: str,
    wavelength: str,
    body: list[list[str]],
    *,
    part: str | None = None,
    start: str = "14/03/2025 14:08:31",
) -> list[list[str]]:
    lines = [
        [f"Label: {name}"],
        kv("Mode", "Absorbance"),
        kv("Wavelength", wavelength, "nm"),
        kv("Number of Flashes", "25"),
    ]
    if part:
        lines.append(kv("Part of Plate", part))
    return [
        *lines,
        ["Start Time:", start],
        [],
        ["", "Temperature: 25.4 °C"],
        *body,
        [],
        ["End Time:", start],
        [],
    ]


def export(*parts: list[list[str]], delimiter: str = "\t", newline: str = "\r\n") -> str:
    lines = [line for part in parts for line in part]
    return newline.join(delimiter.join(cells) for cells in lines) + newline


def endpoint_text(**grid_args: object) -> str:
    return export(header(), label("Label1", "710", grid(**grid_args)))  # type: ignore[arg-type]


def read_text(
    text: str, *, encoding: str = "utf-8", name: str = "RUN-1.txt", timezone: ZoneInfo | None = None
) -> list[PlateRead]:
    source = SourceFile(text.encode(encoding), name, timezone=timezone or ZoneInfo("UTC"))
    return TecanParser().parse(source)


def message(template: str, **values: object) -> str:
    return re.escape(template.format(**values))


# --- layouts --------------------------------------------------------------------------------


def test_endpoint_grid_gives_one_read_with_its_metadata() -> None:
    [read] = read_text(endpoint_text())

    assert read.format == "tecan"
    assert (read.label, read.wavelength_nm, read.kind) == ("Label1", 710.0, "endpoint")
    assert (read.rows, read.columns, len(read.wells)) == (8, 12, 96)
    assert read.wells["A1"].value == pytest.approx(0.051)
    assert read.wells["H12"].value == pytest.approx(0.762)
    assert read.plate_id == "SAA-0001"
    assert read.metadata["reader_model"] == "infinite 200Pro"
    assert read.metadata["reader_serial"] == "1412004537"
    assert read.metadata["software_version"] == "Tecan i-control 2.0.10.0"
    assert read.metadata["temperature_c"] == "25.4"
    assert read.metadata["wavelength_nm"] == "710"


def test_each_label_is_a_read_of_the_same_plate() -> None:
    text = export(
        header(),
        label("Label1", "710", grid(0)),
        label("Label2", "490", grid(1), start="14/03/2025 14:09:12"),
    )

    reads = read_text(text)

    assert [(r.index, r.plate_index, r.label, r.wavelength_nm) for r in reads] == [
        (0, 0, "Label1", 710.0),
        (1, 0, "Label2", 490.0),
    ]
    assert reads[1].wells["A1"].value == pytest.approx(0.351)
    assert reads[1].read_time == datetime(2025, 3, 14, 14, 9, 12, tzinfo=ZoneInfo("UTC"))


def test_part_of_plate_grid_keeps_the_full_plate_and_only_the_read_wells() -> None:
    text = export(
        header(), label("Label1", "710", grid(rows="EF", columns=range(1, 10)), part="E1-F9")
    )

    [read] = read_text(text)

    assert (read.rows, read.columns) == (8, 12)
    assert sorted(read.wells) == sorted(f"{r}{n}" for r in "EF" for n in range(1, 10))
    assert read.wells["F9"].value == pytest.approx(float(value(0, 5, 9)))
    assert read.metadata["part_of_plate"] == "E1-F9"


def test_empty_cell_outside_part_of_plate_is_left_out_inside_it_is_empty() -> None:
    body = grid(cells={"C10": "", "C11": "", "C12": "", "A5": ""}, rows="ABC")
    text = export(header(), label("Label1", "710", body, part="A1-B12;C1-C9"))

    [read] = read_text(text)

    assert "C10" not in read.wells
    assert read.wells["A5"].value is None
    assert read.wells["A5"].reason == NoValueReason.EMPTY
    assert len(read.wells) == 33


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("OVER", NoValueReason.OVERFLOW),
        ("INVALID", NoValueReason.NOT_READ),
        ("?????", NoValueReason.NOT_CALCULABLE),
        ("n.a.", NoValueReason.NON_NUMERIC),
    ],
)
def test_tokens_are_no_value_with_the_raw_text_never_zero(token: str, reason: str) -> None:
    [read] = read_text(endpoint_text(cells={"B5": token}))

    well = read.wells["B5"]
    assert (well.value, well.raw, well.reason) == (None, token, reason)


def test_384_well_plate_type_sets_the_geometry() -> None:
    text = export(
        header(plate="Greiner 384 Flat Bottom Transparent Polystyrol [GRE384ft.pdfx]"),
        label("Label1", "710", grid(rows="ABCDEFGHIJKLMNOP", columns=range(1, 25))),
    )

    [read] = read_text(text)

    assert (read.rows, read.columns, len(read.wells)) == (16, 24, 384)


def test_kinetic_wells_as_rows_stops_at_the_last_time() -> None:
    lines = [
        kv("Mode", "Absorbance"),
        kv("Wavelength", "405", "nm"),
        ["Start Time:", "14/03/2025 09:02:40"],
        [],
        ["OD405"],
        ["Cycle Nr.", "1", "2", "3", "4", "5"],
        ["Time [s]", "0", "60.1", "120.3"],
        ["Temp. [°C]", "37.1", "37", "37.2"],
        ["A1", "0.1", "0.2", "OVER"],
        ["A2", "0.3", "0.4", "0.5"],
        ["A3"],
        [],
    ]

    [read] = read_text(export(header(), lines))

    assert read.kind == "kinetic"
    assert read.label == "OD405"
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 60.1, 120.3)
    assert [w.value for w in read.kinetic.readings["A2"]] == [0.3, 0.4, 0.5]
    assert read.wells["A2"].value == 0.5
    assert read.wells["A1"].raw == "OVER"
    assert "A3" not in read.wells  # a well row with no reading was not read
    assert read.metadata["temperature_c"] == "37.1"


def test_kinetic_cycles_as_rows_from_a_csv() -> None:
    lines = [
        kv("Mode", "Absorbance"),
        kv("Wavelength", "600", "nm"),
        ["Start Time:", "14.10.2016 14:11:38"],
        [],
        ["OD600:600"],
        ["Cycle Nr.", "Time [s]", "Temp. [°C]", "A1", "A2", "B1"],
        ["1", "0", "37.2", "0.0459", "0.0455", "0.0452"],
        ["2", "300", "37", "0.0462", "OVER", "0.0451"],
        ["", "", "", "", "", ""],
    ]

    [read] = read_text(export(header(), lines, delimiter=","))

    assert read.label == "OD600"
    assert read.kinetic is not None
    assert read.kinetic.times_s == (0.0, 300.0)
    assert read.wells["A2"].raw == "OVER"
    assert read.wells["B1"].value == 0.0451
    assert read.read_time == datetime(2016, 10, 14, 14, 11, 38, tzinfo=ZoneInfo("UTC"))


def test_sparkcontrol_well_list_and_mode_groups() -> None:
    lines = [
        ["Method name: SAA"],
        kv("Application: SparkControl", "V3.1 SP1"),
        kv("Device: Spark", "Serial number: 2106004216"),
        kv("Date:", "2023-09-21"),
        kv("Time:", "3:11 PM"),
        [],
        ["Mode", "Absorbance"],
        ["Name", "OD540"],
        kv("Measurement wavelength [nm]", "540"),
        [],
        kv("Start Time", "2023-09-21 15:10:21"),
        kv("Temperature", "25.6", "°C"),
        [],
        ["<>", "Value", "Time [ms]"],
        ["A1", "0.0921", "0"],
        ["A2", "OVER", "204"],
        [],
    ]

    [read] = read_text(export(lines, delimiter=","))

    assert (read.label, read.wavelength_nm) == ("OD540", 540.0)
    assert read.metadata["software_version"] == "SparkControl V3.1 SP1"
    assert read.metadata["tecan_dialect"] == "SparkControl"
    assert read.wells["A1"].value == 0.0921
    assert read.wells["A2"].reason == NoValueReason.OVERFLOW
    assert read.metadata["temperature_c"] == "25.6"


def test_german_keys() -> None:
    lines = [
        kv("Programm: Tecan i-control", "Tecan i-control , 3.9.1.0"),
        kv("Gerät: infinite M1000 PRO", "Seriennummer: 1510003412"),
        ["Datum:", "20.02.2024"],
        ["Zeit:", "14:03:11"],
        kv("Platte", "Greiner 96 Flat Bottom Transparent Polystyrol [GRE96ft.pdfx]"),
        kv("Platten-ID (Stapler)", "SAA-7"),
        ["Label: Label1"],
        kv("Modus", "Absorption"),
        kv("Messwellenlänge", "405", "nm"),
        ["Startzeit:", "20.02.2024 14:03:40"],
        *grid(),
    ]

    [read] = read_text(export(lines))

    assert (read.wavelength_nm, read.plate_id) == (405.0, "SAA-7")
    assert read.metadata["reader_model"] == "infinite M1000 PRO"
    assert read.metadata["reader_serial"] == "1510003412"
    assert read.read_time == datetime(2024, 2, 20, 14, 3, 40, tzinfo=ZoneInfo("UTC"))


def test_magellan_list_with_footer() -> None:
    lines = [["Well positions", "Raw data"]]
    lines += [[f"{r}{n}", value(0, ROWS.index(r), n)] for r in ROWS for n in range(1, 13)]
    lines[5][1] = "OVER"
    lines += [
        ["Date of measurement: 2021-07-06/Time of measurement: 09:43:07"],
        ["C:\\Magellan\\mth\\od.mth"],
        ["595nm"],
        ["Unknown user"],
        ["Sunrise"],
        ["Instrument serial number: 12901000069"],
        ["Measurement mode: Absorbance"],
        ["Measurement wavelength: 595 nm"],
        ["Plate definition file: 96WEL008.pdfx"],
        ["Unit: OD"],
        ["Meas. temperature: Raw data: 23.4 °C"],
    ]

    [read] = read_text(export(lines), name="od.asc")

    assert (read.label, read.wavelength_nm, len(read.wells)) == ("Raw data", 595.0, 96)
    assert read.wells["A5"].raw == "OVER"
    assert read.metadata["reader_model"] == "Sunrise"
    assert read.metadata["reader_serial"] == "12901000069"
    assert read.metadata["user"] == "Unknown user"
    assert read.metadata["temperature_c"] == "23.4"
    assert read.read_time == datetime(2021, 7, 6, 9, 43, 7, tzinfo=ZoneInfo("UTC"))


def test_magellan_plate_column_gives_one_plate_per_value() -> None:
    lines = [
        ["Well positions", "Plate", "Raw data"],
        ["A1", "P1", "0.1"],
        ["A2", "", "0.2"],
        ["A1", "P2", "0.3"],
        ["Date of measurement: 2021-07-06/Time of measurement: 09:43:07"],
    ]

    reads = read_text(export(lines))

    assert [(r.plate_index, r.plate_id, len(r.wells)) for r in reads] == [
        (0, "P1", 2),
        (1, "P2", 1),
    ]


# --- times, encodings, line endings, decimal marks --------------------------------------------


def test_read_time_is_aware_in_the_labs_zone() -> None:
    rome = ZoneInfo("Europe/Rome")

    [read] = read_text(endpoint_text(), timezone=rome)

    assert read.read_time == datetime(2025, 3, 14, 14, 8, 31, tzinfo=rome)
    assert read.metadata["read_time"] == "2025-03-14T14:08:31"


@pytest.mark.parametrize(
    ("date", "clock", "order", "expected"),
    [
        ("2023-09-21", "3:11 PM", DAY_FIRST, datetime(2023, 9, 21, 15, 11)),
        ("2023-09-21 15:10:21", None, DAY_FIRST, datetime(2023, 9, 21, 15, 10, 21)),
        ("20/02/2014", "15.37.16", DAY_FIRST, datetime(2014, 2, 20, 15, 37, 16)),
        ("20/02/2014 15.38.00", None, DAY_FIRST, datetime(2014, 2, 20, 15, 38)),
        ("12/25/2014 4:49:44 PM", None, MONTH_FIRST, datetime(2014, 12, 25, 16, 49, 44)),
        ("2014-12-25T00:00:00", "4:49:44 PM", MONTH_FIRST, datetime(2014, 12, 25, 16, 49, 44)),
        ("14.10.2016", "'14:11:38", MONTH_FIRST, datetime(2016, 10, 14, 14, 11, 38)),
        ("05/06/2013", "12:05 AM", MONTH_FIRST, datetime(2013, 5, 6, 0, 5)),
        ("05/06/13 10:15", None, DAY_FIRST, datetime(2013, 6, 5, 10, 15)),
    ],
)
def test_timestamps_in_every_locale(
    date: str, clock: str | None, order: DateOrder, expected: datetime
) -> None:
    assert parse_timestamp(date, clock, order) == expected


@pytest.mark.parametrize("date", ["", "yesterday", "31/02/2024 10:00", "2024-02-20"])
def test_unreadable_or_clockless_timestamps_are_none(date: str) -> None:
    assert parse_timestamp(date, None, DAY_FIRST) is None


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["20/02/2014", "15.37.16"], DateOrder(day_first=True, assumed=False)),
        (["12/25/2014 4:49:44 PM"], DateOrder(day_first=False, assumed=False)),
        (["28/02/2020", "9:11 AM"], DateOrder(day_first=True, assumed=False)),
        (["05/06/2013 10:15:30"], DateOrder(day_first=True, assumed=True)),
        (["05/06/2013 10:15:30 AM"], DateOrder(day_first=False, assumed=True)),
        (["2023-09-21"], DateOrder(day_first=True, assumed=False)),
    ],
)
def test_date_order_is_decided_per_file(texts: list[str], expected: DateOrder) -> None:
    assert decide_order(texts) == expected


def test_ambiguous_date_is_marked_in_the_metadata() -> None:
    text = endpoint_text().replace("14/03/2025", "05/03/2025")

    [read] = read_text(text)

    assert read.read_time is not None
    assert (read.read_time.month, read.read_time.day) == (3, 5)
    assert read.metadata["date_order_assumed"] == "day-first"


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_encodings_and_line_endings_give_the_same_reads(encoding: str, newline: str) -> None:
    text = export(header(), label("Label1", "710", grid()), newline=newline)

    [read] = read_text(text, encoding=encoding)

    assert len(read.wells) == 96
    assert read.wells["H12"].value == pytest.approx(0.762)
    assert read.metadata["temperature_c"] == "25.4"


def test_utf8_bom_with_stray_cp1252_degree_byte() -> None:
    text = export(header(), label("Label1", "710", grid()), delimiter=",")
    data = b"\xef\xbb\xbf" + text.encode("utf-8").replace("°".encode(), b"\xb0")

    [read] = TecanParser().parse(SourceFile(data, "icontrol.csv"))

    assert read.metadata["temperature_c"] == "25.4"
    assert read.metadata["encoding"] == "utf-8-sig"


def test_decimal_comma_in_a_semicolon_export() -> None:
    text = export(header(), label("Label1", "710", grid()), delimiter=";")
    text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)

    [read] = read_text(text, encoding="cp1252")

    assert read.wells["A1"].value == pytest.approx(0.051)
    assert read.wells["A1"].raw == "0,0510"


# --- errors ---------------------------------------------------------------------------------


def grid_line(text: str, letter: str) -> int:
    lines = re.split(r"\r\n|\n|\r", text)
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(f"{letter}\t"))


def test_row_letter_out_of_order_names_its_line() -> None:
    text = endpoint_text().replace("\nD\t", "\nB\t")

    with pytest.raises(
        InputFileError, match=message(c.BAD_ROW_LETTER, found="B", previous="C")
    ) as err:
        read_text(text)

    assert err.value.line == grid_line(endpoint_text(), "D")


def test_bad_column_header() -> None:
    text = endpoint_text().replace("<>\t1\t2\t3", "<>\t1\tx\t3")

    with pytest.raises(InputFileError, match=re.escape(c.BAD_COLUMN_HEADER.split("'")[0])) as err:
        read_text(text)

    assert err.value.line == grid_line(text, "<>")


def test_values_beyond_the_header_columns() -> None:
    text = endpoint_text().replace("\nC\t", "\nC\t0.1\t", 1)

    with pytest.raises(InputFileError, match=message(c.EXTRA_CELLS, row="C", columns=12)) as err:
        read_text(text)

    assert err.value.line == grid_line(text, "C")


def test_header_without_plate_rows() -> None:
    text = export(header(), label("Label1", "710", [grid()[0], ["End Time:", "x"]]))

    with pytest.raises(InputFileError, match=re.escape(c.EMPTY_GRID)):
        read_text(text)


def test_well_outside_the_named_plate() -> None:
    text = endpoint_text(rows="ABCDEFGHI")

    with pytest.raises(
        InputFileError, match=re.escape("well I1 lies outside the 96-well plate")
    ) as err:
        read_text(text)

    assert err.value.well == "I1"
    assert err.value.line == grid_line(text, "I")


def test_kinetic_time_that_is_not_a_number() -> None:
    lines = [
        kv("Mode", "Absorbance"),
        ["Cycle Nr.", "Time [s]", "A1"],
        ["1", "0", "0.1"],
        ["2", "soon", "0.2"],
    ]
    text = export(header(), lines)

    with pytest.raises(InputFileError, match=message(c.BAD_TIME, found="soon", cycle=2)) as err:
        read_text(text)

    assert err.value.line == len(header()) + 4


def test_kinetic_row_with_more_readings_than_times() -> None:
    lines = [
        kv("Mode", "Absorbance"),
        ["Cycle Nr.", "1", "2"],
        ["Time [s]", "0", "60"],
        ["A1", "0.1", "0.2", "0.3"],
    ]

    with pytest.raises(
        InputFileError, match=message(c.TOO_MANY_READINGS, well="A1", found=3, times=2)
    ):
        read_text(export(header(), lines))


def test_kinetic_table_without_times() -> None:
    lines = [kv("Mode", "Absorbance"), ["Cycle Nr.", "1", "2"], ["A1", "0.1", "0.2"]]

    with pytest.raises(InputFileError, match=re.escape(c.NO_TIME_ROW)) as err:
        read_text(export(header(), lines))

    assert err.value.line == len(header()) + 2


def test_header_without_any_table() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NO_READS)):
        read_text(export(header(), [kv("Mode", "Absorbance")]))


def test_not_a_tecan_export() -> None:
    with pytest.raises(InputFileError, match=re.escape(c.NOT_TECAN)):
        read_text("Dear lab,\r\nno data today.\r\n")


def test_magellan_kinetic_line_with_a_reading_missing() -> None:
    lines = [
        ["Friday, March 14, 2025: 13:00:00 / 0 sec / 37.0°C"],
        ["Friday, March 14, 2025: 13:00:30 / 30 sec / 37.1°C"],
        ["A1", "0.1", "0.2", "A2", "0.3"],
    ]

    with pytest.raises(
        InputFileError, match=message(c.MAGELLAN_KINETIC_ROW, well="A2", found=1, times=2)
    ) as err:
        read_text(export(lines))

    assert err.value.line == 3


def test_workbook_errors_name_the_sheet() -> None:
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = "Plate 7"
    for line in re.split(r"\r\n", endpoint_text().replace("\nD\t", "\nB\t")):
        ws.append(line.split("\t"))
    buffer = io.BytesIO()
    book.save(buffer)

    with pytest.raises(InputFileError, match=re.escape("sheet 'Plate 7': row label 'B'")) as err:
        parse(SourceFile(buffer.getvalue(), "run.xlsx"))

    assert err.value.path == "run.xlsx"
    assert err.value.line is not None


@pytest.mark.parametrize("mutate", ["truncate", "delete", "swap_delimiter", "bytes"])
def test_damaged_exports_parse_or_raise_input_file_errors(mutate: str) -> None:
    text = export(header(), label("Label1", "710", grid()), label("Label2", "490", grid(1)))
    lines = text.split("\r\n")
    variants: list[str]
    if mutate == "truncate":
        variants = [text[:n] for n in range(0, len(text), 37)]
    elif mutate == "delete":
        variants = ["\r\n".join(lines[:n] + lines[n + 1 :]) for n in range(len(lines))]
    elif mutate == "swap_delimiter":
        variants = [text.replace("\t", d) for d in (",", ";", " ")]
    else:
        variants = [text[:n] + "\x00\xff\ufffd" + text[n:] for n in range(0, len(text), 53)]
    for variant in variants:
        try:
            reads = read_text(variant)
        except InputFileError:
            continue
        assert all(w.value is not None or w.reason for r in reads for w in r.wells.values())


# --- detection --------------------------------------------------------------------------------


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob(pattern)
        if p.is_file() and p.suffix.lower() not in {".json", ".md", ".py"}
    )


TECAN_FILES = _files(SAMPLES / "tecan") + _files(REAL / "tecan")
OTHER_FILES = [p for p in _files(SAMPLES) + _files(REAL) if p.parent.name != "tecan"]


def _claims(path: Path) -> list[Instrument]:
    head = head_text(SourceFile.from_path(path))
    return [instrument for instrument, cls in PARSERS.items() if cls.sniff(head)]


@pytest.mark.parametrize("path", TECAN_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_the_tecan_parser_claims_tecan_exports(path: Path) -> None:
    assert _claims(path) == [Instrument.TECAN]
    assert detect(SourceFile.from_path(path)) is Instrument.TECAN


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_tecan_parser_claims_no_other_export(path: Path) -> None:
    assert not TecanParser.sniff(head_text(SourceFile.from_path(path)))


def test_sample_folder_covers_every_variant() -> None:
    names = {p.name for p in _files(SAMPLES / "tecan")}

    for part in (
        "icontrol",
        "sparkcontrol",
        "magellan",
        "kinetic",
        "partial",
        ".csv",
        ".xls",
        ".xlsx",
        ".txt",
        ".asc",
        "german",
        "italian",
        "biff",
    ):
        assert any(part in name for name in names), part


# --- speed ----------------------------------------------------------------------------------


def _best_ms(run: Callable[[], object], repeat: int = 5) -> float:
    run()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def test_a_96_well_text_export_parses_in_under_20_ms() -> None:
    source = SourceFile(endpoint_text().encode(), "run.txt")

    assert _best_ms(lambda: TecanParser().parse(source)) < 20


def test_a_96_well_workbook_parses_in_under_100_ms() -> None:
    source = SourceFile.from_path(SAMPLES / "tecan" / "icontrol_endpoint_2labels_A710_A490.xlsx")

    assert _best_ms(lambda: TecanParser().parse(source)) < 100
