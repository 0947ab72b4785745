"""Order intake: HL7 orders received over MLLP, stored before they are acknowledged.

The listener answers AA only after the orders are in the database; orders with
problems are stored flagged (AE names the problems); a message we cannot accept
is answered AR and not stored; if the database cannot be reached the listener
answers AE (ERR 207) so the sender resends. A resend of a stored message is
recognised by its MSH-10 and not stored twice. No order is silently dropped.

Who may send is the listener's business (``[hl7]`` ``listen_allow``,
``listen_max_connections``, ``[hl7.listen_tls]``; see :mod:`saa_lab.hl7.mllp`).
Its TLS files are checked when the listener is made, before ``saa-lab watch``
starts: a missing or unreadable one is a ConfigError naming its key.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

from .config import AppConfig
from .errors import ConfigError
from .store import Store

if TYPE_CHECKING:
    from .hl7.mllp import MllpServer
    from .hl7.orders import OrderReading

__all__ = ["listener_tls_context", "order_listener", "store_reading"]

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
    """The MLLP order listener the config asks for (``[hl7] listen_port``), not started.

    Raises ConfigError (naming the key) for TLS files that are missing or unusable.
    """
    port = config.hl7.listen_port
    if port is None:
        return None
    from .hl7.mllp import DEFAULT_HANDSHAKE_TIMEOUT, MllpServer
    from .hl7.orders import order_handler

    tls = config.hl7.listen_tls
    context = listener_tls_context(config)  # before anything starts: ConfigError names the key
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
        max_connections=config.hl7.listen_max_connections,
        allow=config.hl7.listen_allow,
        ssl_context=context,
        handshake_timeout=(
            tls.handshake_timeout_seconds if tls is not None else DEFAULT_HANDSHAKE_TIMEOUT
        ),
        sending_application=config.lab.sending_application,
        sending_facility=config.lab.sending_facility,
    )


def listener_tls_context(config: AppConfig) -> ssl.SSLContext | None:
    """The listener's TLS context from ``[hl7.listen_tls]`` (None without that section).

    Every file must exist and load; otherwise ConfigError names the key
    (``hl7.listen_tls.cert_file`` …), as :meth:`AppConfig.check_routes` does for
    destinations.
    """
    tls = config.hl7.listen_tls
    if tls is None:
        return None
    from .hl7.mllp import server_tls_context

    where = config.source
    files = {"cert_file": tls.cert_file, "key_file": tls.key_file,
             "client_ca_file": tls.client_ca_file}  # fmt: skip
    for label, file in files.items():
        if file is not None and not config.resolve(file).is_file():
            msg = f"TLS {label} {config.resolve(file)} does not exist"
            raise ConfigError(msg, path=where, key=f"hl7.listen_tls.{label}")
    cert, key = config.resolve(tls.cert_file), config.resolve(tls.key_file)
    try:  # first without the client CA, so that an error names the file at fault
        server_tls_context(cert, key, require_client_cert=False)
    except (OSError, ssl.SSLError) as error:
        msg = f"cannot use the certificate {cert} with the key {key}: {error}"
        raise ConfigError(msg, path=where, key="hl7.listen_tls.cert_file") from error
    ca = config.resolve(tls.client_ca_file) if tls.client_ca_file is not None else None
    try:
        context = server_tls_context(cert, key, client_ca_file=ca,
                                     require_client_cert=tls.require_client_cert)  # fmt: skip
    except (OSError, ssl.SSLError) as error:
        msg = f"cannot read the client CA {ca}: {error}"
        raise ConfigError(msg, path=where, key="hl7.listen_tls.client_ca_file") from error
    return context
