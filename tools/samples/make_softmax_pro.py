"""Write the invented SoftMax Pro sample exports in sample_files/softmax_pro/ (issue 3).

    python tools/samples/make_softmax_pro.py

Each export is rendered here from a small model of its plate sections and group
tables, in the layouts real SoftMax Pro 5/6/7 text exports show (see
``../shared/domain/plate-formats.md`` §2). The ``<case>.txt.expected.json`` next
to each export lists what the model put in it (values, tokens, metadata), not
what the parser reads. Files named ``error_*`` are damaged on purpose and have
no expected JSON: the parser must refuse them with the line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "sample_files" / "softmax_pro"
ROWS = "ABCDEFGHIJKLMNOP"
SHAPES = {96: (8, 12), 384: (16, 24)}
DEGREE = "Temperature(¡C)"  # SoftMax writes U+00A1 (0xA1 in cp1252), not a degree sign

Cells = dict[tuple[int, int, str], str]  # (wavelength index, time index, well) -> text


def well(row: int, column: int) -> str:
    return f"{ROWS[row]}{column}"


def absorbance(seed: int, row: int, column: int, point: int = 0) -> str:
    """An invented, distinct reading with 4 decimals."""
    return f"{0.045 + seed * 0.3 + row * 0.061 + column * 0.0047 + point * 0.0123:.4f}"


@dataclass
class Plate:
    name: str
    export_format: str  # PlateFormat | TimeFormat
    read_type: str  # Endpoint | Kinetic
    wavelengths: list[str]
    wells: int = 96
    first_column: int = 1
    columns: int = 0
    first_row: int = 1
    rows: int = 0
    times: list[str] = field(default_factory=lambda: [""])
    seconds: list[float] = field(default_factory=lambda: [0.0])
    temperatures: list[str] = field(default_factory=lambda: ["24.1"])
    tokens: Cells = field(default_factory=dict)
    reduced: bool = False
    decimal_comma: bool = False
    tail: str = "None\t"
    run_time: str = ""
    interval: str = ""

    def __post_init__(self) -> None:
        plate_rows, plate_columns = SHAPES[self.wells]
        self.columns = self.columns or plate_columns
        self.rows = self.rows or plate_rows

    @property
    def shape(self) -> tuple[int, int]:
        return SHAPES[self.wells]

    def in_area(self, row: int, column: int) -> bool:
        return (
            self.first_row - 1 <= row < self.first_row - 1 + self.rows
            and self.first_column <= column < self.first_column + self.columns
        )

    def area_wells(self) -> list[str]:
        rows, columns = self.shape
        return [
            well(r, col)
            for r in range(rows)
            for col in range(1, columns + 1)
            if self.in_area(r, col)
        ]

    def text(self, wl: int, point: int, name: str) -> str:
        """The cell as written ('' outside the read area)."""
        r, col = ROWS.index(name[0]), int(name[1:])
        if not self.in_area(r, col):
            return ""
        token = self.tokens.get((wl, point, name))
        if token is not None:
            return token
        value = absorbance(wl + 1, r, col, point)
        return value.replace(".", ",") if self.decimal_comma else value

    def number(self, wl: int, point: int, name: str) -> float:
        return float(self.text(wl, point, name).replace(",", "."))

    def reduced_text(self, name: str) -> str:
        r, col = ROWS.index(name[0]), int(name[1:])
        if not self.in_area(r, col):
            return ""
        value = f"{(r * 12 + col) * 0.731 - 12.5:.3f}"
        return value.replace(".", ",") if self.decimal_comma else value

    def header(self) -> str:
        points = len(self.times) if self.read_type == "Kinetic" else 1
        fields = [
            "Plate:",
            self.name,
            "1.3",
            self.export_format,
            self.read_type,
            "Absorbance",
            "Raw",
            "FALSE",
            str(points),
            self.run_time,
            self.interval,
            "",
            "",
            "",
            str(len(self.wavelengths)),
            " ".join(self.wavelengths) + " ",
            str(self.first_column),
            str(self.columns),
            str(self.wells),
            str(self.first_row),
            str(self.rows),
        ]
        return "\t".join(fields) + "\t" + self.tail

    def lines(self) -> list[str]:
        if self.export_format == "PlateFormat":
            return self._plate_format()
        return self._time_format()

    def _plate_format(self) -> list[str]:
        rows, columns = self.shape
        numbers = [str(n) for n in range(1, columns + 1)]
        corner = "Time(hh:mm:ss)" if self.read_type == "Kinetic" else ""
        groups: list[str] = []
        for i in range(len(self.wavelengths)):
            groups += ([""] if i else []) + numbers
        lines = [self.header(), "\t".join([corner, DEGREE, *groups, "", ""])]
        for point, time in enumerate(self.times):
            for r in range(rows):
                cells = [time if r == 0 else "", self.temperatures[point] if r == 0 else ""]
                for wl in range(len(self.wavelengths)):
                    values = [self.text(wl, point, well(r, c)) for c in range(1, columns + 1)]
                    cells += ([""] if wl else []) + values
                lines.append("\t".join([*cells, "", ""]))
            lines.append("\t\t")
        if self.reduced:
            lines.append("\t".join(["", "", *numbers, "", ""]))
            for r in range(rows):
                values = [self.reduced_text(well(r, c)) for c in range(1, columns + 1)]
                lines.append("\t".join(["", "", *values, "", ""]))
            lines.append("\t\t")
        return lines

    def _time_format(self) -> list[str]:
        rows, columns = self.shape
        names = [well(r, c) for r in range(rows) for c in range(1, columns + 1)]
        corner = "Time" if self.read_type == "Kinetic" else ""
        lines = [self.header(), "\t".join([corner, DEGREE, *names, ""])]
        for wl in range(len(self.wavelengths)):
            for point, time in enumerate(self.times):
                values = [self.text(wl, point, name) for name in names]
                lines.append("\t".join([time, self.temperatures[point], *values, ""]))
            lines.append("")
        if self.reduced:
            lines.append("\t".join(["", "", *names, ""]))
            lines.append("\t".join(["", "", *(self.reduced_text(n) for n in names), ""]))
        return lines

    def expected(self, wl: int, picks: Sequence[str], plate_index: int) -> dict[str, Any]:
        """The expected entry for the read at wavelength ``wl``; picks name the wells to check."""
        last = len(self.times) - 1 if self.read_type == "Kinetic" else 0
        entry: dict[str, Any] = {
            "plate_index": plate_index,
            "format": "softmax_pro",
            "kind": "kinetic" if self.read_type == "Kinetic" else "endpoint",
            "label": self.name,
            "wavelength_nm": float(self.wavelengths[wl]),
            "plate_id": None,
            "rows": self.shape[0],
            "columns": self.shape[1],
            "n_wells": len(self.area_wells()),
            "derived": False,
        }
        entry["wells"], entry["missing"], entry["reasons"] = self._pick(wl, last, picks)
        entry["metadata"] = {
            "wavelength_nm": self.wavelengths[wl],
            "plate_section": self.name,
            "read_area": f"{well(self.first_row - 1, self.first_column)}:"
            f"{well(self.first_row + self.rows - 2, self.first_column + self.columns - 1)}",
        }
        temperature = next((t for t in self.temperatures if t and t != "NaN"), None)
        if temperature:
            entry["metadata"]["temperature_c"] = temperature
        if self.read_type == "Kinetic":
            kinetic: dict[str, Any] = {
                "n_times": len(self.times),
                "times_s": {str(i): s - self.seconds[0] for i, s in enumerate(self.seconds)},
                "readings": {},
                "missing": {},
            }
            for name in picks:
                for point in range(len(self.times)):
                    text = self.text(wl, point, name)
                    if (wl, point, name) in self.tokens:
                        kinetic["missing"].setdefault(name, {})[str(point)] = text
                    else:
                        kinetic["readings"].setdefault(name, {})[str(point)] = float(
                            text.replace(",", ".")
                        )
            entry["kinetic"] = kinetic
        return entry

    def _pick(
        self, wl: int, point: int, picks: Sequence[str]
    ) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
        wells: dict[str, float] = {}
        missing: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for name in picks:
            token = self.tokens.get((wl, point, name))
            if token is None:
                wells[name] = self.number(wl, point, name)
            else:
                missing[name] = token
                reasons[name] = REASONS[token]
        return wells, missing, reasons

    def expected_reduced(self, picks: Sequence[str], plate_index: int) -> dict[str, Any]:
        return {
            "plate_index": plate_index,
            "format": "softmax_pro",
            "kind": "endpoint",
            "label": f"{self.name} Reduced",
            "derived": True,
            "rows": self.shape[0],
            "columns": self.shape[1],
            "n_wells": len(self.area_wells()),
            "wells": {n: float(self.reduced_text(n).replace(",", ".")) for n in picks},
        }


DEFAULT_FORMULAS = {"Sample": "!SampleNames", "Wells": "!WellIDs", "WellPlateName": "!PlateName"}
REASONS = {
    "Range?": "overflow",
    "Path?": "not calculable",
    "NaN": "not calculable",
    "Masked": "masked",
    "": "empty",
}


@dataclass
class Group:
    """A group table: one row per well; ``values`` per column; first-row-only columns too."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    formulas: dict[str, str]
    plate_column: bool = False

    def lines(self) -> list[str]:
        lines = [f"Group: {self.name}", "\t".join(self.columns)]
        lines += ["\t".join(row) for row in self.rows]
        lines += ["", "Group Column\tFormula Name\tFormula\tPrecision\tNotation"]
        for n, name in enumerate(self.columns, start=1):
            formula = self.formulas.get(name, DEFAULT_FORMULAS.get(name, ""))
            lines.append(f"{n}\t{name}\t{formula}\t3 decimal places\tNumeric")
        return [*lines, "", "Group Summaries"]

    def expected(
        self,
        column: str,
        picks: Sequence[str],
        plate_index: int,
        *,
        plate: str | None = None,
        n_wells: int | None = None,
        shape: tuple[int, int] = (8, 12),
    ) -> dict[str, Any]:
        at, well_at = self.columns.index(column), self.columns.index("Wells")
        plate_at = self.columns.index("WellPlateName") if self.plate_column else None
        rows = [r for r in self.rows if plate_at is None or r[plate_at] == plate]
        by_well = {r[well_at]: r[at].strip() if at < len(r) else "" for r in rows}
        wells = {w: float(by_well[w].replace(",", ".")) for w in picks if by_well[w] not in REASONS}
        missing = {w: by_well[w] for w in picks if by_well[w] in REASONS}
        entry: dict[str, Any] = {
            "plate_index": plate_index,
            "format": "softmax_pro",
            "kind": "endpoint",
            "label": f"{self.name}: {column}",
            "derived": True,
            "rows": shape[0],
            "columns": shape[1],
            "n_wells": n_wells if n_wells is not None else len(rows),
            "wells": wells,
            "missing": missing,
            "reasons": {w: REASONS[t] for w, t in missing.items()},
            "metadata": {"group": self.name, "group_column": column},
        }
        if column in self.formulas:
            entry["metadata"]["formula"] = self.formulas[column]
        return entry


def export_lines(blocks: Sequence[list[str]], footer: str) -> list[str]:
    lines = [f"##BLOCKS= {len(blocks)}"]
    for block in blocks:
        lines += [*block, "~End"]
    return [*lines, footer]


def note(*text: str) -> list[str]:
    return ["Note:", *text]


def write(
    name: str,
    lines: Sequence[str],
    *,
    encoding: str,
    eol: str | Callable[[int], str] = "\r\n",
    expected: dict[str, Any] | None = None,
) -> None:
    if callable(eol):
        text = "".join(line + eol(n) for n, line in enumerate(lines))
    else:
        text = eol.join(lines) + eol
    path = OUT / name
    path.write_bytes(text.encode(encoding))
    if expected is not None:
        expected = {"source": f"softmax_pro/{name}", **expected}
        body = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
        (OUT / f"{name}.expected.json").write_text(body, encoding="utf-8")


def with_meta(entry: dict[str, Any], **meta: str) -> dict[str, Any]:
    entry.setdefault("metadata", {}).update(meta)
    return entry


# --- the cases ------------------------------------------------------------------------------


def sm7_endpoint_utf16_bom() -> None:
    """SoftMax Pro 7: UTF-16 LE with BOM, CRLF, endpoint 710 nm, tokens, and a group table."""
    plate = Plate(
        "Plate1",
        "PlateFormat",
        "Endpoint",
        ["710"],
        temperatures=["25.3"],
        tokens={(0, 0, "H12"): "Range?", (0, 0, "C3"): "Path?", (0, 0, "E7"): "NaN"},
    )
    group = Group(
        "Unknowns",
        ["Sample", "Wells", "Values", "MeanValue", "R"],
        [
            ["01", "A1", "0.108", "0.112", ""],
            [" ", "A2", "0.115", " ", " "],
            ["02", "B1", "Masked", "0.171", "R"],
            [" ", "B2", "0.171", " ", " "],
            ["03", "C1", "Range?", "Range?", "R"],
            [" ", "C2", "0.242", " ", " "],
        ],
        {"Values": "!WellValues", "MeanValue": "Average(Values)"},
    )
    footer = "Original Filename: RUN-SM7-710; Date Last Saved: 3/14/2025 2:07:55 PM"
    lines = export_lines([note("SAA 710 nm endpoint"), plate.lines(), group.lines()], footer)
    common = {"date_last_saved": "3/14/2025 2:07:55 PM", "original_filename": "RUN-SM7-710"}
    expected = {
        "note": "SoftMax Pro 7 style: UTF-16 LE with BOM, CRLF; Note, Plate (endpoint 710 nm, "
        "Range?/Path?/NaN cells) and Group (Masked, Range?, first-row-only MeanValue) blocks.",
        "n_reads": 3,
        "plates": [
            with_meta(
                plate.expected(0, ["A1", "A12", "C3", "D6", "E7", "H1", "H12"], 0),
                encoding="utf-16",
                export_format="PlateFormat",
                **common,
            ),
            with_meta(group.expected("Values", ["A1", "A2", "B1", "C1", "C2"], 0), **common),
            group.expected("MeanValue", ["A1", "A2", "B1", "C1"], 0),
        ],
    }
    write("sm7_endpoint_710_utf16bom_groups.txt", lines, encoding="utf-16", expected=expected)


def sm5_two_wavelengths_cp1252() -> None:
    """SoftMax Pro 5: cp1252, ``Note:<CR>~End``, 450 and 650 nm side by side, reduced grid."""
    plate = Plate(
        "Plate#1",
        "PlateFormat",
        "Endpoint",
        ["450", "650"],
        temperatures=["22.0"],
        tokens={(1, 0, "D5"): "Range?", (0, 0, "G9"): "NaN"},
        reduced=True,
    )
    lines = ["##BLOCKS= 2          ", "Note:\r~End", *plate.lines(), "~End"]
    lines.append("Original Filename: bca-450.pda   Date Last Saved: 10/14/2024")
    picks = ["A1", "A12", "D5", "G9", "H1", "H12"]
    expected = {
        "note": "SoftMax Pro 5 style: cp1252 ('Temperature(¡C)' as byte 0xA1), bare CR inside "
        "'Note:', two wavelengths side by side one empty column apart, a reduced-data grid "
        "(derived), footer with spaces instead of ';'.",
        "n_reads": 3,
        "plates": [
            with_meta(
                plate.expected(0, picks, 0),
                encoding="cp1252",
                date_last_saved="10/14/2024",
                original_filename="bca-450.pda",
            ),
            plate.expected(1, picks, 0),
            plate.expected_reduced(["A1", "D5", "H12"], 0),
        ],
    }
    write("sm5_endpoint_450_650_cp1252_reduced.txt", lines, encoding="cp1252", expected=expected)


def kinetic_plate_format_partial() -> None:
    """PlateFormat kinetic, 405 nm, partial plate B3:F6, UTF-16 LE without BOM, Vmax grid."""
    times = ["0:00", "0:30", "1:00", "1:30", "2:00"]
    plate = Plate(
        "Kinetic405",
        "PlateFormat",
        "Kinetic",
        ["405"],
        first_column=3,
        columns=4,
        first_row=2,
        rows=5,
        times=times,
        seconds=[0, 30, 60, 90, 120],
        temperatures=["37.0", "37.1", "37.1", "37.0", "37.0"],
        tokens={(0, 4, "F6"): "Range?", (0, 2, "C4"): "Range?"},
        reduced=True,
        run_time="120",
        interval="30",
    )
    lines = export_lines([plate.lines()], "Original Filename: kin405; Date Last Saved: 5/2/2025")
    picks = ["B3", "B6", "C4", "D5", "F3", "F6"]
    expected = {
        "note": "PlateFormat kinetic, one 8-row grid per time point (m:ss), read area B3:F6 of "
        "a 96-well plate (first column 3, 4 columns, first row 2, 5 rows), UTF-16 LE without BOM.",
        "n_reads": 2,
        "plates": [
            with_meta(
                plate.expected(0, picks, 0),
                encoding="utf-16-le",
                kinetic_points="5",
                kinetic_run_time_s="120",
                kinetic_interval_s="30",
            ),
            plate.expected_reduced(["B3", "F6"], 0),
        ],
    }
    write(
        "kinetic_plateformat_partial_utf16nobom.txt", lines, encoding="utf-16-le", expected=expected
    )


def kinetic_time_format_384() -> None:
    """TimeFormat kinetic, 384 wells, 340 and 405 nm one after the other, UTF-8, LF."""
    times = ["00:00:00", "00:01:00", "00:02:00", "00:03:00"]
    plate = Plate(
        "Plate384",
        "TimeFormat",
        "Kinetic",
        ["340", "405"],
        wells=384,
        times=times,
        seconds=[0, 60, 120, 180],
        temperatures=["NaN", "30.2", "30.2", "30.3"],
        tokens={(1, 3, "P24"): "Range?", (0, 1, "I13"): "NaN"},
        reduced=True,
        run_time="180",
        interval="60",
        tail="",
    )
    lines = export_lines(
        [plate.lines()], "Original Filename: k384; Date Last Saved: 06/12/2024 16:32:49"
    )
    picks = ["A1", "A24", "I13", "P1", "P24"]
    expected = {
        "note": "TimeFormat kinetic (h:mm:ss), 384 wells as columns, two wavelengths as two "
        "blocks of time lines separated by a blank line, NaN temperature and cells, UTF-8, LF.",
        "n_reads": 3,
        "plates": [
            with_meta(plate.expected(0, picks, 0), encoding="utf-8", export_format="TimeFormat"),
            plate.expected(1, picks, 0),
            plate.expected_reduced(["A1", "P24"], 0),
        ],
    }
    write(
        "kinetic_timeformat_384_340_405_utf8_lf.txt",
        lines,
        encoding="utf-8",
        eol="\n",
        expected=expected,
    )


def endpoint_384_partial_cr() -> None:
    """PlateFormat endpoint on a 384-well plate, read area C5:L12, CR-only line ends."""
    plate = Plate(
        "Plate2",
        "PlateFormat",
        "Endpoint",
        ["562"],
        wells=384,
        first_column=5,
        columns=8,
        first_row=3,
        rows=10,
        temperatures=["23.9"],
        tokens={(0, 0, "L12"): "Range?"},
    )
    lines = export_lines([plate.lines()], "Original Filename: bca384; Date Last Saved: 1/9/2025")
    picks = ["C5", "C12", "G8", "L5", "L12"]
    expected = {
        "note": "384-well PlateFormat endpoint with a partial read area (first column 5, 8 "
        "columns, first row 3, 10 rows): unread cells empty and absent; CR-only line ends.",
        "n_reads": 1,
        "plates": [with_meta(plate.expected(0, picks, 0), encoding="utf-8")],
    }
    write("endpoint_384_partial_cr_only.txt", lines, encoding="utf-8", eol="\r", expected=expected)


def group_only_utf16() -> None:
    """Only a Group block (no Plate:), UTF-16 with BOM: derived per-well reads."""
    rows: list[list[str]] = []
    for n, (a, b) in enumerate([("A1", "A2"), ("B1", "B2"), ("C1", "C2"), ("D1", "D2")]):
        first = f"{0.2 + n * 0.31:.3f}"
        second = "Masked" if b == "C2" else f"{0.21 + n * 0.3:.3f}"
        if a == "D1":
            first = "Range?"
        rows.append([f"S{n + 1:02d}", a, first, f"{(n + 1) * 12.5:.3f}"])
        rows.append([" ", b, second, f"{(n + 1) * 12.4:.3f}"])
    group = Group(
        "Samples",
        ["Sample", "Wells", "Values", "Concentration"],
        rows,
        {"Values": "!WellValues", "Concentration": "InterpX(STD@Standard Curve,Values)"},
    )
    footer = "Original Filename: groups-only; Date Last Saved: 2/3/2025 9:15:00 AM"
    lines = export_lines([group.lines()], footer)
    expected = {
        "note": "Only a Group: block listing one well per row (no Plate: block): every numeric "
        "column becomes a derived read; Masked and Range? kept with their reasons.",
        "n_reads": 2,
        "plates": [
            with_meta(
                group.expected("Values", ["A1", "B2", "C2", "D1", "D2"], 0),
                encoding="utf-16",
                date_last_saved="2/3/2025 9:15:00 AM",
            ),
            group.expected("Concentration", ["A1", "D2"], 0),
        ],
    }
    write("group_only_utf16.txt", lines, encoding="utf-16", expected=expected)


def two_plates_decimal_comma() -> None:
    """Two plate sections written with decimal commas, a group (points) naming its plate."""
    first = Plate(
        "PlateA",
        "PlateFormat",
        "Endpoint",
        ["710"],
        temperatures=["24,5"],
        decimal_comma=True,
        tokens={(0, 0, "B2"): "Range?"},
    )
    second = Plate(
        "PlateB", "PlateFormat", "Endpoint", ["710"], temperatures=["24,6"], decimal_comma=True
    )
    group = Group(
        "Standards",
        ["Sample", "Wells", "WellPlateName", "Values"],
        [["St01", "A1", "PlateB", "0.312"], [" ", "A2", "PlateB", "0.318"]],
        {"Values": "!WellValues"},
        plate_column=True,
    )
    footer = "Original Filename: two-plates; Date Last Saved: 11/20/2025 4:01:12 PM"
    lines = export_lines([first.lines(), second.lines(), group.lines()], footer)

    def eol(n: int) -> str:
        return "\n" if n % 3 == 0 else "\r\n"

    picks = ["A1", "B2", "H12"]
    expected = {
        "note": "Two Plate: sections with decimal-comma cells (decided per block), a group "
        "table with point decimals and a WellPlateName column, CRLF mixed with LF.",
        "n_reads": 3,
        "plates": [
            with_meta(first.expected(0, picks, 0), decimal_comma="true"),
            second.expected(0, picks, 1),
            with_meta(
                group.expected("Values", ["A1", "A2"], 1, plate="PlateB"), plate_section="PlateB"
            ),
        ],
    }
    write(
        "two_plates_decimal_comma_mixed_eol.txt",
        lines,
        encoding="utf-8",
        eol=eol,
        expected=expected,
    )


def endpoint_time_format() -> None:
    """TimeFormat endpoint: one line of wells, UTF-8 with BOM."""
    plate = Plate(
        "Plate1",
        "TimeFormat",
        "Endpoint",
        ["710"],
        temperatures=["26.0"],
        tokens={(0, 0, "F8"): "Range?"},
        tail="",
    )
    lines = export_lines([plate.lines()], "Original Filename: tf; Date Last Saved: 7/7/2025")
    expected = {
        "note": "TimeFormat endpoint: wells as columns, a single line of values; UTF-8 BOM.",
        "n_reads": 1,
        "plates": [with_meta(plate.expected(0, ["A1", "F8", "H12"], 0), encoding="utf-8-sig")],
    }
    write("endpoint_timeformat_96_utf8bom.txt", lines, encoding="utf-8-sig", expected=expected)


def damaged() -> None:
    """Two damaged exports (no expected JSON): the parser must refuse them with a line."""
    plate = Plate("Plate1", "PlateFormat", "Endpoint", ["710"])
    footer = "Original Filename: damaged; Date Last Saved: 1/1/2025"
    lines = export_lines([plate.lines()], footer)
    lines[0] = "##BLOCKS= 3"
    write("error_blocks_count_larger.txt", lines, encoding="utf-8")
    lines = export_lines([note("cut"), plate.lines()], footer)
    end = len(lines) - 2  # the plate block's ~End
    assert lines[end] == "~End"
    write("error_missing_end.txt", [*lines[:end], lines[-1]], encoding="utf-8")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sm7_endpoint_utf16_bom()
    sm5_two_wavelengths_cp1252()
    kinetic_plate_format_partial()
    kinetic_time_format_384()
    endpoint_384_partial_cr()
    group_only_utf16()
    two_plates_decimal_comma()
    endpoint_time_format()
    damaged()


if __name__ == "__main__":
    main()
