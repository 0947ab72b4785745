"""Names, keys and user-facing messages of the SoftMax Pro text export parser."""

from __future__ import annotations

from saa_lab.domain import NoValueReason

from ..common import PLATE_SHAPES as PLATE_SHAPES
from ..common import ROW_LETTERS as ROW_LETTERS

DISPLAY_NAME = "Molecular Devices SoftMax Pro text export"

# --- Layout of the export -----------------------------------------------------------------
# The first line of every SoftMax Pro text export: ``##BLOCKS= n`` (often padded with spaces).
BLOCKS_MARKER = "##BLOCKS="
# Every block (Plate:, Group:, Note:, …) ends with a line whose first cell is this.
END_MARKER = "~End"
PLATE_BLOCK = "Plate"
GROUP_BLOCK = "Group"
NOTE_BLOCK = "Note"
# Damaged files: a ``##BLOCKS=`` count that differs from the blocks present, or a block
# without its ``~End``, is an InputFileError naming the line (the file is never half-parsed:
# a truncated kinetic export would otherwise give silently wrong rates).
STRICT_BLOCK_COUNT = True

# Plate: header fields by position (tab-separated cells; 0 is "Plate:"), for Absorbance and
# Luminescence. Fluorescence has one extra field (bottom read TRUE/FALSE) at FIELD_BOTTOM_READ,
# which shifts every later field by one.
FIELD_NAME = 1
FIELD_EXPORT_VERSION = 2
FIELD_EXPORT_FORMAT = 3
FIELD_READ_TYPE = 4
FIELD_READ_MODE = 5
FIELD_BOTTOM_READ = 6
FIELD_DATA_TYPE = 6
FIELD_PRE_READ = 7
FIELD_KINETIC_POINTS = 8
FIELD_RUN_TIME = 9
FIELD_INTERVAL = 10
FIELD_N_WAVELENGTHS = 14
FIELD_WAVELENGTHS = 15
FIELD_FIRST_COLUMN = 16
FIELD_N_COLUMNS = 17
FIELD_N_WELLS = 18
# Fluorescence/luminescence only (before the shift): excitation wavelengths.
FIELD_EXCITATION = 19
# First row and number of rows come last; where depends on the read mode (before the shift).
ROW_FIELDS = {"Absorbance": (19, 20), "Fluorescence": (28, 29), "Luminescence": (28, 29)}
SHIFTED_MODES = frozenset({"Fluorescence"})

PLATE_FORMAT = "PlateFormat"
TIME_FORMAT = "TimeFormat"
ENDPOINT = "Endpoint"
KINETIC = "Kinetic"
READ_TYPES = (ENDPOINT, KINETIC)
UNSUPPORTED_READ_TYPES = frozenset({"Spectrum", "Well Scan"})
READ_MODES = ("Absorbance", "Fluorescence", "Luminescence")
RAW = "Raw"
# The second cell of a grid's column header line.
TEMPERATURE_PREFIX = "temperature"

# Luminescence writes wavelength 0 for "no wavelength".
NO_WAVELENGTH = 0.0

# Group tables (Group: blocks): the well column, columns that are not values, and the formula
# table that follows the rows.
GROUP_WELL_COLUMNS = frozenset({"wells", "well"})
GROUP_PLATE_COLUMN = "wellplatename"
GROUP_TEXT_COLUMNS = frozenset({"sample", "sample#", "sample name", "samplenames"})
GROUP_FORMULA_HEADER = "Group Column"
GROUP_FORMULA_NAME = "Formula Name"
GROUP_FORMULA = "Formula"

# The line after the last block: ``Original Filename: x; Date Last Saved: …`` (SoftMax Pro 6/7),
# the same with spaces instead of ';' (SoftMax Pro 5), or ``Instrument type: …``.
FOOTER_ORIGINAL_FILENAME = "Original Filename:"
FOOTER_DATE_LAST_SAVED = "Date Last Saved:"
FOOTER_INSTRUMENT_TYPE = "Instrument type:"
FOOTER_INSTRUMENT_SERIAL = "Instrument serial number:"
FOOTER_KEYS = (
    FOOTER_ORIGINAL_FILENAME,
    FOOTER_DATE_LAST_SAVED,
    FOOTER_INSTRUMENT_TYPE,
    FOOTER_INSTRUMENT_SERIAL,
)

# SoftMax tokens parse_cell does not know, mapped to the reason (raw text kept as written).
# ``Range?``, ``Masked`` and ``NaN`` are already known to parse_cell.
VENDOR_TOKENS = {"PATH?": NoValueReason.NOT_CALCULABLE}

# Label suffix of the reduced-data grid that follows the raw data (Vmax, blank-corrected, …).
REDUCED_LABEL = "Reduced"

# --- Metadata keys (vendor keys next to the standard Meta keys) ----------------------------
# The export has only its save time, which is not the read time: kept as written, and the
# read's read_time stays None.
META_DATE_LAST_SAVED = "date_last_saved"
META_ORIGINAL_FILENAME = "original_filename"
META_PLATE_SECTION = "plate_section"
META_EXPORT_VERSION = "export_version"
META_EXPORT_FORMAT = "export_format"
META_READ_TYPE = "read_type"
META_READ_MODE = "read_mode"
META_KINETIC_POINTS = "kinetic_points"
META_RUN_TIME = "kinetic_run_time_s"
META_INTERVAL = "kinetic_interval_s"
META_EXCITATION = "excitation_nm"
META_BOTTOM_READ = "bottom_read"
META_READ_AREA = "read_area"
META_GROUP = "group"
META_GROUP_COLUMN = "group_column"
META_FORMULA = "formula"
META_DECIMAL_COMMA = "decimal_comma"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_BLOCKS_LINE = (
    "the first line is not '##BLOCKS= n': this is not a SoftMax Pro text export, or its first "
    "line was removed; export it again from SoftMax Pro"
)
BAD_BLOCKS_COUNT = "'##BLOCKS=' must be followed by the number of blocks; found '{found}'"
BLOCK_COUNT_MISMATCH = (
    "the file declares {declared} blocks ('##BLOCKS=' on line 1) but {found} blocks end with "
    "'~End': the export is incomplete or was edited; export it again from SoftMax Pro"
)
MISSING_END = (
    "the {kind} block starting on line {start} has no '~End' line before {where}: the export "
    "is incomplete or was edited; export it again from SoftMax Pro"
)
NOT_A_BLOCK = (
    "expected the start of a block ('Plate:', 'Group:' or 'Note:') after '~End'; found '{found}'"
)
NO_PLATE_DATA = (
    "the export holds no plate data: no 'Plate:' block and no 'Group:' table with a well "
    "column; export the plate section (Plate or Time format) from SoftMax Pro"
)
SHORT_HEADER = (
    "the 'Plate:' header has {found} fields; a {mode} header needs at least {needed} "
    "(name, version, format, read type, …, number of wells)"
)
MISSING_FIELD = "the 'Plate:' header has no {field} (field {position})"
BAD_INTEGER = (
    "the 'Plate:' header's {field} (field {position}) must be a whole number; found '{found}'"
)
BAD_WAVELENGTH = "the 'Plate:' header's wavelength '{found}' is not a number of nanometres"
WAVELENGTH_COUNT = (
    "the 'Plate:' header declares {declared} wavelengths but lists {found} ('{text}')"
)
UNKNOWN_FORMAT = "unknown export format '{found}'; expected 'PlateFormat' or 'TimeFormat'"
UNKNOWN_READ_MODE = (
    "unknown read mode '{found}'; saa-lab reads 'Absorbance', 'Fluorescence' and 'Luminescence'"
)
UNSUPPORTED_READ_TYPE = (
    "this plate section is a '{found}' read; saa-lab reads Endpoint and Kinetic reads only — "
    "export an Endpoint or Kinetic section"
)
UNKNOWN_READ_TYPE = "unknown read type '{found}'; expected 'Endpoint' or 'Kinetic'"
REDUCED_ONLY = (
    "the plate section was exported as '{found}' data only; export it again with Raw data "
    "(the raw readings are what saa-lab calculates from)"
)
UNSUPPORTED_PLATE = (
    "a plate of {wells} wells is not a plate size saa-lab reads (6, 12, 24, 48, 96 or 384 wells)"
)
AREA_OUTSIDE_PLATE = (
    "the 'Plate:' header's read area (first column {first_column}, {columns} columns, first "
    "row {first_row}, {rows} rows) does not fit a {wells}-well plate"
)
NO_COLUMN_HEADER = (
    "expected the grid's column header after the 'Plate:' line ('Temperature' in the second "
    "cell, then the column numbers or well names)"
)
BAD_COLUMN_HEADER = (
    "the column header must number the plate's columns (1, 2, …, groups of columns separated "
    "by one empty cell); found '{found}'"
)
COLUMN_GROUPS = (
    "the column header has {found} groups of columns but the 'Plate:' header declares "
    "{declared} wavelengths"
)
BAD_WELL_HEADER = "'{found}' in the column header is not a well of a {wells}-well plate"
DUPLICATE_WELL = "well {well} appears twice in the column header"
MISSING_TIME = "kinetic time point {point} must start with its time in the first cell"
BAD_TIME = "'{found}' is not a time (m:ss or h:mm:ss)"
TIMES_NOT_INCREASING = "time {found} is not after the time before it ({previous})"
GRID_ROWS = (
    "the plate grid starting on line {start} has {found} rows; a {wells}-well plate has {rows} "
    "(or the {declared} rows the 'Plate:' header declares): a line is missing or was added"
)
ROW_WITHOUT_VALUES = (
    "row {row} has no values although the 'Plate:' header says rows {first}–{last} were read: "
    "a line is missing or was added"
)
VALUE_OUTSIDE_HEADER = (
    "a value ('{found}') in a column the column header does not name: the row has cells "
    "shifted or added"
)
VALUE_OUTSIDE_AREA = (
    "well {well} has a value but lies outside the read area {area} the 'Plate:' header "
    "declares: a line was added or moved, or the header was edited"
)
TOO_FEW_POINTS = (
    "{what} has {found} time points; the 'Plate:' header declares {declared}: the export is "
    "incomplete or was edited"
)
TOO_MANY_POINTS = (
    "more time points than the {declared} the 'Plate:' header declares: the export was edited"
)
UNEXPECTED_LINE = "unexpected line in the plate block after its data: '{found}'"
REDUCED_WITHOUT_VALUES = "the reduced-data header is not followed by its values"
