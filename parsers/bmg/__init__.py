"""BMG Labtech MARS / Omega export."""

from __future__ import annotations

from .parser import BmgParser

__all__ = ["BmgParser"]
