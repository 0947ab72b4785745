"""Write invented BMG Labtech sample exports and their expected JSON.

    python tools/samples/make_bmg.py

The exports imitate the layouts seen in real BMG files: MARS CSV in its table
view (endpoint and kinetic, comma-delimited and padded with trailing commas, or
semicolon-delimited with decimal commas as German MARS writes them) and in its
plate view (one A..H grid per read), and the Omega reader-control ``.DAT``
text (latin-1, YY/MM/DD, space-padded values without a leading zero). The
expected JSON is computed here from the values written, never from the parser.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "sample_files" / "bmg"
FORMAT = "bmg"
ROWS = "ABCDEFGH"
WELLS = [f"{r}{c}" for r in ROWS for c in range(1, 13)]


def od(well_index: int, reading: int = 0, wavelength: int = 450) -> float:
    """A deterministic, plausible absorbance that rises with time."""
    base = 0.048 + (well_index % 12) * 0.083 + (well_index // 12) * 0.011
    slope = 0.0018 * (1 + well_index % 4) * (450.0 / wavelength)
    return round(base + slope * reading * (1 + 0.02 * math.sin(well_index + reading)), 3)


def write(name: str, data: bytes, expected: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_bytes(data)
    expected = {"source": f"bmg/{name}", **expected}
    text = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    (OUT / f"{name}.expected.json").write_text(text, encoding="utf-8")


def padded(cells: list[str], width: int, delimiter: str = ",") -> str:
    """A MARS line: the cells, then empty fields up to the export's fixed width."""
    return delimiter.join(cells + [""] * (width - len(cells)))


def mars_header(
    *, delimiter: str, date: str, time: str, id1: str, id2: str, mode: str, width: int
) -> list[str]:
    d = delimiter
    return [
        padded(
            [
                "User: LAB",
                "Path: C:\\Program Files (x86)\\BMG\\CLARIOstar\\User\\Data",
                "Test run no.: 212",
            ],
            width,
            d,
        ),
        padded(["Test name: SAA_AHA_710", f"Date: {date}", f"Time: {time}"], width, d),
        padded([], width, d),
        padded([f"ID1: {id1}", *id2.split(d)], width, d),
        padded([mode], width, d),
        padded([], width, d),
    ]


# --- MARS table view, endpoint, comma, padded -------------------------------------------------


def table_endpoint() -> None:
    """Two raw reads and a blank-corrected read; an 'overflow' well; an ID with backticks."""
    width = 12
    lines = mars_header(
        delimiter=",",
        date="14/03/2025",
        time="09:12:40",
        id1="SAA-PLATE-0042",
        id2="ID2: Script `SAA_AHA`, step 2, 14 March 2025",
        mode="Absorbance",
        width=width,
    )
    lines.append(
        padded(
            [
                "Well",
                "Content",
                "Raw Data (710)",
                "Raw Data (405)",
                "Blank corrected based on Raw Data (710)",
            ],
            width,
        )
    )
    blank = od(0, 0, 710)
    wells_710: dict[str, float] = {}
    wells_405: dict[str, float] = {}
    corrected: dict[str, float] = {}
    for i, well in enumerate(WELLS):
        row, col = well[0], int(well[1:])
        v710, v405 = od(i, 0, 710), od(i, 0, 405)
        content = "Blank B" if i == 0 else f"Sample X{i}"
        raw710 = "overflow" if well == "C4" else f"{v710}"
        cells = [f"{row}{col:02d}", content, raw710, f"{v405}"]
        if well != "C4":
            wells_710[well] = v710
            corrected[well] = round(v710 - blank, 3)
            cells.append(f"{corrected[well]}")
        else:
            cells.append("overflow")
        wells_405[well] = v405
        lines.append(padded(cells, width))
    data = ("\r\n".join(lines) + "\r\n").encode("ascii")
    pick = ["A1", "A12", "D6", "H12"]
    expected = {
        "note": "Invented MARS table view, endpoint, comma-delimited, every line padded to 12 "
        "fields; C04 holds 'overflow'; ID2 spills over three fields and has backticks.",
        "n_reads": 3,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Raw Data (710)",
                "wavelength_nm": 710,
                "plate_id": "SAA-PLATE-0042",
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-03-14T09:12:40",
                "wells": {w: wells_710[w] for w in pick},
                "missing": {"C4": "overflow"},
                "reasons": {"C4": "overflow"},
                "metadata": {
                    "reader_model": "CLARIOstar",
                    "plate_id": "SAA-PLATE-0042",
                    "id2": "Script `SAA_AHA`, step 2, 14 March 2025",
                    "view": "table",
                    "delimiter": ",",
                    "date_order": "D/M/Y",
                    "wavelength_nm": "710",
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Raw Data (405)",
                "wavelength_nm": 405,
                "n_wells": 96,
                "derived": False,
                "wells": {w: wells_405[w] for w in [*pick, "C4"]},
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Blank corrected based on Raw Data (710)",
                "wavelength_nm": 710,
                "derived": True,
                "n_wells": 96,
                "wells": {w: corrected[w] for w in pick},
                "missing": {"C4": "overflow"},
            },
        ],
    }
    write("mars_table_endpoint_comma_padded.CSV", data, expected)


# --- MARS table view, kinetic, semicolon + decimal comma -------------------------------------


def table_kinetic_semicolon() -> None:
    """German MARS: ';' delimiter, ',' decimals, '0 h 5 min' times, D.M.Y date, partial plate."""
    cycles = 7
    times_s = [i * 300 for i in range(cycles)]

    def time_text(seconds: int) -> str:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"

    width = 2 + cycles
    lines = mars_header(
        delimiter=";",
        date="23.06.2025",
        time="16:03:59",
        id1="KIN-7",
        id2="ID2: Kinetik",
        mode="Absorbance",
        width=width,
    )
    lines.append(padded(["Well", "Content", *(["Raw Data (450)"] * cycles)], width, ";"))
    lines.append(padded(["", "Time", *(time_text(t) for t in times_s)], width, ";"))
    used = [w for w in WELLS if int(w[1:]) <= 6]  # columns 1-6 only: a partial plate
    series: dict[str, list[float]] = {}
    for well in used:
        i = WELLS.index(well)
        values = [od(i, k * 5, 450) for k in range(cycles)]
        series[well] = values
        cells = [f"{v:.3f}".replace(".", ",") for v in values]
        lines.append(padded([f"{well[0]}{int(well[1:]):02d}", f"Sample X{i}", *cells], width, ";"))
    data = ("\r\n".join(lines) + "\r\n").encode("cp1252")
    expected = {
        "note": "Invented German MARS table view: semicolons, decimal commas, times written "
        "'0 h', '0 h 5 min' …, date 23.06.2025; only columns 1-6 were read (48 wells).",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "Raw Data (450)",
                "wavelength_nm": 450,
                "plate_id": "KIN-7",
                "rows": 8,
                "columns": 12,
                "n_wells": 48,
                "derived": False,
                "read_time": "2025-06-23T16:03:59",
                "wells": {w: series[w][-1] for w in ["A1", "D6", "H6"]},
                "metadata": {"delimiter": ";", "date_order": "D/M/Y"},
                "kinetic": {
                    "n_times": cycles,
                    "times_s": {str(k): float(t) for k, t in enumerate(times_s)},
                    "readings": {
                        w: {"0": series[w][0], str(cycles - 1): series[w][-1]} for w in ["A1", "H6"]
                    },
                },
            }
        ],
    }
    write("mars_table_kinetic_semicolon_decimal_comma.CSV", data, expected)


# --- MARS table view, kinetic, comma, bare minutes + a calculated read -----------------------


def table_kinetic_minutes() -> None:
    """Like the CLARIOstar export: ',Time,0,10,20,…' in minutes; raw and blank-corrected reads."""
    cycles = 6
    minutes = [0, 10, 20, 30, 40, 50]
    width = 2 + 2 * cycles + 6
    lines = mars_header(
        delimiter=",",
        date="02/11/2025",
        time="07:58:03",
        id1="RATE-12",
        id2="ID2: ",
        mode="Absorbance",
        width=width,
    )
    titles = ["Raw Data (600)"] * cycles + ["Blank corrected based on Raw Data (600)"] * cycles
    lines.append(padded(["Well", "Content", *titles], width))
    lines.append(padded(["", "Time", *(str(m) for m in minutes * 2)], width))
    raw: dict[str, list[float]] = {}
    corrected: dict[str, list[float]] = {}
    blank = [od(0, k, 600) for k in range(cycles)]
    for i, well in enumerate(WELLS):
        values = [od(i, k, 600) for k in range(cycles)]
        raw[well] = values
        corrected[well] = [round(v - b, 3) for v, b in zip(values, blank, strict=True)]
        cells = [f"{v}" for v in values + corrected[well]]
        if well == "E5":
            cells[3] = ""  # a reading the reader skipped
        lines.append(padded([f"{well[0]}{int(well[1:]):02d}", f"X{i}", *cells], width))
    data = ("\n".join(lines) + "\n").encode("ascii")
    times = {str(k): m * 60.0 for k, m in enumerate(minutes)}
    expected = {
        "note": "Invented MARS table view, kinetic, the time row in bare minutes (0, 10, … 50); "
        "raw and blank-corrected columns; E05 misses its 4th raw reading (empty cell); LF only.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "Raw Data (600)",
                "wavelength_nm": 600,
                "plate_id": "RATE-12",
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-11-02T07:58:03",
                "wells": {w: raw[w][-1] for w in ["A1", "E5", "H12"]},
                "metadata": {"time_unit": "min", "view": "table"},
                "kinetic": {
                    "n_times": cycles,
                    "times_s": times,
                    "readings": {w: {"0": raw[w][0], "5": raw[w][5]} for w in ["A1", "H12"]},
                    "missing": {"E5": {"3": ""}},
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "Blank corrected based on Raw Data (600)",
                "wavelength_nm": 600,
                "derived": True,
                "n_wells": 96,
                "wells": {w: corrected[w][-1] for w in ["A2", "H12"]},
                "kinetic": {"n_times": cycles, "times_s": times},
            },
        ],
    }
    write("mars_table_kinetic_minutes_blank_corrected.CSV", data, expected)


# --- MARS plate view --------------------------------------------------------------------------


def plate_view() -> None:
    """Plate view grids per read; US date with PM; partial last rows; an 'overflow' well."""
    width = 13
    lines = [
        "User: USER,Path: C:\\Program Files (x86)\\BMG\\SPECTROstar Nano\\User\\Data,"
        "Test run no.: 88",
        "Test name: SAA endpoint,Date: 5/14/2025,Time: 3:29:50 PM",
        "",
        "ID1: SAA-0514,ID2: Plate 1,ID3: ",
        "Absorbance",
        "",
    ]
    reads: dict[str, dict[str, float]] = {}
    for title, wavelength in (("Raw Data (710)", 710), ("Raw Data (405)", 405)):
        lines += [title, "", padded(["", *(str(n) for n in range(1, 13))], width)]
        values: dict[str, float] = {}
        for row in ROWS:
            cells = []
            for col in range(1, 13):
                well = f"{row}{col}"
                i = WELLS.index(well)
                if row == "H" and col > 8:
                    continue  # H9-H12 not read: MARS leaves the line short
                if well == "B7" and wavelength == 710:
                    cells.append("overflow")
                    continue
                values[well] = od(i, 0, wavelength)
                cells.append(f"{values[well]}")
            lines.append(",".join([row, *cells]))
        reads[title] = values
        lines.append("")
    data = ("\r\n".join(lines) + "\r\n").encode("ascii")
    v710, v405 = reads["Raw Data (710)"], reads["Raw Data (405)"]
    expected = {
        "note": "Invented MARS plate view: one ',1..12' grid per read; date 5/14/2025 3:29:50 PM "
        "(M/D/Y); H9-H12 not read (row H is short); B7 'overflow' at 710 nm.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Raw Data (710)",
                "wavelength_nm": 710,
                "plate_id": "SAA-0514",
                "rows": 8,
                "columns": 12,
                "n_wells": 92,
                "derived": False,
                "read_time": "2025-05-14T15:29:50",
                "wells": {w: v710[w] for w in ["A1", "A12", "H8"]},
                "missing": {"B7": "overflow"},
                "metadata": {
                    "reader_model": "SPECTROstar Nano",
                    "view": "plate",
                    "date_order": "M/D/Y",
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Raw Data (405)",
                "wavelength_nm": 405,
                "n_wells": 92,
                "wells": {w: v405[w] for w in ["A1", "B7", "H8"]},
            },
        ],
    }
    write("mars_plate_view_us_date.CSV", data, expected)


# --- Omega reader-control .DAT ---------------------------------------------------------------


def dat_value(value: float) -> str:
    """Omega's cell: no leading zero below 1, right-padded to 8 characters."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    if text.startswith("0."):
        text = " " + text[1:]
    return f"{text:<8}"


def dat_text(*, chromatics: list[int], cycles: int, cycle_s: int) -> tuple[str, dict[str, Any]]:
    rule = "\u00af" * 40
    lines = [
        "Testname: SAA_DAT_RUN",
        "Date: 25/02/14  Time: 02:15:07 PM",
        "ID1: DAT-0007 ",
        f"No. of Channels / Multichromatics: {len(chromatics)}",
        f"No. of Cycles: {cycles}",
        "Configuration: Absorbance",
        "Used wavelengths and gain values:",
    ]
    for n in range(1, 9):
        spec = f"{chromatics[n - 1]}nm" if n <= len(chromatics) else "-"
        lines.append(f"  {n}: {spec:<16}{'666' if n <= len(chromatics) else ''}")
    lines += [
        "",
        "",
        "Basic Parameters",
        "================",
        f"Mode: {'Kinetic' if cycles > 1 else 'Endpoint'}",
        "Microplate: GREINER 96 F-BOTTOM",
        "",
        "Layout",
        "======",
        "Plate format: 96",
        "",
        "      " + "".join(f"{n:<6}" for n in range(1, 13)),
        "   |" + rule + "|",
    ]
    lines += [
        f" {r} |  " + "  ".join(f"X{i * 12 + c:<4}" for c in range(1, 13)) + "|"
        for i, r in enumerate(ROWS)
    ]
    lines += [
        "",
        "Injection Volume [\u00b5l]",
        "",
        "Used Versions/Reader, User Name",
        "===============================",
        "Omega software version (control part): 3.00 R2",
        "Firmware version: 1.32",
        "Reader type: FLUOstar Omega",
        "Reader serial number: 415-0999",
        "Target temperature: 37\u00b0C",
        "",
        "",
        "Measurement Data",
        "================",
        "",
    ]
    values: dict[tuple[int, int], dict[str, float]] = {}
    for cycle in range(1, cycles + 1):
        for n, wavelength in enumerate(chromatics, start=1):
            lines += [
                f"Chromatic: {n}",
                f"Cycle: {cycle}",
                f"Time [s]: {(cycle - 1) * cycle_s + (n - 1) * 20}",
                "T[\u00b0C]: 37.1",
                "\t".join(f"{c:>8}" for c in range(1, 13)),
            ]
            grid: dict[str, float] = {}
            for r, row in enumerate(ROWS):
                cells = []
                for col in range(1, 13):
                    i = r * 12 + col - 1
                    value = round(od(i, cycle - 1, wavelength) * (0.02 if col == 2 else 1), 4)
                    grid[f"{row}{col}"] = value
                    cells.append(dat_value(value))
                lines.append("\t".join([row, *cells]))
            values[(n, cycle)] = grid
            lines.append("")
    text = "\r\n".join(lines) + "\r\n"
    # The Omega writes the ID1 line with a bare LF.
    text = text.replace("ID1: DAT-0007 \r\n", "ID1: DAT-0007 \n")
    return text, {"values": values}


def dat_endpoint() -> None:
    text, info = dat_text(chromatics=[600, 660], cycles=1, cycle_s=0)
    values = info["values"]
    data = text.encode("latin-1")
    expected = {
        "note": "Invented Omega .DAT: latin-1 (\u00b0, \u00b5, \u00af rules), YY/MM/DD date "
        "25/02/14 = 2025-02-14 2:15:07 PM, mixed CRLF/LF, two chromatics (600, 660 nm), values "
        "like ' .0021' without a leading zero, tab-separated and space-padded.",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Chromatic 1 (600nm)",
                "wavelength_nm": 600,
                "plate_id": "DAT-0007",
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-02-14T14:15:07",
                "wells": {w: values[(1, 1)][w] for w in ["A1", "A2", "H2", "H12"]},
                "metadata": {
                    "reader_model": "FLUOstar Omega",
                    "reader_serial": "415-0999",
                    "software_version": "3.00 R2",
                    "temperature_c": "37.1",
                    "encoding": "cp1252",
                    "date_order": "YY/MM/DD",
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Chromatic 2 (660nm)",
                "wavelength_nm": 660,
                "n_wells": 96,
                "wells": {w: values[(2, 1)][w] for w in ["A1", "B2", "H12"]},
            },
        ],
    }
    write("omega_endpoint_two_chromatics.DAT", data, expected)


def dat_kinetic() -> None:
    text, info = dat_text(chromatics=[405], cycles=4, cycle_s=60)
    values = info["values"]
    data = text.encode("latin-1")
    expected = {
        "note": "Invented Omega .DAT kinetic run: one chromatic (405 nm), 4 cycles 60 s apart "
        "('Time [s]: 0/60/120/180').",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "Chromatic 1 (405nm)",
                "wavelength_nm": 405,
                "plate_id": "DAT-0007",
                "n_wells": 96,
                "read_time": "2025-02-14T14:15:07",
                "wells": {w: values[(1, 4)][w] for w in ["A1", "H12"]},
                "kinetic": {
                    "n_times": 4,
                    "times_s": {"0": 0.0, "1": 60.0, "3": 180.0},
                    "readings": {
                        w: {str(k - 1): values[(1, k)][w] for k in (1, 4)} for w in ["A1", "C2"]
                    },
                },
            }
        ],
    }
    write("omega_kinetic_405.DAT", data, expected)


# --- out of scope: a 1536-well plate (no expected JSON; a negative test reads it) ------------


def plate_1536_invalid() -> None:
    width = 49
    lines = [
        "User: USER,Path: C:\\Program Files (x86)\\BMG\\PHERAstar\\User\\Data,Test run no.: 9",
        "Test name: Lum1536,Date: 16/10/2024,Time: 15:09:52",
        "",
        "ID1: HTS-1536",
        "Absorbance",
        "",
        "Raw Data (450)",
        "",
        padded(["", *(str(n) for n in range(1, 49))], width),
    ]
    letters = [chr(ord("A") + i) for i in range(26)] + list("abcdef")
    for i, row in enumerate(letters):
        lines.append(",".join([row, *(f"{od(i, 0):.3f}" for _ in range(48))]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mars_plate_view_1536_invalid.CSV").write_bytes(("\r\n".join(lines) + "\r\n").encode())


def main() -> None:
    table_endpoint()
    table_kinetic_semicolon()
    table_kinetic_minutes()
    plate_view()
    dat_endpoint()
    dat_kinetic()
    plate_1536_invalid()


if __name__ == "__main__":
    main()
