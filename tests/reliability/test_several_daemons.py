"""Three daemons on one PostgreSQL database and one shared inbox, one of them killed.

Three ``saa-lab watch`` processes (instances d1, d2, d3 of one configuration: the same
inbox, archive, outbox and database) work through a few hundred invented exports, some
there before they start and the rest dropped while they run. d1 starts first, so it
takes the sender role of both destinations (an MLLP receiver run by this test on
127.0.0.1, and the file outbox); it is killed with SIGKILL in the middle of a file
(crash point ``calibrated``: the file read and fitted, nothing stored), holding that
file's claim and both sender leases. d1 plays a daemon on another host
(``SAA_LAB_NODE``), so the others cannot see that its process is gone and wait for its
leases to run out (3 s here).

The checks:

* **exactly once**: every export stored once (one ``done`` source row, one run, one
  ``export-processed`` audit entry, all its results), archived, none left in the inbox,
  none in quarantine or ``archive/duplicates``; the survivors shared the work;
* **lease expiry**: the file d1 held when it died was processed by another daemon, and
  only after d1's claim on it had run out; the sender role passed to a survivor;
* **delivery**: every message sent, each MLLP message received (a duplicate is allowed
  only for the one message that may have been in flight at the kill, under its MSH-10),
  every file message written once;
* **one sender at a time, in order**: the receiver's connections never interleave (a
  connection's messages are contiguous), and messages arrive in queue order, except
  between messages committed at the same moment by two daemons, which have no order
  between them (none caused the other);
* the audit chain verifies; ``saa-lab status`` lists the three daemons.

Needs ``SAA_LAB_TEST_DATABASE_URL`` (skips without). ``SAA_LAB_CLUSTER_EXPORTS`` (default
240) sets the number of exports. About a minute on two cores::

    SAA_LAB_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/DB \\
        pytest tests/reliability/test_several_daemons.py -s
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_url, wait_for, write_config
from lab_support import (
    FILE_DESTINATION,
    MLLP_CLINIC,
    MLLP_DESTINATION,
    MLLP_ROUTING,
    Export,
    Received,
    Receiver,
    drop_export,
    make_exports,
)
from sqlalchemy import create_engine, text

from saa_lab.config import AppConfig, load_config
from saa_lab.faults import CRASH_ENV
from saa_lab.hl7 import MllpServer
from saa_lab.store import Store
from saa_lab.store.leases import NODE_ENV

pytestmark = pytest.mark.slow

EXPORTS = int(os.environ.get("SAA_LAB_CLUSTER_EXPORTS", "240"))
SAMPLES = 4
LEASE_SECONDS = 3.0
SEED = 9
HOST = "127.0.0.1"
# Messages whose transactions overlapped (committed by two daemons within this long of
# each other) may leave in either order.
CONCURRENT_SECONDS = 5.0

CLUSTER = """
[cluster]
lease_seconds = {lease}
"""


@dataclass
class Cluster:
    folder: Path
    config_path: Path
    config: AppConfig
    url: str
    logs: dict[str, Path]
    engine: Any = None

    def __post_init__(self) -> None:
        self.engine = create_engine(self.url, pool_size=1)

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def count(self, sql: str, **params: Any) -> int:
        return int(self.query(sql, **params)[0][0])

    def start(self, instance: str, crash_at: str = "", node: str = "") -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAA_LAB_")}
        env["SAA_LAB_INSTANCE"] = instance
        if node:
            env[NODE_ENV] = node
        if crash_at:
            env[CRASH_ENV] = crash_at
        log = self.folder / f"{instance}.log"
        self.logs[instance] = log
        with log.open("wb") as stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "saa_lab", "--config", str(self.config_path), "watch"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
            )  # fmt: skip

    def log(self, instance: str) -> str:
        return self.logs[instance].read_text(errors="replace")

    def finished(self) -> bool:
        if any(self.config.inbox.glob("*.txt")):
            return False
        done = self.count("SELECT count(*) FROM source_files WHERE status = 'done'")
        pending = self.count("SELECT count(*) FROM outbox WHERE status <> 'sent'")
        return done == EXPORTS and pending == 0


@dataclass
class Outcome:
    cluster: Cluster
    exports: list[Export]
    received: list[Received]
    killed_at: float  # wall clock (time.time()) when d1 was seen dead
    held_at_death: list[tuple[str, float]]  # (lease name, seconds it had left)
    senders_after: list[str]
    pids: dict[str, int]
    status: dict[str, Any]
    audit_verify: int
    elapsed: float


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    url = postgres_url()
    started = time.monotonic()
    receiver = Receiver()
    server = MllpServer(receiver, host=HOST, port=0, read_timeout=60)
    server.start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        folder = tmp_path_factory.mktemp("cluster")
        extra = CLUSTER.format(lease=LEASE_SECONDS) + MLLP_ROUTING.format(
            name=MLLP_DESTINATION, host=HOST, port=server.port, clinic=MLLP_CLINIC
        )
        config_path = write_config(folder / "lab", extra, database_url=url)
        config = load_config(config_path)
        cluster = Cluster(folder, config_path, config, url, {})
        Store(url).close()  # the schema, before three daemons race to create it
        config.inbox.mkdir(parents=True, exist_ok=True)
        exports = make_exports(EXPORTS, SAMPLES, SEED)
        first, rest = exports[: EXPORTS // 3], exports[EXPORTS // 3 :]
        for export in first:
            drop_export(config.inbox, export)
        # d1 dies on its 40th file, inside the file's claim.
        # d1 plays a daemon on another host (SAA_LAB_NODE): the survivors cannot see its
        # process is gone and must wait for its leases to run out.
        procs["d1"] = cluster.start(
            "d1", crash_at=f"calibrated:{max(2, EXPORTS // 6)}", node="another-host"
        )
        assert wait_for(lambda: "this daemon sends" in cluster.log("d1"), timeout=60), cluster.log(
            "d1"
        )
        procs["d2"] = cluster.start("d2")
        procs["d3"] = cluster.start("d3")
        killed_at = None
        held_at_death: list[tuple[str, float]] = []
        deadline = time.monotonic() + 300
        while not cluster.finished():
            assert time.monotonic() < deadline, (
                "not finished: "
                f"{cluster.query('SELECT status, count(*) FROM source_files GROUP BY status')} "
                f"{cluster.query('SELECT status, count(*) FROM outbox GROUP BY status')}"
            )
            if rest:
                drop_export(config.inbox, rest.pop(0))
            if killed_at is None and procs["d1"].poll() is not None:
                killed_at = time.time()
                pid = procs["d1"].pid
                held_at_death = [
                    (str(name), float(left))
                    for name, left in cluster.query(
                        "SELECT name, expires - extract(epoch from clock_timestamp()) "
                        "FROM leases WHERE holder LIKE :pid",
                        pid=f"%:{pid}:%",
                    )
                ]
            for name in ("d2", "d3"):
                assert procs[name].poll() is None, cluster.log(name)
            time.sleep(0.1)
        assert killed_at is not None, "d1 never reached its crash point"
        assert procs["d1"].returncode == -signal.SIGKILL
        senders_after = [
            str(h) for (h,) in cluster.query("SELECT holder FROM leases WHERE name LIKE 'sender:%'")
        ]
        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "saa_lab", "--config", str(config_path), "status", "--json"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for name in ("d2", "d3"):
            procs[name].send_signal(signal.SIGTERM)
        for name in ("d2", "d3"):
            assert procs[name].wait(timeout=60) == 0, cluster.log(name)
        verify = subprocess.run(
            [sys.executable, "-m", "saa_lab", "--config", str(config_path), "audit", "verify"],
            capture_output=True, timeout=120,
        ).returncode  # fmt: skip
        pids = {name: proc.pid for name, proc in procs.items()}
        elapsed = time.monotonic() - started
        result = Outcome(cluster, exports, receiver.snapshot(), killed_at, held_at_death,
                         senders_after, pids, status, verify, elapsed)  # fmt: skip
        print(summary(result))
        yield result
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        server.stop()
        if "cluster" in locals():
            cluster.engine.dispose()


def summary(outcome: Outcome) -> str:
    received = outcome.received
    cluster = outcome.cluster
    processed = {n: cluster.log(n).count(" processed: ") for n in ("d1", "d2", "d3")}
    return "\n".join(
        [
            "",
            f"several daemons: {len(outcome.exports)} exports, {SAMPLES} samples each, "
            f"lease {LEASE_SECONDS:g} s",
            f"processed per daemon: {processed}",
            f"MLLP messages received {len(received)}, "
            f"distinct {len({m.control_id for m in received})}, "
            f"connections {len({m.connection for m in received})}",
            f"leases held by d1 at its death: {outcome.held_at_death}",
            f"elapsed {outcome.elapsed:.1f} s",
        ]
    )


def test_every_export_is_processed_exactly_once(outcome: Outcome) -> None:
    cluster = outcome.cluster
    hashes = [e.sha256 for e in outcome.exports]
    rows = cluster.query("SELECT sha256, status, archive_path FROM source_files")
    assert sorted(r[0] for r in rows) == sorted(hashes)  # one row each, no other
    assert {r[1] for r in rows} == {"done"}
    assert all(r[2] and Path(r[2]).is_file() for r in rows)
    assert cluster.count("SELECT count(*) FROM runs") == EXPORTS
    assert cluster.count("SELECT count(*) FROM results") == EXPORTS * SAMPLES
    assert (
        cluster.count("SELECT count(*) FROM audit_log WHERE action = 'export-processed'") == EXPORTS
    )
    config = cluster.config
    assert sorted(p.name for p in config.inbox.iterdir()) == []
    assert not config.quarantine.exists() or not any(config.quarantine.iterdir())
    assert not any((config.archive / "duplicates").glob("*")), "a file was seen twice"


def test_the_survivors_shared_the_work(outcome: Outcome) -> None:
    processed = {n: outcome.cluster.log(n).count(" processed: ") for n in ("d2", "d3")}
    assert all(count > 0 for count in processed.values()), processed


def test_the_killed_daemons_file_waited_for_its_claim_to_run_out(outcome: Outcome) -> None:
    held = dict(outcome.held_at_death)
    files = [name.removeprefix("file:") for name in held if name.startswith("file:")]
    assert len(files) == 1, held  # it died inside one file's claim
    assert {"sender:ehr", "sender:file"} <= set(held), held  # and sending to both
    left = held[f"file:{files[0]}"]
    assert 0 < left <= LEASE_SECONDS
    [(processed_at,)] = outcome.cluster.query(
        "SELECT processed_at FROM source_files WHERE name = :name", name=files[0]
    )
    assert isinstance(processed_at, datetime)
    # Not before the claim ran out (0.5 s for the clocks of test and database).
    assert processed_at.timestamp() >= outcome.killed_at + left - 0.5
    # The survivors took the sender role over.
    survivors = {f":{outcome.pids[n]}:" for n in ("d2", "d3")}
    assert len(outcome.senders_after) == 2
    assert all(any(p in holder for p in survivors) for holder in outcome.senders_after)
    log = outcome.cluster.log("d2") + outcome.cluster.log("d3")
    assert "this daemon sends" in log


def test_every_message_is_delivered_under_one_msh10(outcome: Outcome) -> None:
    cluster = outcome.cluster
    routes = {a: d for e in outcome.exports for a, d in e.routes.items()}
    rows = cluster.query(
        "SELECT o.destination, o.control_id, o.status, s.accession FROM outbox o"
        " JOIN results s ON s.id = o.result_id"
    )
    assert {r[2] for r in rows} == {"sent"}
    released = cluster.query(
        "SELECT s.accession FROM results s JOIN result_states st ON st.result_id = s.id"
        " WHERE st.state = 'released'"
    )
    assert len(released) > EXPORTS  # most plates pass their QC
    # One message per released result, to its clinic's destination; no other.
    assert sorted(str(r[3]) for r in rows) == sorted(str(a) for (a,) in released)
    assert all(routes[str(r[3])] == r[0] for r in rows)
    mllp = sorted(r[1] for r in rows if r[0] == MLLP_DESTINATION)
    files = sorted(r[1] for r in rows if r[0] == FILE_DESTINATION)
    assert sorted({m.control_id for m in outcome.received}) == mllp
    repeats = Counter(m.control_id for m in outcome.received) - Counter(set(mllp))
    assert sum(repeats.values()) <= 1, repeats  # only one can have been in flight
    written = sorted(p.stem for p in cluster.config.outbox.glob("*.hl7"))
    assert written == files


def test_one_sender_at_a_time_in_queue_order(outcome: Outcome) -> None:
    received = outcome.received
    # Connections never interleave: once a connection's messages stop, it is done.
    finished: set[str] = set()
    for before, after in itertools.pairwise(received):
        assert after.connection not in finished, f"{after.connection} came back"
        if after.connection != before.connection:
            finished.add(before.connection)
    rows = outcome.cluster.query(
        "SELECT control_id, id, created_at FROM outbox WHERE destination = :d",
        d=MLLP_DESTINATION,
    )
    queued = {str(cid): (int(i), created) for cid, i, created in rows}
    first: list[str] = []
    for message in received:
        if message.control_id not in first:
            first.append(message.control_id)
    inversions = 0
    for earlier, later in itertools.pairwise(first):
        (a_id, a_at), (b_id, b_at) = queued[earlier], queued[later]
        if b_id < a_id:
            inversions += 1
            gap = abs((a_at - b_at).total_seconds())
            assert gap < CONCURRENT_SECONDS, (
                f"message {later} (queued {b_at}) left after {earlier} (queued {a_at})"
            )
    print(f"order: {len(first)} messages, {inversions} concurrent-commit inversions")


def test_the_audit_chain_verifies_and_status_lists_the_daemons(outcome: Outcome) -> None:
    assert outcome.audit_verify == 0
    instances = sorted(d.get("instance") for d in outcome.status["daemons"])
    assert instances == ["d1", "d2", "d3"]
