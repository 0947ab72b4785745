"""PerkinElmer EnVision / EnSpire / VICTOR export."""

from __future__ import annotations

from .parser import PerkinElmerParser

__all__ = ["PerkinElmerParser"]
