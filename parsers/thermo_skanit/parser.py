"""Work in progress (issue 3): claims no file yet."""

from __future__ import annotations

from saa_lab.domain import PlateRead, SourceFile
from saa_lab.errors import InputFileError

from ..base import Instrument, PlateParser

__all__ = ["SkanItParser"]


class SkanItParser(PlateParser):
    INSTRUMENT = Instrument.THERMO_SKANIT
    DISPLAY_NAME = "Thermo SkanIt / Multiskan / Varioskan export"
    SUPPORTED_EXTENSIONS = ()

    @classmethod
    def sniff(cls, head: str) -> bool:
        return False

    def parse(self, source: SourceFile) -> list[PlateRead]:
        raise InputFileError("this format is not supported yet", path=source.original_path)
