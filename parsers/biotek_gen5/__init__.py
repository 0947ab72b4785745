"""Agilent BioTek Gen5 text (.txt) exports: endpoint reads, one or more plates per file."""

from __future__ import annotations

from .parser import Gen5TextParser

__all__ = ["Gen5TextParser"]
