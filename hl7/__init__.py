"""HL7 v2 for saa-lab: the ORU^R01 result builder and the file outbox.

Installed as ``saa_lab.hl7`` (never as a top-level ``hl7``, which is
python-hl7's import name).
"""

from __future__ import annotations

from .mllp import MllpClient, MllpServer, send_mllp
from .orders import (
    ORDER_OBX_CODES,
    ORDER_VERSIONS,
    OrderProblem,
    OrderReading,
    build_ack,
    order_handler,
    read_order,
)
from .oru import (
    AOE_DOSE_TIME_CODE,
    AOE_FORMULATION_CODE,
    SUPPORTED_VERSIONS,
    ReportedResult,
    build_oru_r01,
    build_oru_r01_message,
    format_number,
)
from .outbox import build_batch, message_file_bytes, write_batch_file, write_message_file

__all__ = [
    "AOE_DOSE_TIME_CODE",
    "AOE_FORMULATION_CODE",
    "ORDER_OBX_CODES",
    "ORDER_VERSIONS",
    "SUPPORTED_VERSIONS",
    "MllpClient",
    "MllpServer",
    "OrderProblem",
    "OrderReading",
    "ReportedResult",
    "build_ack",
    "build_batch",
    "build_oru_r01",
    "build_oru_r01_message",
    "format_number",
    "message_file_bytes",
    "order_handler",
    "read_order",
    "send_mllp",
    "write_batch_file",
    "write_message_file",
]
