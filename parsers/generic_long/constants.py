"""Names, keys and user-facing messages of the generic long (Well, Value) table parser."""

from __future__ import annotations

DISPLAY_NAME = "Generic long Well,Value table"

DELIMITERS = ("\t", ";", ",")
# Header names of the well column (case-insensitive, spaces collapsed), most specific first:
# Gen5 writes both 'Well ID' (the sample id) and 'Well' (the position).
WELL_HEADERS = ("well", "well position", "position", "pos", "well name", "well id", "wellid")
# Header names of value columns; also 'OD600', 'A405', 'Abs 710', '710', '710 nm',
# 'Absorbance (710 nm)' and Gen5's bracketed calculated reads '[Blanked-RFU]'.
VALUE_HEADERS = frozenset(
    {
        "value",
        "values",
        "abs",
        "absorbance",
        "od",
        "optical density",
        "signal",
        "result",
        "raw",
        "raw data",
        "rfu",
        "rlu",
        "fluorescence",
        "luminescence",
        "concentration",
        "conc",
    }
)
# Value headers that name calculated values.
DERIVED_WORDS = (
    "blank",
    "corrected",
    "conc",
    "ratio",
    "delta",
    "normali",
    "mean",
    "average",
)
# Headers of kinetic or multi-read tables: those belong to vendor formats, not to this one.
KINETIC_HEADERS = ("time", "repeat", "cycle", "read.", "reading", "kinetic")
# The header must come within this many non-blank lines; lines before it are titles or
# "key, value" lines with at most this many cells.
HEADER_WITHIN = 20
MAX_PREAMBLE_CELLS = 3
# sniff() wants this many well rows under the header (the smallest plate has 6 wells).
MIN_ROWS = 6

# Metadata keys (case-insensitive, without ':' or a '(nm)' unit).
PLATE_ID_KEYS = frozenset({"plate id", "plateid", "plate barcode", "barcode", "plate name"})
WAVELENGTH_KEYS = frozenset({"wavelength", "measurement wavelength", "sample wavelength"})
PLATE_SIZE_KEYS = frozenset({"plate type", "plate format", "plate size", "wells"})
DATE_KEYS = frozenset(
    {"date", "read time", "read date", "measurement date", "date/time", "datetime", "timestamp"}
)
META_DELIMITER = "delimiter"
META_ENCODING = "encoding"
META_TITLE = "title"
META_COLUMNS = "columns"
META_WELL_COLUMN = "well_column"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_TABLE = (
    "no long table found: expected a header line with a well column (Well, Well ID, Position) "
    "and a value column (Value, OD, Abs, Absorbance, a wavelength such as 710), then one "
    "line per well"
)
BAD_WELL = "'{found}' in the '{column}' column is not a well name (A1, A01)"
WELL_OUTSIDE = "well {well} is outside a {rows}×{columns} plate"
SHORT_ROW = "this line has {found} cells; the table needs {expected} (header at line {header})"
DUPLICATE_WELL = (
    "well {well} appears again (first at line {first}); a long table gives each well once — "
    "kinetic or multi-plate tables need their vendor's parser"
)
SECOND_TABLE = (
    "a second table starts here (the first header is at line {first}); "
    "a long table file holds one plate"
)
TABLE_CONTINUES = (
    "a well line after the blank line ending the table (line {end}); remove the blank line "
    "or the stray lines"
)
MIXED_DECIMAL = (
    "the values mix decimal commas and decimal points ('{cell}'); "
    "export it again with one decimal mark"
)
BAD_WAVELENGTH = "wavelength '{found}' is not a number of nanometres (write e.g. 710 or 710 nm)"
