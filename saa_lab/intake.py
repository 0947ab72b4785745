"""Order intake: HL7 orders received over MLLP, stored before they are acknowledged.

The listener answers AA only after the orders are in the database; orders with
problems are stored flagged (AE names the problems); a message we cannot accept
is answered AR and not stored; if the database cannot be reached the listener
answers AE (ERR 207) so the sender resends. A resend of a stored message is
recognised by its MSH-10 and not stored twice. No order is silently dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .config import AppConfig
from .store import Store

if TYPE_CHECKING:
    from .hl7.mllp import MllpServer
    from .hl7.orders import OrderReading

__all__ = ["order_listener", "store_reading"]

log = logging.getLogger(__name__)


def store_reading(store: Store, reading: OrderReading) -> None:
    """Store every order of one message with its own status and problems."""
    from .store.order_queries import save_order_message

    items = []
    for index, order in enumerate(reading.orders):
        problems = reading.problems_for(index)
        status = "ae" if any(p.severity == "E" for p in problems) else "ok"
        items.append((order, status, [str(p) for p in problems]))
    stored, resent = save_order_message(store, items)
    log.info(
        "order message %s: %d order(s) stored, %d resend(s), ACK %s",
        reading.message_control_id, len(stored), resent, reading.ack_code,
    )  # fmt: skip


def order_listener(config: AppConfig, store: Store) -> MllpServer | None:
    """The MLLP order listener the config asks for (``[hl7] listen_port``), not started."""
    port = config.hl7.listen_port
    if port is None:
        return None
    from .hl7.mllp import MllpServer
    from .hl7.orders import order_handler

    handler = order_handler(
        lambda reading: store_reading(store, reading),
        zone=config.lab.zone,
        sending_application=config.lab.sending_application,
        sending_facility=config.lab.sending_facility,
    )
    return MllpServer(
        handler,
        host=config.hl7.listen_host,
        port=port,
        read_timeout=config.hl7.listen_read_timeout_seconds,
        max_message_bytes=config.hl7.listen_max_message_bytes,
        sending_application=config.lab.sending_application,
        sending_facility=config.lab.sending_facility,
    )
