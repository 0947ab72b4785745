"""Deliver: move released messages from the database outbox to their destination.

The file destination writes one ``<MSH-10>.hl7`` per message, atomically, in
the order the messages were stored. A message is marked sent only after its
file is in place, so a crash in between re-writes the same file (same name,
same MSH-10), never loses it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import DeliveryError
from .pipeline import FILE_DESTINATION
from .store import Store

__all__ = ["deliver_to_directory"]

log = logging.getLogger(__name__)


def deliver_to_directory(store: Store, directory: Path, *, batch: int = 500) -> int:
    """Write every pending file-destination message; returns how many were written."""
    from .hl7 import write_message_file

    written = 0
    while True:
        pending = store.pending_messages(FILE_DESTINATION, limit=batch)
        if not pending:
            return written
        done_ids: list[int] = []
        targets: list[str] = []
        try:
            for message in pending:
                path = write_message_file(directory, message.control_id, message.payload)
                done_ids.append(message.id)
                targets.append(str(path))
        except DeliveryError as exc:
            log.error("outbox delivery stopped: %s", exc)
            if done_ids:
                store.mark_delivered(done_ids, targets)
            failed = pending[len(done_ids)]
            store.mark_delivery_failed(failed.id, str(exc))
            raise
        store.mark_delivered(done_ids, targets)
        written += len(done_ids)
