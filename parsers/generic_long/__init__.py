"""Generic long Well,Value table."""

from __future__ import annotations

from .parser import GenericLongParser

__all__ = ["GenericLongParser"]
