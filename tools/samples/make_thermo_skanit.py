"""Write invented Thermo SkanIt sample exports and their expected JSON.

    python tools/samples/make_thermo_skanit.py

The exports imitate the three SkanIt layouts seen in real files (session text
from a Varioskan, "Results of Photometric1" grids from a Multiskan Spectrum,
workbooks from a Multiskan Sky). The expected JSON is computed here from the
values written, never from the parser.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "sample_files" / "thermo_skanit"
FORMAT = "thermo_skanit"
ROWS = "ABCDEFGHIJKLMNOP"
PAD = "\t" * 40


def od(well_index: int, reading: int, wavelength: int) -> float:
    """A deterministic, plausible absorbance that rises with time."""
    base = 0.05 + (well_index % 12) * 0.071 + (well_index // 12) * 0.013
    slope = 0.0021 * (1 + well_index % 5) * (405.0 / wavelength)
    return round(base + slope * reading * (1 + 0.01 * math.sin(well_index + reading)), 4)


def fmt(value: float) -> str:
    return f"{value:g}"


def write(name: str, data: str | bytes, expected: dict[str, Any]) -> None:
    path = OUT / name
    if isinstance(data, str):
        path.write_bytes(data.encode("utf-8"))
    else:
        path.write_bytes(data)
    expected = {"source": f"thermo_skanit/{name}", **expected}
    text = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    (OUT / f"{name}.expected.json").write_text(text, encoding="utf-8")


# --- Varioskan session text ----------------------------------------------------------------------


def session_lines(
    *, started: str, template: str, wavelengths: list[int], readings: int, interval: str
) -> list[str]:
    def key(name: str, value: str) -> str:
        return f"\t{name}\t\t\t\t{value}"

    lines = [
        "",
        "General Info",
        "",
        "Run information",
        key("Session name", "SAA_kinetic_demo"),
        key("Run name", "SAA_kinetic_demo-Friday.14.March-09:05:30"),
        key("Run started", started),
        key("Total warnings", "0"),
        "",
        "Instrument parameters",
        key("Instrument name", "Varioskan"),
        key("Instrument version", "3.01.15"),
        key("Instrument serial number", "3001-1234"),
        "",
        "SW Parameters",
        key("Run Software Version", "SkanIt Software 2.4.3 RE for Varioskan"),
        "",
        "Steps Data",
        "",
        "Protocol properties",
        key("Protocol name", "SAA_kinetic_demo"),
        key("Plate template", template),
        "",
    ]
    if readings > 1:
        lines += ["KineticLoop1", key("Readings", str(readings)), key("Kinetic interval", interval)]
        lines.append("")
    lines += ["Photometric1", key("Measurement technology", "Photometric")]
    lines += [key("Wavelength [nm]", str(wl)) for wl in wavelengths]
    lines += ["", ""]
    return lines


def varioskan_kinetic() -> None:
    wells = [f"{ROWS[r]}{c:02d}" for r in range(3) for c in range(1, 9)]  # A01..C08: 24 wells
    wavelengths = [405, 492]
    readings = 5
    lines = session_lines(
        started="03/14/2025 09:05:30+01:00",
        template="96-well Greiner Bio-One, flat bottom plate",
        wavelengths=wavelengths,
        readings=readings,
        interval="0:01:00.0",
    )
    lines += ["Photometric1", "", "Plate\tWell\tType\tSample\tValue\tTime (s)\tWL\tRead."]
    values: dict[tuple[int, str], list[str]] = {}
    times: dict[tuple[int, str], list[float]] = {}
    for index, well in enumerate(wells):
        for reading in range(1, readings + 1):
            for offset, wl in enumerate(wavelengths):
                raw = fmt(od(index, reading, wl))
                if (well, reading, wl) == ("B02", 3, 405):
                    raw = "NaN"
                time_s = round((reading - 1) * 60 + index * 0.35 + offset * 0.14, 2)
                values.setdefault((wl, well), []).append(raw)
                times.setdefault((wl, well), []).append(time_s)
                sample = f"SAA {index + 1}/{len(wells)}"
                lines.append(
                    f"1042\t{well}\tUnknown\t{sample}\t{raw}\t{fmt(time_s)}\t{wl}\t{reading}"
                )
    table_end = len(lines) - 1
    lines += ["", "", "KineticCalculation1", "", "Parameters", "\tProcessor Type\t\t\t\tAvgRate"]
    lines += ["", "Plate\tWell\tType\tSample\tValue\tTime (s)\tWL"]
    rates: dict[tuple[int, str], str] = {}
    for index, well in enumerate(wells):
        for wl in wavelengths:
            rate = fmt(round(0.0021 * (1 + index % 5) * (405.0 / wl) / 60.0, 8))
            rates[(wl, well)] = rate
            lines.append(f"1042\t{well}\tUnknown\tSAA {index + 1}/{len(wells)}\t{rate}\t0\t{wl}")
    lines += ["", "", "Run Log", "", "\t2025-03-14 09:05:30+01:00 - Execution started", ""]
    # Every line padded with tabs, CRLF with a stray LF after some lines, as SkanIt 2.4 writes.
    text = ""
    for number, line in enumerate(lines):
        text += line + PAD + ("\r\n\n" if number in (16, table_end) else "\r\n")

    def kinetic_plate(wl: int) -> dict[str, Any]:
        first_times = [min(times[(wl, w)][i] for w in wells) for i in range(readings)]
        plate: dict[str, Any] = {
            "plate_index": 0,
            "format": FORMAT,
            "kind": "kinetic",
            "label": "Photometric1",
            "wavelength_nm": wl,
            "plate_id": "1042",
            "rows": 8,
            "columns": 12,
            "n_wells": 24,
            "derived": False,
            "read_time": "2025-03-14T09:05:30",
            "wells": {
                "A1": float(values[(wl, "A01")][-1]),
                "C8": float(values[(wl, "C08")][-1]),
                "B4": float(values[(wl, "B04")][-1]),
            },
            "metadata": {
                "reader_model": "Varioskan",
                "reader_serial": "3001-1234",
                "software_version": "SkanIt Software 2.4.3 RE for Varioskan",
                "read_time": "2025-03-14T09:05:30+01:00",
                "plate_id": "1042",
                "label": "Photometric1",
            },
            "kinetic": {
                "n_times": readings,
                "times_s": {str(i): first_times[i] for i in (0, 1, readings - 1)},
                "readings": {
                    "A1": {"0": float(values[(wl, "A01")][0]), "4": float(values[(wl, "A01")][4])},
                    "C8": {"2": float(values[(wl, "C08")][2])},
                },
            },
        }
        if wl == 405:
            plate["kinetic"]["missing"] = {"B2": {"2": "NaN"}}
        return plate

    def rate_plate(wl: int) -> dict[str, Any]:
        return {
            "plate_index": 0,
            "format": FORMAT,
            "kind": "endpoint",
            "label": "KineticCalculation1",
            "wavelength_nm": wl,
            "derived": True,
            "n_wells": 24,
            "wells": {"A1": float(rates[(wl, "A01")]), "C8": float(rates[(wl, "C08")])},
        }

    write(
        "varioskan_kinetic_2wl_offset.txt",
        text,
        {
            "note": "Invented SkanIt 2.4 session text: 24 wells, 5 readings at 405 and 492 nm, "
            "one NaN reading (B02, reading 3, 405 nm), rate table KineticCalculation1 "
            "(derived), run start with a +01:00 offset, CRLF with stray LF lines.",
            "n_reads": 4,
            "plates": [
                kinetic_plate(405),
                kinetic_plate(492),
                rate_plate(405),
                rate_plate(492),
            ],
        },
    )


def varioskan_endpoint_384() -> None:
    lines = session_lines(
        started="03/14/2025 14:02:10",
        template="384-well Greiner, flat bottom plate",
        wavelengths=[450],
        readings=1,
        interval="",
    )
    lines += ["Photometric1", "", "Plate\tWell\tType\tSample\tValue\tWL"]
    values: dict[str, str] = {}
    for index in range(384):
        well = f"{ROWS[index // 24]}{index % 24 + 1:02d}"
        raw = fmt(od(index, 1, 450))
        if well == "P24":
            raw = "NaN"
        values[well] = raw
        lines.append(f"SAA-P7\t{well}\tUnknown\tSAA {index + 1}/384\t{raw}\t450")
    text = "\r\n".join(line + PAD for line in lines) + "\r\n"
    write(
        "varioskan_endpoint_384_nooffset.txt",
        text,
        {
            "note": "Invented SkanIt 2.4 session text: endpoint, 384-well template, 450 nm, no "
            "Time or Read. column, run start without offset (the lab's zone), P24 'NaN'.",
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "endpoint",
                    "label": "Photometric1",
                    "wavelength_nm": 450,
                    "plate_id": "SAA-P7",
                    "rows": 16,
                    "columns": 24,
                    "n_wells": 384,
                    "derived": False,
                    "read_time": "2025-03-14T14:02:10",
                    "wells": {
                        "A1": float(values["A01"]),
                        "H12": float(values["H12"]),
                        "P23": float(values["P23"]),
                    },
                    "missing": {"P24": "NaN"},
                    "reasons": {"P24": "not calculable"},
                }
            ],
        },
    )


# --- Multiskan Spectrum results text -------------------------------------------------------------


def results_text(blocks: list[tuple[int, list[list[list[str]]], bool]]) -> str:
    """blocks: (wavelength, grids (iterations of 8 rows × 12 cells), with Iteration lines)."""
    lines = ["Results of Photometric1", ""]
    for wavelength, grids, iterations in blocks:
        lines += [f"\tPlate:1 - Wavelength:{wavelength}", ""]
        for number, grid in enumerate(grids, start=1):
            if iterations:
                lines.append(f"\tIteration: {number}")
            lines += ["\t" + "\t".join(row) for row in grid]
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


def spectrum_kinetic() -> None:
    grids: list[list[list[str]]] = []
    for iteration in range(1, 5):
        grid = []
        for r in range(8):
            row = []
            for col in range(12):
                if r < 3 and col < 8:
                    value = fmt(od(r * 12 + col, iteration, 340))
                    row.append("NaN" if iteration == 4 and r == 0 else value)
                else:
                    row.append("")
            grid.append(row)
        grids.append(grid)
    write(
        "multiskan_spectrum_kinetic_partial.txt",
        results_text([(340, grids, True)]),
        {
            "note": "Invented Multiskan Spectrum 'Results of Photometric1': 4 iterations, rows "
            "A-C x columns 1-8 read (24 wells), row A all NaN in iteration 4; no times.",
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "kinetic",
                    "label": "Photometric1",
                    "wavelength_nm": 340,
                    "plate_id": None,
                    "rows": 8,
                    "columns": 12,
                    "n_wells": 24,
                    "derived": False,
                    "wells": {"B1": float(grids[3][1][0]), "C8": float(grids[3][2][7])},
                    "missing": {"A1": "NaN", "A8": "NaN"},
                    "metadata": {"kinetic_times": "not in the export; times without one are NaN"},
                    "kinetic": {
                        "n_times": 4,
                        "readings": {
                            "A1": {"0": float(grids[0][0][0]), "2": float(grids[2][0][0])},
                            "C8": {"3": float(grids[3][2][7])},
                        },
                        "missing": {"A1": {"3": "NaN"}},
                    },
                }
            ],
        },
    )


def spectrum_endpoint() -> None:
    blocks: list[tuple[int, list[list[list[str]]], bool]] = []
    for wavelength in (405, 620):
        grid = [[fmt(od(r * 12 + c, 1, wavelength)) for c in range(12)] for r in range(8)]
        blocks.append((wavelength, [grid], False))
    g405, g620 = blocks[0][1][0], blocks[1][1][0]
    write(
        "multiskan_spectrum_endpoint_2wl.txt",
        results_text(blocks),
        {
            "note": "Invented Multiskan Spectrum results text: two 'Plate:1 - Wavelength' "
            "blocks (405, 620 nm), each one unlabelled 8x12 grid without Iteration lines.",
            "n_reads": 2,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "endpoint",
                    "wavelength_nm": 405,
                    "n_wells": 96,
                    "wells": {"A1": float(g405[0][0]), "H12": float(g405[7][11])},
                },
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "endpoint",
                    "wavelength_nm": 620,
                    "n_wells": 96,
                    "wells": {"A1": float(g620[0][0]), "D7": float(g620[3][6])},
                },
            ],
        },
    )


# --- Multiskan Sky workbooks ---------------------------------------------------------------------


def sky_workbook(raw_sheets: list[tuple[int, list[list[object]]]], *, kinetic: bool) -> bytes:
    from openpyxl import Workbook

    stamp = datetime(2025, 3, 14, 11, 20, 5)  # noqa: DTZ001 - workbook cells are naive
    start = datetime(2025, 3, 14, 11, 15, 0)  # noqa: DTZ001
    book = Workbook()
    results = book.active
    assert results is not None
    results.title = "Absorbance results"
    results.append(["Measurement results Measure"])
    results.append([stamp])
    for wavelength, rows in raw_sheets:
        sheet = book.create_sheet(f"Raw data {wavelength} nm")
        sheet.append(["Raw data"])
        sheet.append([stamp])
        sheet.append([])
        sheet.append([])
        header = ["Well", "Wavelength(s) [nm]", "Raw absorbance"]
        if kinetic:
            header.append("Measurement time(s)")
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    general = book.create_sheet("General information")
    general.append(["Session information"])
    general.append([])
    for key, value in (
        ("Execution time", stamp),
        ("Name", "Multiskan Sky"),
        ("Serial number:", "1530-00999C"),
        ("Version", "1.00.55.0"),
        ("Set temperature", "37 °C"),
    ):
        general.append([None, None, key, value])
    general.append([])
    general.append(["Protocol parameters"])
    general.append([None, None, "Plate template", "96 well plate"])
    general.append([None, None, "Measurement type", "Kinetic" if kinetic else "Endpoint"])
    layout = book.create_sheet("Plate layout")
    layout.append([None, *range(1, 13)])
    log = book.create_sheet("Run log")
    log.append(["Start time", start, start])
    log.append([" End time", stamp, stamp])
    book.properties.created = stamp
    book.properties.modified = stamp
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sky_kinetic() -> None:
    wells = [f"{r} {c}" for r in "AB" for c in range(1, 7)]  # 'A 1' … 'B 6'
    readings = 11
    rows: list[list[object]] = []
    values: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    for index, well in enumerate(wells):
        for reading in range(readings):
            value = od(index, reading, 405)
            time_s = round(reading * 30 + index * 0.42, 2)
            rows.append([well, 405, value, time_s])
            values.setdefault(well, []).append(value)
            times.setdefault(well, []).append(time_s)
    write(
        "multiskan_sky_kinetic_405.xlsx",
        sky_workbook([(405, rows)], kinetic=True),
        {
            "note": "Invented SkanIt 7 workbook (Multiskan Sky): sheet 'Raw data 405 nm', "
            "12 wells written 'A 1', 11 readings every 30 s; read time = Run log Start time.",
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "kinetic",
                    "label": "Raw absorbance",
                    "wavelength_nm": 405,
                    "rows": 8,
                    "columns": 12,
                    "n_wells": 12,
                    "derived": False,
                    "read_time": "2025-03-14T11:15:00",
                    "wells": {"A1": values["A 1"][-1], "B6": values["B 6"][-1]},
                    "metadata": {
                        "reader_model": "Multiskan Sky",
                        "reader_serial": "1530-00999C",
                        "software_version": "1.00.55.0",
                        "temperature_c": "37",
                        "sheet": "Raw data 405 nm",
                    },
                    "kinetic": {
                        "n_times": readings,
                        "times_s": {"0": 0.0, "1": 30.0, "10": 300.0},
                        "readings": {"B6": {"0": values["B 6"][0], "5": values["B 6"][5]}},
                    },
                }
            ],
        },
    )


def sky_endpoint() -> None:
    wells = [f"{r} {c}" for r in "ABCD" for c in range(1, 7)]
    sheets: list[tuple[int, list[list[object]]]] = []
    values: dict[tuple[int, str], object] = {}
    for wavelength in (405, 492):
        rows: list[list[object]] = []
        for index, well in enumerate(wells):
            value: object = od(index, 1, wavelength)
            if (wavelength, well) == (492, "D 6"):
                value = "NaN"
            rows.append([well, wavelength, value])
            values[(wavelength, well)] = value
        sheets.append((wavelength, rows))
    write(
        "multiskan_sky_endpoint_2wl.xlsx",
        sky_workbook(sheets, kinetic=False),
        {
            "note": "Invented SkanIt 7 workbook: endpoint, 'Raw data 405 nm' and 'Raw data 492 "
            "nm' sheets without a time column, 24 wells, D6 at 492 nm the text 'NaN'.",
            "n_reads": 2,
            "plates": [
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "endpoint",
                    "wavelength_nm": 405,
                    "n_wells": 24,
                    "wells": {"A1": values[(405, "A 1")], "D6": values[(405, "D 6")]},
                    "metadata": {"sheet": "Raw data 405 nm"},
                },
                {
                    "plate_index": 0,
                    "format": FORMAT,
                    "kind": "endpoint",
                    "wavelength_nm": 492,
                    "n_wells": 24,
                    "wells": {"C3": values[(492, "C 3")]},
                    "missing": {"D6": "NaN"},
                    "metadata": {"sheet": "Raw data 492 nm"},
                },
            ],
        },
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    varioskan_kinetic()
    varioskan_endpoint_384()
    spectrum_kinetic()
    spectrum_endpoint()
    sky_kinetic()
    sky_endpoint()


if __name__ == "__main__":
    main()
