"""Agilent BioTek Gen5 exports: text (.txt) and Excel (.xlsx), endpoint and kinetic reads,
one or more plates per file (repeated headers in text, one sheet per plate in a workbook)."""

from __future__ import annotations

from .parser import Gen5TextParser

__all__ = ["Gen5TextParser"]
