"""Write the BioTek Gen5 format samples in sample_files/biotek_gen5/ (invented data).

    python tools/samples/make_biotek_gen5.py

Each case is designed here (header, procedure, every value and token) and written both as
the export Gen5 would write and as ``<case>.expected.json`` holding the designed values, so
the expectations come from the design, not from the parser. The AHA demo run
(``RUN-G5-001.*``) is written by tools/make_samples.py and is not touched here.

Cases:

- ``gen5_endpoint_multiplate_384_utf16.txt``: two plates in one text file (repeated
  ``Software Version`` headers), 384 wells, three stacked reads per row (``450``,
  ``Blank 450``, ``[Concentration]``), barcodes, ``OVRFLW``, ``MISSED``, ``?????`` and
  ``*value*`` tokens; UTF-16 LE with BOM, CRLF.
- ``gen5_kinetic_24well_cp1252.txt``: Gen5 2.x kinetic text, 24 wells, ``T° 405``
  temperature column (0xB0 in cp1252), raw and blank-corrected kinetic tables, empty
  ``0:00:00`` padding rows after the last completed cycle, ``MISSED``/``OVRFLW`` readings,
  a kinetic-analysis Results grid (``Max V [405]`` with ``?????``); LF line endings.
- ``gen5_kinetic_96_excel.xlsx``: an Excel-written workbook: grid one column right, Date
  and Time as date/time cells, a 29-hour kinetic at 340 nm whose Time cells pass one day
  (stored as 1900-01-01 datetimes under ``h:mm:ss``), Layout grid, ``OVRFLW``/``MISSED``.
- ``gen5_kinetic_48well_dayoffset.xlsx``: a non-Excel writer's workbook: every time cell
  (the header's Time of day too) two days late, the first kinetic Time cell empty, later
  ones stored as ``[h]:mm:ss`` durations; 48 wells.
- ``gen5_multiplate_6well.xlsx``: one sheet per plate (``Plate N - Sheet1``), 6-well
  endpoint at 600 nm with a ``Blank 600`` read, ``Actual Temperature:``, an ``OVRFLW`` well
  with ``?????`` in its blank-corrected value, a sheet without Date/Time lines.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "sample_files" / "biotek_gen5"
LETTERS = "ABCDEFGHIJKLMNOP"
FORMAT = "biotek_gen5"

Json = dict[str, Any]


def wells(rows: int, columns: int) -> list[str]:
    return [f"{LETTERS[r]}{col}" for r in range(rows) for col in range(1, columns + 1)]


def od(seed: int, well_index: int, scale: float = 1.0, base: float = 0.045) -> str:
    """A deterministic invented absorbance with three decimals."""
    wobble = ((seed * 7919 + well_index * 104729) % 997) / 997
    return f"{base + scale * wobble:.3f}"


def save_workbook(book: Any, name: str) -> None:
    """Save with fixed timestamps (zip entries and document properties): same bytes every run."""
    buffer = io.BytesIO()
    book.save(buffer)
    stamp = "2026-11-20T00:00:00Z"
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                for tag in ("created", "modified"):
                    text = re.sub(
                        rf"(<dcterms:{tag}[^>]*>)[^<]*(</dcterms:{tag}>)",
                        rf"\g<1>{stamp}\g<2>",
                        text,
                    )
                data = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=(2026, 11, 20, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    (OUT / name).write_bytes(out.getvalue())


def write_expected(name: str, expected: Json) -> None:
    path = OUT / f"{name}.expected.json"
    path.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def text_header(
    *,
    version: str,
    plate: str,
    day: str,
    clock: str,
    reader: str,
    serial: str,
    extra: tuple[str, ...] = (),
) -> list[str]:
    return [
        "",
        "",
        f"Software Version\t{version}",
        "",
        "",
        "",
        "Experiment File Path:\tC:\\Users\\Public\\Documents\\Experiments\\SAA kinetic.xpt",
        "Protocol File Path:\tC:\\Users\\Public\\Documents\\Protocols\\SAA kinetic.prt",
        "",
        "",
        "",
        f"Plate Number\t{plate}",
        *extra,
        f"Date\t{day}",
        f"Time\t{clock}",
        f"Reader Type:\t{reader}",
        f"Reader Serial Number:\t{serial}",
        "Reading Type\tReader",
        "",
    ]


# --- 1. two 384-well plates, stacked reads, every token, UTF-16 ----------------------------


def endpoint_multiplate_384() -> None:
    name = "gen5_endpoint_multiplate_384_utf16.txt"
    names = wells(16, 24)
    labels = ("450", "Blank 450", "[Concentration]")
    plates = [
        ("Plate 1", "SAA-384-0001", "2:07:55 PM", "2026-11-20T14:07:55", "24.9"),
        ("Plate 2", "SAA-384-0002", "2:31:10 PM", "2026-11-20T14:31:10", "25.3"),
    ]
    tokens = {
        # (plate, label, well) -> token written instead of the number
        (0, "450", "P24"): "OVRFLW",
        (0, "Blank 450", "P24"): "OVRFLW",
        (0, "[Concentration]", "P24"): "?????",
        (0, "450", "B7"): "MISSED",
        (0, "Blank 450", "B7"): "MISSED",
        (0, "[Concentration]", "B7"): "?????",
        (1, "[Concentration]", "C3"): "*98.765*",
        (1, "[Concentration]", "A1"): "?????",
    }
    lines: list[str] = []
    expected_plates: list[Json] = []
    for p, (plate, barcode, clock, iso, temperature) in enumerate(plates):
        lines += text_header(
            version="3.11.19",
            plate=plate,
            day="11/20/2026",
            clock=clock,
            reader="Synergy H1",
            serial="21030512",
            extra=(f"Barcode\t{barcode}",),
        )
        lines += [
            "Procedure Details",
            "",
            "Plate Type\tGreiner 384 F bottom",
            "Set Temperature\tSetpoint 25°C",
            "Read\tAbsorbance Endpoint",
            "\tFull Plate",
            "\tWavelengths:  450",
            "\tRead Speed: Normal,  Delay: 50 msec,  Measurements/Data Point: 8",
            "",
            "Results",
            f"Actual Temperature:\t{temperature}",
            "",
            "\t" + "\t".join(str(n) for n in range(1, 25)),
        ]
        values: dict[str, dict[str, str]] = {label: {} for label in labels}
        for r in range(16):
            for i, label in enumerate(labels):
                cells = []
                for col in range(1, 25):
                    well = f"{LETTERS[r]}{col}"
                    index = r * 24 + col
                    raw = tokens.get((p, label, well))
                    if raw is None:
                        raw = (
                            od(p * 10 + 1, index, 2.5, 0.05)
                            if i == 0
                            else od(p * 10 + 2, index, 2.4, 0.001)
                            if i == 1
                            else f"{float(od(p * 10 + 3, index, 150, 0)):.3f}"
                        )
                    values[label][well] = raw
                    cells.append(raw)
                letter = LETTERS[r] if i == 0 else ""
                lines.append(f"{letter}\t" + "\t".join(cells) + f"\t{label}")
        lines += ["", ""]
        for i, label in enumerate(labels):
            picked = ["A1", "A24", "H12", "P1", "P24", "B7", "C3"]
            entry: Json = {
                "plate_index": p,
                "format": FORMAT,
                "kind": "endpoint",
                "label": label,
                "derived": i > 0,
                "plate_id": barcode,
                "rows": 16,
                "columns": 24,
                "n_wells": 384,
                "read_time": iso,
                **_split(values[label], picked),
                "metadata": {
                    "reader_model": "Synergy H1",
                    "reader_serial": "21030512",
                    "software_version": "Gen5 3.11.19",
                    "plate_id": barcode,
                    "temperature_c": temperature,
                    "read_time": iso,
                    "encoding": "utf-16",
                },
            }
            if i < 2:
                entry["wavelength_nm"] = 450
            expected_plates.append(entry)
    assert len(names) == 384
    text = "\r\n".join(lines) + "\r\n"
    (OUT / name).write_bytes(text.encode("utf-16"))
    write_expected(
        name,
        {
            "source": f"biotek_gen5/{name}",
            "note": "designed in tools/samples/make_biotek_gen5.py (endpoint_multiplate_384)",
            "n_reads": 6,
            "plates": expected_plates,
        },
    )


def _split(values: dict[str, str], picked: list[str]) -> Json:
    """Expected 'wells' (numbers) and 'missing' (tokens) for the picked wells."""
    out: Json = {"wells": {}, "missing": {}, "reasons": {}}
    reasons = {"OVRFLW": "overflow", "MISSED": "not read", "?????": "not calculable"}
    for well in picked:
        raw = values[well]
        try:
            out["wells"][well] = float(raw)
        except ValueError:
            out["missing"][well] = raw
            out["reasons"][well] = reasons.get(raw, "masked" if raw.startswith("*") else "")
    return out


# --- 2. kinetic text, 24 wells, cp1252, padding rows --------------------------------------


def kinetic_24_cp1252() -> None:
    name = "gen5_kinetic_24well_cp1252.txt"
    names = wells(4, 6)
    reads, planned, interval = 10, 13, 60
    lines = text_header(
        version="2.09.1",
        plate="Plate 1",
        day="11/20/2026",
        clock="8:05:12 AM",
        reader="Synergy HTX",
        serial="1912345",
    )
    lines += [
        "Procedure Details",
        "",
        "Plate Type\tCostar 24 flat bottom",
        "Set Temperature\tSetpoint 37°C",
        f"Start Kinetic\tRuntime 0:12:00 (HH:MM:SS), Interval 0:01:00, {planned} Reads",
        "    Read\tAbsorbance Endpoint",
        "\tFull Plate",
        "\tWavelengths:  405",
        "\tRead Speed: Normal,  Delay: 100 msec,  Measurements/Data Point: 8",
        "End Kinetic\t",
        "",
    ]
    temperatures = [f"{36.6 + 0.1 * min(k, 4):.1f}" for k in range(reads)]

    def raw_value(k: int, w: int, well: str, blank: bool) -> str:
        if well == "A1" and k == 2:
            return "MISSED"
        if well == "C6" and k >= 7:
            return "?????" if blank else "OVRFLW"
        rate = 0.004 + 0.002 * (w % 6)
        value = 0.08 + rate * k + float(od(k, w, 0.003, 0))
        return f"{value - (0.05 if blank else 0):.3f}"

    series: dict[str, dict[str, list[str]]] = {}
    for title, blank in (("405", False), ("Blank 405", True)):
        lines += [title, "", "Time\tT° 405\t" + "\t".join(names)]
        table = {
            well: [raw_value(k, w, well, blank) for k in range(reads)]
            for w, well in enumerate(names)
        }
        series[title] = table
        for k in range(reads):
            clock = f"0:{k * interval // 60:02d}:00"
            row = [table[well][k] for well in names]
            lines.append(f"{clock}\t{temperatures[k]}\t" + "\t".join(row))
        for _ in range(planned - reads):
            lines.append("0:00:00\t" + "\t" * len(names))
        lines.append("")
    max_v = {well: f"{(0.004 + 0.002 * (w % 6)) * 1000:.3f}" for w, well in enumerate(names)}
    max_v["C6"] = "?????"
    lines += ["Results", "\t1\t2\t3\t4\t5\t6"]
    for r in range(4):
        row = [max_v[f"{LETTERS[r]}{col}"] for col in range(1, 7)]
        lines.append(f"{LETTERS[r]}\t" + "\t".join(row) + "\tMax V [405]")
    lines += ["", ""]
    (OUT / name).write_bytes(("\n".join(lines)).encode("cp1252"))

    plates: list[Json] = []
    for title, derived in (("405", False), ("Blank 405", True)):
        table = series[title]
        plates.append(
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": title,
                "wavelength_nm": 405,
                "derived": derived,
                "plate_id": None,
                "rows": 4,
                "columns": 6,
                "n_wells": 24,
                "read_time": "2026-11-20T08:05:12",
                "wells": {"A1": float(table["A1"][-1]), "D6": float(table["D6"][-1])},
                "missing": {"C6": table["C6"][-1]},
                "metadata": {
                    "reader_model": "Synergy HTX",
                    "reader_serial": "1912345",
                    "software_version": "Gen5 2.09.1",
                    "temperature_c": temperatures[-1],
                    "encoding": "cp1252",
                    "temperature_column": "T° 405",
                    "kinetic_padding_rows_dropped": str(planned - reads),
                },
                "kinetic": {
                    "n_times": reads,
                    "times_s": {"0": 0.0, "1": 60.0, str(reads - 1): 60.0 * (reads - 1)},
                    "readings": {
                        "A1": {"0": float(table["A1"][0]), "3": float(table["A1"][3])},
                        "C6": {"6": float(table["C6"][6])},
                        "B4": {"5": float(table["B4"][5])},
                    },
                    "missing": {"A1": {"2": "MISSED"}, "C6": {"7": table["C6"][7]}},
                },
            }
        )
    plates.append(
        {
            "plate_index": 0,
            "format": FORMAT,
            "kind": "endpoint",
            "label": "Max V [405]",
            "derived": True,
            "wavelength_nm": 405,
            "rows": 4,
            "columns": 6,
            "n_wells": 24,
            "wells": {"A1": float(max_v["A1"]), "D6": float(max_v["D6"])},
            "missing": {"C6": "?????"},
            "reasons": {"C6": "not calculable"},
        }
    )
    write_expected(
        name,
        {
            "source": f"biotek_gen5/{name}",
            "note": "designed in tools/samples/make_biotek_gen5.py (kinetic_24_cp1252)",
            "n_reads": 3,
            "plates": plates,
        },
    )


# --- workbooks -----------------------------------------------------------------------------


def _sheet_header(ws: Any, rows: list[tuple[str, Any, str | None]], start: int = 2) -> int:
    """Header lines in column A (key) and B (value); returns the next free row."""
    r = start
    for key, value, number_format in rows:
        if key or value is not None:
            ws.cell(r, 1, key or None)
            cell = ws.cell(r, 2, value)
            if number_format:
                cell.number_format = number_format
        r += 1
    return r


def _grid(
    ws: Any,
    top: int,
    columns: int,
    rows: int,
    reads: list[tuple[str | None, dict[str, Any]]],
) -> int:
    """A grid one column right of the text layout: header in row ``top``, letters in B."""
    for col in range(1, columns + 1):
        ws.cell(top, 2 + col, col)
    r = top + 1
    for row in range(rows):
        for i, (label, values) in enumerate(reads):
            if i == 0:
                ws.cell(r, 2, LETTERS[row])
            for col in range(1, columns + 1):
                value = values.get(f"{LETTERS[row]}{col}")
                if value is not None:
                    ws.cell(r, 2 + col, value)
            if label:
                ws.cell(r, 3 + columns, label)
            r += 1
    return r


def kinetic_96_excel() -> None:
    from openpyxl import Workbook

    name = "gen5_kinetic_96_excel.xlsx"
    names = wells(8, 12)
    reads = 30
    interval = 3600
    book = Workbook()
    ws = book.active
    ws.title = "Plate 1 - Sheet1"
    r = _sheet_header(
        ws,
        [
            ("Software Version", "3.14.03", None),
            ("", None, None),
            ("Experiment File Path:", "C:\\Gen5\\Experiments\\SAA NADH 340.xpt", None),
            ("Protocol File Path:", "C:\\Gen5\\Protocols\\SAA NADH 340.prt", None),
            ("Plate Number", "Plate 1", None),
            ("Date", datetime(2026, 11, 20), "mm-dd-yy"),  # noqa: DTZ001 - an Excel cell
            ("Time", time(16, 42, 5), "h:mm:ss AM/PM"),
            ("Reader Type:", "Epoch 2", None),
            ("Reader Serial Number:", 1806123, None),
            ("Reading Type", "Reader", None),
            ("", None, None),
            ("Procedure Details", None, None),
            ("Plate Type", "96 WELL PLATE (Use plate lid)", None),
            ("Set Temperature", "Setpoint 37°C", None),
            ("Start Kinetic", "Runtime 29:00:00 (HH:MM:SS), Interval 1:00:00, 30 Reads", None),
            ("    Read", "Absorbance Endpoint", None),
            ("", "Full Plate", None),
            ("", "Wavelengths:  340", None),
            ("", "Read Speed: Normal,  Delay: 100 msec,  Measurements/Data Point: 8", None),
            ("End Kinetic", None, None),
        ],
    )
    r += 1
    ws.cell(r, 1, "Layout")
    layout = {well: f"SPL{i + 1}" for i, well in enumerate(names)}
    r = _grid(ws, r + 2, 12, 8, [("Well ID", layout)]) + 1
    ws.cell(r, 1, 340)
    r += 2
    ws.cell(r, 2, "Time")
    ws.cell(r, 3, "T° 340")
    for j, well in enumerate(names):
        ws.cell(r, 4 + j, well)
    header_row = r
    table: dict[str, list[Any]] = {well: [] for well in names}
    for k in range(reads):
        r += 1
        seconds = k * interval
        days, rest = divmod(seconds, 86400)
        clock = time(rest // 3600, rest % 3600 // 60)
        # Excel keeps the day in the serial; past one day openpyxl writes a 1900 datetime.
        cell_value: Any = (
            clock if days == 0 else datetime(1900, 1, days, rest // 3600, rest % 3600 // 60)  # noqa: DTZ001
        )
        time_cell = ws.cell(r, 2, cell_value)
        time_cell.number_format = "h:mm:ss"
        ws.cell(r, 3, round(36.8 + 0.1 * min(k, 2), 1))
        for j, well in enumerate(names):
            if well == "H12" and k >= 25:
                value: Any = "OVRFLW"
            elif well == "D4" and k == 5:
                value = "MISSED"
            else:
                value = round(1.2 - (0.002 + 0.0004 * (j % 12)) * k + float(od(k, j, 0.002, 0)), 3)
            ws.cell(r, 4 + j, value)
            table[well].append(value)
    r += 3
    ws.cell(r, 1, "Results")
    max_v = {well: round(-(2 + 0.4 * (j % 12)) / 60, 3) for j, well in enumerate(names)}
    max_v_cells: dict[str, Any] = dict(max_v)
    max_v_cells["H12"] = "?????"
    _grid(ws, r + 2, 12, 8, [("Max V [340]", max_v_cells)])
    save_workbook(book, name)

    write_expected(
        name,
        {
            "source": f"biotek_gen5/{name}",
            "note": (
                "designed in tools/samples/make_biotek_gen5.py (kinetic_96_excel); the kinetic "
                f"header is sheet row {header_row}; times past 24 h are 1900-01-01 datetimes"
            ),
            "n_reads": 2,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "kinetic",
                    "label": "340",
                    "wavelength_nm": 340,
                    "derived": False,
                    "plate_id": None,
                    "rows": 8,
                    "columns": 12,
                    "n_wells": 96,
                    "read_time": "2026-11-20T16:42:05",
                    "wells": {"A1": table["A1"][-1], "G7": table["G7"][-1]},
                    "missing": {"H12": "OVRFLW"},
                    "reasons": {"H12": "overflow"},
                    "metadata": {
                        "reader_model": "Epoch 2",
                        "reader_serial": "1806123",
                        "software_version": "Gen5 3.14.03",
                        "sheet": "Plate 1 - Sheet1",
                        "temperature_c": "37",
                        "kinetic_reads": "30",
                    },
                    "kinetic": {
                        "n_times": reads,
                        "times_s": {"0": 0.0, "1": 3600.0, "24": 86400.0, "29": 104400.0},
                        "readings": {
                            "A1": {"0": table["A1"][0], "29": table["A1"][29]},
                            "D4": {"4": table["D4"][4], "6": table["D4"][6]},
                            "H12": {"24": table["H12"][24]},
                        },
                        "missing": {"D4": {"5": "MISSED"}, "H12": {"25": "OVRFLW"}},
                    },
                },
                {
                    "plate_index": 0,
                    "kind": "endpoint",
                    "label": "Max V [340]",
                    "derived": True,
                    "wavelength_nm": 340,
                    "n_wells": 96,
                    "wells": {"A1": max_v["A1"], "H11": max_v["H11"]},
                    "missing": {"H12": "?????"},
                },
            ],
        },
    )


def kinetic_48_day_offset() -> None:
    from openpyxl import Workbook

    name = "gen5_kinetic_48well_dayoffset.xlsx"
    names = wells(6, 8)
    reads, interval, offset_days = 20, 900, 2
    book = Workbook()
    ws = book.active
    ws.title = "Plate 1 - Sheet1"
    header_time = offset_days + (9 * 3600 + 12 * 60 + 44) / 86400  # 09:12:44 two days late
    r = _sheet_header(
        ws,
        [
            ("Software Version", "3.08.01", None),
            ("", None, None),
            ("Experiment File Path:", "O:\\plate reader\\growth48.xpt", None),
            ("Protocol File Path:", "O:\\plate reader\\OD600_15min.prt", None),
            ("Plate Number", "Plate 1", None),
            ("Date", 46346, "mm-dd-yy"),  # 2026-11-20 as an Excel serial
            ("Time", header_time, "h:mm:ss"),
            ("Reader Type:", "Cytation5", None),
            ("Reader Serial Number:", "Unknown", None),
            ("Reading Type", "Reader", None),
            ("", None, None),
            ("Procedure Details", None, None),
            ("Plate Type", "CellStar 48", None),
            ("Set Temperature", "Setpoint 30°C", None),
            ("Start Kinetic", "Runtime 4:45:00 (HH:MM:SS), Interval 0:15:00, 20 Reads", None),
            ("    Read", "Absorbance Endpoint", None),
            ("", "Full Plate", None),
            ("", "Wavelengths:  600", None),
            ("End Kinetic", None, None),
        ],
    )
    r += 1
    ws.cell(r, 1, 600)
    r += 2
    ws.cell(r, 2, "Time")
    ws.cell(r, 3, "T° 600")
    for j, well in enumerate(names):
        ws.cell(r, 4 + j, well)
    table: dict[str, list[float]] = {well: [] for well in names}
    for k in range(reads):
        r += 1
        if k:  # the writer leaves the first time (0:00:00) out
            cell = ws.cell(r, 2, offset_days + k * interval / 86400)
            cell.number_format = "h:mm:ss" if k < 10 else "[h]:mm:ss"
        ws.cell(r, 3, 30.0 if k else 29.8)
        for j, well in enumerate(names):
            value = round(0.09 + 0.01 * k * (1 + j % 4) + float(od(k, j, 0.004, 0)), 3)
            ws.cell(r, 4 + j, value)
            table[well].append(value)
    save_workbook(book, name)

    write_expected(
        name,
        {
            "source": f"biotek_gen5/{name}",
            "note": (
                "designed in tools/samples/make_biotek_gen5.py (kinetic_48_day_offset): every "
                "time cell is 2 days late, the header Time (serial 2.38) too; first time empty"
            ),
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "kinetic",
                    "label": "600",
                    "wavelength_nm": 600,
                    "derived": False,
                    "rows": 6,
                    "columns": 8,
                    "n_wells": 48,
                    "read_time": "2026-11-20T09:12:44",
                    "wells": {"A1": table["A1"][-1], "F8": table["F8"][-1]},
                    "metadata": {
                        "reader_model": "Cytation5",
                        "reader_serial": "Unknown",
                        "time_cells_day_offset": "2",
                        "temperature_c": "30",
                    },
                    "kinetic": {
                        "n_times": reads,
                        "times_s": {"0": 0.0, "1": 900.0, "10": 9000.0, "19": 17100.0},
                        "readings": {
                            "A1": {"0": table["A1"][0], "19": table["A1"][19]},
                            "C5": {"10": table["C5"][10]},
                        },
                    },
                }
            ],
        },
    )


def multiplate_6well() -> None:
    from openpyxl import Workbook

    name = "gen5_multiplate_6well.xlsx"
    book = Workbook()
    book.remove(book.active)
    plates: list[Json] = []
    runs = [
        (date(2026, 11, 20), time(10, 3, 7), "30.7"),
        (date(2026, 11, 20), time(10, 4, 57), "35.2"),
        (None, None, "45"),  # a sheet Gen5 wrote without its Date/Time lines
    ]
    for p, (day, clock, temperature) in enumerate(runs):
        ws = book.create_sheet(f"Plate {p + 1} - Sheet1")
        header: list[tuple[str, Any, str | None]] = [
            ("Software Version", "3.03.14", None),
            ("", None, None),
            ("Experiment File Path:", "C:\\Users\\Temp\\growth6.xpt", None),
            ("Protocol File Path:", "C:\\Users\\Temp\\OD600_6well.prt", None),
            ("Plate Number", f"Plate {p + 1}", None),
        ]
        if day is not None and clock is not None:
            header += [
                ("Date", datetime.combine(day, time()), "mm-dd-yy"),
                ("Time", clock, "h:mm:ss AM/PM"),
            ]
        header += [
            ("Reader Type:", "Synergy H1", None),
            ("Reader Serial Number:", 17072623, None),
            ("Reading Type", "Reader", None),
            ("", None, None),
            ("Procedure Details", None, None),
            ("Plate Type", "Sarstedt 6-well (Use plate lid)", None),
            ("Read", "OD Single-point", None),
            ("", "Absorbance Endpoint", None),
            ("", "Full Plate", None),
            ("", "Wavelengths:  600", None),
        ]
        r = _sheet_header(ws, header) + 1
        ws.cell(r, 1, "Results")
        ws.cell(r + 1, 1, "Actual Temperature:")
        ws.cell(r + 1, 2, float(temperature) if "." in temperature else int(temperature))
        raw: dict[str, Any] = {
            w: round(0.08 + 0.31 * p + 0.013 * i, 3) for i, w in enumerate(wells(2, 3))
        }
        blank: dict[str, Any] = {w: round(v - 0.04, 3) for w, v in raw.items()}
        if p == 1:
            raw["B2"] = "OVRFLW"
            blank["B2"] = "?????"
        _grid(ws, r + 3, 3, 2, [("OD Single-point:600", raw), ("Blank 600", blank)])
        iso = datetime.combine(day, clock).isoformat() if day and clock else None
        for label, values, derived in (
            ("OD Single-point:600", raw, False),
            ("Blank 600", blank, True),
        ):
            entry: Json = {
                "plate_index": p,
                "format": FORMAT,
                "kind": "endpoint",
                "label": label,
                "wavelength_nm": 600,
                "derived": derived,
                "plate_id": None,
                "rows": 2,
                "columns": 3,
                "n_wells": 6,
                "wells": {w: v for w, v in values.items() if not isinstance(v, str)},
                "missing": {w: v for w, v in values.items() if isinstance(v, str)},
                "metadata": {
                    "sheet": f"Plate {p + 1} - Sheet1",
                    "temperature_c": temperature,
                    "reader_model": "Synergy H1",
                    "reader_serial": "17072623",
                },
            }
            if iso:
                entry["read_time"] = iso
                entry["metadata"]["read_time"] = iso
            plates.append(entry)
    save_workbook(book, name)
    write_expected(
        name,
        {
            "source": f"biotek_gen5/{name}",
            "note": "designed in tools/samples/make_biotek_gen5.py (multiplate_6well)",
            "n_reads": 6,
            "plates": plates,
        },
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    endpoint_multiplate_384()
    kinetic_24_cp1252()
    kinetic_96_excel()
    kinetic_48_day_offset()
    multiplate_6well()
    for path in sorted(OUT.glob("gen5_*")):
        print(f"{path.relative_to(OUT.parent.parent)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
