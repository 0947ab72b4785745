"""What every export parser shares: the parser shape, decoding and cell values."""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar

from saa_lab.domain import NoValueReason, PlateRead, SourceFile, WellValue
from saa_lab.errors import InputFileError

__all__ = ["Instrument", "PlateParser", "decode", "parse_cell"]


class Instrument(StrEnum):
    """The export formats saa-lab reads; the value is stored with every run."""

    BIOTEK_GEN5 = "biotek_gen5"
    SOFTMAX_PRO = "softmax_pro"
    TECAN = "tecan"
    BMG = "bmg"
    THERMO_SKANIT = "thermo_skanit"
    PERKINELMER = "perkinelmer"
    GENERIC_GRID = "generic_grid"
    GENERIC_LONG = "generic_long"


class PlateParser(ABC):
    """One export format: a cheap ``sniff`` on the decoded head, and ``parse``."""

    INSTRUMENT: ClassVar[Instrument]
    DISPLAY_NAME: ClassVar[str]
    # Informational only: detection is by content, never by extension.
    SUPPORTED_EXTENSIONS: ClassVar[tuple[str, ...]]

    @classmethod
    @abstractmethod
    def sniff(cls, head: str) -> bool:
        """True when the decoded start of a file (a few KiB) looks like this format."""

    def parse(self, source: SourceFile) -> list[PlateRead]:
        """Every plate read in the file; raises InputFileError naming file and line."""
        try:
            return self.read_file(source)
        except InputFileError as err:
            err.path = err.path or source.original_path
            raise

    @abstractmethod
    def read_file(self, source: SourceFile) -> list[PlateRead]:
        """What :meth:`parse` returns; errors name the line, ``parse`` adds the file."""


_TOKENS: dict[str, str] = {
    "OVRFLW": NoValueReason.OVERFLOW,
    "OVER": NoValueReason.OVERFLOW,
    "OVERFLOW": NoValueReason.OVERFLOW,
    "RANGE?": NoValueReason.OVERFLOW,
    "MISSED": NoValueReason.NOT_READ,
    "?????": NoValueReason.NOT_CALCULABLE,
    "MASKED": NoValueReason.MASKED,
    "NAN": NoValueReason.NOT_CALCULABLE,
    "N/A": NoValueReason.NOT_READ,
    "INVALID": NoValueReason.NOT_READ,
    "PATH?": NoValueReason.NOT_CALCULABLE,
}
# ASCII digits only: float() also reads "٣" (Arabic-Indic three) and other scripts' digits.
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", re.ASCII)


def parse_cell(raw: str, *, decimal_comma: bool = False) -> WellValue:
    """Turn one exported cell into a reading. Never returns 0.0 for a non-number.

    Empty cells, instrument tokens (``OVRFLW``, ``?????``, ``MISSED``, ``OVER``,
    asterisk-wrapped ``*1.234*``) and anything non-numeric become ``None`` with
    the reason and the raw text kept.
    """
    text = raw.strip().strip('"').strip()
    if not text:
        return WellValue(None, raw, NoValueReason.EMPTY)
    token = _TOKENS.get(text.upper())
    if token is not None:
        return WellValue(None, text, token)
    if len(text) > 2 and text.startswith("*") and text.endswith("*"):
        return WellValue(None, text, NoValueReason.MASKED)
    number = text.replace(",", ".") if decimal_comma else text
    if _NUMBER_RE.match(number):
        value = float(number)
        if math.isfinite(value):
            return WellValue(value, text)
    return WellValue(None, text, NoValueReason.NON_NUMERIC)


def decode(source: SourceFile) -> tuple[str, str]:
    """Decode a text export; returns (text, encoding).

    Byte-order marks decide UTF-8/UTF-16; UTF-16 without a BOM is recognised by
    its NUL bytes; then strict UTF-8; then cp1252 (older Windows exports, where
    ``°`` is 0xB0). Undecodable bytes are an InputFileError naming the file.
    """
    data = source.contents
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_strict(source, data, "utf-16"), "utf-16"
    sample = data[:4096]
    if sample and sample.count(b"\x00") > len(sample) // 4:
        # UTF-16 without a BOM: ASCII text has every other byte zero.
        even_zero = sample[0::2].count(0) > sample[1::2].count(0)
        encoding = "utf-16-be" if even_zero else "utf-16-le"
        return _decode_strict(source, data, encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def _decode_strict(source: SourceFile, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        msg = f"the file looks like {encoding} text but byte {exc.start} cannot be decoded"
        raise InputFileError(msg, path=source.original_path) from exc
