"""Write the invented Tecan sample exports in sample_files/tecan/ and their expected JSON.

Every number here is invented. The layouts follow real exports (see
../shared/domain/plate-formats.md section 3 and ../shared/samples/real/tecan/):
i-control xlsx/xls/csv/txt, SparkControl xlsx/csv, Magellan xlsx/asc. The
expected JSON is written from the values designed here, never from the parser.

    python tools/samples/make_tecan.py            # (re)write every sample
    python tools/samples/make_tecan.py --check    # fail if a file would change

The legacy BIFF .xls sample needs ``xlwt`` (``pip install xlwt``); without it
that one sample is left as it is.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "sample_files" / "tecan"
ROWS = "ABCDEFGHIJKLMNOP"

Cell = str | float | int | datetime | time | None
Sheet = list[list[Cell]]
Expected = dict[str, Any]


# --- invented readings ------------------------------------------------------------------------


def od(read: int, row: int, col: int, base: float = 0.045) -> float:
    """A distinct, plausible absorbance for (read, row, column)."""
    return round(base + row * 0.112 + col * 0.0031 + read * 0.0207, 4)


def rfu(read: int, row: int, col: int) -> int:
    return 1200 + read * 5000 + row * 731 + col * 97


def kinetic_od(cycle: int, row: int, col: int) -> float:
    """A slowly rising absorbance (an enzyme rate) per well and cycle."""
    return round(0.052 + row * 0.01 + col * 0.002 + cycle * (0.0009 + row * 0.0004), 4)


def wells(rows: int, cols: int) -> list[str]:
    return [f"{ROWS[r]}{c}" for r in range(rows) for c in range(1, cols + 1)]


def text(value: Cell, *, decimal_comma: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        rendered = f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:g}"
        return rendered.replace(".", ",") if decimal_comma else rendered
    if isinstance(value, datetime | time):
        return value.isoformat()
    return str(value)


# --- writers ----------------------------------------------------------------------------------


def padded(rows: Sheet, width: int) -> Sheet:
    return [row + [None] * (width - len(row)) for row in rows]


def write_xlsx(sheets: dict[str, Sheet]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return _stable_zip(buffer.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed timestamps and document dates, so regeneration is stable."""
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2025-03-14T13:00:00Z", content
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 3, 14, 13, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, content)
    return out.getvalue()


def write_xls(sheets: dict[str, Sheet]) -> bytes | None:
    try:
        import xlwt  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    book = xlwt.Workbook()
    for name, rows in sheets.items():
        ws = book.add_sheet(name)
        for r, row in enumerate(rows):
            for col, value in enumerate(row):
                if value is not None:
                    ws.write(r, col, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_text(
    rows: Sheet, delimiter: str, *, decimal_comma: bool = False, newline: str = "\r\n"
) -> str:
    lines = []
    for row in rows:
        cells = [text(cell, decimal_comma=decimal_comma) for cell in row]
        if delimiter == ",":
            cells = [f'"{cell}"' if "," in cell else cell for cell in cells]
        lines.append(delimiter.join(cells))
    return newline.join(lines) + newline


# --- i-control layout -------------------------------------------------------------------------

E = 4  # i-control writes values in column E


def kv(key: str, value: Cell, *more: Cell, at: int = E) -> list[Cell]:
    row: list[Cell] = [key] + [None] * (at - 1)
    return [*row, value, *more]


def icontrol_header(
    *,
    version: str = "Tecan i-control , 2.0.10.0",
    device: str = "infinite 200Pro",
    serial: str = "1412004537",
    date: Cell,
    time_: Cell,
    plate: str = "Greiner 96 Flat Bottom Transparent Polystyrol [GRE96ft.pdfx]",
    plate_id: str | None = None,
    german: bool = False,
) -> Sheet:
    k = {
        "app": "Programm: Tecan i-control" if german else "Application: Tecan i-control",
        "device": f"Gerät: {device}" if german else f"Device: {device}",
        "serial": f"Seriennummer: {serial}" if german else f"Serial number: {serial}",
        "date": "Datum:" if german else "Date:",
        "time": "Zeit:" if german else "Time:",
        "user": "Anwender" if german else "User",
        "plate": "Platte" if german else "Plate",
        "plate_id": "Platten-ID (Stapler)" if german else "Plate-ID (Stacker)",
    }
    return [
        kv(k["app"], version),
        [
            k["device"],
            None,
            None,
            None,
            k["serial"],
            None,
            None,
            None,
            "Serial number of connected stacker:",
        ],
        kv(
            "Firmware: V_3.37_07/12_Infinite (Jul 12 2012/11.17.53)",
            "MAI, V_3.37_07/12_Infinite (Jul 12 2012/11.17.53)",
        ),
        [],
        [k["date"], date],
        [k["time"], time_],
        [],
        [],
        kv("System", "LAB-TECAN-01"),
        kv(k["user"], "LAB-TECAN-01\\technician"),
        kv(k["plate"], plate),
        kv(k["plate_id"], plate_id) if plate_id else [k["plate_id"]],
        [],
    ]


def grid(
    values: Callable[[int, int], Cell], row_count: int, columns: Sequence[int], first_row: int = 0
) -> Sheet:
    rows: Sheet = [["<>", *columns]]
    for r in range(first_row, first_row + row_count):
        rows.append([ROWS[r], *(values(r, col) for col in columns)])
    return rows


def icontrol_label(
    name: str,
    wavelength: int,
    start: str,
    temperature: str,
    body: Sheet,
    *,
    part: str | None = None,
    german: bool = False,
) -> Sheet:
    rows: Sheet = [
        [f"Label: {name}"],
        kv("Modus" if german else "Mode", "Absorption" if german else "Absorbance"),
        kv("Messwellenlänge" if german else "Wavelength", wavelength, "nm"),
        kv("Bandbreite" if german else "Bandwidth", 9, "nm"),
        kv("Anzahl der Blitze" if german else "Number of Flashes", 25),
        kv("Ruhezeit" if german else "Settle Time", 0, "ms"),
    ]
    if part:
        rows.append(kv("Part of Plate", part))
    rows += [
        ["Startzeit:" if german else "Start Time:", start],
        [],
        [None, f"{'Temperatur' if german else 'Temperature'}: {temperature} °C"],
        *body,
        [],
        [],
        ["End Time:", start],
        [],
        [],
    ]
    return rows


# --- the samples ------------------------------------------------------------------------------


def sample_icontrol_two_labels() -> tuple[bytes, Expected]:
    """i-control 2.0 xlsx: two absorbance labels, date cells, barcode, OVER and INVALID."""

    def label1(r: int, c: int) -> Cell:
        return {("H", 12): "OVER", ("G", 11): "INVALID"}.get((ROWS[r], c), od(0, r, c))

    def label2(r: int, c: int) -> Cell:
        return od(1, r, c, base=0.038)

    excel_date = datetime(2025, 3, 14)  # noqa: DTZ001 - an Excel date cell has no zone
    rows = icontrol_header(date=excel_date, time_=time(14, 7, 55), plate_id="SAA-2025-0314-01")
    rows += [kv("Comment", "SAA run 42, AHA/indooxine, 710 nm"), [], []]
    rows += icontrol_label(
        "Label1", 710, "3/14/2025 2:08:31 PM", "25.4", grid(label1, 8, range(1, 13))
    )
    rows += icontrol_label(
        "Label2", 490, "3/14/2025 2:09:12 PM", "25.5", grid(label2, 8, range(1, 13))
    )
    rows += [kv("Movement", "Move Plate Out")]
    data = write_xlsx({"Sheet1": padded(rows, 13)})
    common = {
        "format": "tecan",
        "kind": "endpoint",
        "plate_id": "SAA-2025-0314-01",
        "rows": 8,
        "columns": 12,
        "n_wells": 96,
        "derived": False,
    }
    expected = {
        "note": "Invented. Date and Time are Excel date/time cells; Start Time text "
        "'3/14/2025 2:08:31 PM' (month first, 12-hour clock) is each read's time.",
        "n_reads": 2,
        "plates": [
            {
                **common,
                "plate_index": 0,
                "label": "Label1",
                "wavelength_nm": 710,
                "read_time": "2025-03-14T14:08:31",
                "wells": {"A1": od(0, 0, 1), "H11": od(0, 7, 11), "D6": od(0, 3, 6)},
                "missing": {"H12": "OVER", "G11": "INVALID"},
                "reasons": {"H12": "overflow", "G11": "not read"},
                "metadata": {
                    "reader_model": "infinite 200Pro",
                    "reader_serial": "1412004537",
                    "software_version": "Tecan i-control 2.0.10.0",
                    "wavelength_nm": "710",
                    "temperature_c": "25.4",
                    "label": "Label1",
                    "plate_id": "SAA-2025-0314-01",
                    "read_time": "2025-03-14T14:08:31",
                    "comment": "SAA run 42, AHA/indooxine, 710 nm",
                },
            },
            {
                **common,
                "plate_index": 0,
                "label": "Label2",
                "wavelength_nm": 490,
                "read_time": "2025-03-14T14:09:12",
                "wells": {
                    "A1": od(1, 0, 1, 0.038),
                    "H12": od(1, 7, 12, 0.038),
                    "G11": od(1, 6, 11, 0.038),
                },
                "metadata": {"wavelength_nm": "490", "temperature_c": "25.5"},
            },
        ],
    }
    return data, expected


def sample_icontrol_multisheet_italian() -> tuple[bytes, Expected]:
    """xlsx content named .xls: one plate per sheet, Italian dates, a 'Part of Plate' grid."""
    sheets: dict[str, Sheet] = {}

    def head(clock: str) -> Sheet:
        return icontrol_header(
            date="20/02/2024",
            time_=clock,
            device="infinite M200Pro",
            serial="1307001822",
            version="Tecan i-control , 1.10.4.0",
        )

    rows = head("15.37.16")
    rows += icontrol_label(
        "Label1",
        710,
        "20/02/2024 15.38.00",
        "24.9",
        grid(lambda r, c: od(0, r, c), 8, range(1, 13)),
    )
    sheets["Plate 1"] = padded(rows, 13)
    rows = head("15.41.09")
    rows += icontrol_label(
        "Label1",
        710,
        "20/02/2024 15.41.40",
        "25.0",
        grid(lambda r, c: od(2, r, c), 2, range(1, 10), first_row=4),
        part="E1-F9",
    )
    sheets["Plate 2"] = padded(rows, 13)
    sheets["Foglio1"] = []
    data = write_xlsx(sheets)
    expected = {
        "note": "Invented. An xlsx named .xls. Sheet 'Plate 2' reads only E1-F9: its grid is "
        "'<>,1..9' with rows E and F; the plate stays 96 wells.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "Label1",
                "wavelength_nm": 710,
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "read_time": "2024-02-20T15:38:00",
                "wells": {"A1": od(0, 0, 1), "H12": od(0, 7, 12), "C7": od(0, 2, 7)},
                "metadata": {
                    "reader_model": "infinite M200Pro",
                    "software_version": "Tecan i-control 1.10.4.0",
                    "sheet": "Plate 1",
                    "temperature_c": "24.9",
                },
            },
            {
                "plate_index": 1,
                "format": "tecan",
                "label": "Label1",
                "rows": 8,
                "columns": 12,
                "n_wells": 18,
                "read_time": "2024-02-20T15:41:40",
                "wells": {"E1": od(2, 4, 1), "F9": od(2, 5, 9), "E5": od(2, 4, 5)},
                "metadata": {"part_of_plate": "E1-F9", "sheet": "Plate 2"},
            },
        ],
    }
    return data, expected


def sample_icontrol_biff() -> tuple[bytes | None, Expected]:
    """A legacy BIFF8 .xls (older i-control); an ambiguous date read day first (24-hour clock)."""
    rows = icontrol_header(
        date="05/06/2013",
        time_="10:15:02",
        version="Tecan i-control , 1.7.1.12",
        device="infinite F50",
        serial="1105000231",
        plate="Nunc 96 Flat Bottom Transparent Polystyrol [NUN96ft.pdfx]",
    )
    rows += icontrol_label(
        "Label1",
        405,
        "05/06/2013 10:15:30",
        "22.8",
        grid(lambda r, c: "OVER" if (r, c) == (0, 12) else od(3, r, c), 8, range(1, 13)),
    )
    data = write_xls({"Sheet0": rows})
    expected = {
        "note": "Invented, written as BIFF8 by xlwt. '05/06/2013 10:15:30' is ambiguous: "
        "with a 24-hour clock it is read day first and marked date_order_assumed.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "Label1",
                "wavelength_nm": 405,
                "n_wells": 96,
                "read_time": "2013-06-05T10:15:30",
                "wells": {"A1": od(3, 0, 1), "H12": od(3, 7, 12), "B3": od(3, 1, 3)},
                "missing": {"A12": "OVER"},
                "metadata": {
                    "reader_model": "infinite F50",
                    "reader_serial": "1105000231",
                    "software_version": "Tecan i-control 1.7.1.12",
                    "date_order_assumed": "day-first",
                    "temperature_c": "22.8",
                },
            }
        ],
    }
    return data, expected


KINETIC_TIMES = [0.0, 60.2, 120.4, 180.5, 240.7, 300.9, 361.0, 421.2, 481.4, 541.5]
KINETIC_TEMPS = [37.0, 37.1, 37.1, 37.0, 37.2, 37.1, 37.0, 37.1, 37.1, 37.0]


def sample_icontrol_kinetic() -> tuple[bytes, Expected]:
    """i-control kinetic xlsx: cycles as columns, wells as rows; the run stopped after 10 of 12."""

    def reading(well: str, cycle: int) -> Cell:
        r, c = ROWS.index(well[0]), int(well[1:])
        if well == "H12" and cycle >= 8:
            return "OVER"
        return kinetic_od(cycle, r, c)

    rows = icontrol_header(date="14/03/2025", time_="09:02:11")
    rows += [
        ["List of actions in this measurement script:"],
        ["Kinetic"],
        ["Absorbance"],
        [],
        ["1 Label"],
        ["Kinetic Measurement"],
        kv("Kinetic Cycles", 12),
        kv("Interval Time", "0:01:00"),
        kv("Mode", "Absorbance"),
        kv("Wavelength", 405, "nm"),
        kv("Bandwidth", 9, "nm"),
        kv("Number of Flashes", 10),
        kv("Settle Time", 0, "ms"),
        ["Start Time:", "14/03/2025 09:02:40"],
        [],
        ["OD405"],
        ["Cycle Nr.", *range(1, 13)],
        ["Time [s]", *KINETIC_TIMES],
        ["Temp. [°C]", *KINETIC_TEMPS],
    ]
    for well in wells(8, 12):
        rows.append([well, *(reading(well, k) for k in range(10))])
    rows += [[], ["End Time:", "14/03/2025 09:12:02"]]
    data = write_xlsx({"Sheet2": padded(rows, 13)})
    expected = {
        "note": "Invented. 'Cycle Nr.' runs to 12 but 'Time [s]' has 10 times: 10 readings "
        "per well. H12 saturates from cycle 9 (index 8) on.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "label": "OD405",
                "wavelength_nm": 405,
                "n_wells": 96,
                "read_time": "2025-03-14T09:02:40",
                "wells": {"A1": kinetic_od(9, 0, 1), "H11": kinetic_od(9, 7, 11)},
                "missing": {"H12": "OVER"},
                "metadata": {"temperature_c": "37", "wavelength_nm": "405"},
                "kinetic": {
                    "n_times": 10,
                    "times_s": {"0": 0.0, "1": 60.2, "9": 541.5},
                    "readings": {
                        "A1": {"0": kinetic_od(0, 0, 1), "9": kinetic_od(9, 0, 1)},
                        "D6": {"4": kinetic_od(4, 3, 6)},
                        "H12": {"7": kinetic_od(7, 7, 12)},
                    },
                    "missing": {"H12": {"8": "OVER", "9": "OVER"}},
                },
            }
        ],
    }
    return data, expected


def sample_icontrol_german() -> tuple[bytes, Expected]:
    """German i-control xlsx: Programm/Gerät/Datum/Modus Absorption/Messwellenlänge, 384 wells."""

    def value(r: int, c: int) -> Cell:
        return "INVALID" if (ROWS[r], c) == ("P", 24) else od(0, r % 8, c % 12, 0.05)

    rows = icontrol_header(
        date="20.02.2024",
        time_="14:03:11",
        device="infinite M1000 PRO",
        serial="1510003412",
        version="Tecan i-control , 3.9.1.0",
        plate_id="SAA-384-0007",
        german=True,
        plate="Greiner 384 Flat Bottom Transparent Polystyrol [GRE384ft.pdfx]",
    )
    rows += icontrol_label(
        "Label1", 710, "20.02.2024 14:03:40", "24.8", grid(value, 16, range(1, 25)), german=True
    )
    data = write_xlsx({"Tabelle1": padded(rows, 25)})
    expected = {
        "note": "Invented German-locale export of a 384-well plate.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "Label1",
                "wavelength_nm": 710,
                "plate_id": "SAA-384-0007",
                "rows": 16,
                "columns": 24,
                "n_wells": 384,
                "read_time": "2024-02-20T14:03:40",
                "wells": {"A1": value(0, 1), "P23": value(15, 23), "I13": value(8, 13)},
                "missing": {"P24": "INVALID"},
                "reasons": {"P24": "not read"},
                "metadata": {
                    "reader_model": "infinite M1000 PRO",
                    "reader_serial": "1510003412",
                    "software_version": "Tecan i-control 3.9.1.0",
                    "mode": "Absorption",
                    "temperature_c": "24.8",
                },
            }
        ],
    }
    return data, expected


def _stray_degree(text_: str) -> bytes:
    """UTF-8 with a BOM, but the degree signs as single cp1252 bytes (as i-control 1.11 writes)."""
    parts = text_.split("°")
    return b"\xef\xbb\xbf" + b"\xb0".join(part.encode("utf-8") for part in parts)


def sample_icontrol_csv_kinetic() -> tuple[bytes, Expected]:
    """i-control 1.11 CSV: key col 1, value col 5; kinetic one line per cycle; two labels."""
    header: Sheet = [
        ["Application: Tecan i-control", None, None, None, "Tecan i-control , 1.11.1.0"],
        [
            "Device: infinite 200Pro",
            None,
            None,
            None,
            "Serial number: 1409002252",
            None,
            None,
            None,
            "Serial number of connected stacker:",
        ],
        [
            "Firmware: V_4.07_8/14_Infinite (Aug  8 2014/11.16.39)",
            None,
            None,
            None,
            "MAI, V_4.07_8/14_Infinite (Aug  8 2014/11.16.39)",
        ],
        [],
        ["Date:", "14.03.2025"],
        ["Time:", "14:11:38"],
        [],
        kv("System", "PCSY079"),
        kv("User", "AD\\technician"),
        kv("Plate", "Greiner 96 Flat Bottom Black Polystyrene Cat. No.: 655090 [GRE96fb.pdfx]"),
        ["Plate-ID (Stacker)"],
        [],
        kv("Wait (Plate)", "On", "Target Temperature: 37 °C"),
        [],
        ["2 Labels"],
        ["Kinetic Measurement"],
        kv("Kinetic Cycles", 4),
        kv("Interval Time", "0:05:00"),
        kv("Mode", "Absorbance"),
        kv("Wavelength", 710, "nm"),
        kv("Number of Flashes", 10),
        kv("Mode", "Luminescence"),
        kv("Attenuation", "NONE"),
        kv("Integration Time", 1000, "ms"),
        ["Start Time:", "14.03.2025 14:11:38"],
        [],
    ]
    well_list = wells(8, 12)
    times = [0.0, 300.1, 600.1, 900.2]
    lum_times = [12.8, 312.9, 613.0, 913.0]
    rows: Sheet = list(header)
    rows.append(["OD710:710"])
    rows.append(["Cycle Nr.", "Time [s]", "Temp. [°C]", *well_list])
    for k, t in enumerate(times):
        values: list[Cell] = [
            "OVER" if (w == "A12" and k == 3) else kinetic_od(k, ROWS.index(w[0]), int(w[1:]))
            for w in well_list
        ]
        rows.append([k + 1, t, 37.2, *values])
    rows += [[], ["LUMI:Lum"], ["Cycle Nr.", "Time [s]", "Temp. [°C]", *well_list]]
    for k, t in enumerate(lum_times):
        rows.append([k + 1, t, 37.3, *(rfu(k, ROWS.index(w[0]), int(w[1:])) for w in well_list)])
    rows += [[], [], ["End Time:", "14.03.2025 14:26:40"]]
    data = _stray_degree(write_text(padded(rows, 99), ","))
    expected = {
        "note": "Invented i-control 1.11 CSV: BOM, stray cp1252 degree bytes, German date "
        "'14.03.2025'. Tables are titled 'OD710:710' and 'LUMI:Lum'.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "label": "OD710",
                "wavelength_nm": 710,
                "n_wells": 96,
                "read_time": "2025-03-14T14:11:38",
                "wells": {"A1": kinetic_od(3, 0, 1), "H12": kinetic_od(3, 7, 12)},
                "missing": {"A12": "OVER"},
                "metadata": {
                    "software_version": "Tecan i-control 1.11.1.0",
                    "reader_serial": "1409002252",
                    "encoding": "utf-8-sig",
                    "temperature_c": "37.2",
                },
                "kinetic": {
                    "n_times": 4,
                    "times_s": {"0": 0.0, "3": 900.2},
                    "readings": {"B2": {"0": kinetic_od(0, 1, 2), "2": kinetic_od(2, 1, 2)}},
                    "missing": {"A12": {"3": "OVER"}},
                },
            },
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "label": "LUMI",
                "wavelength_nm": None,
                "n_wells": 96,
                "wells": {"A1": rfu(3, 0, 1), "H12": rfu(3, 7, 12)},
                "metadata": {"mode": "Luminescence"},
                "kinetic": {
                    "n_times": 4,
                    "times_s": {"0": 0.0, "1": 300.1, "3": 900.2},
                    "readings": {"A1": {"0": rfu(0, 0, 1)}},
                },
            },
        ],
    }
    return data, expected


def sample_icontrol_semicolon() -> tuple[bytes, Expected]:
    """A German-locale CSV: semicolons, decimal commas, cp1252 (Gerät, °)."""
    rows = icontrol_header(
        date="20.02.2024",
        time_="08:55:02",
        german=True,
        device="infinite 200Pro",
        serial="1601004418",
        version="Tecan i-control , 1.11.1.0",
        plate_id="SAA-0220-A",
    )
    rows += icontrol_label(
        "Label1",
        710,
        "20.02.2024 08:55:31",
        "24,6",
        grid(lambda r, c: "OVER" if (r, c) == (2, 2) else od(0, r, c), 8, range(1, 13)),
        german=True,
    )
    data = write_text(padded(rows, 13), ";", decimal_comma=True).encode("cp1252")
    expected = {
        "note": "Invented. Semicolon-separated, decimal commas ('0,045'), cp1252 text.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "Label1",
                "wavelength_nm": 710,
                "plate_id": "SAA-0220-A",
                "n_wells": 96,
                "read_time": "2024-02-20T08:55:31",
                "wells": {"A1": od(0, 0, 1), "H12": od(0, 7, 12), "F8": od(0, 5, 8)},
                "missing": {"C2": "OVER"},
                "metadata": {
                    "reader_model": "infinite 200Pro",
                    "encoding": "cp1252",
                    "temperature_c": "24.6",
                },
            }
        ],
    }
    return data, expected


SPARK_HEADER: Sheet = [
    ["Method name: SAA 710 endpoint"],
    ["Application: SparkControl", None, None, None, "V2.3"],
    ["Device: Spark", None, None, None, "Serial number: 1811005203"],
    ["Firmware:", None, None, None, "LUM:V5.2.3|ABS:V4.3.2|MTP:V13.1.5|FLUOR:V5.1.3"],
    [],
]


def sample_spark_csv_list() -> tuple[bytes, Expected]:
    """SparkControl CSV endpoint: two Mode groups, each a '<>,Value,Time [ms]' well list."""
    rows: Sheet = [
        *SPARK_HEADER,
        kv("Date:", "28/02/2025"),
        kv("Time:", "9:11 AM"),
        kv("System", "SPARK-PC"),
        kv("User", "SPARK-PC\\technician"),
        kv("Plate", "[GRE96ft] - Greiner 96 Flat Transparent Cat. No.: 655101/655161/655192"),
        kv("Lid lifter", "No lid"),
        [],
        ["List of actions in this measurement script:"],
        ["Plate"],
        [None, "Absorbance", None, None, None, None, "A710"],
        [None, "Absorbance", None, None, None, None, "A900"],
        [],
        kv("Name", "GRE96ft"),
        ["Plate layout"],
        kv("Plate area", "A1-H12"),
        [],
    ]
    for n, (name, wavelength) in enumerate((("A710", 710), ("A900", 900))):
        rows += [
            ["Mode", "Absorbance"],
            ["Name", name],
            kv("Measurement wavelength", wavelength, "nm"),
            kv("Number of flashes", 10),
            kv("Settle time", 50, "ms"),
            kv("Part of Plate", "A1-H12"),
            [],
            kv("Start Time", f"28/02/2025 09:1{n}"),
            kv("Temperature", (24.9, 25.0)[n], "°C"),
            [],
            ["<>", "Value", "Time [ms]"],
        ]
        for i, well in enumerate(wells(8, 12)):
            r, c = ROWS.index(well[0]), int(well[1:])
            value: Cell = "OVER" if (n, well) == (0, "E5") else od(n, r, c, 0.04 if n else 0.045)
            rows.append([well, value, i * 204])
        rows += [[], [], kv("End Time", f"28/02/2025 09:1{n + 1}"), []]
    data = _stray_degree(write_text(padded(rows, 7), ","))
    expected = {
        "note": "Invented SparkControl V2.3 CSV (UK locale: 28/02/2025 with '9:11 AM'), "
        "BOM and a stray cp1252 degree byte. Per-well read times (ms) are not kept.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "A710",
                "wavelength_nm": 710,
                "n_wells": 96,
                "read_time": "2025-02-28T09:10:00",
                "wells": {"A1": od(0, 0, 1), "H12": od(0, 7, 12), "B7": od(0, 1, 7)},
                "missing": {"E5": "OVER"},
                "metadata": {
                    "software_version": "SparkControl V2.3",
                    "reader_model": "Spark",
                    "reader_serial": "1811005203",
                    "temperature_c": "24.9",
                    "method": "SAA 710 endpoint",
                },
            },
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "A900",
                "wavelength_nm": 900,
                "n_wells": 96,
                "read_time": "2025-02-28T09:11:00",
                "wells": {"A1": od(1, 0, 1, 0.04), "E5": od(1, 4, 5, 0.04)},
                "metadata": {"temperature_c": "25"},
            },
        ],
    }
    return data, expected


SPARK_KINETIC_WELLS = wells(2, 12) + [f"C{c}" for c in range(1, 10)]


def sample_spark_kinetic_xlsx() -> tuple[bytes, Expected]:
    """SparkControl xlsx kinetic: title 'Label 1', cycles as rows, wells as columns, partial."""
    rows: Sheet = [
        *SPARK_HEADER[:1],
        ["Application: SparkControl", None, None, None, "V3.1 SP1"],
        *SPARK_HEADER[2:],
        kv("Date:", "2025-03-14"),
        kv("Time:", "10:20 AM"),
        kv("Plate", "[GRE96ft] - Greiner 96 Flat Transparent Cat. No.: 655101/655161/655192"),
        [],
        ["Mode", "Kinetic"],
        kv("Kinetic duration", "00:05:00", "hh:mm:ss"),
        kv("Interval time", "00:01:00", "hh:mm:ss"),
        [],
        ["Mode", "Absorbance"],
        ["Name", "Label 1"],
        kv("Measurement wavelength [nm]", 710),
        kv("Number of flashes", 25),
        kv("Part of Plate", "A1-B12;C1-C9"),
        [],
        kv("Start Time", "2025-03-14 10:20:41"),
        [],
        ["Label 1"],
        ["Cycle Nr.", "Time [s]", "Temp. [°C]", *SPARK_KINETIC_WELLS],
    ]
    times = [0.0, 60.012, 120.019, 180.027, 240.031, 300.04]
    for k, t in enumerate(times):
        rows.append(
            [
                k + 1,
                t,
                25.1,
                *(kinetic_od(k, ROWS.index(w[0]), int(w[1:])) for w in SPARK_KINETIC_WELLS),
            ]
        )
    rows += [[], kv("End Time", "2025-03-14 10:25:49")]
    data = write_xlsx({"Result sheet": rows})
    expected = {
        "note": "Invented SparkControl kinetic: cycles as rows; only A1-B12 and C1-C9 read.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "label": "Label 1",
                "wavelength_nm": 710,
                "rows": 8,
                "columns": 12,
                "n_wells": 33,
                "read_time": "2025-03-14T10:20:41",
                "wells": {"A1": kinetic_od(5, 0, 1), "C9": kinetic_od(5, 2, 9)},
                "metadata": {"software_version": "SparkControl V3.1 SP1", "temperature_c": "25.1"},
                "kinetic": {
                    "n_times": 6,
                    "times_s": {"0": 0.0, "1": 60.012, "5": 300.04},
                    "readings": {"B12": {"0": kinetic_od(0, 1, 12), "3": kinetic_od(3, 1, 12)}},
                },
            }
        ],
    }
    return data, expected


def sample_spark_kinetic_csv() -> tuple[bytes, Expected]:
    """SparkControl CSV kinetic: cycle, time and temperature lines, then a line per well."""
    read = set(wells(8, 6))
    rows: Sheet = [
        *SPARK_HEADER,
        kv("Date:", "14/03/2025"),
        kv("Time:", "3:20 PM"),
        kv("Plate", "[GRE96ft] - Greiner 96 Flat Transparent Cat. No.: 655101/655161/655192"),
        [],
        kv("Start Time", "14/03/2025 15:20"),
        kv("Temperature control", "On"),
        kv("Target temperature", 37, "°C"),
        [],
        ["Mode", "Kinetic"],
        kv("Kinetic duration", "00:30:00", "hh:mm:ss"),
        kv("Interval time", "00:10:00", "hh:mm:ss"),
        [],
        ["Mode", "Absorbance"],
        ["Name", "OD710"],
        kv("Measurement wavelength", 710, "nm"),
        kv("Number of flashes", 10),
        kv("Part of Plate", "A1-H6"),
        [],
        kv("Start Time", "14/03/2025 15:21"),
        [],
        ["OD710"],
        ["Cycle Nr.", 1, 2, 3, 4],
        ["Time [s]", 0.0, 600.12, 1200.31, 1800.47],
        ["Temp. [°C]", 36.8, 37.0, 37.1, 37.0],
    ]
    for well in wells(8, 12):
        r, c = ROWS.index(well[0]), int(well[1:])
        rows.append([well, *(kinetic_od(k, r, c) for k in range(4))] if well in read else [well])
    rows += [[], kv("End Time", "14/03/2025 15:51")]
    data = _stray_degree(write_text(padded(rows, 7), ","))
    expected = {
        "note": "Invented SparkControl CSV kinetic; wells A1-H6 read, the other 48 lines empty.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "label": "OD710",
                "wavelength_nm": 710,
                "n_wells": 48,
                "read_time": "2025-03-14T15:21:00",
                "wells": {"A1": kinetic_od(3, 0, 1), "H6": kinetic_od(3, 7, 6)},
                "metadata": {"temperature_c": "36.8", "part_of_plate": "A1-H6"},
                "kinetic": {
                    "n_times": 4,
                    "times_s": {"1": 600.12, "3": 1800.47},
                    "readings": {"D3": {"0": kinetic_od(0, 3, 3), "2": kinetic_od(2, 3, 3)}},
                },
            }
        ],
    }
    return data, expected


def sample_icontrol_text_384() -> tuple[bytes, Expected]:
    """i-control tab-separated text (LF line ends), US locale, a 384-well partial read."""
    rows = icontrol_header(
        date="3/14/2025",
        time_="2:07:55 PM",
        device="infinite M Plex",
        serial="2007003391",
        plate="Greiner 384 Flat Bottom Transparent Polystyrol [GRE384ft.pdfx]",
    )
    rows += icontrol_label(
        "Label1",
        710,
        "3/14/2025 2:08:10 PM",
        "25.2",
        grid(lambda r, c: od(0, r % 8, c % 12), 4, range(1, 25)),
        part="A1-D24",
    )
    data = write_text(padded(rows, 25), "\t", newline="\n").encode("utf-8")
    expected = {
        "note": "Invented tab-separated export of rows A-D of a 384-well plate.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "wavelength_nm": 710,
                "rows": 16,
                "columns": 24,
                "n_wells": 96,
                "read_time": "2025-03-14T14:08:10",
                "wells": {"A1": od(0, 0, 1), "D24": od(0, 3, 0), "C13": od(0, 2, 1)},
                "metadata": {"encoding": "utf-8", "reader_model": "infinite M Plex"},
            }
        ],
    }
    return data, expected


MAGELLAN_FOOTER = [
    "Date of measurement: 2025-03-14/Time of measurement: 11:42:07",
    "C:\\Users\\Public\\Documents\\Tecan\\Magellan\\mth\\SAA\\SAA_710_endpoint.mth",
    "C:\\Users\\Public\\Documents\\Tecan\\Magellan\\wsp\\14032025-003.wsp",
    "710nm",
    "technician",
    "Sunrise",
    "Instrument serial number: 1208004711",
    "Measurement 1:",
    "Measurement mode: Absorbance",
    "Measurement wavelength: 710 nm",
    "Read mode: Normal",
    "Number of flashes: 8",
    "Plate definition file: GRE96ft.pdfx",
    "Shake duration (Linear High): 10 s",
    "Unit: OD",
    "Meas. temperature: Raw data: 23.4 °C",
]


def sample_magellan_list() -> tuple[bytes, Expected]:
    """Magellan xlsx list: 'Well positions | Raw data', then the footer lines in column A."""
    rows: Sheet = [["Well positions", "Raw data"]]
    for well in wells(8, 12):
        r, c = ROWS.index(well[0]), int(well[1:])
        rows.append([well, "OVER" if well == "F10" else od(0, r, c)])
    rows += [[line] for line in MAGELLAN_FOOTER]
    data = write_xlsx({"Sheet1": rows})
    expected = {
        "note": "Invented Magellan 7 list export with its footer (allotropy's layout).",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "Raw data",
                "wavelength_nm": 710,
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "read_time": "2025-03-14T11:42:07",
                "wells": {"A1": od(0, 0, 1), "H12": od(0, 7, 12), "C4": od(0, 2, 4)},
                "missing": {"F10": "OVER"},
                "metadata": {
                    "software_version": "Magellan",
                    "reader_model": "Sunrise",
                    "reader_serial": "1208004711",
                    "user": "technician",
                    "temperature_c": "23.4",
                    "mode": "Absorbance",
                },
            }
        ],
    }
    return data, expected


MAGELLAN_KINETIC_TIMES = [0, 30, 60, 90, 120]


def sample_magellan_kinetic() -> tuple[bytes, Expected]:
    """Magellan kinetic sheet: one header line per time point, then well name + readings."""
    rows: Sheet = [
        [f"Friday, March 14, 2025: 13:0{n // 2}:{(n % 2) * 30:02d} / {t} sec / 37.{n}°C"]
        for n, t in enumerate(MAGELLAN_KINETIC_TIMES)
    ]
    rows.append([])
    for row in range(8):
        line: list[Cell] = []
        for col in range(1, 13):
            line += [f"{ROWS[row]}{col}", *(kinetic_od(k, row, col) for k in range(5))]
        rows.append(line)
    data = write_xlsx({"Sheet1": rows})
    expected = {
        "note": "Invented Magellan kinetic sheet (MTPHandler's layout): 5 time points, "
        "each plate row on one line as 'A1, 5 readings, A2, 5 readings, …'.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "kind": "kinetic",
                "n_wells": 96,
                "read_time": "2025-03-14T13:00:00",
                "wells": {"A1": kinetic_od(4, 0, 1), "H12": kinetic_od(4, 7, 12)},
                "metadata": {"software_version": "Magellan", "temperature_c": "37"},
                "kinetic": {
                    "n_times": 5,
                    "times_s": {"0": 0, "1": 30, "4": 120},
                    "readings": {"E7": {"0": kinetic_od(0, 4, 7), "4": kinetic_od(4, 4, 7)}},
                },
            }
        ],
    }
    return data, expected


def sample_magellan_compact() -> tuple[bytes, Expected]:
    """Magellan Pro .asc: tab text, sample id before the position, the compact footer."""
    lines = []
    for well in wells(8, 12):
        r, c = ROWS.index(well[0]), int(well[1:])
        value = "OVER" if well == "A3" else text(od(0, r, c))
        lines.append(f"SPL{r * 12 + c}\t{well}\t{value}")
    footer = [
        "Date of measurement: 2025-03-14/Time of measurement: 15:29:06",
        "SAA 450.mth",
        "C:\\Users\\Public\\Documents\\Tecan\\Magellan Pro\\wsp\\SAA_run_7.wsp",
        "450nm",
        "Scan Barcode: SAA-MP-0007",
        "infinite 200Pro",
        "Instrument serial number: 2106010740",
        "Plate",
        "Plate Description: [COS96fb] - Costar 96 Flat Black",
        "Plate with Cover: No",
        "Barcode: No",
        "  Part of Plate",
        "  Range: A1:H12",
        "    Absorbance",
        "    Measurement Wavelength: 450 nm",
        "    Read Mode: Normal",
        "    Number of Flashes: 25",
        "    Settle Time: 0 ms",
        "    Label: SAA450",
        "Meas. temperature: SAA450: 20.5 °C",
        "Date: 2025-03-14, Time: 15:29:06",
    ]
    data = ("\r\n".join(lines + footer) + "\r\n").encode("cp1252")
    expected = {
        "note": "Invented Magellan Pro compact export (tab text, cp1252).",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": "tecan",
                "label": "SAA450",
                "wavelength_nm": 450,
                "plate_id": "SAA-MP-0007",
                "n_wells": 96,
                "read_time": "2025-03-14T15:29:06",
                "wells": {"A1": od(0, 0, 1), "H12": od(0, 7, 12), "A4": od(0, 0, 4)},
                "missing": {"A3": "OVER"},
                "metadata": {
                    "reader_model": "infinite 200Pro",
                    "reader_serial": "2106010740",
                    "temperature_c": "20.5",
                    "part_of_plate": "A1:H12",
                },
            }
        ],
    }
    return data, expected


SAMPLES: dict[str, Callable[[], tuple[bytes | None, Expected]]] = {
    "icontrol_endpoint_2labels_A710_A490.xlsx": sample_icontrol_two_labels,
    "icontrol_multisheet_partial_italian.xls": sample_icontrol_multisheet_italian,
    "icontrol_legacy_biff_A405.xls": sample_icontrol_biff,
    "icontrol_kinetic_A405.xlsx": sample_icontrol_kinetic,
    "icontrol_german_384_A710.xlsx": sample_icontrol_german,
    "icontrol_1.11_kinetic_OD_LUM.csv": sample_icontrol_csv_kinetic,
    "icontrol_german_semicolon_decimal_comma.csv": sample_icontrol_semicolon,
    "icontrol_text_384_partial.txt": sample_icontrol_text_384,
    "sparkcontrol_endpoint_list_A710_A900.csv": sample_spark_csv_list,
    "sparkcontrol_kinetic_partial_A710.xlsx": sample_spark_kinetic_xlsx,
    "sparkcontrol_kinetic_wellrows_A710.csv": sample_spark_kinetic_csv,
    "magellan_list_A710.xlsx": sample_magellan_list,
    "magellan_kinetic_A405.xlsx": sample_magellan_kinetic,
    "magellan_pro_compact_A450.asc": sample_magellan_compact,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file would change")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, make in SAMPLES.items():
        data, expected = make()
        expected = {"source": f"tecan/{name}", **expected}
        outputs: list[tuple[Path, bytes | None]] = [
            (OUT / name, data),
            (OUT / f"{name}.expected.json", (json.dumps(expected, indent=2) + "\n").encode()),
        ]
        for path, content in outputs:
            if content is None:
                print(f"skipped {path.name}: xlwt is not installed", file=sys.stderr)
                continue
            if path.is_file() and path.read_bytes() == content:
                continue
            changed.append(path.name)
            if not args.check:
                path.write_bytes(content)
    if args.check and changed:
        print("would change: " + ", ".join(changed), file=sys.stderr)
        return 1
    for name in changed:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
