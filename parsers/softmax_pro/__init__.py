"""Molecular Devices SoftMax Pro text export."""

from __future__ import annotations

from .parser import SoftMaxProParser

__all__ = ["SoftMaxProParser"]
