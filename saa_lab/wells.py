"""Well names: parse, normalise and order them ("A1", "a01", "H12")."""

from __future__ import annotations

import re

__all__ = ["ROWS_96", "column_of", "normalize_well", "row_of", "well_sort_key", "wells_96"]

ROWS_96 = "ABCDEFGH"
_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")


def normalize_well(text: str, *, rows: int = 16, cols: int = 24) -> str | None:
    """Return the canonical name (``A1``) of a well written as ``A1``/``a01``, or None.

    Rows and columns beyond the plate size given (384 by default) are refused.
    """
    m = _WELL_RE.match(text)
    if not m:
        return None
    letters, number = m.group(1).upper(), int(m.group(2))
    if len(letters) != 1:
        return None
    row = ord(letters) - ord("A")
    if row >= rows or not 1 <= number <= cols:
        return None
    return f"{letters}{number}"


def row_of(well: str) -> str:
    return well[0]


def column_of(well: str) -> int:
    return int(well[1:])


def well_sort_key(well: str) -> tuple[int, int]:
    """Order wells row by row (A1, A2, … A12, B1, …)."""
    return (ord(well[0]), int(well[1:]))


def wells_96() -> list[str]:
    return [f"{r}{c}" for r in ROWS_96 for c in range(1, 13)]
