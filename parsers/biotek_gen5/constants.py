"""Names, keys and user-facing messages of the BioTek Gen5 text export parser."""

from __future__ import annotations

DISPLAY_NAME = "BioTek Gen5 text export"

# --- Layout of the export -----------------------------------------------------------------
# Every plate starts with this header key; a file holds one block per plate.
SOFTWARE_VERSION = "Software Version"
# With SOFTWARE_VERSION, one of these keys must appear in the head for sniff() to claim a file.
SNIFF_KEYS = ("Plate Number", "Reader Type:", "Experiment File Path:")
SNIFF_LINES = 60
# Header keys end here; the procedure (plate type, read steps) follows.
PROCEDURE_DETAILS = "Procedure Details"
# Procedure steps and table headers that mean the file is not an endpoint export.
KINETIC_MARKERS = ("Start Kinetic", "Discontinuous Kinetics")
KINETIC_TIME_COLUMN = "Time"
SPECTRUM_COLUMN = "Wavelength"
FIRST_WELL = "A1"
# Section line holding the measured plate temperature.
ACTUAL_TEMPERATURE = "Actual Temperature:"
# Grids titled like this hold the plate layout (sample ids), not readings.
SKIPPED_TITLES = frozenset({"layout"})
# Trailing labels of layout rows (Gen5 writes them in the Layout grid).
SKIPPED_LABELS = frozenset({"well id", "conc/dil", "name"})
# The section holding every read stacked; its title is not a read label.
RESULTS_TITLE = "results"
# Header keys (case-insensitive, without a trailing colon) that carry the plate's barcode.
PLATE_ID_KEYS = frozenset({"barcode", "plate barcode", "plate id"})
# Procedure keys copied to each read's metadata.
PROCEDURE_KEYS = ("Plate Type", "Set Temperature")
# Labels (or the part after the last ':') starting with these are calculations, not reads.
DERIVED_PREFIXES = (
    "blank",
    "conc",
    "delta",
    "corrected",
    "ratio",
    "norm",
    "mean",
    "average",
    "std",
    "cv",
    "pathlength",
)
# Wavelengths outside this range (nm) read from a label are not taken as wavelengths.
WAVELENGTH_RANGE_NM = (200.0, 1100.0)
# Columns in a grid header -> rows of that plate (6, 12, 24, 48, 96, 384 wells).
ROWS_FOR_COLUMNS = {3: 2, 4: 3, 6: 4, 8: 6, 12: 8, 24: 16}
ROW_LETTERS = "ABCDEFGHIJKLMNOP"

# --- Metadata keys ------------------------------------------------------------------------
META_LABEL = "Label"
META_WAVELENGTHS = "Wavelengths"
META_ACTUAL_TEMPERATURE = "Actual Temperature"
META_ENCODING = "encoding"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_HEADER = (
    "no 'Software Version' header line: this is not a Gen5 text export with its file header; "
    "export it again from Gen5 with the header included"
)
KINETIC_NOT_SUPPORTED = (
    "this is a kinetic read ('{marker}'); kinetic Gen5 exports are not supported yet — "
    "export the endpoint read, or enter this run by hand"
)
SPECTRUM_NOT_SUPPORTED = (
    "this is a spectrum scan ('Wavelength' by well table); Gen5 spectrum exports are not "
    "supported — export the endpoint read"
)
NO_RESULTS = (
    "{plate} has no Results grid (rows A, B, … under a column header 1, 2, …); "
    "export the plate again with its Results"
)
BAD_COLUMN_HEADER = "the grid's column header must number the columns 1, 2, 3, …; found '{found}'"
UNSUPPORTED_COLUMNS = (
    "a grid with {columns} columns is not a plate size saa-lab reads "
    "(6, 12, 24, 48, 96 or 384 wells)"
)
EMPTY_GRID = "the grid's column header is not followed by any plate row (A, B, …)"
BAD_ROW_LETTER = (
    "row label '{found}' is not the next plate row; expected '{expected}' "
    "(or an empty cell for a further read of the same row)"
)
CONTINUATION_BEFORE_ROW = "a row with an empty row letter comes before row A"
RAGGED_ROW = "row {row} has {found} values; the grid's column header has {columns} columns"
EXTRA_CELLS = (
    "row {row} has {found} cells after its {columns} values; only the read label may follow"
)
MISSING_LABEL = (
    "row {row} has no read label in its last column although other rows of this grid have "
    "one; the row is missing a value or has one too many"
)
CONTINUATION_WITHOUT_LABEL = (
    "row {row} is a further read (empty row letter) but has no read label in its last column"
)
WRONG_ROW_COUNT = "the grid has {found} rows; a {columns}-column plate has {expected} rows"
DUPLICATE_WELL = "well {well} appears twice for read '{label}'"
