"""Worklists: which accession (and dilution) sits in which sample well.

A CSV with a header row. Required columns: ``well`` (A1 or A01) and
``accession``; ``dilution`` defaults to 1. Several rows with one accession are
replicates. Optional order columns: ``patient_id``, ``formulation``,
``dose_time``, ``collection_time``, ``protocol``, ``clinic``. Every error names
the file and line.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from types import MappingProxyType

from .domain import SourceFile
from .errors import InputFileError
from .orders import FORMULATIONS, OrderContext, normalize_formulation, parse_time
from .wells import normalize_well

__all__ = [
    "ORDER_COLUMNS",
    "WORKLIST_SUFFIX",
    "Worklist",
    "WorklistRow",
    "parse_worklist",
    "worklist_names",
]

WORKLIST_SUFFIX = ".worklist.csv"
REQUIRED_COLUMNS = ("well", "accession")
ORDER_COLUMNS = ("patient_id", "formulation", "dose_time", "collection_time", "protocol", "clinic")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "dilution", *ORDER_COLUMNS, "placer_order_number")
# Text columns stored as they are, and their longest value (the store's columns).
TEXT_LIMITS = {"accession": 64, "patient_id": 64, "protocol": 64, "clinic": 64,
               "placer_order_number": 64}  # fmt: skip
# A dilution as written: 5, 1:5, 2.5 (plain ASCII digits; "1_0" or "٥" are not read).
_DILUTION = re.compile(r"(?:1:)?\s*\+?([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class WorklistRow:
    line: int
    well: str
    accession: str
    dilution: float


@dataclass(frozen=True)
class Worklist:
    source_path: str
    sha256: str
    rows: tuple[WorklistRow, ...]
    orders: Mapping[str, OrderContext] = field(default_factory=dict)
    text: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", MappingProxyType(dict(self.orders)))

    def row_for(self, well: str) -> WorklistRow | None:
        for row in self.rows:
            if row.well == well:
                return row
        return None


def _decode(source: SourceFile) -> str:
    data = source.contents
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputFileError("the worklist is not UTF-8 text", path=source.original_path)


def parse_worklist(source: SourceFile, *, zone: tzinfo) -> Worklist:
    """Read a worklist CSV (comma or semicolon separated)."""
    path = source.original_path
    text = _decode(source)
    if not text.strip():
        raise InputFileError("the worklist is empty", path=path)
    first_line = text.splitlines()[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    # newline="": CR, LF and CRLF all end a row (mixed endings too), as csv expects.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower().lstrip("\ufeff") for h in next(reader)]
    except csv.Error as exc:
        raise InputFileError(f"cannot read the CSV header: {exc}", path=path, line=1) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        found = _shown(", ".join(header))
        msg = f"the header lacks the column(s) {', '.join(missing)}; found: {found}"
        raise InputFileError(msg, path=path, line=1)
    unknown = [c for c in header if c and c not in KNOWN_COLUMNS]
    if unknown:
        msg = f"unknown column(s) {_shown(', '.join(unknown))}; known: {', '.join(KNOWN_COLUMNS)}"
        raise InputFileError(msg, path=path, line=1)
    twice = sorted({c for c in header if c and header.count(c) > 1})
    if twice:
        msg = f"the header names the column(s) {', '.join(twice)} more than once"
        raise InputFileError(msg, path=path, line=1)
    rows: list[WorklistRow] = []
    seen_wells: dict[str, int] = {}
    orders: dict[str, OrderContext] = {}
    order_lines: dict[str, int] = {}
    for record in _records(reader, path):
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            msg = f"{len(record)} cells but the header has {len(header)} columns"
            raise InputFileError(msg, path=path, line=line)
        cells = {
            name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(header)
        }
        _check_text(cells, path, line)
        well = normalize_well(cells["well"], rows=8, cols=12)
        if well is None:
            msg = f"{cells['well']!r} is not a well of a 96-well plate (A1 to H12)"
            raise InputFileError(msg, path=path, line=line)
        if well in seen_wells:
            msg = f"well {well} is listed twice (also on line {seen_wells[well]})"
            raise InputFileError(msg, path=path, line=line)
        seen_wells[well] = line
        accession = cells["accession"]
        if not accession:
            raise InputFileError("the accession is empty", path=path, line=line, well=well)
        dilution = _dilution(cells.get("dilution", ""), path, line, well)
        rows.append(WorklistRow(line=line, well=well, accession=accession, dilution=dilution))
        order = _order(accession, cells, zone, path, line)
        if order is None:
            continue
        previous = orders.get(accession)
        if previous is not None and previous != order:
            msg = (
                f"order details for accession {accession} differ from line "
                f"{order_lines[accession]}; give them once or identically on every replicate"
            )
            raise InputFileError(msg, path=path, line=line)
        orders[accession] = order
        order_lines.setdefault(accession, line)
    if not rows:
        raise InputFileError("the worklist has a header but no rows", path=path)
    return Worklist(
        source_path=path, sha256=source.sha256, rows=tuple(rows), orders=orders, text=text
    )


def _records(reader: Iterator[list[str]], path: str) -> Iterator[list[str]]:
    """The reader's rows; a row csv cannot read (a cell over its size limit) is an error."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = getattr(reader, "line_num", None)
            raise InputFileError(f"cannot read the CSV: {exc}", path=path, line=line) from exc
        yield record


def _shown(text: str) -> str:
    """Received text quoted in a message: control characters escaped, one line."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


def _check_text(cells: Mapping[str, str], path: str, line: int) -> None:
    """No control or invisible format characters; no text longer than the store keeps."""
    for name, value in cells.items():
        bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
        if bad is not None:
            msg = f"the {name} cell holds a control character ({bad!r}): {value[:80]!r}"
            raise InputFileError(msg, path=path, line=line)
        limit = TEXT_LIMITS.get(name)
        if limit is not None and len(value) > limit:
            msg = f"the {name} is longer than {limit} characters ({len(value)})"
            raise InputFileError(msg, path=path, line=line)


def _dilution(text: str, path: str, line: int, well: str) -> float:
    if not text:
        return 1.0
    match = _DILUTION.fullmatch(text)
    value = float(match.group(1)) if match else math.nan
    if not math.isfinite(value) or value < 1:
        msg = f"dilution {text!r} is not a factor of 1 or more (write 1, 5 or 1:5)"
        raise InputFileError(msg, path=path, line=line, well=well)
    return value


def _order(
    accession: str, cells: Mapping[str, str], zone: tzinfo, path: str, line: int
) -> OrderContext | None:
    values = {c: cells.get(c, "") for c in (*ORDER_COLUMNS, "placer_order_number")}
    if not any(values.values()):
        return None
    formulation = None
    if values["formulation"]:
        formulation = normalize_formulation(values["formulation"])
        if formulation is None:
            msg = (
                f"unknown formulation {values['formulation']!r}; use one of "
                f"{', '.join(FORMULATIONS)}"
            )
            raise InputFileError(msg, path=path, line=line)
    times = {}
    for column in ("dose_time", "collection_time"):
        if values[column]:
            parsed = parse_time(values[column], zone)
            if parsed is None:
                msg = f"{column} {values[column]!r} is not an ISO date-time (2026-11-14T09:30)"
                raise InputFileError(msg, path=path, line=line)
            try:
                parsed.astimezone(UTC)  # how the store keeps it; year 1 at +14:00 cannot be
            except OverflowError as exc:
                msg = f"{column} {values[column]!r} is out of range"
                raise InputFileError(msg, path=path, line=line) from exc
            times[column] = parsed
    dose, collected = times.get("dose_time"), times.get("collection_time")
    if dose and collected and collected < dose:
        msg = "collection_time is before dose_time"
        raise InputFileError(msg, path=path, line=line)
    return OrderContext(
        accession=accession,
        patient_id=values["patient_id"] or None,
        formulation=formulation,
        dose_time=dose,
        collection_time=collected,
        protocol=values["protocol"] or None,
        clinic=values["clinic"] or None,
        placer_order_number=values["placer_order_number"] or None,
    )


def worklist_names(plate_id: str | None, export_stem: str, *, single: bool) -> list[str]:
    """The worklist file names to look for beside an export, in order.

    ``<plate id>.worklist.csv``, only when that is a plain file name (a plate id
    read from an export never leads outside the folder: no ``/``, ``\\``, ``:``, ``..``
    or NUL), then for a one-plate export ``<export stem>.worklist.csv``.
    """
    names = []
    if plate_id:
        name = f"{plate_id}{WORKLIST_SUFFIX}"
        plain = not any(c in name for c in "/\\:\x00") and len(name.encode()) <= 255
        if plain and ".." not in plate_id:
            names.append(name)
    if single:
        names.append(f"{export_stem}{WORKLIST_SUFFIX}")
    return names
