"""A generic 8×12 plate grid in a comma- or semicolon-separated file."""

from __future__ import annotations

from .parser import GenericGridParser

__all__ = ["GenericGridParser"]
