"""Tecan i-control / SparkControl / Magellan export."""

from __future__ import annotations

from .parser import TecanParser

__all__ = ["TecanParser"]
