"""Log output: plain text or JSON lines, and keeping patient data out of log records.

``saa-lab --log-format json`` (or ``SAA_LAB_LOG_FORMAT=json``) writes one JSON
object per line to stderr, for journald, Loki, Elasticsearch and the like::

    {"time": "2026-11-22T08:15:02.113+00:00", "level": "INFO", "logger": "saa_lab.watcher",
     "message": "RUN-G5-001.txt processed: 1 run(s), 1 accepted; archived as ..."}

with ``exception`` (the traceback) when there is one, and any ``extra={...}`` field of
the call. Standard library only: a log line must never need a package to be written.

Patient identifiers and names never appear in logs above DEBUG (DESIGN.md). Text that
comes from outside and may echo them (a receiver's ACK error text) goes through
:func:`without_patient_data` before it is logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .errors import SaaLabError

__all__ = [
    "LOG_FORMATS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "configure_logging",
    "error_location",
    "mask_password",
    "patient_identifiers",
    "redact",
    "without_patient_data",
]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "***"

# Every attribute a LogRecord has by itself; anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC, with offset), level, logger,
    message, ``exception`` and ``stack`` when present, then the call's ``extra`` fields
    (which never replace the four above). Values JSON cannot hold are written as str()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in entry:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: int, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Log ``level`` and above to ``stream`` (stderr) as text or JSON lines.

    Like :func:`logging.basicConfig`, it does nothing when the root logger already
    has handlers (an embedding application or a test harness configured logging).
    """
    if log_format not in LOG_FORMATS:
        msg = f"unknown log format {log_format!r}; use one of {', '.join(LOG_FORMATS)}"
        raise ValueError(msg)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level, handlers=[handler])


# -- patient data --------------------------------------------------------------------

# Segments about the patient and the people around them: identifiers, names, birth
# date, address, phone, account and insurance numbers.
_PATIENT_SEGMENTS = ("PID", "PD1", "NK1", "GT1", "IN1", "MRG")
_SHORTEST = 3  # shorter values (sex, ID type codes, set ids) would mangle any text


def patient_identifiers(er7: str) -> set[str]:
    """Every value of length 3 or more in an HL7 v2 message's patient segments (PID,
    PD1, NK1, GT1, IN1, MRG), as components and subcomponents; a date of birth also in
    ISO form (``20170309`` gives ``2017-03-09``). Set ids (field 1) and accession
    numbers standing in for a patient id (ID type ACSN) are left out."""
    segments = [s for s in re.split(r"[\r\n]+", er7) if s]
    header = next((s for s in segments if s.startswith("MSH") and len(s) > 8), None)
    field_sep = header[3] if header else "|"
    encoding = header[4:8] if header else "^~\\&"
    component, repetition, subcomponent = encoding[0], encoding[1], encoding[3]
    found: set[str] = set()
    for segment in segments:
        fields = segment.split(field_sep)
        if fields[0] not in _PATIENT_SEGMENTS:
            continue
        for value in fields[2:]:
            for rep in value.split(repetition):
                components = rep.split(component)
                if len(components) > 4 and components[4] == "ACSN":
                    continue  # PID-3 of a sample without a patient id is its accession
                for comp in components:
                    for part in comp.split(subcomponent):
                        part = part.strip()
                        if len(part) >= _SHORTEST:
                            found.add(part)
                        if re.fullmatch(r"\d{8}(\d*)?([+-]\d{4})?", part):
                            found.add(f"{part[:4]}-{part[4:6]}-{part[6:8]}")
    return found


def redact(text: str, values: set[str] | frozenset[str] | list[str]) -> str:
    """``text`` with every one of ``values`` (any case) replaced by ``***``."""
    wanted = sorted({v for v in values if v}, key=len, reverse=True)
    if not wanted or not text:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in wanted), re.IGNORECASE)
    return pattern.sub(REDACTED, text)


def without_patient_data(text: str, er7: str) -> str:
    """``text`` (e.g. a receiver's ACK error text about message ``er7``) with the
    message's patient identifiers, names and birth date masked, for a log line."""
    return redact(text, patient_identifiers(er7))


def error_location(error: SaaLabError) -> str:
    """Where an input error is (``line 3, well A4``), without its message: a message
    about a worklist or export may quote a cell, and a cell may hold patient data."""
    parts = [f"line {error.line}" if error.line is not None else "",
             f"well {error.well}" if error.well else ""]  # fmt: skip
    return ", ".join(p for p in parts if p) or "the file as a whole"


# -- secrets -------------------------------------------------------------------------


def mask_password(url: str) -> str:
    """A database URL for display: ``postgresql://user:***@host/db`` (no password: as is)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{hostinfo}"))
