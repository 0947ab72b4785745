"""Property tests: damaged exports are read or refused with InputFileError, never worse.

Every bundled sample export and every real export in ../shared (when present) is
mutated: truncated, lines deleted, delimiters swapped, re-encoded, random bytes
inserted, numbers replaced by text, and for workbooks cells rewritten. Parsing
must either succeed, with every value traceable to numeric text in the file
(a non-numeric cell never becomes a number, 0 or otherwise), or raise our
InputFileError naming the file. It must never raise anything else or hang.
"""

from __future__ import annotations

import io
import math
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saa_lab.domain import PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError, SaaLabError
from saa_lab.parsers import parse
from saa_lab.parsers.table import is_workbook

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "samples" / "real"
SKIP_SUFFIXES = (".json", ".md", ".py", ".worklist.csv")
PARSE_SECONDS = 10


def _exports() -> list[Path]:
    found = [
        p
        for p in sorted((ROOT / "sample_files").rglob("*"))
        if p.is_file() and not p.name.endswith(SKIP_SUFFIXES) and not p.name.startswith("_")
    ]
    if REAL.is_dir():
        found += sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix != ".md")
    return found


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fail(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"parsing took more than {seconds} s (a hang?)")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


_NUMBER = re.compile(r"^[+-]?(\d+[.,]?\d*|[.,]\d+)([eE][+-]?\d+)?$")


def _numeric_text(raw: str) -> float | None:
    text = raw.strip().strip('"').strip()
    if not _NUMBER.match(text):
        return None
    return float(text.replace(",", "."))


def _check_value(value: WellValue, where: str) -> None:
    if value.value is None:
        assert value.reason, f"{where}: no value and no reason"
        return
    number = _numeric_text(value.raw)
    assert number is not None, f"{where}: value {value.value} from non-numeric text {value.raw!r}"
    assert math.isclose(number, value.value, rel_tol=1e-9, abs_tol=1e-12), where


def check_invariants(reads: list[PlateRead]) -> None:
    for read in reads:
        for well, value in read.wells.items():
            if read.kinetic is None:
                _check_value(value, f"{read.label} {well}")
        if read.kinetic is not None:
            for well, series in read.kinetic.readings.items():
                for i, value in enumerate(series):
                    _check_value(value, f"{read.label} {well}[{i}]")


def try_parse(data: bytes, name: str) -> None:
    source = SourceFile(data, name)
    try:
        with time_limit(PARSE_SECONDS):
            reads = parse(source)
    except SaaLabError as exc:
        assert isinstance(exc, InputFileError), f"{type(exc).__name__}: {exc}"
        assert exc.path == name, f"the error does not name the file: {exc}"
        return
    check_invariants(reads)


def _mutate_text(data: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["truncate", "delete_lines", "delimiter", "encoding",
                                 "bytes", "numbers", "line_endings"]))  # fmt: skip
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
    for encoding in ("utf-8", "utf-16", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("latin-1")
    if kind == "delete_lines":
        lines = text.splitlines(keepends=True)
        start = draw(st.integers(0, max(0, len(lines) - 1)))
        stop = start + draw(st.integers(1, 10))
        return "".join(lines[:start] + lines[stop:]).encode(encoding, errors="replace")
    if kind == "delimiter":
        old, new = draw(st.permutations(["\t", ",", ";"]))[:2]
        return text.replace(old, new).encode(encoding, errors="replace")
    if kind == "encoding":
        target = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"]))
        return text.encode(target, errors="replace")
    if kind == "line_endings":
        ending = draw(st.sampled_from(["\n", "\r", "\r\n"]))
        return re.sub(r"\r\n|\r|\n", ending, text).encode(encoding, errors="replace")
    # numbers: replace some numbers by tokens a reader might write
    tokens = ["", "OVER", "abc", "-", "NaN", "1,2,3", "9e999", "*0.5*", "?????"]
    numbers = list(re.finditer(r"\d+\.\d+", text))
    if not numbers:
        return data
    chosen = draw(st.lists(st.sampled_from(numbers), min_size=1, max_size=8, unique_by=id))
    for match in sorted(chosen, key=lambda m: m.start(), reverse=True):
        text = text[: match.start()] + draw(st.sampled_from(tokens)) + text[match.end() :]
    return text.encode(encoding, errors="replace")


def _mutate_workbook(data: bytes, draw: st.DrawFn) -> bytes:
    if draw(st.booleans()) or not data.startswith(b"PK"):
        at = draw(st.integers(0, len(data)))
        return data[:at] if draw(st.booleans()) else data[:at] + b"\x00garbage" + data[at:]
    from openpyxl import load_workbook
    from openpyxl.cell.cell import MergedCell

    book = load_workbook(io.BytesIO(data))
    sheet = book.worksheets[draw(st.integers(0, len(book.worksheets) - 1))]
    for _ in range(draw(st.integers(1, 12))):
        row = draw(st.integers(1, max(1, sheet.max_row)))
        col = draw(st.integers(1, max(1, sheet.max_column)))
        if isinstance(sheet.cell(row, col), MergedCell):
            continue  # part of a merged range: read-only
        sheet.cell(row, col).value = draw(
            st.one_of(st.none(), st.sampled_from(["OVER", "abc", "", "1,5", "*2*"]),
                      st.floats(allow_nan=False, allow_infinity=False, width=32))
        )  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


EXPORTS = _exports()


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_mutated_exports_are_read_or_refused_cleanly(path: Path, data: st.DataObject) -> None:
    original = path.read_bytes()
    mutate = _mutate_workbook if is_workbook(original) else _mutate_text
    mutated = mutate(original, data.draw)
    try_parse(mutated, path.name)


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_unmutated_exports_satisfy_the_invariants(path: Path) -> None:
    try_parse(path.read_bytes(), path.name)
