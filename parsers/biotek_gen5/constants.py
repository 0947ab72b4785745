"""Names, keys and user-facing messages of the BioTek Gen5 export parser (text and xlsx)."""

from __future__ import annotations

from ..common import META_DATE_ORDER as META_DATE_ORDER
from ..common import ROW_LETTERS as ROW_LETTERS
from ..common import ROWS_FOR_COLUMNS as ROWS_FOR_COLUMNS

DISPLAY_NAME = "BioTek Gen5 text export"

# --- Layout of the export -----------------------------------------------------------------
# Every plate starts with this header key; a text file holds one block per plate, an xlsx
# workbook one sheet per plate.
SOFTWARE_VERSION = "Software Version"
# With SOFTWARE_VERSION, one of these keys must appear in the head for sniff() to claim a file.
SNIFF_KEYS = ("Plate Number", "Reader Type:", "Experiment File Path:")
SNIFF_LINES = 60
# Header keys end here; the procedure (plate type, read steps) follows.
PROCEDURE_DETAILS = "Procedure Details"
# Header keys (as written, without the trailing colon) for the read's date and time of day.
DATE_KEY = "Date"
TIME_KEY = "Time"
READER_TYPE_KEY = "Reader Type"
READER_SERIAL_KEY = "Reader Serial Number"
PLATE_NUMBER_KEY = "Plate Number"
# The first cell of a kinetic table's header: ``Time<TAB>T° 600<TAB>A1<TAB>A2…``.
KINETIC_TIME_COLUMN = "Time"
SPECTRUM_COLUMN = "Wavelength"
FIRST_WELL = "A1"
# Section line holding the measured plate temperature.
ACTUAL_TEMPERATURE = "Actual Temperature:"
# Section titles that end the procedure even without the blank line Gen5 normally writes.
SECTION_TITLES = frozenset({"results", "layout"})
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
PLATE_TYPE_KEY = "Plate Type"
# Labels (or the part after the last ':') starting with these are calculations, not reads:
# blank correction, concentrations, ratios and Gen5's kinetic analysis (Max V, R-Squared,
# t at Max V, Lagtime, Onset Time, Area under curve …).
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
    "max v",
    "min v",
    "mean v",
    "max od",
    "min od",
    "max abs",
    "r-squared",
    "t at ",
    "lagtime",
    "onset",
    "area",
    "slope",
    "rate",
)
# Plate shapes (wells as 'Plate Type' names them), grid columns -> rows and row letters
# are the parsers' shared ones (..common).
SECONDS_PER_DAY = 86400.0

# --- Metadata keys (vendor keys, besides saa_lab.domain.Meta) -------------------------------
META_LABEL = "Label"
META_WAVELENGTHS = "Wavelengths"
META_ACTUAL_TEMPERATURE = "Actual Temperature"
META_ENCODING = "encoding"
META_SOFTWARE_PREFIX = "Gen5 "
DATE_ORDER_ASSUMED = "month/day/year (assumed: both numbers are 12 or less)"
META_KINETIC_READS = "kinetic_reads"
META_KINETIC_FIRST_TIME = "kinetic_first_time"
META_KINETIC_INTERVAL = "kinetic_interval_s"
META_TEMPERATURE_RANGE = "temperature_range_c"
META_TEMPERATURE_COLUMN = "temperature_column"
META_DROPPED_PADDING = "kinetic_padding_rows_dropped"
META_REPAIRED_LINES = "kinetic_rows_with_time_and_temperature_joined"
META_TIME_DAY_OFFSET = "time_cells_day_offset"
FIRST_TIME_EMPTY = "(empty cell: read as 0:00:00)"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_HEADER = (
    "no 'Software Version' header line: this is not a Gen5 text export with its file header; "
    "export it again from Gen5 with the header included"
)
NO_HEADER_IN_WORKBOOK = (
    "no sheet of this workbook has a 'Software Version' header line in column A: this is not a "
    "Gen5 Excel export with its file header; export it again from Gen5 with the header included"
)
IN_SHEET = "sheet '{sheet}': {message}"
SPECTRUM_NOT_SUPPORTED = (
    "this is a spectrum scan ('Wavelength' by well table); Gen5 spectrum exports are not "
    "supported — export the endpoint or kinetic read"
)
NO_RESULTS = (
    "{plate} has no Results grid (rows A, B, … under a column header 1, 2, …) and no kinetic "
    "table (Time, A1, A2, …); export the plate again with its Results"
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
# Kinetic tables
KINETIC_BAD_COLUMN = (
    "kinetic table column {column} is headed '{found}'; after 'Time' and the temperature "
    "column Gen5 writes only well names (A1, A2, …)"
)
KINETIC_DUPLICATE_WELL = "the kinetic table names well {well} twice"
KINETIC_NO_WELLS = "the kinetic table header names no wells (A1, A2, …) after 'Time'"
KINETIC_RAGGED_ROW = (
    "this kinetic row has {found} cells; the table header has {expected} (time, "
    "{temperature}{wells} wells)"
)
KINETIC_EXTRA_CELLS = (
    "this kinetic row has {found} filled cells after its {wells} well values; "
    "the table header names only {wells} wells"
)
KINETIC_NO_ROWS = "the kinetic table has no readings (only its header or empty padding rows)"
KINETIC_BAD_TIME = (
    "'{found}' in the Time column is not an elapsed time (H:MM:SS); "
    "the kinetic row cannot be placed in time"
)
KINETIC_EMPTY_TIME = (
    "the Time cell of this kinetic row is empty; only the first reading may have an empty time"
)
KINETIC_TIME_GOES_BACK = (
    "the time {found} comes before the previous reading's time {previous}; "
    "kinetic rows must be in time order"
)
KINETIC_BEFORE_START = (
    "the time '{found}' is before the start of the run once the workbook's day offset "
    "({days} days) is taken off"
)
WELL_OUTSIDE_PLATE = (
    "well {well} is outside the {wells}-well plate ({rows} rows × {columns} columns) "
    "this plate is declared as"
)
