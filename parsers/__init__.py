"""Plate-reader export parsers: a registry and content-based detection.

``detect(source)`` decodes the start of a file and asks every parser's
``sniff``; exactly one must claim it. ``parse(source)`` detects and parses;
every parser's errors name the file (:meth:`.base.PlateParser.parse`).
"""

from __future__ import annotations

from saa_lab.domain import PlateRead, SourceFile
from saa_lab.errors import AmbiguousFormatError, InputFileError, UnknownFormatError

from .base import Instrument, PlateParser, decode, parse_cell
from .biotek_gen5 import Gen5TextParser
from .bmg import BmgParser
from .generic_grid import GenericGridParser
from .generic_long import GenericLongParser
from .perkinelmer import PerkinElmerParser
from .softmax_pro import SoftMaxProParser
from .table import head_text
from .tecan import TecanParser
from .thermo_skanit import SkanItParser

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
    Instrument.SOFTMAX_PRO: SoftMaxProParser,
    Instrument.TECAN: TecanParser,
    Instrument.BMG: BmgParser,
    Instrument.THERMO_SKANIT: SkanItParser,
    Instrument.PERKINELMER: PerkinElmerParser,
    Instrument.GENERIC_GRID: GenericGridParser,
    Instrument.GENERIC_LONG: GenericLongParser,
}

_HEAD_BYTES = 16384


def detect(source: SourceFile) -> Instrument:
    """The one format whose ``sniff`` claims this file's content.

    Raises UnknownFormatError when none does and AmbiguousFormatError (with
    the candidates) when several do; the extension is never used to decide.
    """
    if not source.contents.strip():
        msg = "the file is empty (0 bytes or only white space); nothing to read"
        raise UnknownFormatError(msg, path=source.original_path)
    head = head_text(source, head_bytes=_HEAD_BYTES)
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
    reads = PARSERS[chosen]().parse(source)
    if not reads:
        msg = f"no plate data found in this {PARSERS[chosen].DISPLAY_NAME} export"
        raise InputFileError(msg, path=source.original_path)
    return reads
