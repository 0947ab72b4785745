"""Names, keys and user-facing messages of the Tecan export parser.

Keys are matched case-insensitively, without a trailing ``:``. German keys are
the ones i-control writes with a German user interface (openreadout's format
notes and platexpress/QurvE documentation); those marked *assumed* were not
seen in a real export.
"""

from __future__ import annotations

import re

from saa_lab.domain import NoValueReason

from ..common import ROW_LETTERS as ROW_LETTERS

DISPLAY_NAME = "Tecan i-control / SparkControl / Magellan export"

# --- Dialects -------------------------------------------------------------------------------
ICONTROL = "i-control"
SPARKCONTROL = "SparkControl"
MAGELLAN = "Magellan"

# --- Detection (sniff) ----------------------------------------------------------------------
# i-control and SparkControl name themselves in one of the first lines of every export/sheet
# ("Method name: …" may come first in SparkControl).
SNIFF_HEADER_LINES = 6
APPLICATION_LINE = re.compile(
    r"^\W{0,3}(?:application|programm|anwendung)\s*:\s*\"?\s*"
    r"(?:tecan\s+i-control|i-control|sparkcontrol|spark\s*control)",
    re.IGNORECASE,
)
# Magellan: a list headed "Well positions", or its footer line, or a kinetic sheet whose
# first line is "Wednesday, August 16, 2023: 16:12:40 / 0 sec / 37.1°C".
MAGELLAN_WELL_HEADER = "well positions"
MAGELLAN_FOOTER = re.compile(
    r"^\W{0,3}date of measurement:.*/\s*time of measurement:", re.IGNORECASE
)
MAGELLAN_KINETIC_LINE = re.compile(
    r"^\W{0,3}(?P<date>[A-Za-z]+,\s+[A-Za-z]+\s+\d{1,2},\s+\d{4}):\s*"
    r"(?P<time>\d{1,2}:\d{2}:\d{2})\s*/\s*(?P<offset>[\d.,]+)\s*(?P<unit>[a-z]+)\s*/\s*"
    r"(?P<temperature>-?[\d.,]+)\s*\S*C\s*$",
    re.IGNORECASE,
)
MAGELLAN_KINETIC_DATE_FORMAT = "%A, %B %d, %Y %H:%M:%S"

# --- i-control / SparkControl header keys (canonical name -> spellings) -----------------------
APPLICATION = "application"
DEVICE = "device"
SERIAL = "serial number"
FIRMWARE = "firmware"
METHOD = "method name"
DATE = "date"
TIME = "time"
SYSTEM = "system"
USER = "user"
PLATE = "plate"
PLATE_ID = "plate-id (stacker)"
PLATE_AREA = "plate area"
COMMENT = "comment"
LABEL = "label"
MODE = "mode"
NAME = "name"
WAVELENGTH = "wavelength"
EXCITATION = "excitation wavelength"
EMISSION = "emission wavelength"
PART_OF_PLATE = "part of plate"
START_TIME = "start time"
END_TIME = "end time"
TEMPERATURE = "temperature"
KINETIC_CYCLES = "kinetic cycles"
INTERVAL = "interval time"

KEY_ALIASES: dict[str, str] = {
    "application": APPLICATION,
    "programm": APPLICATION,
    "anwendung": APPLICATION,
    "device": DEVICE,
    "gerät": DEVICE,
    "serial number": SERIAL,
    "seriennummer": SERIAL,
    "firmware": FIRMWARE,
    "method name": METHOD,
    "date": DATE,
    "datum": DATE,
    "time": TIME,
    "zeit": TIME,
    "uhrzeit": TIME,  # assumed
    "system": SYSTEM,
    "user": USER,
    "anwender": USER,
    "benutzer": USER,  # assumed
    "plate": PLATE,
    "platte": PLATE,
    "plate-id (stacker)": PLATE_ID,
    "platten-id (stapler)": PLATE_ID,
    "plate area": PLATE_AREA,
    "comment": COMMENT,
    "kommentar": COMMENT,  # assumed
    "label": LABEL,
    "mode": MODE,
    "modus": MODE,
    "name": NAME,
    "wavelength": WAVELENGTH,
    "measurement wavelength": WAVELENGTH,
    "measurement wavelength [nm]": WAVELENGTH,
    "wellenlänge": WAVELENGTH,
    "messwellenlänge": WAVELENGTH,
    "excitation wavelength": EXCITATION,
    "excitation wavelength [nm]": EXCITATION,
    "anregungswellenlänge": EXCITATION,  # assumed
    "emission wavelength": EMISSION,
    "emission wavelength [nm]": EMISSION,
    "emissionswellenlänge": EMISSION,  # assumed
    "part of plate": PART_OF_PLATE,
    "start time": START_TIME,
    "startzeit": START_TIME,
    "end time": END_TIME,
    "endzeit": END_TIME,  # assumed
    "temperature": TEMPERATURE,
    "temperature [°c]": TEMPERATURE,
    "temperatur": TEMPERATURE,  # assumed
    "temperatur [°c]": TEMPERATURE,  # assumed
    "kinetic cycles": KINETIC_CYCLES,
    "kinetische zyklen": KINETIC_CYCLES,  # assumed
    "interval time": INTERVAL,
    "intervallzeit": INTERVAL,
}
# Inline "Temperature: 25.3 °C" (i-control writes it in column B above the grid).
INLINE_TEMPERATURE = re.compile(
    r"^(?:temperature|temperatur)\s*:\s*(-?\d+(?:[.,]\d+)?)\s*\S{0,2}C?\s*$", re.IGNORECASE
)
# A "Mode" value that opens the kinetic settings, not a read.
KINETIC_MODES = frozenset({"kinetic", "kinetik"})
ABSORBANCE_MODES = frozenset({"absorbance", "absorption"})

# --- Tables ---------------------------------------------------------------------------------
GRID_CORNER = "<>"
CYCLE_KEYS = frozenset({"cycle nr.", "cycle nr", "zyklus nr.", "zyklus-nr."})  # German assumed
TIME_KEYS = frozenset({"time [s]", "zeit [s]"})
TEMPERATURE_ROW_KEYS = frozenset({"temp. [°c]", "temp [°c]", "temperature [°c]"})
# Spark's endpoint list "<>,Value,Time [ms]": the column holding the reading.
LIST_VALUE_KEYS = frozenset({"value", "mean", "wert", "mittelwert"})
WELL_NAME = re.compile(r"^([A-Pa-p])0?(\d{1,2})$")
ROW_LETTER = re.compile(r"^[A-P]$")

# The plate type text names the plate's wells (common.PLATE_SHAPES gives its rows and columns).
PLATE_WELLS = re.compile(r"(?<![\d.])(384|96|48|24|12|6)(?![\d])")

# --- Tokens ---------------------------------------------------------------------------------
# i-control writes INVALID for a well it could not measure (not in base.parse_cell's table).
TOKENS: dict[str, str] = {"INVALID": NoValueReason.NOT_READ}

# --- Magellan -------------------------------------------------------------------------------
MAGELLAN_POSITION_KEY = "well positions"
MAGELLAN_PLATE_COLUMN = "plate"
# Columns of a Magellan list that hold layout text, not readings.
MAGELLAN_TEXT_COLUMNS = frozenset(
    {"plate", "layout", "sample", "sample id", "samples", "name", "identifier", "replicate"}
)
MAGELLAN_DEFAULT_LABEL = "Raw data"
MAGELLAN_SERIAL = re.compile(r"^instrument serial number\s*:\s*(.+)$", re.IGNORECASE)
MAGELLAN_TIME_OF_MEASUREMENT = re.compile(
    r"^date of measurement:\s*(?P<date>[^/]+?)\s*/\s*time of measurement:\s*(?P<time>.+?)\s*$",
    re.IGNORECASE,
)
MAGELLAN_COMPACT_TIME = re.compile(
    r"^date:\s*(?P<date>[^,]+?)\s*,\s*time:\s*(?P<time>.+?)\s*$", re.IGNORECASE
)
MAGELLAN_TEMPERATURE = re.compile(
    r"^meas\. temperature:\s*(?P<label>.+):\s*(?P<value>-?\d+(?:[.,]\d+)?)\s*\S*\s*$",
    re.IGNORECASE,
)
MAGELLAN_WAVELENGTH_LINE = re.compile(r"^(\d{3,4})\s*nm$", re.IGNORECASE)
MAGELLAN_KEY_VALUE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
MAGELLAN_MODE_KEYS = frozenset({"measurement mode"})
MAGELLAN_WAVELENGTH_KEYS = frozenset({"measurement wavelength", "wavelength"})
MAGELLAN_PLATE_KEYS = frozenset({"plate definition file", "plate description"})
MAGELLAN_MODE_LINES = frozenset(
    {"absorbance", "fluorescence intensity", "luminescence", "fluorescence"}
)
# Magellan column titles that are calculations, not readings.
DERIVED_WORDS = ("blank", "conc", "ratio", "mean", "average", "reduced", "corrected", "result")

# --- Metadata keys (vendor keys beside saa_lab.domain.Meta) ----------------------------------
META_DIALECT = "tecan_dialect"
META_APPLICATION = "application"
META_FIRMWARE = "firmware"
META_METHOD = "method"
META_USER = "user"
META_SYSTEM = "system"
META_PLATE_TYPE = "plate_type"
META_COMMENT = "comment"
META_MODE = "mode"
META_PART_OF_PLATE = "part_of_plate"
META_START_TIME = "start_time"
META_END_TIME = "end_time"
META_DATE = "date"
META_TIME = "time"
META_EXCITATION = "excitation_wavelength_nm"
META_EMISSION = "emission_wavelength_nm"
META_DATE_ORDER = "date_order_assumed"
META_TITLE = "table_title"
META_KINETIC_TEMPERATURES = "kinetic_temperatures_c"
META_MAGELLAN_METHOD = "magellan_method"
META_MAGELLAN_WORKSPACE = "magellan_workspace"

# --- Messages (user-facing; the error adds file and line) -----------------------------------
NO_READS = (
    "no plate data found: expected a '<>' grid or a 'Cycle Nr.' kinetic table after the "
    "read's settings; export the measurement again with its results"
)
BAD_COLUMN_HEADER = (
    "the grid's column header after '<>' must number the plate columns (1, 2, 3, …); "
    "found '{found}'"
)
EMPTY_GRID = "the '<>' column header is not followed by any plate row (A, B, …)"
BAD_ROW_LETTER = (
    "row label '{found}' is out of order or not a plate row; expected a letter after '{previous}'"
)
EXTRA_CELLS = "row {row} has values beyond the {columns} columns its header numbers"
LIST_WITHOUT_VALUE = "the well list after '<>' has no 'Value' column; found '{found}'"
BAD_LIST_WELL = "'{found}' is not a well name (A1, B12, …) in the well list"
DUPLICATE_WELL = "well {well} appears twice in read '{label}'"
NO_TIME_ROW = "the kinetic table has no 'Time [s]' row under 'Cycle Nr.'"
BAD_TIME = "time '{found}' of cycle {cycle} is not a number of seconds"
TOO_MANY_READINGS = (
    "well {well} has {found} readings but the 'Time [s]' row has {times} times; "
    "the row has a value too many or the times are cut short"
)
BAD_KINETIC_WELL = "'{found}' is not a well name (A1, B12, …) in the kinetic table"
NO_KINETIC_WELLS = "the kinetic table has no well rows (A1, A2, …) under its 'Time [s]' row"
WELL_OUTSIDE_PLATE = "well {well} lies outside the {wells}-well plate the export names ('{plate}')"
MAGELLAN_NO_VALUES = (
    "the Magellan list has no column of readings beside 'Well positions'; export the raw data"
)
MAGELLAN_NO_WELLS = "the Magellan export lists no wells (A1, B12, …) before its footer"
MAGELLAN_KINETIC_ROW = (
    "well {well} has {found} readings but the sheet header lists {times} time points"
)
NOT_TECAN = (
    "no Tecan header found: expected 'Application: Tecan i-control' or "
    "'Application: SparkControl' in the first lines, or a Magellan 'Well positions' list; "
    "export the measurement again from the Tecan software"
)
SHEET_PREFIX = "sheet '{sheet}': {message}"
DAMAGED_WORKBOOK = (
    "the workbook is damaged and cannot be read ({error}); export it again from the Tecan "
    "software or copy the original file"
)
