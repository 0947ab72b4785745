"""Plate-reader export parsers: a registry and content-based detection.

``detect(source)`` decodes the start of a file and asks every parser's
``sniff``; exactly one must claim it. ``parse(source)`` detects and parses,
adding the file's path to any error once, here at the boundary.
"""

from __future__ import annotations

from saa_lab.domain import PlateRead, SourceFile
from saa_lab.errors import AmbiguousFormatError, InputFileError, UnknownFormatError

from .base import Instrument, PlateParser, decode, parse_cell
from .biotek_gen5 import Gen5TextParser
from .generic_grid import GenericGridParser

__all__ = [
    "PARSERS",
    "Instrument",
    "PlateParser",
    "decode",
    "detect",
    "parse",
    "parse_cell",
]

PARSERS: dict[Instrument, type[PlateParser]] = {
    Instrument.BIOTEK_GEN5: Gen5TextParser,
    Instrument.GENERIC_GRID: GenericGridParser,
}

_HEAD_BYTES = 16384
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def detect(source: SourceFile) -> Instrument:
    """The one format whose ``sniff`` claims this file's content.

    Raises UnknownFormatError when none does and AmbiguousFormatError (with
    the candidates) when several do; the extension is never used to decide.
    """
    head_source = SourceFile(source.contents[:_HEAD_BYTES], source.original_path, "-")
    if not source.contents.strip():
        msg = "the file is empty (0 bytes or only white space); nothing to read"
        raise UnknownFormatError(msg, path=source.original_path)
    if source.contents.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        msg = (
            "this is an Excel workbook (.xlsx/.xls); saa-lab reads text and CSV exports "
            "for now: export the plate as text from the reader software"
        )
        raise UnknownFormatError(msg, path=source.original_path)
    head, _ = decode(head_source)
    found = [instrument for instrument, cls in PARSERS.items() if cls.sniff(head)]
    if not found:
        names = ", ".join(cls.DISPLAY_NAME for cls in PARSERS.values())
        msg = f"unrecognised export format; saa-lab reads: {names}"
        raise UnknownFormatError(msg, path=source.original_path)
    if len(found) > 1:
        msg = "the file matches several formats: " + ", ".join(str(f) for f in found)
        raise AmbiguousFormatError(
            msg, candidates=[str(f) for f in found], path=source.original_path
        )
    return found[0]


def parse(source: SourceFile, *, instrument: Instrument | None = None) -> list[PlateRead]:
    """Detect (unless given) and parse; every error names the file."""
    chosen = instrument or detect(source)
    try:
        reads = PARSERS[chosen]().parse(source)
    except InputFileError as err:
        err.path = err.path or source.original_path
        raise
    if not reads:
        msg = f"no plate data found in this {PARSERS[chosen].DISPLAY_NAME} export"
        raise InputFileError(msg, path=source.original_path)
    return reads
