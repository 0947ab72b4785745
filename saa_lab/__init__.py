"""saa-lab: serum asparaginase activity plate assays to interpreted HL7 v2 results."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
