"""The store: every fact saa-lab keeps, in SQLite (default, WAL) or PostgreSQL."""

from __future__ import annotations

from .repository import (
    PendingMessage,
    SourceRecord,
    Store,
    StoredResult,
    StoredRun,
)

__all__ = ["PendingMessage", "SourceRecord", "Store", "StoredResult", "StoredRun"]
