"""Detection: exactly one parser claims each file; unknown content fails loudly.

The real exports in ``../shared/samples/real/`` (outside the repository, never
copied into it) are used when present: each either parses or raises one of
saa-lab's own errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from saa_lab.domain import PlateRead, SourceFile
from saa_lab.errors import InputFileError, SaaLabError, UnknownFormatError
from saa_lab.parsers import PARSERS, Instrument, decode, detect, parse

ROWS = "ABCDEFGH"
REAL_SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "real"


def _row_values(r: int) -> list[str]:
    return [f"{0.1 + r * 0.1 + col * 0.001:.3f}" for col in range(1, 13)]


def gen5_text(labels: tuple[str, ...] = ("710",)) -> str:
    lines = [
        "",
        "Software Version\t3.15.15",
        "",
        "Experiment File Path:\tC:\\Gen5\\SAA.xpt",
        "Plate Number\tPlate 1",
        "Date\t3/14/2025",
        "Time\t2:07:55 PM",
        "Reader Type:\tEpoch 2",
        "Reader Serial Number:\t21041234",
        "",
        "Procedure Details",
        "",
        "Plate Type\t96 WELL PLATE",
        "Set Temperature\tSetpoint 37°C",
        "Read\tOD",
        "\tWavelengths:  710",
        "",
        "Results",
        "\t" + "\t".join(str(n) for n in range(1, 13)),
    ]
    for r, row in enumerate(ROWS):
        for i, label in enumerate(labels):
            lines.append(f"{row if i == 0 else ''}\t" + "\t".join(_row_values(r)) + f"\t{label}")
    return "\r\n".join(lines) + "\r\n"


def grid_text(delimiter: str = ",", *, labels: bool = True) -> str:
    lines = ["Plate ID" + delimiter + "SAA-1"]
    for r, row in enumerate(ROWS):
        cells = _row_values(r)
        if delimiter == ";":
            cells = [cell.replace(".", ",") for cell in cells]
        lines.append(delimiter.join([row, *cells] if labels else cells))
    return "\r\n".join(lines) + "\r\n"


SAMPLES: dict[str, tuple[bytes, Instrument]] = {
    "gen5-utf8": (gen5_text().encode(), Instrument.BIOTEK_GEN5),
    "gen5-utf8-bom": (gen5_text().encode("utf-8-sig"), Instrument.BIOTEK_GEN5),
    "gen5-utf16": (gen5_text().encode("utf-16"), Instrument.BIOTEK_GEN5),
    "gen5-utf16-nobom": (gen5_text().encode("utf-16-le"), Instrument.BIOTEK_GEN5),
    "gen5-cp1252": (gen5_text().encode("cp1252"), Instrument.BIOTEK_GEN5),
    "gen5-stacked": (gen5_text(("710", "Blank 710")).encode(), Instrument.BIOTEK_GEN5),
    "grid-comma": (grid_text(",").encode(), Instrument.GENERIC_GRID),
    "grid-semicolon": (grid_text(";").encode(), Instrument.GENERIC_GRID),
    "grid-bare": (grid_text(",", labels=False).encode(), Instrument.GENERIC_GRID),
    "grid-utf16": (grid_text(",").encode("utf-16"), Instrument.GENERIC_GRID),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_exactly_one_parser_claims_each_sample(name: str) -> None:
    contents, expected = SAMPLES[name]
    source = SourceFile(contents, f"{name}.txt")
    head, _ = decode(source)

    claims = [instrument for instrument, cls in PARSERS.items() if cls.sniff(head)]

    assert claims == [expected]
    assert detect(source) is expected


@pytest.mark.parametrize("name", SAMPLES)
def test_detected_parser_reads_the_sample(name: str) -> None:
    contents, expected = SAMPLES[name]

    reads = parse(SourceFile(contents, f"{name}.csv"))

    assert reads
    assert all(read.format == expected.value for read in reads)
    assert all(len(read.wells) == 96 for read in reads)


def test_extension_does_not_decide() -> None:
    contents, _ = SAMPLES["grid-comma"]

    assert detect(SourceFile(contents, "looks-like-gen5.txt")) is Instrument.GENERIC_GRID


@pytest.mark.parametrize("contents", [b"", b"   \r\n\r\n\t\n"], ids=["empty", "whitespace"])
def test_empty_file_is_unknown(contents: bytes) -> None:
    with pytest.raises(UnknownFormatError, match="empty") as err:
        detect(SourceFile(contents, "empty.txt"))

    assert err.value.path == "empty.txt"


@pytest.mark.parametrize(
    "contents",
    [
        b"Dear lab,\r\nplease find the results attached.\r\nRegards\r\n",
        b"Well,Value\r\nA1,0.1\r\nA2,0.2\r\n",
        b"\x00\x01\x02\x03binary\xff\xfe" * 3,
    ],
    ids=["letter", "long-format", "binary"],
)
def test_random_content_is_unknown(contents: bytes) -> None:
    with pytest.raises(InputFileError) as err:
        detect(SourceFile(contents, "notes.txt"))

    assert err.value.path == "notes.txt"


def test_random_text_is_unknown_format() -> None:
    with pytest.raises(UnknownFormatError, match="unrecognised export format"):
        parse(SourceFile(b"Dear lab,\r\nsee you on Monday.\r\n", "notes.txt"))


def test_parse_error_names_the_file() -> None:
    text = gen5_text().replace("D\t", "X\t", 1)

    with pytest.raises(InputFileError) as err:
        parse(SourceFile(text.encode(), "bad-row.txt"))

    assert err.value.path == "bad-row.txt"
    assert str(err.value).startswith("bad-row.txt:")


# --- real exports (outside the repository) --------------------------------------------------


def _real_files() -> list[Path]:
    if not REAL_SAMPLES.is_dir():
        return []
    return sorted(p for p in REAL_SAMPLES.rglob("*") if p.is_file() and p.suffix != ".md")


def _real_id(path: Path | None) -> str:
    return "absent" if path is None else path.relative_to(REAL_SAMPLES).as_posix()


@pytest.mark.parametrize("path", _real_files() or [None], ids=_real_id)
def test_real_exports_parse_or_raise_our_errors(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"no real sample exports at {REAL_SAMPLES}")
    source = SourceFile.from_path(path)

    try:
        reads = parse(source)
    except SaaLabError as err:
        assert err.path == str(path)
        return
    assert reads
    for read in reads:
        assert isinstance(read, PlateRead)
        assert read.wells
        assert all(well.value is not None or well.reason for well in read.wells.values())


def _real(relative: str) -> Path:
    path = REAL_SAMPLES / relative
    if not path.is_file():
        pytest.skip(f"real sample {relative} not present")
    return path


def test_real_gen5_kinetic_text_is_read_as_kinetic() -> None:
    path = _real("biotek_gen5/lennonlab_gen5_2.01_kinetic_OD600_48well_cp1252.txt")
    source = SourceFile.from_path(path)

    assert detect(source) is Instrument.BIOTEK_GEN5
    reads = parse(source)
    assert any(read.kinetic is not None for read in reads)


@pytest.mark.parametrize(
    ("relative", "a1", "h12"),
    [
        ("generic_grid/byonoy_absorbance96_540_grid_plus_layout.csv", 0.065, 0.069),
        ("generic_grid/promega_glomax_absorbance_600_scientific.csv", 1.03, 0.0748),
    ],
)
def test_real_generic_grids_parse(relative: str, a1: float, h12: float) -> None:
    source = SourceFile.from_path(_real(relative))

    [read] = parse(source)

    assert read.format == "generic_grid"
    assert len(read.wells) == 96
    assert read.wells["A1"].value == pytest.approx(a1)
    assert read.wells["H12"].value == pytest.approx(h12)
