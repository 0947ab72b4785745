"""Names, keys and user-facing messages of the generic 8×12 grid CSV parser."""

from __future__ import annotations

DISPLAY_NAME = "Generic 8×12 grid CSV"

# Comma, or semicolon (European exports, where the decimal mark may be a comma). Never tab:
# tab-separated files belong to the vendor formats.
DELIMITERS = (",", ";")
DECIMAL_COMMA_DELIMITER = ";"
ROWS = 8
COLUMNS = 12
ROW_LETTERS = "ABCDEFGH"
# Cells allowed before the 1…12 column numbers in the header line (case-insensitive).
CORNER_CELLS = frozenset({"", "<>", "well"})
# A header numbers at least this many columns (shorter number runs are metadata).
MIN_HEADER_COLUMNS = 3
# A line without a row letter is a grid row only with this many cells, all numbers or tokens.
MIN_UNLABELLED_CELLS = 8

# Metadata keys (case-insensitive, without a trailing ':' or a '(nm)' unit).
PLATE_ID_KEYS = frozenset({"plate id", "plateid", "plate barcode", "barcode"})
WAVELENGTH_KEYS = frozenset({"wavelength", "sample wavelength", "measurement wavelength"})
LABEL_KEYS = frozenset({"label"})
META_DELIMITER = "delimiter"
META_ENCODING = "encoding"
META_SKIPPED_GRID = "skipped text grid at line"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_GRID = (
    "no 8×12 grid of values found: expected 8 rows (A–H) of 12 values, "
    "separated by commas or semicolons"
)
HEADER_COLUMNS = "the column header numbers {found} columns; a generic grid has 12 (1–12)"
HEADER_WITHOUT_ROWS = "the column header is not followed by grid rows (A–H)"
ROW_VALUES = "row {row} has {found} values; a generic grid row has 12"
ROW_ORDER = "row label '{found}' is out of order; expected '{expected}'"
ROW_COUNT = "the grid has {found} rows; a generic grid has 8 (A–H)"
MIXED_ROW_LABELS = "some grid rows start with a row letter (A–H) and some do not"
SECOND_GRID = (
    "a second grid of values starts here (the first is at line {first}); "
    "a generic grid CSV holds exactly one 8×12 plate"
)
MIXED_DECIMAL = (
    "the grid mixes decimal commas and decimal points ('{cell}'); "
    "export it again with one decimal mark"
)
BAD_WAVELENGTH = "wavelength '{found}' is not a number of nanometres (write e.g. 710 or 710 nm)"
