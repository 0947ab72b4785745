"""Write invented PerkinElmer / Revvity sample exports and their expected JSON.

    python tools/samples/make_perkinelmer.py

The exports imitate the layouts seen in real files: EnVision/EnSpire CSV with
'Plate information' blocks (plates × repeats × labels, titled or bare grids,
plate information before or after its grids, comma or semicolon with decimal
commas), VICTOR X3 tab text (the per-well list with a Repeat column, the
per-repeat blocks, or both) and VICTOR Nivo CSV (local and UTC start times,
wells as rows and cycles as columns, an 'X' plate map). The expected JSON is
computed here from the values written, never from the parser.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "sample_files" / "perkinelmer"
FORMAT = "perkinelmer"
ROWS = "ABCDEFGH"
WELLS = [f"{r}{c}" for r in ROWS for c in range(1, 13)]


def od(well_index: int, reading: int = 0, wavelength: int = 450) -> float:
    """A deterministic, plausible absorbance that rises with time."""
    base = 0.051 + (well_index % 12) * 0.079 + (well_index // 12) * 0.012
    slope = 0.0023 * (1 + well_index % 3) * (450.0 / wavelength)
    return round(base + slope * reading * (1 + 0.02 * math.cos(well_index + reading)), 4)


def counts(well_index: int, reading: int = 0) -> int:
    return 800 + (well_index * 37) % 400 + reading * (20 + well_index % 7)


def write(name: str, text: str, expected: dict[str, Any], *, encoding: str = "utf-8") -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_bytes(text.encode(encoding))
    expected = {"source": f"perkinelmer/{name}", **expected}
    body = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    (OUT / f"{name}.expected.json").write_text(body, encoding="utf-8")


# --- EnVision: two plates, absorbance, titled grids -------------------------------------------

INFO_HEADER = (
    "Plate,Repeat,Barcode,Measured height,Chamber temperature at start,"
    "Chamber temperature at end,Humidity at start,Humidity at end,Ambient temperature at start,"
    "Ambient temperature at end,Group,Label,ScanX,ScanY,Measinfo,Kinetics,Measurement date,"
)


def envision_trailer(plates: int, label: str, *, delimiter: str = ",") -> list[str]:
    d = delimiter * 4
    return [
        "",
        "Basic assay information ",
        f"Assay ID: {d}2417",
        f"Assay Started: {d}3/14/2025 9:58:02 AM",
        f"Protocol Name: {d}SAA AHA 710",
        f'Serial#: {d}="1050777"',
        "",
        "Protocol information",
        f"Number of plate repeats{d}1",
        "Plate type:",
        f"Name of the plate type{d}96 General",
        f"Number of rows{d}8",
        f"Number of columns{d}12",
        "",
        "Labels:",
        f"{label}{d}2000014",
        f"Exc. filter{d}Photometric 710",
        "",
        "Instrument:",
        f"Serial number{d}1050777",
        "",
        "Exported with EnVision Workstation version 1.14.3049.1193",
    ]


def grid_lines(values: dict[str, str], *, delimiter: str = ",", columns: int = 12) -> list[str]:
    header = delimiter + delimiter.join(f"{n:02d}" for n in range(1, columns + 1)) + delimiter
    lines = [header]
    for row in ROWS:
        cells = [values.get(f"{row}{c}", "") for c in range(1, columns + 1)]
        lines.append(delimiter.join([row, *cells]) + delimiter)
    return lines


def envision_two_plates() -> None:
    """Two plates read at A710, barcodes quoted ="…", an 'N/A' temperature, a partial plate."""
    lines: list[str] = []
    expected_plates: list[dict[str, Any]] = []
    for plate in (1, 2):
        barcode = f"SAA-25-{plate:03d}"
        values: dict[str, float] = {}
        cells: dict[str, str] = {}
        for i, well in enumerate(WELLS):
            if plate == 2 and int(well[1:]) > 10:
                continue  # plate 2: columns 11-12 not measured
            values[well] = od(i + plate * 5, 0, 710)
            cells[well] = f"{values[well]:.4f}"
        temperature = "22.10" if plate == 1 else "N/A"
        date = "3/14/2025 10:02:31 AM" if plate == 1 else "3/14/2025 10:04:06 AM"
        lines += [
            "Plate information",
            INFO_HEADER,
            f'{plate},1,="{barcode}",14.35,{temperature},22.20,41.0,40.8,22.5,22.6,1,A710(1),'
            f"0,0,De=1st Ex=Btm Em=N/A Wdw=N/A (8),0,{date},",
            "",
            "Background information",
            "Plate,Label,Result,Signal,Flashes/Time,Meastime,MeasInfo,",
            f"{plate},A710,0,295000,300,00:00:00.000,De=1st Ex=Btm Em=N/A Wdw=N/A (8),",
            "",
            "Results for A710(1) - channel 1 (A)",
            *grid_lines(cells),
            "",
        ]
        pick = ["A1", "D5", "H10"] + (["H12"] if plate == 1 else [])
        entry: dict[str, Any] = {
            "plate_index": plate - 1,
            "format": FORMAT,
            "kind": "endpoint",
            "label": "A710(1) - channel 1 (A)",
            "wavelength_nm": 710,
            "plate_id": barcode,
            "rows": 8,
            "columns": 12,
            "n_wells": 96 if plate == 1 else 80,
            "derived": False,
            "read_time": "2025-03-14T10:02:31" if plate == 1 else "2025-03-14T10:04:06",
            "wells": {w: values[w] for w in pick},
            "metadata": {
                "reader_model": "EnVision",
                "reader_serial": "1050777",
                "date_order": "M/D/Y",
                "protocol_name": "SAA AHA 710",
            },
        }
        if plate == 1:
            entry["metadata"]["temperature_c"] = "22.10"
        expected_plates.append(entry)
    lines += envision_trailer(2, "A710")
    expected = {
        "note": "Invented EnVision CSV: two plates (one 'Plate information' block each) read at "
        "A710, barcodes written =\"…\", plate 2 temperature 'N/A' and columns 11-12 unread; "
        "M/D/Y dates with AM/PM.",
        "n_reads": 2,
        "plates": expected_plates,
    }
    write("envision_two_plates_A710.csv", "\r\n".join(lines) + "\r\n", expected)


# --- EnVision: repeats × labels → kinetic reads, plus a calculation ---------------------------


def envision_repeats() -> None:
    """One plate, 3 repeats × 2 labels (A450, A620) 60 s apart, and a calculated ratio."""
    lines: list[str] = []
    series: dict[str, dict[str, list[float]]] = {"A450": {}, "A620": {}}
    for repeat in (1, 2, 3):
        second = 10 + (repeat - 1) * 60
        date = f"2/3/2025 2:{second // 60 + 15:02d}:{second % 60:02d} PM"
        for label, wavelength in (("A450", 450), ("A620", 620)):
            cells: dict[str, str] = {}
            for i, well in enumerate(WELLS):
                value = od(i, (repeat - 1) * 10, wavelength)
                series[label].setdefault(well, []).append(value)
                cells[well] = f"{value:.4f}"
            lines += [
                "Plate information",
                INFO_HEADER,
                f'1,{repeat},="KIN-01",14.35,30.0,30.1,N/A,N/A,22.5,22.6,1,{label}(1),0,0,'
                f"De=1st Ex=Btm Em=N/A Wdw=N/A (8),1,{date},",
                "",
                f"Results for {label}(1) - channel 1 (A)",
                *grid_lines(cells),
                "",
            ]
    ratio = {w: round(series["A450"][w][0] / series["A620"][w][0], 4) for w in WELLS}
    lines += [
        "Plate information",
        "Plate,Repeat,Barcode,Formula,Measurement date,",
        '1,1,="KIN-01",Calc 1: Ratio = A450 / A620,2/3/2025 2:15:10 PM,',
        "",
        "Calculated results: Calc 1: Ratio = A450 / A620",
        *grid_lines({w: f"{v:.4f}" for w, v in ratio.items()}),
        "",
    ]
    lines += envision_trailer(1, "A450")
    times = {"0": 0.0, "1": 60.0, "2": 120.0}
    expected = {
        "note": "Invented EnVision CSV with plate repeats: plate 1 read 3 times (2:15:10, "
        "2:16:10, 2:17:10 PM) at two labels; each label's repeats form one kinetic read; a "
        "'Calculated results' ratio grid is a derived read.",
        "n_reads": 3,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "A450(1) - channel 1 (A)",
                "wavelength_nm": 450,
                "plate_id": "KIN-01",
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-02-03T14:15:10",
                "wells": {w: series["A450"][w][-1] for w in ["A1", "H12"]},
                "metadata": {"temperature_c": "30.0"},
                "kinetic": {
                    "n_times": 3,
                    "times_s": times,
                    "readings": {
                        w: {"0": series["A450"][w][0], "2": series["A450"][w][2]}
                        for w in ["A1", "C7"]
                    },
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "A620(1) - channel 1 (A)",
                "wavelength_nm": 620,
                "n_wells": 96,
                "wells": {w: series["A620"][w][-1] for w in ["A1", "H12"]},
                "kinetic": {"n_times": 3, "times_s": times},
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Calc 1: Ratio = A450 / A620",
                "derived": True,
                "n_wells": 96,
                "wells": {w: ratio[w] for w in ["A1", "H12"]},
            },
        ],
    }
    write("envision_repeats_two_labels_kinetic.csv", "\r\n".join(lines) + "\r\n", expected)


# --- EnVision: semicolons, decimal commas, bare grid, plate information at the end -----------


def envision_semicolon_end_of_plate() -> None:
    """European 'System' separator: ';' fields and ',' decimals; D.M.Y 24 h dates; bare grid."""
    values = {w: od(i, 0, 562) for i, w in enumerate(WELLS)}
    lines = [
        "Background information",
        "Plate;Label;Result;Signal;Flashes/Time;Meastime;MeasInfo;",
        "1;BCA Absorbance @ 562;0;289468;156;00:00:00.000;De=1st Ex=Btm Em=N/A Wdw=N/A (8);",
        "",
    ]
    for row in ROWS:
        cells = [f"{values[f'{row}{c}']:.4f}".replace(".", ",") for c in range(1, 13)]
        lines.append(";".join(cells) + ";")
    lines += [
        "",
        "Plate information ",
        "Plate;Repeat;Barcode;Chamber temperature at start;Label;Measurement date;",
        '1;1;="BCA-7";24,53;BCA Absorbance @ 562(1);22.08.2025 10:57:03;',
        "",
    ]
    lines += [line.replace(",,,,", ";;;;") for line in envision_trailer(1, "BCA Absorbance @ 562")]
    expected = {
        "note": "Invented EnVision CSV exported with a European list separator: ';' fields, "
        "decimal commas, date 22.08.2025 10:57:03 (D.M.Y, 24 h); an unlabelled 8×12 grid after "
        "a background block, with 'Plate information' placed at the end of the plate.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "BCA Absorbance @ 562(1)",
                "wavelength_nm": 562,
                "plate_id": "BCA-7",
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-08-22T10:57:03",
                "wells": {w: values[w] for w in ["A1", "E6", "H12"]},
                "metadata": {"delimiter": ";", "date_order": "D/M/Y", "temperature_c": "24,53"},
            }
        ],
    }
    write(
        "envision_semicolon_decimal_comma_end_of_plate.csv",
        "\r\n".join(lines) + "\r\n",
        expected,
        encoding="cp1252",
    )


# --- EnSpire: Signal + Results + Saturated grids, 'p.m.' dates --------------------------------


def enspire_saturated() -> None:
    """EnSpire fluorescence: Signal and Results grids, one SAT well, '4/11/2025 3:07:12 p.m.'."""
    values = {w: counts(i) for i, w in enumerate(WELLS)}
    values["F3"] = 4194304
    sat = {w: ("SAT" if w == "F3" else "-") for w in WELLS}
    grid = {w: str(v) for w, v in values.items()}
    lines = [
        "Plate information ",
        "Plate,Repeat,Barcode,Chamber temperature at start,Chamber temperature at end,"
        "Ambient temperature at start,Ambient temperature at end,Meas,ScanX,ScanY,Measinfo,"
        "Kinetics,Measurement date,",
        "1,1,,25.2,25.25,23.4,23,Meas A,1,1,De=1st Ex=Top Em=Top Wdw=N/A,0,4/11/2025 3:07:12 p.m.,",
        "",
        "Background information",
        "Plate,Label,Result,Signal,Flashes/Time,Meastime,MeasInfo,",
        "1,Meas A,0,32,50,00:00:00.000,De=1st Ex=Top Em=Top Wdw=N/A,",
        "",
        "Signal for Meas A -  (RFU)",
        *grid_lines(grid),
        "",
        "Results for Meas A -  (RFU)",
        *grid_lines(grid),
        "",
        "Saturated for Meas A -  (RFU) (SAT=Saturated)",
        *grid_lines(sat),
        "",
        "",
        "Basic assay information ",
        "Assay ID: ,,,,8390",
        "Serial#: ,,,,23000214",
        "",
        "Measurements:,,,,Fluorescense",
        "Excitation wavelength,,,,530 nm",
        "Emission wavelength,,,,590 nm",
        "",
        "Exported with EnSpire Workstation version 4.13",
    ]
    expected = {
        "note": "Invented EnSpire CSV: fluorescence, Signal and Results grids (one read), F3 "
        "flagged SAT in the Saturated grid (no value, reason overflow, its number kept as raw); "
        "date '4/11/2025 3:07:12 p.m.' (dotted p.m.: D/M/Y = 4 November 2025); LF endings.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "endpoint",
                "label": "Meas A -  (RFU)",
                "plate_id": None,
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-11-04T15:07:12",
                "wells": {w: values[w] for w in ["A1", "F2", "H12"]},
                "missing": {"F3": "4194304"},
                "reasons": {"F3": "overflow"},
                "metadata": {
                    "reader_model": "EnSpire",
                    "excitation": "530 nm",
                    "emission": "590 nm",
                    "saturated_wells": "F3",
                    "date_order": "D/M/Y",
                },
            }
        ],
    }
    write("enspire_fluorescence_saturated_pm_dots.csv", "\n".join(lines) + "\n", expected)


# --- VICTOR X3 -------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:05.2f}"


def x3_trailer(repeats: int, measured_on: str) -> list[str]:
    return [
        "Protocol description",
        "",
        "",
        "Protocol name ..................... SAA kinetic 405",
        "Name of the plate type ............ Generic 8x12 size plate",
        f"Number of repeats ................. {repeats}",
        "",
        "Name of the label ................. Absorbance @ 405",
        "",
        "Instrument serial number: ......... 4200123",
        f"Measured on ....................... {measured_on}",
        "",
        "Run started by: Lab",
    ]


def x3_blocks(repeats: list[dict[str, Any]], labels: list[str]) -> list[str]:
    lines: list[str] = []
    pad = "\t" * 6 + " "
    for block in repeats:
        lines += [
            "Plate\tRepeat\tEnd time\tStart temp.\tEnd temp.\tBarCode" + pad,
            f"1\t{block['repeat']}\t{block['end']}\t37.0\t37.1\tN/A" + pad,
            "\t" * 11 + " ",
        ]
        for label in labels:
            grid = block[label]
            lines += [
                label + "\t" * 11 + " ",
                block["background"][label] + "\t" * 11 + " ",
                "\t" * 11 + " ",
            ]
            for row in ROWS:
                lines.append("\t".join(grid[f"{row}{c}"] for c in range(1, 13)))
            lines.append("\t" * 11 + " ")
    return lines


def victor_x3_list_and_blocks() -> None:
    """List part with a Repeat column (4 repeats, two labels) followed by per-repeat blocks."""
    labels = ["Absorbance @ 405 (A)", "GFP (Counts)"]
    repeats = 4
    header = "Plate\tRepeat\tWell\tType\tTime\tAbsorbance @ 405 (A)\tTime\tGFP (Counts)"
    lines = [header]
    abs_values: dict[str, list[float]] = {}
    gfp_values: dict[str, list[int]] = {}
    blocks: list[dict[str, Any]] = []
    first_well_times: list[float] = []
    for repeat in range(1, repeats + 1):
        start = 40.5 + (repeat - 1) * 600
        block: dict[str, Any] = {
            "repeat": repeat,
            "background": {labels[0]: "-0.000", labels[1]: "97"},
        }
        block[labels[0]], block[labels[1]] = {}, {}
        for i, well in enumerate(WELLS):
            t_abs = start + i * 0.32 + (i // 12) * 2.4
            t_gfp = t_abs + 63.5
            if i == 0:
                first_well_times.append(t_abs)
            a = od(i, repeat - 1, 405)
            g = counts(i, repeat - 1)
            raw_a = "N/A" if (well == "E9" and repeat == 2) else f"{a:.3f}"
            if raw_a != "N/A":
                abs_values.setdefault(well, []).append(round(a, 3))
            else:
                abs_values.setdefault(well, []).append(math.nan)
            gfp_values.setdefault(well, []).append(g)
            name = f"{well[0]}{int(well[1:]):02d}"
            lines.append(f"1\t{repeat}\t{name}\tM\t{clock(t_abs)}\t{raw_a}\t{clock(t_gfp)}\t{g}")
            block[labels[0]][well] = raw_a
            block[labels[1]][well] = str(g)
        end_seconds = 12 * 3600 + 40 * 60 + (repeat - 1) * 600
        hours, rest = divmod(end_seconds, 3600)
        block["end"] = f"{hours - 12 if hours > 12 else hours}:{rest // 60:02d}:{rest % 60:02d} PM"
        blocks.append(block)
    lines += x3_blocks(blocks, labels)
    lines += x3_trailer(repeats, "7/2/2025 12:37:20 PM")
    times = [round(t - first_well_times[0], 2) for t in first_well_times]
    expected = {
        "note": "Invented VICTOR X3 export: the per-well list (Plate, Repeat, Well, Type, then "
        "Time + value per label), 4 repeats 600 s apart timed by their first well, then the "
        "per-repeat blocks with BarCode 'N/A' (no plate id); E09 reads 'N/A' in repeat 2; "
        "'Measured on 7/2/2025 12:37:20 PM' (M/D/Y).",
        "n_reads": 2,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "Absorbance @ 405 (A)",
                "wavelength_nm": 405,
                "plate_id": None,
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "derived": False,
                "read_time": "2025-07-02T12:37:20",
                "wells": {w: abs_values[w][-1] for w in ["A1", "E9", "H12"]},
                "metadata": {
                    "reader_serial": "4200123",
                    "temperature_c": "37.0",
                    "time_source": "well times",
                    "background": "-0.000",
                },
                "kinetic": {
                    "n_times": repeats,
                    "times_s": {str(k): t for k, t in enumerate(times)},
                    "readings": {
                        "A1": {"0": abs_values["A1"][0], "3": abs_values["A1"][3]},
                        "E9": {"0": abs_values["E9"][0]},
                    },
                    "missing": {"E9": {"1": "N/A"}},
                },
            },
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": "GFP (Counts)",
                "n_wells": 96,
                "wells": {w: gfp_values[w][-1] for w in ["A1", "H12"]},
                "kinetic": {"n_times": repeats, "readings": {"B3": {"0": gfp_values["B3"][0]}}},
            },
        ],
    }
    write("victor_x3_list_and_blocks_kinetic.txt", "\r\n".join(lines) + "\r\n", expected)


def victor_x3_blocks_only() -> None:
    """Only the per-repeat blocks (no list part): repeats timed by their end times."""
    label = "Absorbance @ 600 (A)"
    blocks: list[dict[str, Any]] = []
    values: dict[str, list[float]] = {}
    ends = ["11:58:40 PM", "12:28:40 AM"]  # the run passes midnight
    for repeat in (1, 2):
        grid = {}
        for i, well in enumerate(WELLS):
            v = od(i, (repeat - 1) * 20, 600)
            grid[well] = f"{v:.3f}"
            values.setdefault(well, []).append(round(v, 3))
        blocks.append(
            {"repeat": repeat, "end": ends[repeat - 1], label: grid, "background": {label: "0.001"}}
        )
    lines = x3_blocks(blocks, [label]) + x3_trailer(2, "6/30/2025 11:56:02 PM")
    expected = {
        "note": "Invented VICTOR X3 export with only the per-repeat blocks: 2 repeats whose end "
        "times 11:58:40 PM and 12:28:40 AM (past midnight) are 1800 s apart; bare 8×12 grids.",
        "n_reads": 1,
        "plates": [
            {
                "plate_index": 0,
                "format": FORMAT,
                "kind": "kinetic",
                "label": label,
                "wavelength_nm": 600,
                "plate_id": None,
                "rows": 8,
                "columns": 12,
                "n_wells": 96,
                "read_time": "2025-06-30T23:56:02",
                "wells": {w: values[w][-1] for w in ["A1", "H12"]},
                "metadata": {"time_source": "repeat end times"},
                "kinetic": {
                    "n_times": 2,
                    "times_s": {"0": 0.0, "1": 1800.0},
                    "readings": {"C5": {"0": values["C5"][0], "1": values["C5"][1]}},
                },
            }
        ],
    }
    write("victor_x3_blocks_only_past_midnight.txt", "\r\n".join(lines) + "\r\n", expected)


# --- VICTOR Nivo -----------------------------------------------------------------------------


def nivo(
    *, cycles: int, wells: list[str], local: str, utc: str | None, name: str, note: str
) -> None:
    times = [round(k * 900.4, 1) for k in range(cycles)]
    start = f"MEASUREMENT START DATE,{local}" + (f",,UTC,{utc}" if utc else "")
    lines = [
        "WELL RESULTS",
        "",
        "PROTOCOL NAME,SAA 405 kinetic",
        "",
        start,
        "",
        "Plate,1",
        "Barcode,NIVO-0099",
        "",
        "3 OPERATION,ABS (F) - Kinetics" if cycles > 1 else "2 OPERATION,ABS (F)",
        "TEMPERATURE(Celsius),37.0",
        "",
    ]
    if cycles > 1:
        lines += [
            ",Cycle," + ",".join(str(k + 1) for k in range(cycles)),
            ",Plate," + ",".join("1" for _ in range(cycles)),
        ]
    lines.append("Well,Time(s)," + ",".join(f"{t:.1f}" for t in times))
    values: dict[str, list[float]] = {}
    for well in wells:
        i = WELLS.index(well)
        series = [round(od(i, k * 3, 405), 3) for k in range(cycles)]
        raw = [f"{v:.3f}" for v in series]
        if well == "B2":
            raw[-1] = "N/A"
        values[well] = series
        lines.append(f"{well},," + ",".join(raw))
    operation = "3 OPERATION,ABS (F)-Plate Kinetics" if cycles > 1 else "2 OPERATION,ABS (F)"
    lines += [
        "PARAMETERS",
        "",
        "User interface program version,5.1.2",
        "Instrument serial number,1022999",
        "",
        "PLATE TYPE,General 96",
        "PLATE FORMAT,96 wells (8X12)",
        "PLATE PARAMETERS",
        "Well volume(\u00b5l),200",
        "",
        operation,
        "MEASUREMENT UNIT,OD",
        "EXCITATION FILTER,405/8nm",
        "",
        "PLATE MAP",
        "",
        ",1,2,3,4,5,6,7,8,9,10,11,12,",
    ]
    for row in ROWS:
        marks = ["X" if f"{row}{c}" in wells else "" for c in range(1, 13)]
        lines.append(",".join([row, *marks]) + ",")
    kind = "kinetic" if cycles > 1 else "endpoint"
    entry: dict[str, Any] = {
        "plate_index": 0,
        "format": FORMAT,
        "kind": kind,
        "label": "ABS (F) - Kinetics" if cycles > 1 else "ABS (F)",
        "wavelength_nm": 405,
        "plate_id": "NIVO-0099",
        "rows": 8,
        "columns": 12,
        "n_wells": len(wells),
        "derived": False,
        "wells": {w: values[w][-1] for w in [wells[0], wells[-1]]},
        "missing": {"B2": "N/A"},
        "reasons": {"B2": "not read"},
        "metadata": {
            "software_version": "5.1.2",
            "reader_serial": "1022999",
            "temperature_c": "37.0",
            "filter": "405/8nm",
        },
    }
    if utc:
        entry["read_time"] = "2025-10-03T13:44:45"
        entry["metadata"]["read_time"] = "2025-10-03T13:44:45+00:00"
    else:
        entry["read_time"] = "2025-10-03T10:44:45"
        entry["metadata"]["date_order"] = "M/D/Y"
    if cycles > 1:
        entry["kinetic"] = {
            "n_times": cycles,
            "times_s": {str(k): t for k, t in enumerate(times)},
            "readings": {wells[0]: {"0": values[wells[0]][0]}},
            "missing": {"B2": {str(cycles - 1): "N/A"}},
        }
    write(
        name,
        "\r\n".join(lines) + "\r\n",
        {"note": note, "n_reads": 1, "plates": [entry]},
        encoding="utf-8-sig",
    )


def victor_nivo_samples() -> None:
    kinetic_wells = [w for w in WELLS if w[0] in "ABCD"]
    nivo(
        cycles=5,
        wells=kinetic_wells,
        local="10/3/2025  10:44:45 AM",
        utc="2025-10-03T13:44:45+0000",
        name="victor_nivo_kinetic_utc_partial.csv",
        note="Invented VICTOR Nivo CSV (UTF-8 with BOM, CRLF): 5 cycles ~900 s apart, rows A-D "
        "only (48 wells; the PLATE MAP marks them 'X'), local and UTC start times (the UTC one "
        "is the read time), B2's last reading 'N/A'.",
    )
    nivo(
        cycles=1,
        wells=WELLS,
        local="10/3/2025  10:44:45 AM",
        utc=None,
        name="victor_nivo_endpoint_local_time.csv",
        note="Invented VICTOR Nivo CSV endpoint read (one time column), no UTC time: the local "
        "start '10/3/2025 10:44:45 AM' (M/D/Y) in the lab's zone; B2 'N/A'.",
    )


def main() -> None:
    envision_two_plates()
    envision_repeats()
    envision_semicolon_end_of_plate()
    enspire_saturated()
    victor_x3_list_and_blocks()
    victor_x3_blocks_only()
    victor_nivo_samples()


if __name__ == "__main__":
    main()
