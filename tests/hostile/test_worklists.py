"""Hostile worklists: read into sane rows, or refused with one line naming the file.

``parse_worklist`` gets arbitrary bytes, valid worklists with cells replaced by junk
(NaN, inf, zero and negative dilutions, formulas, control characters, huge values),
duplicated and dropped cells, rows and columns, and text-level damage (BOMs, mixed
line endings, re-encoding, truncation, very long lines), and workbooks (XLSX
worklists are not read: they must be refused). It must return a Worklist whose every
row is what the file says (a valid 96-well name, the accession as written, a finite
dilution >= 1 read from plain numeric text, 1 only when the cell is empty), or raise
InputFileError whose one-line message names the file. Anything else is a bug.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from hostile_support import JUNK, assert_one_line, counted, hostile, junk_text, pick
from hypothesis import given
from hypothesis import strategies as st

from saa_lab.domain import SourceFile
from saa_lab.errors import InputFileError
from saa_lab.orders import FORMULATIONS
from saa_lab.store.models import OrderRow, WellRow
from saa_lab.wells import normalize_well, wells_96
from saa_lab.worklist import KNOWN_COLUMNS, Worklist, parse_worklist

ZONE = ZoneInfo("Europe/Berlin")
NAME = "RUN-HOSTILE.worklist.csv"
# The longest accession the store keeps (its columns).
ACCESSION_MAX = min(
    WellRow.__table__.c.accession.type.length,  # type: ignore[attr-defined]
    OrderRow.__table__.c.accession.type.length,  # type: ignore[attr-defined]
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A dilution as a person writes it: 5, 1:5, 2.5 (ASCII digits).
_DILUTION = re.compile(r"(?:1:)?\s*([+]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)")
_TOKEN = re.compile(
    r"(?:^|(?<=[,;\"\s:]))([+]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)(?=$|[,;\"\s])"
)


def parse(data: bytes) -> Worklist | InputFileError:
    try:
        return parse_worklist(SourceFile(data, NAME), zone=ZONE)
    except InputFileError as error:
        assert error.path == NAME, f"the error does not name the file: {error}"
        assert_one_line(str(error))
        assert str(error).startswith(f"{NAME}"), str(error)
        return error


def check_sane(worklist: Worklist, text: str) -> None:
    """What holds for any worklist read from ``text``, however it was damaged."""
    assert worklist.rows, "a worklist without rows"
    wells = [row.well for row in worklist.rows]
    assert len(wells) == len(set(wells)), f"a well twice: {wells}"
    tokens = {float(t) for t in _TOKEN.findall(text)}
    accessions = {row.accession for row in worklist.rows}
    for row in worklist.rows:
        where = f"line {row.line} {row.well}"
        assert row.well in WELLS_96, f"{where}: not a well of a 96-well plate"
        assert row.accession, f"{where}: empty accession"
        assert row.accession == row.accession.strip(), f"{where}: accession not stripped"
        assert not _CONTROL.search(row.accession), f"{where}: control character in accession"
        assert len(row.accession) <= ACCESSION_MAX, f"{where}: accession too long to store"
        written = (row.accession, row.accession.replace('"', '""'))  # as is, or quoted
        assert any(w in text for w in written), f"{where}: accession {row.accession!r} invented"
        assert math.isfinite(row.dilution) and row.dilution >= 1, f"{where}: {row.dilution}"
        assert row.dilution == 1.0 or row.dilution in tokens, (
            f"{where}: dilution {row.dilution} is no number written in the file"
        )
    for accession, order in worklist.orders.items():
        assert accession in accessions and order.accession == accession
        assert order.formulation is None or order.formulation in FORMULATIONS
        for moment in (order.dose_time, order.collection_time):
            assert moment is None or moment.utcoffset() is not None
            assert moment is None or moment.astimezone(UTC)  # storable
        if order.dose_time and order.collection_time:
            assert order.collection_time >= order.dose_time
        for text_value in (order.patient_id, order.protocol, order.clinic):
            assert text_value is None or not _CONTROL.search(text_value)
            assert text_value is None or len(text_value) <= ACCESSION_MAX


WELLS_96 = frozenset(wells_96())

# --- a model of a valid worklist, damaged cell by cell --------------------------------

ORDER_VALUES = {
    "patient_id": st.sampled_from(["PAT-1", "PAT-2", "P 3"]),
    "formulation": st.sampled_from(["PEG-asparaginase", "Erwinia", "crisantaspase", ""]),
    "dose_time": st.sampled_from(["2026-11-13T09:00", "2026-11-13 10:00+01:00", ""]),
    "collection_time": st.sampled_from(["2026-11-20T08:30", ""]),
    "protocol": st.sampled_from(["AIEOP-BFM-2009", "DCOG-ALL11", ""]),
    "clinic": st.sampled_from(["CLINIC-NORTH", ""]),
    "placer_order_number": st.sampled_from(["PL-1", ""]),
}


@dataclass
class Model:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    delimiter: str = ","
    newline: str = "\n"
    bom: bool = False

    def render(self) -> str:
        def cell(text: str) -> str:
            specials = (self.delimiter, '"', "\r", "\n")
            if any(s in text for s in specials) or text != text.strip():
                return '"' + text.replace('"', '""') + '"'
            return text

        lines = [self.delimiter.join(cell(c) for c in row) for row in [self.header, *self.rows]]
        return ("\ufeff" if self.bom else "") + self.newline.join(lines) + self.newline


WELL_NAMES = sorted(WELLS_96)
HEADER_STYLES = (str, str.upper, str.title, lambda h: f" {h} ")
ACCESSIONS = ("SAA-0001", "SAA-0002", "X 3", "SAA-0004")
DILUTIONS = ("1", "2", "5", "1:5", "10", "2.5", "")
_BOOL = st.booleans()
_COUNT = st.integers(1, 12)
_JUNK = junk_text()


@st.composite
def valid_models(draw: st.DrawFn) -> Model:
    extra = [c for c in ORDER_VALUES if draw(_BOOL) and draw(_BOOL)]
    header = ["well", "accession", *(["dilution"] if draw(_BOOL) else []), *extra]
    header.sort(key=lambda _h: draw(_COUNT))
    model = Model(
        header=[pick(draw, HEADER_STYLES)(h) for h in header],
        delimiter=pick(draw, (",", ";")),
        newline=pick(draw, ("\n", "\r\n")),
        bom=draw(_BOOL),
    )
    wells = list(dict.fromkeys(pick(draw, WELL_NAMES) for _ in range(draw(_COUNT))))
    orders: dict[str, dict[str, str]] = {}
    for well in wells:
        accession = pick(draw, ACCESSIONS)
        values = orders.setdefault(accession, {c: draw(ORDER_VALUES[c]) for c in extra})
        cells = {
            "well": pick(draw, (well, well.lower(), f"{well[0]}0{well[1:]}")),
            "accession": accession,
            "dilution": pick(draw, DILUTIONS),
            **values,
        }
        model.rows.append([cells[h] for h in header])
    return model


HOSTILE_DILUTIONS = (*JUNK, "0", "0.5", "-5", "1:0.5", "1e308", "1e-3", "10e0", "3.", "1 : 5")
HOSTILE_TIMES = ("0001-01-01T00:00+14:00", "9999-12-31T23:59-12:00", "2026-02-30T09:00",
                 "2026-11-13", "13/11/2026 09:00", "2026-11-13T25:00", "20261113T0900")  # fmt: skip
HOSTILE_WELLS = ("A0", "A13", "I1", "Z99", "AA1", "A 1", "A1.0", "Ａ１", "P24", "a01", "H012")
HEADER_NAMES = (*KNOWN_COLUMNS, "colour", "", "Well")
LONG_CELLS = ("7" * 5000, "A" * 200_000, "=" + "x" * 70)
DAMAGE = ("cell", "dilution", "well", "duplicate_row", "drop_cell", "add_cell", "header",
          "duplicate_column", "blank_row", "long_cell", "time")  # fmt: skip
_DAMAGES = st.integers(1, 4)


@st.composite
def damaged_models(draw: st.DrawFn) -> Model:
    model = draw(valid_models())
    width = len(model.header)
    for _ in range(draw(_DAMAGES)):
        kind = pick(draw, DAMAGE)
        row = pick(draw, model.rows)
        column = pick(draw, range(width))
        names = [h.strip().lower() for h in model.header]
        if kind == "cell" and column < len(row):
            row[column] = draw(_JUNK)
        elif kind == "dilution" and "dilution" in names and names.index("dilution") < len(row):
            row[names.index("dilution")] = pick(draw, HOSTILE_DILUTIONS)
        elif kind == "well" and "well" in names and names.index("well") < len(row):
            row[names.index("well")] = pick(draw, HOSTILE_WELLS)
        elif kind == "duplicate_row":
            model.rows.insert(pick(draw, range(len(model.rows) + 1)), list(row))
        elif kind == "drop_cell" and row:
            row.pop(pick(draw, range(len(row))))
        elif kind == "add_cell":
            row.append(draw(_JUNK))
        elif kind == "header":
            model.header[column] = pick(draw, HEADER_NAMES)
        elif kind == "duplicate_column":
            model.header.append(model.header[column])
            for each in model.rows:
                each.append(draw(_JUNK) if draw(_BOOL) else "A1")
        elif kind == "blank_row":
            model.rows.insert(pick(draw, range(len(model.rows) + 1)), [""] * width)
        elif kind == "time":
            for name in ("dose_time", "collection_time"):
                if name in names and names.index(name) < len(row):
                    row[names.index(name)] = pick(draw, HOSTILE_TIMES)
        elif kind == "long_cell" and column < len(row):
            row[column] = pick(draw, LONG_CELLS)
    return model


def expected_dilution(cell: str) -> float | None:
    """What a dilution cell means, or None when it must be refused."""
    text = cell.strip()
    if not text:
        return 1.0
    match = _DILUTION.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) and value >= 1 else None


def check_against_model(worklist: Worklist, model: Model) -> None:
    """A read worklist says exactly what the model's cells say."""
    names = [h.strip().lower().lstrip("\ufeff") for h in model.header]
    named = [n for n in names if n]
    assert len(named) == len(set(named)), f"accepted a header with a column twice: {names}"
    column = {name: i for i, name in enumerate(names)}

    def cell(row: list[str], name: str) -> str:
        index = column.get(name)
        return row[index] if index is not None and index < len(row) else ""

    rows = [r for r in model.rows if any(c.strip() for c in r)]
    assert len(worklist.rows) == len(rows), "rows were dropped or invented"
    for got, row in zip(worklist.rows, rows, strict=True):
        assert len(row) <= len(names), f"line {got.line}: more cells than columns accepted"
        assert got.well == normalize_well(cell(row, "well"), rows=8, cols=12)
        assert got.accession == cell(row, "accession").strip()
        dilution = expected_dilution(cell(row, "dilution"))
        assert dilution is not None, f"dilution {cell(row, 'dilution')!r} read as {got.dilution}"
        assert got.dilution == dilution, (
            f"dilution {cell(row, 'dilution')!r} read as {got.dilution}"
        )


# --- the properties -------------------------------------------------------------------


@hostile(1200)
@given(st.binary(max_size=600))
@counted
def test_arbitrary_bytes_are_refused_or_read_sanely(data: bytes) -> None:
    result = parse(data)
    if isinstance(result, Worklist):
        check_sane(result, result.text)


@hostile(600)
@given(st.text(max_size=400), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
@counted
def test_arbitrary_text_with_a_header_is_refused_or_read_sanely(text: str, encoding: str) -> None:
    data = ("well,accession,dilution\n" + text).encode(encoding, errors="replace")
    result = parse(data)
    if isinstance(result, Worklist):
        check_sane(result, result.text)


@hostile(400)
@given(valid_models())
@counted
def test_valid_worklists_are_read_as_written(model: Model) -> None:
    result = parse(model.render().encode("utf-8"))
    assert isinstance(result, Worklist), f"a valid worklist was refused: {result}"
    check_against_model(result, model)
    check_sane(result, result.text)


@hostile(2400)
@given(damaged_models())
@counted
def test_damaged_cells_are_refused_or_read_as_written(model: Model) -> None:
    result = parse(model.render().encode("utf-8"))
    if isinstance(result, Worklist):
        check_against_model(result, model)
        check_sane(result, result.text)


TEXT_DAMAGE = ("bom", "line_endings", "truncate", "insert", "duplicate_line", "long_line", "nul")
ENCODINGS = ("utf-8", "utf-8", "cp1252", "utf-16", "latin-1")
_TEXT_DAMAGES = st.integers(1, 3)


@st.composite
def damaged_texts(draw: st.DrawFn) -> bytes:
    text = draw(valid_models()).render()
    for _ in range(draw(_TEXT_DAMAGES)):
        kind = pick(draw, TEXT_DAMAGE)
        if kind == "bom":
            at = pick(draw, (0, text.find("\n") + 1, len(text)))
            text = text[:at] + "\ufeff" + text[at:]
        elif kind == "line_endings":
            text = re.sub(r"\r\n|\n", lambda _m: pick(draw, ("\n", "\r", "\r\n")), text)
        elif kind == "truncate":
            text = text[: pick(draw, range(len(text) + 1))]
        elif kind == "insert":
            at = pick(draw, range(len(text) + 1))
            text = text[:at] + pick(draw, JUNK) + text[at:]
        elif kind == "duplicate_line" and text:
            lines = text.splitlines(keepends=True)
            at = pick(draw, range(len(lines)))
            text = "".join(lines[: at + 1] + lines[at:])
        elif kind == "long_line":
            text += pick(draw, ("A5,", "B5;")) + "Z" * pick(draw, (70, 140_000))
        elif kind == "nul":
            text = text.replace(",", ",\x00", 1)
    return text.encode(pick(draw, ENCODINGS), errors="replace")


@hostile(1200)
@given(damaged_texts())
@counted
def test_damaged_text_is_refused_or_read_sanely(data: bytes) -> None:
    result = parse(data)
    if isinstance(result, Worklist):
        check_sane(result, result.text)


@hostile(60)
@given(valid_models(), st.booleans())
@counted
def test_xlsx_worklists_are_refused_with_one_line(model: Model, damaged: bool) -> None:
    """Worklists are CSV; a workbook dropped as one is refused, never half-read."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [model.header, *model.rows]:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    if damaged:
        data = data[: len(data) // 2]
    result = parse(data)
    assert isinstance(result, InputFileError), "a workbook was read as a CSV worklist"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("well,accession,well\nA4,X1,B4\n", "column"),
        ("well,accession\nA4,X1\rB4,X2\n", None),
        ("well,accession\nA4," + "X" * 200_000 + "\n", "cannot read the CSV"),
        ("well,accession\nA4," + "X" * 65 + "\n", "longer than 64"),
        ('well,accession\nA4,"X\n1"\n', "control character"),
        ("well,accession,dilution\nA4,X1,1_0\n", "dilution"),
        ("well,accession,dilution\nA4,X1,\u0665\n", "dilution"),
        ('"we\nll",accession\nA4,X1\n', "header"),
        ("well,accession,dose_time\nA4,X1,0001-01-01T00:00+14:00\n", "out of range"),
    ],
)
def test_found_by_the_properties(text: str, message: str | None) -> None:
    """Inputs the properties above found; each once crashed or invented a value."""
    result = parse(text.encode("utf-8"))
    if message is None:  # a lone CR ends a line: both rows are read
        assert isinstance(result, Worklist), result
        assert [(r.well, r.accession) for r in result.rows] == [("A4", "X1"), ("B4", "X2")]
    else:
        assert isinstance(result, InputFileError), result
        assert message in str(result)
