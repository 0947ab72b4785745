"""Names, keys and user-facing messages of the Thermo SkanIt export parser."""

from __future__ import annotations

from ..common import PLATE_SHAPES as PLATE_SHAPES
from ..common import ROW_LETTERS as ROW_LETTERS

DISPLAY_NAME = "Thermo SkanIt export (Varioskan, Multiskan)"

# --- Layouts the parser knows ---------------------------------------------------------------
# SkanIt 2.x session text (Varioskan): sections, indented "key .... value" lines, then long
# tables "Plate  Well  Type  Sample  Value  Time (s)  WL  Read." under a step title.
SESSION_FIRST_TITLE = "General Info"
SESSION_MARKERS = ("SkanIt Software", "Run information")
# Multiskan Spectrum "Results of <step>": "Plate:1 - Wavelength:340", "Iteration: n" and
# label-less plate grids.
RESULTS_PREFIX = "Results of "
# SkanIt 6/7 workbook (Multiskan Sky, ComponentOne writer): these sheets.
GENERAL_SHEET = "General information"
RAW_SHEET_PREFIX = "Raw data"
RUN_LOG_SHEET = "Run log"
SNIFF_LINES = 80

# --- Session text (Varioskan) ----------------------------------------------------------------
# Column headers of the long table (matched case-insensitively, spaces ignored).
COL_PLATE = "plate"
COL_WELL = "well"
COL_VALUE = "value"
COL_TIME = "time(s)"
COL_WAVELENGTH = "wl"
COL_READ = "read."
COL_SAMPLE = "sample"
# Section lines that only group keys; they never name a table.
NEUTRAL_TITLES = frozenset({"parameters", "layout", "sample data", "steps data"})
# Step titles of measurements; a table under any other title (KineticCalculation1,
# Blank subtraction, …) holds calculated values.
MEASUREMENT_PREFIXES = (
    "photometric",
    "fluorometric",
    "luminometric",
    "absorbance",
    "fluorescence",
    "luminescence",
)
KEY_RUN_STARTED = "Run started"
KEY_INSTRUMENT = "Instrument name"
KEY_SERIAL = "Instrument serial number"
KEY_SOFTWARE = "Run Software Version"
KEY_PLATE_TEMPLATE = "Plate template"
KEY_WAVELENGTH = "Wavelength [nm]"

# --- Results text (Multiskan Spectrum) -------------------------------------------------------
PLATE_LINE = r"^Plate:\s*(\d+)\s*(?:-\s*(.*))?$"
WAVELENGTH_IN_PLATE_LINE = r"Wavelength:\s*(\d+(?:\.\d+)?)"
ITERATION_LINE = r"^Iteration:\s*(\d+)$"

# --- Workbook (Multiskan Sky) ----------------------------------------------------------------
WB_WELL = "well"
WB_WAVELENGTH = "wavelength"
WB_TIME = "time"
WB_KEY_EXECUTION_TIME = "Execution time"
WB_KEY_NAME = "Name"
WB_KEY_SERIAL = "Serial number"
WB_KEY_VERSION = "Version"
WB_KEY_SET_TEMPERATURE = "Set temperature"
WB_KEY_PLATE_TEMPLATE = "Plate template"
WB_RUN_LOG_START = "Start time"

# --- Plates -----------------------------------------------------------------------------------
# Rows of a label-less grid -> its columns (PLATE_SHAPES: wells -> (rows, columns)).
COLUMNS_FOR_ROWS = dict(PLATE_SHAPES.values())

# --- Metadata keys (vendor) ---------------------------------------------------------------------
META_STEP = "step"
META_KINETIC_TIMES = "kinetic_times"
KINETIC_TIMES_MISSING = "not in the export; times without one are NaN"
META_SET_TEMPERATURE = "set_temperature"

# --- Messages (user-facing; the error adds file and line) ---------------------------------------
NOT_SKANIT = (
    "not a SkanIt export: expected a 'General Info' session text, a 'Results of …' text or a "
    "workbook with 'General information' and 'Raw data …' sheets"
)
NO_TABLE = (
    "the session export has no result table (a 'Plate  Well  …  Value' header); "
    "export the session again with its results"
)
TABLE_COLUMNS = "the result table header lacks the '{column}' column"
SHORT_ROW = "this table row has {found} cells; the table header has {expected}"
BAD_WELL = "'{found}' is not a well name (A1, A01 or 'A 1')"
WELL_OUTSIDE = "well {well} is outside the {rows}×{columns} plate"
DUPLICATE_READING = "well {well} has a second value for reading {reading} of '{label}'"
BAD_READING_INDEX = "reading number '{found}' is not a whole number ≥ 1"
BAD_TIME = "time '{found}' is not a number of seconds"
TIMES_BACKWARDS = (
    "reading {reading} of '{label}' starts at {time} s, before the reading ahead of it"
)
BAD_RUN_STARTED = (
    "run start '{found}' is not a date and time (expected e.g. 11/17/2014 16:29:11+01:00)"
)
NO_PLATE_LINE = "a grid comes before any 'Plate:n - Wavelength:…' line"
GRID_ROWS = (
    "the grid has {found} rows; plate grids have 2, 3, 4, 6, 8 or 16 rows "
    "(the export may have been edited)"
)
GRID_EXTRA_CELLS = (
    "grid row {row} has a value in column {column}; a {rows}-row plate has {columns} columns "
    "(stray tab in the line?)"
)
ITERATION_ORDER = "iteration {found} follows iteration {previous}; expected {expected}"
EMPTY_ITERATION = "'Iteration: {number}' is not followed by a plate grid"
NO_GRIDS = "the 'Results of …' export has no plate grids"
SHEET_PREFIX = "sheet '{sheet}': "
NO_RAW_HEADER = "no 'Well' header row with a value column in this raw data sheet"
NO_RAW_SHEET = "the workbook has no 'Raw data …' sheet with readings"
GRID_WITHOUT_ITERATION = (
    "a further grid without an 'Iteration: n' line; each plate grid after the first needs one"
)
