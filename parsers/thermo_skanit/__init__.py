"""Thermo SkanIt / Multiskan / Varioskan export."""

from __future__ import annotations

from .parser import SkanItParser

__all__ = ["SkanItParser"]
