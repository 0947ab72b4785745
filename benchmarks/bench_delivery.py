"""Building one ORU^R01, and delivering messages over MLLP on loopback through the real worker.

    python benchmarks/bench_delivery.py [--messages 1000] [--database-url URL]

* build: ``ReportedResult`` (its checks included) + ``build_oru_r01``, median of 2000;
* build + validate: the same, then hl7apy STRICT parse into the ORU_R01 groups and
  ``validate()``, median of 100 (the check the tests run; not on the delivery path);
* backlog: ``--messages`` queued for an MLLP destination before a
  :class:`~saa_lab.delivery.DeliveryWorker` starts; an ``MllpServer`` on 127.0.0.1,
  in its own process (the receiving system), answers each with an AA built by
  ``build_ack``. Messages per second from the
  worker's start to the last one recorded sent; per-message time is the median
  interval between consecutive sends (read the head, send, wait for the ACK, check
  MSA-2, record it);
* one at a time: a message queued, the worker notified, until it is recorded sent
  (200 of them): the latency a result sees on an idle queue.

Targets: under 10 ms per message built, 200 messages/s delivered. Prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from saa_lab.config import AppConfig, Destination
from saa_lab.delivery import DeliveryStep, DeliveryWorker
from saa_lab.hl7 import MllpServer, ReportedResult, build_ack, build_oru_r01
from saa_lab.hl7.oru import build_oru_r01_message
from saa_lab.store import Store
from saa_lab.synth import queue_synthetic_messages

NOW = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


def reported(control_id: str, accession: str) -> ReportedResult:
    return ReportedResult(
        message_control_id=control_id,
        message_time=NOW,
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        receiving_application="CLINIC-EHR",
        receiving_facility="CHILDRENS",
        accession=accession,
        patient_id="MRN0012345",
        patient_family_name="Doe",
        patient_given_name="Jane",
        placer_order_number="ORD-991",
        ordering_clinic="Oncology",
        collection_time=NOW,
        value=123.4,
        abnormal_flag="",
        analysis_time=NOW,
        comments=("Activity above 100 U/L: adequate asparaginase activity.",),
        formulation="Oncaspar (pegaspargase)",
        dose_time=NOW,
    )


def build_one(index: int) -> str:
    return build_oru_r01(reported(f"C{index:019d}", f"ACC{index:06d}"))


def median_ms(action: Callable[[int], object], repeat: int) -> tuple[float, float]:
    times = []
    for index in range(repeat):
        started = time.perf_counter()
        action(index)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def enqueue(store: Store, destination: str, count: int) -> list[str]:
    return queue_synthetic_messages(
        store, destination, count, lambda cid, acc: build_oru_r01(reported(cid, acc))
    )


class Sent:
    """Records when each message was recorded sent (the worker's on_step)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.failures = 0
        self.changed = threading.Condition()

    def __call__(self, step: DeliveryStep) -> None:
        with self.changed:
            if step.outcome == "sent":
                now = time.perf_counter()
                for control_id in step.control_ids:
                    self.times[control_id] = now
            elif step.outcome in ("retry", "dead"):
                self.failures += 1
            self.changed.notify_all()

    def wait(self, control_ids: list[str], timeout: float = 120.0) -> None:
        last = control_ids[-1]  # order is kept: the last one sent means all were
        with self.changed:
            ok = self.changed.wait_for(lambda: last in self.times, timeout)
        if not ok or not all(c in self.times for c in control_ids):
            sys.exit(f"not delivered within {timeout:g} s")


def answer(er7: str) -> str:
    return build_ack(er7, "AA", [], sending_application="CLINIC-EHR",
                     sending_facility="CHILDRENS", now=datetime.now(UTC))  # fmt: skip


def receiver(port: Connection) -> None:
    """The receiving system, in its own process (its CPU is not the sender's)."""
    with MllpServer(answer, port=0) as server:
        port.send(server.port)
        port.recv()  # until told to stop


@contextmanager
def receiving() -> Iterator[int]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=receiver, args=(theirs,))
    process.start()
    try:
        yield int(ours.recv())
    finally:
        ours.send("stop")
        process.join(10)


def deliver(database_url: str, count: int) -> dict[str, float]:
    store = Store(database_url)
    with receiving() as port:
        dest = Destination(name="ehr", type="mllp", host="127.0.0.1", port=port)
        config = AppConfig(destinations=(dest,), base_dir=Path.cwd())
        queued = enqueue(store, "ehr", count)
        sent = Sent()
        worker = DeliveryWorker(store, config, dest, idle_seconds=60, on_step=sent)
        started = time.perf_counter()
        worker.start()
        try:
            sent.wait(queued)
            elapsed = time.perf_counter() - started
            stamps = sorted(sent.times[c] for c in queued)
            intervals = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
            latencies = []
            for _ in range(200):
                (one,) = enqueue(store, "ehr", 1)
                queued_at = time.perf_counter()
                worker.notify()
                sent.wait([one])
                latencies.append((sent.times[one] - queued_at) * 1000)
        finally:
            worker.stop(10.0)
    store.close()
    latencies.sort()
    return {
        "per_second": count / elapsed,
        "elapsed": elapsed,
        "interval_median": statistics.median(intervals),
        "interval_p95": sorted(intervals)[int(0.95 * (len(intervals) - 1))],
        "one_median": statistics.median(latencies),
        "one_p95": latencies[int(0.95 * (len(latencies) - 1))],
        "failures": sent.failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url", default=None,
                        help="default: SQLite in a temporary folder")  # fmt: skip
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for index in range(50):  # warm-up (imports, caches)
        build_one(index)
    build_oru_r01_message(reported("WARMUP", "ACC")).validate()
    build, build_p95 = median_ms(build_one, 2000)
    validated, validated_p95 = median_ms(
        lambda i: build_oru_r01_message(reported(f"C{i:019d}", f"A{i}")).validate(), 100
    )
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        figures = deliver(url, args.messages)
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite (WAL)"
    print()
    print("| measurement | median | p95 |")
    print("|---|---|---|")
    print(f"| build one ORU^R01 (ReportedResult + ER7) | {build:.3f} ms | {build_p95:.3f} ms |")
    print(f"| build + hl7apy STRICT parse + validate | {validated:.1f} ms | "
          f"{validated_p95:.1f} ms |")  # fmt: skip
    print(f"| MLLP backlog of {args.messages}, {database}: per message | "
          f"{figures['interval_median']:.2f} ms | {figures['interval_p95']:.2f} ms |")  # fmt: skip
    print(f"| MLLP one at a time (queued -> recorded sent), {database} | "
          f"{figures['one_median']:.2f} ms | {figures['one_p95']:.2f} ms |")  # fmt: skip
    print()
    print(f"backlog: {args.messages} messages in {figures['elapsed']:.2f} s = "
          f"{figures['per_second']:.0f} messages/s, {figures['failures']:.0f} retries")  # fmt: skip


if __name__ == "__main__":
    main()
