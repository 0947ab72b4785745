"""Names, keys and user-facing messages of the BMG Labtech export parser."""

from __future__ import annotations

from ..common import ROW_LETTERS as ROW_LETTERS
from ..common import ROWS_FOR_COLUMNS as ROWS_FOR_COLUMNS

DISPLAY_NAME = "BMG Labtech MARS / Omega export"

# --- MARS CSV (and its Excel twin) --------------------------------------------------------
# The MARS header: 'User: …,Path: …,Test run no.: …' then 'Test name: …,Date: …,Time: …',
# then 'ID1: …,ID2: …,ID3: …' and one line naming the measurement mode.
MARS_USER = "user"
MARS_PATH = "path"
MARS_RUN = "test run no."
MARS_TEST_NAME = "test name"
MARS_DATE = "date"
MARS_TIME = "time"
MARS_ID1 = "id1"
# Keys whose value may hold the delimiter unquoted (ID2 above spills into further fields).
MARS_FREE_TEXT_KEYS = frozenset({"id1", "id2", "id3", MARS_TEST_NAME, MARS_PATH})
# Measurement mode lines (case-insensitive prefixes).
MARS_MODES = ("absorbance", "fluorescence", "luminescence", "alphascreen", "time-resolved")
SPECTRUM_MARKERS = ("spectrum", "spectral scan")
# Table view: the header row starts with one of these cells.
TABLE_WELL = "well"
TABLE_WELL_ROW = "well row"
TABLE_WELL_COL = "well col"
# Leading table-view columns that describe the well, not a reading (case-insensitive).
TABLE_ID_COLUMNS = frozenset(
    {TABLE_WELL, TABLE_WELL_ROW, TABLE_WELL_COL, "well column", "content", "sample id", "sample"}
)
# A table-view row above the wells whose label cell starts with this gives each column's time.
TABLE_TIME = "time"
# Titles of calculated (derived) reads start with anything but this.
RAW_DATA = "raw data"
# MARS writes 'Time' without a unit in minutes (the Pilizota CLARIOstar sample); units written
# in the label ('Time [s]') or in the cells ('0 h 15 min') win.
DEFAULT_TIME_UNIT = "min"
TIME_UNITS_S = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}
# 1536-well plates: 48 columns, rows A..Z then a..f.
COLUMNS_1536 = 48

# --- Omega reader-control .DAT ------------------------------------------------------------
DAT_TESTNAME = "Testname:"
DAT_CHANNELS = "No. of Channels / Multichromatics"
DAT_CONFIGURATION = "Configuration"
DAT_WAVELENGTH_TABLE = "Used wavelengths and gain values"
DAT_MEASUREMENT_DATA = "Measurement Data"
DAT_CHROMATIC = "Chromatic"
DAT_CYCLE = "Cycle"
DAT_TIME = "Time [s]"
DAT_TEMPERATURE_PREFIX = "T["
DAT_READER_TYPE = "Reader type"
DAT_READER_SERIAL = "Reader serial number"
DAT_SOFTWARE = "Omega software version (control part)"
DAT_FIRMWARE = "Firmware version"
DAT_MICROPLATE = "Microplate"

SNIFF_LINES = 12

# --- Metadata keys (vendor) ----------------------------------------------------------------
META_USER = "user"
META_TEST_NAME = "test_name"
META_TEST_RUN = "test_run_no"
META_PATH = "path"
META_ID1 = "id1"
META_ID2 = "id2"
META_ID3 = "id3"
META_MODE = "mode"
META_VIEW = "view"
META_DELIMITER = "delimiter"
META_TIME_UNIT = "time_unit"
META_WAVELENGTH_SPEC = "wavelength_spec"
META_CHROMATIC = "chromatic"
META_GAIN = "gain"
META_FIRMWARE = "firmware_version"
META_MICROPLATE = "microplate"
META_SKIPPED_GRIDS = "skipped_grids"

VIEW_TABLE = "table"
VIEW_PLATE = "plate"
VIEW_DAT = "omega_dat"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_MARS_HEADER = (
    "no MARS header ('User: …', 'Test name: …, Date: …, Time: …'): this is not a BMG MARS export"
)
NO_MODE = (
    "no measurement mode line (Absorbance, Fluorescence (FI), Luminescence …) after the MARS "
    "header; export the file again from MARS with its header"
)
SPECTRUM_NOT_SUPPORTED = (
    "this is a spectrum scan ('{mode}'); BMG spectrum exports are not supported — export the "
    "endpoint or kinetic read"
)
NO_DATA = (
    "no data found after the MARS header: expected a table view ('Well,Content,Raw Data (…)') "
    "or a plate view ('Raw Data (…)' followed by a 1, 2, 3 … column header and rows A, B …)"
)
PLATE_1536 = (
    "this is a 1536-well plate (48 columns, rows A–Z then a–f); saa-lab reads plates of 6 to "
    "384 wells — export a 384-well or smaller plate"
)
WELL_1536 = (
    "well '{well}' belongs to a 1536-well plate (rows a–f or columns over 24); saa-lab reads "
    "plates of 6 to 384 wells"
)
BAD_DATE = (
    "the header's date/time '{found}' is not a date saa-lab reads "
    "(D/M/YYYY, M/D/YYYY with AM/PM, D.M.YYYY, YYYY-MM-DD or YY/MM/DD)"
)
TABLE_NO_DATA_COLUMNS = (
    "the table header has no reading columns after the well columns ({found}); "
    "expected e.g. 'Well,Content,Raw Data (600)'"
)
TABLE_NO_WELL_COLUMN = "the table header has no 'Well' column (or 'Well Row' and 'Well Col')"
TABLE_BAD_WELL = "'{found}' is not a well name (A1 … P24) in the table's well column"
TABLE_DUPLICATE_WELL = "well {well} appears twice in the table"
TABLE_SHORT_ROW = (
    "well {well} has {found} cells; the table header has {expected} columns — the line is cut short"
)
TABLE_NO_WELLS = "the table header is not followed by any well row (A01, A02 …)"
TABLE_TIME_MISSING = (
    "'{title}' has {count} columns (a kinetic read) but the table has no 'Time' row above the "
    "wells; export it again with the time row"
)
TABLE_BAD_TIME = "time '{found}' in column {column} is not a time (e.g. 10, 10.5, '0 h 15 min')"
TABLE_TIME_ORDER = "time '{found}' in column {column} is earlier than the column before it"
ROWS_AFTER_TABLE = (
    "a well row follows the end of the table (a blank or other line interrupts it); "
    "the file looks edited — export it again"
)
GRID_BAD_HEADER = "the grid's column header must number the columns 1, 2, 3, …; found '{found}'"
GRID_UNSUPPORTED_COLUMNS = (
    "a grid with {columns} columns is not a plate size saa-lab reads (6, 12, 24, 48, 96 or "
    "384 wells)"
)
GRID_BAD_ROW = "row label '{found}' is not the next plate row; expected '{expected}'"
GRID_ROW_COUNT = "the grid has {found} rows; a {columns}-column plate has {expected} rows"
GRID_LONG_ROW = "row {row} has {found} values; the grid's column header has {columns} columns"
GRID_DUPLICATE_TITLE = (
    "the plate view holds '{title}' twice (first at line {first}); kinetic runs cannot be read "
    "from the plate view — export them in the table view"
)
GRID_NO_TITLE = "a plate grid without a title line above it (e.g. 'Raw Data (600)')"
DAT_NO_HEADER = "no 'Testname:' line: this is not a BMG Omega reader-control .DAT export"
DAT_NO_DATA = (
    "no 'Measurement Data' section with 'Chromatic: n' blocks; export the .DAT file again with "
    "its measurement data"
)
DAT_BAD_NUMBER = "'{key}' must be a number; found '{found}'"
DAT_BLOCK_NO_GRID = (
    "chromatic {chromatic}, cycle {cycle} has no plate grid (1, 2, 3 … and rows A, B …)"
)
DAT_DUPLICATE_BLOCK = "chromatic {chromatic}, cycle {cycle} appears twice"
DAT_TIME_MISSING = "chromatic {chromatic}, cycle {cycle} has no 'Time [s]:' line"
