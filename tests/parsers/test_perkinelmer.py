"""PerkinElmer / Revvity parser: EnVision/EnSpire, VICTOR X3 and VICTOR Nivo exports."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from parser_helpers import claimants, fuzz_outcomes, line_of, other_samples, own_samples

from saa_lab.domain import NoValueReason, PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import Instrument, detect
from saa_lab.parsers.perkinelmer import PerkinElmerParser
from saa_lab.parsers.perkinelmer import constants as c
from saa_lab.parsers.perkinelmer.common import parse_pe_datetime, wavelength_from_label
from saa_lab.parsers.table import head_text

ROWS = "ABCDEFGH"
WELLS = [f"{r}{col}" for r in ROWS for col in range(1, 13)]
INFO = "Plate,Repeat,Barcode,Chamber temperature at start,Label,Measurement date,"


def value(i: int, k: int = 0) -> str:
    return f"{0.05 + i * 0.01 + k * 0.002:.4f}"


def grid(cells: dict[str, str] | None = None, k: int = 0, *, labelled: bool = True) -> list[str]:
    cells = cells or {}
    lines = ["," + ",".join(f"{n:02d}" for n in range(1, 13)) + ","] if labelled else []
    for r, row in enumerate(ROWS):
        values = [cells.get(f"{row}{col}", value(r * 12 + col - 1, k)) for col in range(1, 13)]
        lines.append(",".join([row, *values] if labelled else values) + ",")
    return lines


def envision(
    *,
    plates: int = 1,
    repeats: int = 1,
    label: str = "A450(1)",
    cells: dict[str, str] | None = None,
    date: str = "1/15/2024 10:30:00 AM",
    barcode: str = '="P-{plate}"',
    title: str | None = "Results for {label} - channel 1 (A)",
) -> str:
    lines: list[str] = []
    for plate in range(1, plates + 1):
        for repeat in range(1, repeats + 1):
            when = date.replace(":00 ", f":{(repeat - 1) * 20:02d} ")
            lines += [
                "Plate information",
                INFO,
                f"{plate},{repeat},{barcode.format(plate=plate)},22.0,{label},{when},",
                "",
                "Background information",
                "Plate,Label,Result,Signal,Flashes/Time,Meastime,MeasInfo,",
                f"{plate},{label},0,295000,300,00:00:00.000,De=1st,",
                "",
            ]
            if title is not None:
                lines.append(title.format(label=label))
            lines += grid(cells, repeat - 1, labelled=title is not None)
            lines.append("")
    lines += [
        "",
        "Basic assay information ",
        "Assay ID: ,,,,101",
        'Serial#: ,,,,="1050242"',
        "",
        "Exported with EnVision Workstation version 1.14.3049.1642",
    ]
    return "\r\n".join(lines) + "\r\n"


def read(text: str, *, encoding: str = "utf-8", name: str = "run.csv") -> list[PlateRead]:
    return PerkinElmerParser().parse(SourceFile(text.encode(encoding), name))


# --- EnVision / EnSpire ----------------------------------------------------------------------


def test_envision_absorbance_plate() -> None:
    [plate] = read(envision())

    assert plate.format == "perkinelmer" and plate.kind == "endpoint"
    assert plate.label == "A450(1) - channel 1 (A)" and plate.wavelength_nm == 450
    assert plate.plate_id == "P-1"
    assert (plate.rows, plate.columns, len(plate.wells)) == (8, 12, 96)
    assert plate.wells["H12"].value == pytest.approx(float(value(95)))
    assert plate.read_time is not None
    assert plate.read_time.isoformat() == "2024-01-15T10:30:00+00:00"
    assert plate.metadata["reader_model"] == "EnVision"
    assert plate.metadata["reader_serial"] == "1050242"
    assert plate.metadata["temperature_c"] == "22.0"


def test_plates_become_plate_indexes() -> None:
    first, second = read(envision(plates=2))

    assert (first.plate_index, second.plate_index) == (0, 1)
    assert (first.plate_id, second.plate_id) == ("P-1", "P-2")
    assert (first.index, second.index) == (0, 1)


def test_repeats_become_one_kinetic_read() -> None:
    [plate] = read(envision(repeats=3))

    assert plate.kind == "kinetic" and plate.kinetic is not None
    assert plate.kinetic.times_s == (0.0, 20.0, 40.0)
    assert plate.wells["A2"].value == pytest.approx(float(value(1, 2)))
    assert plate.kinetic.readings["A2"][0].value == pytest.approx(float(value(1, 0)))


def test_bare_grid_takes_its_label_from_plate_information() -> None:
    [plate] = read(envision(title=None, label="BCA Absorbance @ 562(1)"))

    assert plate.label == "BCA Absorbance @ 562(1)" and plate.wavelength_nm == 562
    assert len(plate.wells) == 96


def test_plate_information_after_its_grid() -> None:
    text = "\r\n".join(
        [
            "Results for A450(1)",
            *grid(),
            "",
            "Plate information",
            INFO,
            '1,1,="END",N/A,A450(1),15.01.2024 10:30:00,',
            "",
            "Basic assay information",
        ]
    )

    [plate] = read(text)

    assert plate.plate_id == "END" and "temperature_c" not in plate.metadata
    assert plate.read_time is not None and plate.read_time.isoformat().startswith("2024-01-15")


def test_grid_after_the_last_end_of_plate_block_is_refused() -> None:
    text = "\r\n".join(
        [
            "Results for A450(1)",
            *grid(),
            "",
            "Plate information",
            INFO,
            "1,1,,22,A450(1),1/15/2024 10:30:00 AM,",
            "",
            "Results for A450(1)",
            *grid(),
        ]
    )

    with pytest.raises(InputFileError, match=re.escape(c.GRID_WITHOUT_INFO)) as err:
        read(text)

    assert err.value.line == line_of(text, ",01", 1)


def test_signal_grid_is_used_only_without_results() -> None:
    text = envision(title="Signal for {label} - (RFU)")

    [plate] = read(text)

    assert plate.label == "A450(1) - (RFU)"


def test_saturated_wells_have_no_value() -> None:
    text = envision(label="Meas A", title="Results for Meas A -  (RFU)")
    sat = [
        "Saturated for Meas A -  (RFU) (SAT=Saturated)",
        *grid({w: ("SAT" if w == "C3" else "-") for w in WELLS}),
        "",
    ]
    text = text.replace("\r\n\r\nBasic assay", "\r\n" + "\r\n".join(sat) + "\r\nBasic assay")

    [plate] = read(text)

    assert plate.wells["C3"].value is None
    assert plate.wells["C3"].reason == NoValueReason.OVERFLOW
    assert plate.wells["C3"].raw == value(26)
    assert plate.metadata["saturated_wells"] == "C3"


@pytest.mark.parametrize(
    ("token", "reason"), [("N/A", NoValueReason.NOT_READ), ("OVER", NoValueReason.OVERFLOW)]
)
def test_tokens_in_grids(token: str, reason: str) -> None:
    [plate] = read(envision(cells={"D4": token}))

    assert plate.wells["D4"].value is None and plate.wells["D4"].raw == token
    assert plate.wells["D4"].reason == reason


def test_calculated_results_are_derived() -> None:
    text = envision(title="Calculated results: Calc 1: Ratio = A450 / A620", label="x")

    [plate] = read(text)

    assert plate.derived is True and plate.wavelength_nm is None
    assert plate.label == "Calc 1: Ratio = A450 / A620"


def test_semicolon_decimal_comma_export() -> None:
    text = envision().replace(",", ";")
    text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)

    [plate] = read(text)

    assert plate.metadata["delimiter"] == ";"
    assert plate.wells["B2"].value == pytest.approx(float(value(13)))


def test_384_well_grid() -> None:
    letters = "ABCDEFGHIJKLMNOP"
    rows = ["," + ",".join(f"{n:02d}" for n in range(1, 25)) + ","]
    rows += [
        ",".join([row, *(str(r * 24 + k) for k in range(24))]) + ","
        for r, row in enumerate(letters)
    ]
    text = envision().replace("\r\n".join(grid()), "\r\n".join(rows))

    [plate] = read(text)

    assert (plate.rows, plate.columns, len(plate.wells)) == (16, 24, 384)
    assert plate.wells["P24"].value == 383


def test_duplicate_repeat_is_refused() -> None:
    text = envision(repeats=2).replace("1,2,", "1,1,")

    with pytest.raises(InputFileError, match=re.escape("holds 'A450(1) - channel 1 (A)' twice")):
        read(text)


def test_grid_row_out_of_order_names_its_line() -> None:
    text = envision()
    text = text.replace("\r\nC,", "\r\nX,", 1)

    with pytest.raises(InputFileError, match=re.escape("row label 'X' does not follow")) as err:
        read(text)

    assert err.value.line == line_of(text, "X,")


def test_missing_plate_information() -> None:
    text = "\r\n".join(
        [
            "Background information",
            "Plate,Label,Result,Signal",
            "1,A,0,1",
            "",
            "Results for A450",
            *grid(),
        ]
    )

    with pytest.raises(InputFileError, match=re.escape(c.NO_PLATE_INFORMATION)):
        read(text)


# --- dates and wavelengths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso", "order"),
    [
        ("1/15/2024 10:30:00 AM", "2024-01-15T10:30:00", "M/D/Y"),
        ("3/07/2011 1:41:34 p.m.", "2011-07-03T13:41:34", "D/M/Y"),
        ("3/07/2011 12:01:34 a.m.", "2011-07-03T00:01:34", "D/M/Y"),
        ("10/3/2022  10:44:45 AM", "2022-10-03T10:44:45", "M/D/Y"),
        ("15.01.2024 10:30:00", "2024-01-15T10:30:00", "D/M/Y"),
        ("2024-01-15 10:30:00", "2024-01-15T10:30:00", "Y-M-D"),
    ],
)
def test_dates(text: str, iso: str, order: str) -> None:
    moment, used = parse_pe_datetime(text)

    assert (moment.isoformat(), used) == (iso, order)


@pytest.mark.parametrize(
    ("label", "nm"),
    [
        ("A450(1) - channel 1 (A)", 450),
        ("Absorbance @ 600 (A)", 600),
        ("OD600", 600),
        ("BCA Absorbance @ 562(1)", 562),
        ("Meas A -  (RFU)", None),
        ("GFP (Counts)", None),
    ],
)
def test_wavelength_from_label(label: str, nm: float | None) -> None:
    assert wavelength_from_label(label) == nm


def test_bad_measurement_date_names_its_line() -> None:
    text = envision(date="13/45/2024 10:30:00 AM")

    with pytest.raises(InputFileError, match=re.escape("is not a date and time")) as err:
        read(text)

    assert err.value.line == 3


# --- VICTOR X3 -------------------------------------------------------------------------------


END_TIMES = ["12:39:17 PM", "1:09:17 PM", "1:39:17 PM"]


def x3(*, repeats: int = 3, list_part: bool = True, blocks: bool = True) -> str:
    lines: list[str] = []
    if list_part:
        lines.append("Plate\tRepeat\tWell\tType\tTime\tAbsorbance @ 600 (A)\tTime\tGFP (Counts)")
        for repeat in range(1, repeats + 1):
            for i, well in enumerate(WELLS):
                t = 41.0 + (repeat - 1) * 1800 + i * 0.5
                h, rest = divmod(t, 3600)
                m, s = divmod(rest, 60)
                stamp = f"{int(h):02d}:{int(m):02d}:{s:05.2f}"
                name = f"{well[0]}{int(well[1:]):02d}"
                lines.append(
                    f"1\t{repeat}\t{name}\tM\t{stamp}\t{value(i, repeat)}\t{stamp}\t{900 + i}"
                )
    if blocks:
        for repeat in range(1, repeats + 1):
            lines += [
                "Plate\tRepeat\tEnd time\tStart temp.\tEnd temp.\tBarCode\t\t\t\t\t\t ",
                f"1\t{repeat}\t{END_TIMES[repeat - 1]}\t29.9\t30\tN/A\t\t\t\t\t\t ",
                "\t" * 11 + " ",
                "Absorbance @ 600 (A)" + "\t" * 11 + " ",
                "-0.000" + "\t" * 11 + " ",
                "\t" * 11 + " ",
            ]
            for r in range(8):
                lines.append("\t".join(value(r * 12 + k, repeat) for k in range(12)))
            lines.append("\t" * 11 + " ")
    lines += [
        "Protocol description",
        "",
        "Name of the plate type ............ Generic 8x12 size plate",
        "Instrument serial number: ......... 4200123",
        "Measured on ....................... 6/12/2022 12:36:26 PM",
        "",
    ]
    return "\r\n".join(lines) + "\r\n"


def test_x3_list_gives_kinetic_reads_per_label() -> None:
    absorbance, gfp = read(x3(), name="x3.txt")

    assert absorbance.label == "Absorbance @ 600 (A)" and absorbance.wavelength_nm == 600
    assert gfp.label == "GFP (Counts)" and gfp.wavelength_nm is None
    assert absorbance.kinetic is not None and absorbance.kinetic.times_s == (0.0, 1800.0, 3600.0)
    assert absorbance.wells["H12"].value == pytest.approx(float(value(95, 3)))
    assert gfp.wells["A1"].value == 900
    assert absorbance.plate_id is None
    assert absorbance.metadata["reader_serial"] == "4200123"
    assert absorbance.metadata["temperature_c"] == "29.9"
    assert absorbance.read_time is not None
    assert absorbance.read_time.isoformat() == "2022-06-12T12:36:26+00:00"


def test_x3_blocks_only_use_end_times() -> None:
    [plate] = read(x3(list_part=False), name="x3.txt")

    assert plate.kinetic is not None and plate.kinetic.times_s == (0.0, 1800.0, 3600.0)
    assert plate.metadata["time_source"] == "repeat end times"
    assert plate.wells["A1"].value == pytest.approx(float(value(0, 3)))


def test_x3_single_repeat_is_an_endpoint() -> None:
    absorbance, _ = read(x3(repeats=1, blocks=False), name="x3.txt")

    assert absorbance.kind == "endpoint" and len(absorbance.wells) == 96


def test_x3_bad_well_names_its_line() -> None:
    text = x3(blocks=False).replace("\tC05\t", "\tC5x\t", 1)

    with pytest.raises(InputFileError, match=re.escape("'C5x' is not a well name")) as err:
        read(text, name="x3.txt")

    assert err.value.line == 1 + 2 * 12 + 5


def test_x3_cut_line() -> None:
    text = x3(blocks=False)
    line = text.split("\r\n")[10]
    text = text.replace(line, line.rsplit("\t", 2)[0])

    with pytest.raises(InputFileError, match=re.escape("fields; the list header has 8")) as err:
        read(text, name="x3.txt")

    assert err.value.line == 11


# --- VICTOR Nivo -----------------------------------------------------------------------------


def nivo(*, utc: bool = True, cycles: int = 3, cell: str | None = None) -> str:
    start = "MEASUREMENT START DATE,10/3/2022  10:44:45 AM" + (
        ",,UTC,2022-10-03T13:44:45+0000" if utc else ""
    )
    lines = [
        "WELL RESULTS",
        "",
        "PROTOCOL NAME,OD600 8h",
        "",
        start,
        "",
        "Plate,0",
        "Barcode,0",
        "",
        "3 OPERATION,ABS (F) - Kinetics",
        "TEMPERATURE(Celsius),30.0",
        "",
        ",Cycle," + ",".join(str(k + 1) for k in range(cycles)),
        "Well,Time(s)," + ",".join(f"{k * 1772.1:.1f}" for k in range(cycles)),
    ]
    for i, well in enumerate(WELLS):
        values = [value(i, k) for k in range(cycles)]
        if cell is not None and well == "B5":
            values[-1] = cell
        lines.append(f"{well},," + ",".join(values))
    lines += [
        "PARAMETERS",
        "",
        "User interface program version,5.0.0",
        "Instrument serial number,1022157",
        "PLATE FORMAT,96 wells (8X12)",
        "",
        "3 OPERATION,ABS (F)-Plate Kinetics",
        "EXCITATION FILTER,600/10nm",
        "",
        "PLATE MAP",
        "",
        ",1,2,3,4,5,6,7,8,9,10,11,12,",
        *("{},".format(",".join([row] + ["X"] * 12)) for row in ROWS),
    ]
    return "\r\n".join(lines) + "\r\n"


def test_nivo_uses_the_utc_time() -> None:
    [plate] = read(nivo())

    assert plate.read_time is not None
    assert plate.read_time.isoformat() == "2022-10-03T13:44:45+00:00"
    assert plate.kinetic is not None and plate.kinetic.times_s == pytest.approx((0, 1772.1, 3544.2))
    assert plate.wavelength_nm == 600 and plate.plate_id is None
    assert plate.metadata["local_start_time"] == "10/3/2022 10:44:45 AM"
    assert plate.metadata["software_version"] == "5.0.0"


def test_nivo_without_utc_uses_the_lab_zone() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Halifax")
    source = SourceFile(nivo(utc=False).encode(), "n.csv", timezone=zone)

    [plate] = PerkinElmerParser().parse(source)

    assert plate.read_time is not None and plate.read_time.tzinfo is zone
    assert plate.read_time.replace(tzinfo=None).isoformat() == "2022-10-03T10:44:45"


def test_nivo_na_token() -> None:
    [plate] = read(nivo(cell="N/A"))

    assert plate.wells["B5"].value is None and plate.wells["B5"].raw == "N/A"
    assert plate.kinetic is not None and plate.kinetic.readings["B5"][0].value is not None


def test_nivo_endpoint_single_cycle() -> None:
    [plate] = read(nivo(cycles=1))

    assert plate.kind == "endpoint" and plate.kinetic is None


def test_nivo_bad_time_names_its_line() -> None:
    text = nivo().replace("1772.1", "later")

    with pytest.raises(InputFileError, match=re.escape("is not a number of seconds")) as err:
        read(text)

    assert err.value.line == line_of(text, "Well,")


def test_nivo_bad_well() -> None:
    text = nivo().replace("\r\nC3,", "\r\nZ99,")

    with pytest.raises(InputFileError, match=re.escape("'Z99' is not a well name")) as err:
        read(text)

    assert err.value.line == line_of(text, "Z99")


# --- encodings and line endings ---------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("builder", [envision, nivo, x3], ids=["envision", "nivo", "x3"])
def test_encodings(encoding: str, builder: object) -> None:
    assert callable(builder)
    reads = read(builder(), encoding=encoding)

    assert reads and len(reads[0].wells) == 96


@pytest.mark.parametrize("ending", ["\n", "\r"])
def test_line_endings(ending: str) -> None:
    [plate] = read(envision(repeats=2).replace("\r\n", ending))

    assert plate.kind == "kinetic"


# --- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", own_samples("perkinelmer"), ids=lambda p: p.name)
def test_only_perkinelmer_claims_its_files(path: Path) -> None:
    head = head_text(SourceFile.from_path(path))

    claims = claimants(head)

    assert claims == [Instrument.PERKINELMER]


def test_perkinelmer_claims_no_other_sample() -> None:
    others = other_samples("perkinelmer")
    claimed = [
        p.name for p in others if PerkinElmerParser.sniff(head_text(SourceFile.from_path(p)))
    ]

    assert claimed == []


def test_sniff_claims_an_end_of_plate_export_by_its_background_block() -> None:
    head = "\r\n".join(
        [
            "Background information",
            "Plate,Label,Result,Signal,Flashes/Time,Meastime,MeasInfo,",
            "1,A450,0,295000,300,00:00:00.000,De=1st,",
            "",
            *grid(labelled=False),
        ]
    )

    assert PerkinElmerParser.sniff(head)
    assert not PerkinElmerParser.sniff(head.replace("Background information", "Notes"))


@pytest.mark.parametrize("builder", [envision, nivo, x3], ids=["envision", "nivo", "x3"])
def test_detect_picks_perkinelmer(builder: object) -> None:
    assert callable(builder)
    assert detect(SourceFile(builder().encode(), "x.txt")) is Instrument.PERKINELMER


# --- robustness and speed -----------------------------------------------------------------------


def test_mutated_files_parse_or_raise_input_errors() -> None:
    originals = [p.read_bytes() for p in own_samples("perkinelmer") if p.stat().st_size < 50_000]
    outcomes = fuzz_outcomes(
        PerkinElmerParser(), originals, seed=2300, swap=(b",", b"\t"), name="mutated.csv"
    )
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 0


def test_96_well_endpoint_parses_fast() -> None:
    data = envision().encode()
    PerkinElmerParser().parse(SourceFile(data, "warm.csv"))
    start = time.perf_counter()
    for _ in range(10):
        PerkinElmerParser().parse(SourceFile(data, "x.csv"))
    assert (time.perf_counter() - start) / 10 < 0.020
