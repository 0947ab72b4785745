"""Invented exports and an MLLP receiver that records every message, shared by the
reliability tests that run real daemons (crash consistency, several daemons)."""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from saa_lab.synth import PlannedSample, gen5_text, plate_values, worklist_csv

MLLP_CLINIC = "EHR"  # routed to the MLLP destination; other samples go to the file outbox
MLLP_DESTINATION = "ehr"
FILE_DESTINATION = "file"

# Samples of MLLP_CLINIC go to an MLLP receiver at {host}:{port}, the rest to the file
# outbox; quick retries. Fill with .format(name=MLLP_DESTINATION, host=, port=,
# clinic=MLLP_CLINIC).
MLLP_ROUTING = """
[[destinations]]
name = "{name}"
type = "mllp"
host = "{host}"
port = {port}
connect_timeout_seconds = 2.0
send_timeout_seconds = 2.0
ack_timeout_seconds = 5.0

[destinations.retry]
base_seconds = 0.05
factor = 2.0
max_interval_seconds = 0.5
jitter = 0.2
budget_hours = 1.0

[routing]
default = "file"

[routing.clinics]
{clinic} = "{name}"
"""


# --- the exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    stem: str
    data: bytes
    worklist: bytes
    sha256: str
    routes: dict[str, str]  # accession -> destination it must be delivered to


def make_exports(count: int, samples: int, seed: int) -> list[Export]:
    """``count`` distinct Gen5 exports with their worklists; half of each plate's samples
    ordered by the MLLP clinic."""
    rng = random.Random(seed)
    exports = []
    for number in range(count):
        stem = f"CRASH{seed:03d}-{number:05d}"
        plan = [
            PlannedSample(
                accession=f"{stem}-S{i + 1:02d}",
                activity_u_per_l=round(rng.uniform(20, 700), 1),
                order={"clinic": MLLP_CLINIC} if i % 2 else None,
            )
            for i in range(samples)
        ]
        values, rows = plate_values(plan, seed=seed * 100_000 + number)
        data = gen5_text(values, barcode=stem).encode()
        routes = {p.accession: MLLP_DESTINATION if p.order else FILE_DESTINATION for p in plan}
        exports.append(Export(stem, data, worklist_csv(rows).encode(),
                              hashlib.sha256(data).hexdigest(), routes))  # fmt: skip
    return exports


def drop(inbox: Path, name: str, data: bytes) -> None:
    """Write-temp-then-rename, as instruments should (``.*.part`` is ignored)."""
    temp = inbox / f".{name}.part"
    temp.write_bytes(data)
    temp.replace(inbox / name)


def drop_export(inbox: Path, export: Export) -> None:
    drop(inbox, f"{export.stem}.worklist.csv", export.worklist)
    drop(inbox, f"{export.stem}.txt", export.data)


# --- the MLLP receiver ----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    control_id: str  # MSH-10
    accession: str  # OBR-3.1
    er7: str
    connection: str = ""  # the receiving thread: one per MLLP connection


@dataclass
class Receiver:
    """Records every message (duplicates too) and answers AA with MSA-2 = its MSH-10."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, er7: str) -> str:
        segments = [s for s in er7.split("\r") if s]
        control_id = segments[0].split("|")[9]
        obr = next((s.split("|") for s in segments if s.startswith("OBR|")), [])
        accession = obr[3].split("^")[0] if len(obr) > 3 else ""
        with self.lock:
            # One thread per connection: its name tells the connections apart.
            connection = threading.current_thread().name
            self.messages.append(Received(control_id, accession, er7, connection))
        return (
            "MSH|^~\\&|EHR|CLINIC|SAA-LAB|REFLAB|20261121220000||ACK^R01^ACK|"
            f"{uuid.uuid4().hex[:20]}|P|2.5.1\rMSA|AA|{control_id}"
        )

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)
