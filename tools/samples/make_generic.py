"""Write invented generic grid and long-table sample exports and their expected JSON.

    python tools/samples/make_generic.py

Files go to sample_files/generic_grid/ (beside the demo's RUN-GC-002.*, which this
script never touches) and sample_files/generic_long/. The expected JSON is
computed here from the values written, never from the parser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2] / "sample_files"
ROWS = "ABCDEFGHIJKLMNOP"
SHAPES = {6: (2, 3), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24)}


def od(row: int, column: int) -> float:
    """A deterministic, plausible absorbance for a well."""
    return round(0.041 + row * 0.0537 + column * 0.0113 + ((row * 7 + column * 3) % 5) * 0.002, 4)


def text_of(value: float, *, comma: bool = False) -> str:
    text = f"{value:.4f}"
    return text.replace(".", ",") if comma else text


def write(folder: str, name: str, text: str, expected: dict[str, Any], *, encoding: str) -> None:
    if name.startswith("RUN-GC-002") or name.endswith(".worklist.csv"):
        msg = f"refusing to write {name}: the demo's files are not ours"
        raise SystemExit(msg)
    out = ROOT / folder
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(text.encode(encoding))
    expected = {"source": f"{folder}/{name}", **expected}
    body = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    (out / f"{name}.expected.json").write_text(body, encoding="utf-8")


# --- grids ---------------------------------------------------------------------------------------


def grid_lines(
    wells: int,
    *,
    delimiter: str,
    labels: bool,
    header: bool,
    comma: bool = False,
    cells: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The grid's lines and every well's raw text."""
    rows, columns = SHAPES[wells]
    cells = cells or {}
    raw: dict[str, str] = {}
    lines = []
    if header:
        corner = [""] if labels else []
        lines.append(delimiter.join([*corner, *(str(n) for n in range(1, columns + 1))]))
    for r in range(rows):
        values = []
        for col in range(1, columns + 1):
            well = f"{ROWS[r]}{col}"
            raw[well] = cells.get(well, text_of(od(r, col), comma=comma))
            values.append(raw[well])
        lines.append(delimiter.join([ROWS[r], *values] if labels else values))
    return lines, raw


def grid_plate(raw: dict[str, str], wells: int, picks: list[str], **extra: Any) -> dict[str, Any]:
    rows, columns = SHAPES[wells]
    return {
        "plate_index": 0,
        "format": "generic_grid",
        "kind": "endpoint",
        "rows": rows,
        "columns": columns,
        "n_wells": wells,
        "derived": False,
        "wells": {w: float(raw[w].replace(",", ".")) for w in picks},
        **extra,
    }


def grid_384_tab() -> None:
    tokens = {"C7": "OVER", "P24": ""}
    lines, raw = grid_lines(384, delimiter="\t", labels=True, header=True, cells=tokens)
    meta = ["Plate ID\tSAA-384-01", "Wavelength\t450 nm", "Date\t2025-03-14 10:42:00", ""]
    write(
        "generic_grid",
        "grid_384_tab_labels.txt",
        "\r\n".join(meta + lines) + "\r\n",
        {
            "note": "Invented 16x24 tab-separated grid with row letters and column header, "
            "Plate ID/Wavelength/Date lines; C7 'OVER', P24 empty.",
            "n_reads": 1,
            "plates": [
                grid_plate(
                    raw,
                    384,
                    ["A1", "H12", "P23", "A24"],
                    plate_id="SAA-384-01",
                    wavelength_nm=450,
                    read_time="2025-03-14T10:42:00",
                    missing={"C7": "OVER", "P24": ""},
                    reasons={"C7": "overflow", "P24": "empty"},
                    metadata={"delimiter": "\t"},
                )
            ],
        },
        encoding="utf-8",
    )


def grid_96_tab_bare_comma() -> None:
    lines, raw = grid_lines(96, delimiter="\t", labels=False, header=False, comma=True)
    write(
        "generic_grid",
        "grid_96_tab_bare_decimal_comma.tsv",
        "\n".join(["Label\tOD710", "Wavelength\t710", *lines]) + "\n",
        {
            "note": "Invented 8x12 tab-separated grid without row letters or header, decimal "
            "commas, LF line ends, Label and Wavelength lines.",
            "n_reads": 1,
            "plates": [
                grid_plate(
                    raw, 96, ["A1", "H12", "D5"], label="OD710", wavelength_nm=710, plate_id=None
                )
            ],
        },
        encoding="utf-8",
    )


def grid_24_semicolon() -> None:
    lines, raw = grid_lines(24, delimiter=";", labels=True, header=True, comma=True)
    write(
        "generic_grid",
        "grid_24_semicolon_decimal_comma.csv",
        "\r\n".join(["Barcode;P24-0007", "Messdatum;14.03.2025 08:15", "Temperatur;25 °C", *lines])
        + "\r\n",
        {
            "note": "Invented 4x6 (24-well) semicolon grid, decimal commas, Barcode line, cp1252.",
            "n_reads": 1,
            "plates": [
                grid_plate(
                    raw,
                    24,
                    ["A1", "D6", "B3"],
                    plate_id="P24-0007",
                    metadata={
                        "delimiter": ";",
                        "encoding": "cp1252",
                        "Messdatum": "14.03.2025 08:15",
                        "Temperatur": "25 °C",
                    },
                )
            ],
        },
        encoding="cp1252",
    )


def grid_6_and_48() -> None:
    lines, raw = grid_lines(6, delimiter=",", labels=True, header=True)
    write(
        "generic_grid",
        "grid_6_labelled.csv",
        "\r\n".join(["Plate ID,SIX-1", *lines]) + "\r\n",
        {
            "note": "Invented 2x3 (6-well) comma grid with row letters and column header.",
            "n_reads": 1,
            "plates": [grid_plate(raw, 6, ["A1", "B3"], plate_id="SIX-1")],
        },
        encoding="utf-8",
    )
    lines, raw = grid_lines(48, delimiter=",", labels=False, header=False)
    write(
        "generic_grid",
        "grid_48_bare.csv",
        "\r\n".join(lines) + "\r\n",
        {
            "note": "Invented 6x8 (48-well) comma grid: values only, no letters, no header.",
            "n_reads": 1,
            "plates": [grid_plate(raw, 48, ["A1", "F8", "C4"], plate_id=None, label=None)],
        },
        encoding="utf-8",
    )


# --- long tables ---------------------------------------------------------------------------------


def long_comma_96() -> None:
    lines = [
        "Plate ID,SAA-L-001",
        "Wavelength,710 nm",
        "Date,2025-03-14 09:30:00",
        "",
        "Well,Sample,Value",
    ]
    raw: dict[str, str] = {}
    for r in range(8):
        for col in range(1, 13):
            well = f"{ROWS[r]}{col}"
            raw[well] = text_of(od(r, col))
    raw["B5"] = "OVRFLW"
    raw["G11"] = ""
    for r in range(8):
        for col in range(1, 13):
            well = f"{ROWS[r]}{col}"
            lines.append(f"{ROWS[r]}{col:02d},S{r * 12 + col:03d},{raw[well]}")
    write(
        "generic_long",
        "long_comma_96_a01.csv",
        "\r\n".join(lines) + "\r\n",
        {
            "note": "Invented 'Well,Sample,Value' CSV: 96 wells written A01, Plate ID, "
            "Wavelength and Date lines, B5 'OVRFLW', G11 empty.",
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": "generic_long",
                    "kind": "endpoint",
                    "label": "Value",
                    "wavelength_nm": 710,
                    "plate_id": "SAA-L-001",
                    "rows": 8,
                    "columns": 12,
                    "n_wells": 96,
                    "derived": False,
                    "read_time": "2025-03-14T09:30:00",
                    "wells": {w: float(raw[w]) for w in ("A1", "H12", "D7")},
                    "missing": {"B5": "OVRFLW", "G11": ""},
                    "reasons": {"B5": "overflow", "G11": "empty"},
                    "metadata": {"delimiter": ",", "well_column": "Well"},
                }
            ],
        },
        encoding="utf-8",
    )


def long_semicolon_partial() -> None:
    lines = ["Position;Type;OD"]
    raw: dict[str, str] = {}
    for r in range(5):
        for col in range(1, 9):
            well = f"{ROWS[r]}{col}"
            raw[well] = text_of(od(r, col), comma=True)
            lines.append(f"{well};{'Standard' if col == 1 else 'Sample'};{raw[well]}")
    write(
        "generic_long",
        "long_semicolon_decimal_comma_partial.csv",
        "\r\n".join(lines) + "\r\n",
        {
            "note": "Invented 'Position;Type;OD' table with decimal commas, 40 wells "
            "(A-E x 1-8) of a 96-well plate.",
            "n_reads": 1,
            "plates": [
                {
                    "plate_index": 0,
                    "format": "generic_long",
                    "kind": "endpoint",
                    "label": "OD",
                    "wavelength_nm": None,
                    "plate_id": None,
                    "rows": 8,
                    "columns": 12,
                    "n_wells": 40,
                    "derived": False,
                    "wells": {w: float(raw[w].replace(",", ".")) for w in ("A1", "E8", "C4")},
                    "metadata": {"delimiter": ";", "well_column": "Position"},
                }
            ],
        },
        encoding="utf-8",
    )


def long_tab_384() -> None:
    lines = ["Measurement\tSAA 384 dual wavelength", "", "Well\tType\tA450\tA630"]
    raw450: dict[str, str] = {}
    raw630: dict[str, str] = {}
    for r in range(16):
        for col in range(1, 25):
            well = f"{ROWS[r]}{col}"
            raw450[well] = "MISSED" if well == "K13" else text_of(od(r, col))
            raw630[well] = text_of(round(od(r, col) / 9, 4))
            lines.append(f"{well}\tUnknown\t{raw450[well]}\t{raw630[well]}")
    write(
        "generic_long",
        "long_tab_384_two_wavelengths.txt",
        "\n".join(lines) + "\n",
        {
            "note": "Invented tab-separated 'Well, Type, A450, A630' table, 384 wells, two "
            "reads (one per value column), K13 'MISSED' at 450 nm, UTF-8 with BOM, LF.",
            "n_reads": 2,
            "plates": [
                {
                    "plate_index": 0,
                    "format": "generic_long",
                    "label": "A450",
                    "wavelength_nm": 450,
                    "rows": 16,
                    "columns": 24,
                    "n_wells": 384,
                    "derived": False,
                    "wells": {w: float(raw450[w]) for w in ("A1", "P24", "H12")},
                    "missing": {"K13": "MISSED"},
                    "reasons": {"K13": "not read"},
                    "metadata": {"encoding": "utf-8-sig", "Measurement": "SAA 384 dual wavelength"},
                },
                {
                    "plate_index": 0,
                    "format": "generic_long",
                    "label": "A630",
                    "wavelength_nm": 630,
                    "n_wells": 384,
                    "wells": {w: float(raw630[w]) for w in ("A1", "P24", "K13")},
                },
            ],
        },
        encoding="utf-8-sig",
    )


def main() -> None:
    grid_384_tab()
    grid_96_tab_bare_comma()
    grid_24_semicolon()
    grid_6_and_48()
    long_comma_96()
    long_semicolon_partial()
    long_tab_384()


if __name__ == "__main__":
    main()
