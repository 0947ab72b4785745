"""Names, keys and user-facing messages of the PerkinElmer / Revvity export parser."""

from __future__ import annotations

from ..common import ROW_LETTERS as ROW_LETTERS
from ..common import ROWS_FOR_COLUMNS as ROWS_FOR_COLUMNS

DISPLAY_NAME = "PerkinElmer EnVision / EnSpire / VICTOR export"

FAMILY_ENVISION = "envision"
FAMILY_VICTOR_X3 = "victor_x3"
FAMILY_NIVO = "victor_nivo"

# Cells that mean "no value given" in metadata columns (Barcode, temperatures, dates).
NOT_GIVEN = frozenset({"", "n/a", "n.a.", "na", "-"})

# --- EnVision / EnSpire CSV ----------------------------------------------------------------
PLATE_INFORMATION = "plate information"
BACKGROUND_INFORMATION = "background information"
# Sections after the plates: the assay, protocol and instrument description.
TRAILER_STARTS = (
    "basic assay information",
    "protocol information",
    "exported with",
)
INFO_PLATE = "plate"
INFO_REPEAT = "repeat"
INFO_BARCODE = "barcode"
INFO_LABEL = "label"
INFO_FORMULA = "formula"
INFO_MEAS = "meas"
INFO_DATE = "measurement date"
INFO_TEMPERATURE = "chamber temperature at start"
# Grid titles (case-insensitive prefixes).
TITLE_RESULTS = "results for"
TITLE_SIGNAL = "signal for"
TITLE_CALCULATED = "calculated results"
TITLE_SATURATED = "saturated for"
SATURATED_TOKEN = "SAT"
# Grids that describe the reads rather than hold readings.
SKIPPED_TITLES = ("measurement time", "background", "error", "platemap")
# Trailer keys ('Key,,,,value' or 'Key: ,,,,value').
TRAILER_SERIAL = ("serial#", "serial number")
TRAILER_PROTOCOL = ("protocol name",)
TRAILER_ASSAY_ID = ("assay id",)
TRAILER_ASSAY_STARTED = ("assay started",)
TRAILER_EXCITATION = ("excitation wavelength",)
TRAILER_EMISSION = ("emission wavelength",)
TRAILER_MEASUREMENTS = ("measurements",)

# --- VICTOR X3 (Wallac 1420) tab text -------------------------------------------------------
X3_LIST_HEADER = ("Plate", "Repeat", "Well", "Type")
X3_BLOCK_HEADER = ("Plate", "Repeat", "End time")
X3_TIME = "Time"
X3_MEASURED_ON = "measured on"
X3_PLATE_TYPE = "name of the plate type"
X3_SERIAL = "instrument serial number"
X3_PROTOCOL = "protocol name"
X3_PROTOCOL_DESCRIPTION = "Protocol description"

# --- VICTOR Nivo CSV --------------------------------------------------------------------------
NIVO_TITLE = "WELL RESULTS"
NIVO_PARAMETERS = "PARAMETERS"
NIVO_PROTOCOL = "PROTOCOL NAME"
NIVO_START = "MEASUREMENT START DATE"
NIVO_PLATE = "Plate"
NIVO_BARCODE = "Barcode"
NIVO_TEMPERATURE = "TEMPERATURE(Celsius)"
NIVO_CYCLE = "Cycle"
NIVO_WELL = "Well"
NIVO_SOFTWARE = "User interface program version"
NIVO_SERIAL = "Instrument serial number"
NIVO_PLATE_FORMAT = "PLATE FORMAT"
NIVO_FILTERS = ("EXCITATION FILTER", "EMISSION FILTER")
NIVO_UTC = "UTC"
# A barcode of '0' means the reader read none (BARCODE READING n.a.).
NIVO_NO_BARCODE = frozenset({"", "0", "n/a", "n.a."})

# --- Metadata keys (vendor) -----------------------------------------------------------------
META_FAMILY = "export"
META_BARCODE = "barcode"
META_REPEAT = "repeat"
META_PROTOCOL = "protocol_name"
META_ASSAY_ID = "assay_id"
META_LOCAL_TIME = "local_start_time"
META_EXCITATION = "excitation"
META_EMISSION = "emission"
META_MEASUREMENT = "measurement"
META_BACKGROUND = "background"
META_DELIMITER = "delimiter"
META_SATURATED = "saturated_wells"
META_TIME_SOURCE = "time_source"
META_FILTER = "filter"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_PLATE_INFORMATION = (
    "no 'Plate information' block: this is not an EnVision/EnSpire export with plate "
    "information — export it again with 'Include basic plate information'"
)
INFO_NO_VALUES = "the 'Plate information' block has a header line but no values under it"
INFO_MISSING_COLUMN = "the 'Plate information' header has no '{column}' column"
GRID_WITHOUT_INFO = (
    "this grid follows the last 'Plate information' block of an export that places plate "
    "information after its grids; the file looks cut or edited — export it again"
)
NO_GRIDS = "the plate information block at line {line} is followed by no result grid"
GRID_BAD_HEADER = "the grid's column header must number the columns 01, 02, 03, …; found '{found}'"
GRID_UNSUPPORTED_COLUMNS = (
    "a grid with {columns} columns is not a plate size saa-lab reads (6, 12, 24, 48, 96 or "
    "384 wells)"
)
GRID_BAD_ROW = "row label '{found}' does not follow row '{previous}' in a {columns}-column plate"
GRID_LONG_ROW = "row {row} has {found} values; the grid's column header has {columns} columns"
GRID_EMPTY = "the grid's column header is not followed by any plate row (A, B, …)"
GRID_UNLABELLED_SHAPE = (
    "a grid without row and column labels has {rows} rows of {columns} values; expected 8 × 12 "
    "or 16 × 24"
)
DUPLICATE_READ = "plate {plate}, repeat {repeat} holds '{label}' twice"
BAD_DATE = (
    "'{found}' is not a date and time saa-lab reads (M/D/YYYY h:mm:ss AM/PM, "
    "D/M/YYYY h:mm:ss p.m., D.M.YYYY HH:MM:SS or ISO 8601)"
)
REPEAT_NOT_NUMBER = "repeat '{found}' is not a number"
REPEAT_TIMES_UNKNOWN = (
    "plate {plate} '{label}' has {count} repeats but no measurement date to time them"
)
REPEAT_TIME_ORDER = (
    "repeat {repeat} of plate {plate} '{label}' is dated before the repeat before it"
)
X3_NO_HEADER = (
    "no 'Plate<TAB>Repeat<TAB>Well<TAB>Type' list or 'Plate<TAB>Repeat<TAB>End time' block: "
    "this is not a VICTOR X3 export"
)
X3_SHORT_ROW = "the line has {found} fields; the list header has {expected}"
X3_BAD_WELL = "'{found}' is not a well name (A01 … P24)"
X3_BAD_TIME = "'{found}' is not a time (hh:mm:ss.ss)"
X3_DUPLICATE_WELL = "well {well} appears twice in repeat {repeat} of plate {plate}"
X3_BLOCK_NO_VALUES = "the 'Plate Repeat End time' header has no values under it"
X3_GRID_SHAPE = (
    "the '{label}' grid of repeat {repeat} has {rows} rows of {columns} values; expected 8 × 12 "
    "or 16 × 24"
)
X3_NO_DATA = "no readings: neither the per-well list nor the per-repeat grids hold values"
NIVO_NO_TABLE = (
    "no 'Well,Time(s),…' table after the 'WELL RESULTS' header; export the VICTOR Nivo results "
    "again"
)
NIVO_BAD_WELL = "'{found}' is not a well name (A1 … P24)"
NIVO_DUPLICATE_WELL = "well {well} appears twice in the table"
NIVO_BAD_TIME = "time '{found}' in column {column} is not a number of seconds"
NIVO_TIME_ORDER = "time '{found}' in column {column} is earlier than the column before it"
NIVO_SHORT_ROW = "well {well} has {found} values; the table has {expected} cycles"
NIVO_BAD_UTC = "the UTC start time '{found}' is not ISO 8601 (e.g. 2022-10-03T13:44:45+0000)"
NO_READS = "no result grid or table with readings found in this export"
