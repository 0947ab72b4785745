"""Names, keys and user-facing messages of the generic plate-grid parser."""

from __future__ import annotations

from ..common import ROW_LETTERS as ROW_LETTERS
from ..common import ROWS_FOR_COLUMNS as ROWS_FOR_COLUMNS

DISPLAY_NAME = "Generic plate grid (CSV/TSV)"

# Comma, semicolon (European exports, where the decimal mark may be a comma) or tab.
DELIMITERS = (",", ";", "\t")
# Delimiters under which a decimal comma is possible (never in a comma-separated file).
DECIMAL_COMMA_DELIMITERS = frozenset({";", "\t"})
# Cells allowed before the 1…N column numbers in the header line (case-insensitive).
CORNER_CELLS = frozenset({"", "<>", "well", "wells", "row", "abs", "od"})
# A header numbers at least this many columns (shorter number runs are metadata).
MIN_HEADER_COLUMNS = 3
# A line without a row letter is a grid row only with this many cells (or, under a column
# header, as many as the header numbers), all numbers or tokens: grids without row letters
# and without a column header are therefore 48, 96 or 384 wells.
MIN_UNLABELLED_CELLS = 8

# Text in the head of a file that belongs to a vendor format: such files are never generic
# grids, even when they contain one (Gen5, SoftMax, Tecan, BMG, PerkinElmer, SkanIt).
VENDOR_MARKERS = (
    "Software Version\t",
    "Reader Type:",
    "##BLOCKS",
    "Tecan",
    "i-control",
    "SparkControl",
    "Magellan",
    "Method name:",
    "Testname:",
    "Test name:",
    "Test run no.",
    "No. of Channels",
    "CLARIOstar",
    "Plate information",
    "Results for ",
    "WELL RESULTS",
    "Plate\tRepeat\t",
    "SkanIt",
    "Results of Photometric",
    "Results of Fluorometric",
    "Results of Luminometric",
    "Iteration:",
    "General Info",
)

# Metadata keys (case-insensitive, without a trailing ':' or a '(nm)' unit).
PLATE_ID_KEYS = frozenset({"plate id", "plateid", "plate barcode", "barcode", "plate name"})
WAVELENGTH_KEYS = frozenset(
    {"wavelength", "sample wavelength", "measurement wavelength", "measurement filter"}
)
LABEL_KEYS = frozenset({"label", "read label"})
DATE_KEYS = frozenset(
    {"date", "read time", "read date", "measurement date", "date/time", "datetime", "timestamp"}
)
META_DELIMITER = "delimiter"
META_ENCODING = "encoding"
META_SKIPPED_GRID = "skipped text grid at line"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_GRID = (
    "no plate grid of values found: expected rows A, B, … of values (8 rows of 12 for a "
    "96-well plate, 16 of 24 for 384), separated by commas, semicolons or tabs"
)
HEADER_COLUMNS = (
    "the column header numbers {found} columns; plate grids have 3, 4, 6, 8, 12 or 24 columns"
)
HEADER_WITHOUT_ROWS = "the column header is not followed by grid rows (A, B, …)"
ROW_VALUES = "row {row} has {found} values; the grid has {columns} columns"
ROW_ORDER = "row label '{found}' is out of order; expected '{expected}'"
ROW_COUNT = "the grid has {found} rows; a grid of {columns} columns has {expected} rows"
GRID_COLUMNS = (
    "the grid's rows have {found} values; plate grids have 3, 4, 6, 8, 12 or 24 columns "
    "(grids without row letters or a column header: 8, 12 or 24)"
)
MIXED_ROW_LABELS = "some grid rows start with a row letter (A, B, …) and some do not"
SECOND_GRID = (
    "a second grid of values starts here (the first is at line {first}); "
    "a generic grid file holds exactly one plate"
)
MIXED_DECIMAL = (
    "the grid mixes decimal commas and decimal points ('{cell}'); "
    "export it again with one decimal mark"
)
BAD_WAVELENGTH = "wavelength '{found}' is not a number of nanometres (write e.g. 710 or 710 nm)"
